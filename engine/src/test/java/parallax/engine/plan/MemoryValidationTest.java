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
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;

class MemoryValidationTest {

    static final ModelSpec TINY = ModelCatalog.get("tiny-gpt");

    /** Elements on one GPU of stage st, counted by hand from GPT-2's tensor shapes (not via the planner). */
    static long byHand(int t, int p, int st) {
        long h = 64, f = 256, v = 256, s = 64;
        long layerWeights = (4 * h * h + 2 * h * f) / t;              // qkv 3h², out h² (split); fc, proj (split)
        long layerVectors = (3 * h + f) / t + 2 * h + 4 * h;           // qkv and fc biases split; proj biases, 2 LayerNorms not
        long perLayer = layerWeights + layerVectors;
        long n = perLayer * (2 / p);                                   // 2 layers over p stages
        if (st == 0) n += v * h / t + s * h;                           // wte (vocab-parallel) + wpe
        if (st == p - 1) n += 2 * h + (p > 1 ? v * h / t : 0);         // ln_f, and the tied head's copy of wte
        return n;
    }

    @Test
    void modelStatesPerRankExactForEveryZeroStageAndSplit() {
        Conventions c = Conventions.defaults();
        for (int dp : new int[] {1, 2, 3, 4}) {
            for (int tp : new int[] {1, 2, 4}) {
                for (int pp : new int[] {1, 2}) {
                    for (int zero = 0; zero <= 3; zero++) {
                        Layout l = new Layout(dp, tp, pp, 1, zero, 2, 1, 32, Recompute.NONE, false, Optimizer.ADAMW, Dtype.FP32,
                                false, false, null);
                        long[] ownedSum = new long[pp];
                        for (int rank = 0; rank < l.gpus(); rank++) {
                            MemoryValidation.Prediction p = MemoryValidation.predict(TINY, l, c, rank);
                            int st = rank / (tp * dp), d = (rank / tp) % dp;
                            long n = byHand(tp, pp, st);
                            long chunk = (n + dp - 1) / dp;
                            long owned = Math.max(0, Math.min(chunk, n - d * chunk));
                            String where = "dp" + dp + " tp" + tp + " pp" + pp + " z" + zero + " rank" + rank;
                            assertEquals((zero == 3 ? owned : n) * 4, p.paramBytes(), where);
                            assertEquals((zero >= 2 ? owned : n) * 4, p.gradBytes(), where);
                            assertEquals((zero >= 1 ? owned : n) * 8, p.optimizerBytes(), where);
                            if (zero == 3 && rank % tp == 0) ownedSum[st] += p.paramBytes() / 4;
                        }
                        if (zero == 3) for (int st = 0; st < pp; st++) assertEquals(byHand(tp, pp, st), ownedSum[st]);
                    }
                }
            }
        }
    }

    @Test
    void comparesARecordAndReportsGapsHonestly(@TempDir Path dir) throws Exception {
        // A record in the engine's format. Rank 0's numbers are the by-hand counts (so they must match);
        // rank 1 is written 4 bytes off and with activations 40% high, so the comparison must flag both.
        long n0 = byHand(1, 1, 0);
        long chunk = (n0 + 1) / 2;
        Layout l = new Layout(2, 1, 1, 1, 1, 2, 1, 32, Recompute.NONE, false, Optimizer.ADAMW, Dtype.FP32, false, false, null);
        double act = MemoryValidation.predict(TINY, l, Conventions.defaults(), 0).activationBytes();
        String rec = String.format("""
                {"model": "tiny-gpt", "runs": [
                 {"strategy": "zero1", "rank": 0, "dp": 2, "tp": 1, "pp": 1, "zero": 1, "dtype": "fp32", "optimizer": "adamw",
                  "micro_batch": 2, "seq": 32, "param_bytes": %d, "grad_bytes": %d, "optimizer_bytes": %d, "activation_bytes": %d},
                 {"strategy": "zero1", "rank": 1, "dp": 2, "tp": 1, "pp": 1, "zero": 1, "dtype": "fp32", "optimizer": "adamw",
                  "micro_batch": 2, "seq": 32, "param_bytes": %d, "grad_bytes": %d, "optimizer_bytes": %d, "activation_bytes": %d}]}""",
                n0 * 4, n0 * 4, chunk * 8, Math.round(act * 1.05), n0 * 4, n0 * 4, (n0 - chunk) * 8 + 4, Math.round(act * 1.4));
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

        Files.writeString(f, "{\"runs\": [{\"strategy\": \"x\"}]}");
        assertTrue(assertThrows(UserError.class, () -> MemoryValidation.read(f)).getMessage().contains("lacks \"rank\""));
    }
}
