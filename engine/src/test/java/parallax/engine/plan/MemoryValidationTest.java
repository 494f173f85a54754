package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;

class MemoryValidationTest {

    static final ModelSpec TINY = ModelCatalog.get("tiny-gpt");

    @Test
    void catalogTinyIsTheEnginesTiny() {
        // The engine counts its own parameters (GptConfig.parameterCount); our tensor list must agree.
        assertEquals(GptConfig.tiny().parameterCount(), TINY.parameters());
        assertEquals(GptConfig.small().parameterCount(), ModelCatalog.get("small-gpt").parameters());
        assertEquals(GptConfig.medium().parameterCount(), ValidationRuns.spec(GptConfig.medium()).parameters());
    }

    /** Elements of each unit (embedding, blocks, head) of stage st on one TP rank, by hand from the engine's shapes. */
    static long[] unitsByHand(int t, int p, int st) {
        long h = 32, f = 128, v = 256, s = 32;
        long block = (4 * h * h + 2 * h * f) / t            // q, k, v, fc columns and out, fc2 rows: split
                + (3 * h + f) / t + 2 * h + 4 * h;           // q/k/v/fc biases split; out/fc2 biases and 2 LayerNorms whole
        int layers = 4 / p;
        long[] u = new long[layers + (st == 0 ? 1 : 0) + (st == p - 1 ? 1 : 0)];
        int i = 0;
        if (st == 0) u[i++] = v * h + s * h;                 // wte, wpe: whole on every TP rank
        for (int l = 0; l < layers; l++) u[i++] = block;
        if (st == p - 1) u[i] = 2 * h + v * h;               // final LayerNorm and untied head
        return u;
    }

    @Test
    void modelStatesPerRankExactForEveryZeroStageSplitAndPrecision() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int dp : new int[] {1, 2, 3, 4}) {
                for (int tp : new int[] {1, 2, 4}) {
                    for (int pp : new int[] {1, 2, 4}) {
                        for (int zero = 0; zero <= 3; zero++) {
                            Layout l = new Layout(dp, tp, pp, 1, zero, 2, 1, 32, Recompute.NONE, false, Optimizer.ADAMW, dt,
                                    false, false, null);
                            int cb = dt == DType.F32 ? 4 : 2;
                            for (int rank = 0; rank < l.gpus(); rank++) {
                                MemoryValidation.Prediction p = MemoryValidation.predict(TINY, l, rank);
                                int st = rank / (tp * dp);
                                long numel = 0, padded = 0;
                                for (long n : unitsByHand(tp, pp, st)) { numel += n; padded += (n + dp - 1) / dp * dp; }
                                long shard = padded / dp;
                                String where = dt + " dp" + dp + " tp" + tp + " pp" + pp + " z" + zero + " rank" + rank;
                                assertEquals((zero < 3 ? padded : shard) * cb, p.paramBytes(), where);
                                assertEquals(zero <= 1 ? numel * cb : shard * 4, p.gradBytes(), where);
                                long master = zero == 0 ? padded : shard;
                                assertEquals(master * 8 + (dt == DType.F32 ? 0 : master * 4), p.optimizerBytes(), where);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void comparesARecordAndReportsGapsHonestly(@TempDir Path dir) throws Exception {
        // A record in the engine's format. Rank 0's numbers are the by-hand counts (so they must match);
        // rank 1 is written 4 bytes off and with activations 40% high, so the comparison must flag both.
        long numel = 0, padded = 0;
        for (long n : unitsByHand(1, 1, 0)) { numel += n; padded += (n + 1) / 2 * 2; }
        long shard = padded / 2;
        Layout l = new Layout(2, 1, 1, 1, 1, 4, 1, 32, Recompute.NONE, false, Optimizer.ADAMW, DType.F32, false, false, null);
        double act = MemoryValidation.predict(TINY, l, 0).activationBytes();
        String run = """
                 {"strategy": "ZeRO-1", "rank": %d, "dp": 2, "tp": 1, "pp": 1, "zero": 1, "dtype": "fp32", "optimizer": "adamw",
                  "micro_batch": 4, "seq": 32, "param_bytes": %d, "grad_bytes": %d, "optimizer_bytes": %d, "activation_bytes": %d}""";
        String rec = "{\"model\": \"tiny-gpt\", \"runs\": [" + String.format(run, 0, padded * 4, numel * 4, shard * 8, Math.round(act * 1.05))
                + "," + String.format(run, 1, padded * 4, numel * 4, shard * 8 + 4, Math.round(act * 1.4)) + "]}";
        Path f = dir.resolve("measured.json");
        Files.writeString(f, rec);
        List<MemoryValidation.Row> rows = MemoryValidation.compare(TINY, MemoryValidation.read(f));
        assertTrue(rows.get(0).statesExact());
        assertTrue(rows.get(0).activationOk());
        assertEquals(0.05, rows.get(0).activationGap(), 1e-3);
        assertFalse(rows.get(1).statesExact());
        assertFalse(rows.get(1).activationOk());
        var report = MemoryValidation.report(TINY, rows, "measured.json");
        assertTrue(report.toText().contains("1 of 2 ranks have model-state bytes exactly as predicted"));

        // What ValidationRuns.save writes, read back.
        ValidationRuns.save("tiny-gpt", MemoryValidation.read(f), dir.resolve("copy.json"));
        assertEquals(MemoryValidation.read(f), MemoryValidation.read(dir.resolve("copy.json")));

        Files.writeString(f, "{\"runs\": [{\"strategy\": \"x\"}]}");
        assertTrue(assertThrows(UserError.class, () -> MemoryValidation.read(f)).getMessage().contains("lacks \"rank\""));
    }
}
