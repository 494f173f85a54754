package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;

/**
 * {@code %plan --validate} on a mixture of experts: the planner's shape of an engine MoE GPT
 * carries its experts, router and shared expert, so its per-rank model-state bytes are the
 * engine's to the byte (by the engine's own parameter table, and measured over worker JVMs).
 */
class MoeValidationTest {

    static final GptConfig MOE = GptConfig.moeTiny();
    static final GptConfig SHARED = GptConfig.moeTiny().withMoe(new GptConfig.Moe(8, 1, 0, true, 0.01));

    @Test
    void theShapeCountsWhatTheEngineHolds() {
        for (GptConfig c : List.of(MOE, SHARED)) {
            ModelSpec m = ValidationRuns.spec(c);
            assertEquals(c.parameterCount(), m.parameters(), c.moe().label());
            assertEquals(c.activeParameterCount(), m.activeParameters(), c.moe().label());
            assertEquals(c.moe().experts(), m.experts());
            assertEquals(c.moe().topK(), m.topK());
        }
        // moe-tiny: 4 blocks of 4 experts (128x32 + 128 + 32x128 + 32 each) and a 4x32 router beside tiny's blocks
        long expert = 128 * 32 + 128 + 32 * 128 + 32;
        assertEquals(GptConfig.tiny().parameterCount() + 4 * (3 * expert + 4 * 32), ValidationRuns.spec(MOE).parameters());
        assertEquals(GptConfig.tiny().parameterCount(), ValidationRuns.spec(GptConfig.tiny()).parameters());
        UserError one = assertThrows(UserError.class,
                () -> ValidationRuns.spec(MOE.withMoe(new GptConfig.Moe(1, 1, 0, false, 0.01))));
        assertTrue(one.getMessage().contains("2 or more experts"), one.getMessage());
    }

    /** Elements of each unit of pipeline stage {@code st}, summed from the engine's own parameter table. */
    static long[] engineUnits(GptConfig c, int pp, int st) {
        int per = c.layers() / pp, first = st == 0 ? 0 : 1 + st * per, last = st == pp - 1 ? c.layers() + 1 : (st + 1) * per;
        long[] u = new long[last - first + 1];
        for (Gpt.ParamSpec p : Gpt.allParams(c))
            if (p.unit() >= first && p.unit() <= last) u[p.unit() - first] += p.numel();
        return u;
    }

    @Test
    void modelStatesPerRankAreTheEnginesForEveryZeroStageAndPipeline() {
        for (GptConfig c : List.of(MOE, SHARED)) {
            ModelSpec m = ValidationRuns.spec(c);
            for (DType dt : new DType[] {DType.F32, DType.BF16})
                for (int dp : new int[] {1, 2, 3, 4})
                    for (int pp : new int[] {1, 2, 4})
                        for (int zero = 0; zero <= 3; zero++) {
                            Layout l = new Layout(dp, 1, pp, 1, zero, 2, 1, 32, Recompute.NONE, false, Optimizer.ADAMW, dt,
                                    false, false, null);
                            int cb = dt == DType.F32 ? 4 : 2;
                            for (int rank = 0; rank < l.gpus(); rank++) {
                                MemoryValidation.Prediction p = MemoryValidation.predict(m, l, rank);
                                long numel = 0, padded = 0;
                                for (long n : engineUnits(c, pp, rank / dp)) { numel += n; padded += (n + dp - 1) / dp * dp; }
                                long shard = padded / dp, master = zero == 0 ? padded : shard;
                                String where = c.moe().label() + " " + dt + " dp" + dp + " pp" + pp + " z" + zero + " rank" + rank;
                                assertEquals((zero < 3 ? padded : shard) * cb, p.paramBytes(), where);
                                assertEquals(zero <= 1 ? numel * cb : shard * 4, p.gradBytes(), where);
                                assertEquals(master * 8 + (dt == DType.F32 ? 0 : master * 4), p.optimizerBytes(), where);
                            }
                        }
        }
    }

    @Test
    void theMixturesStrategiesLeaveOutTensorParallelism() {
        List<ValidationRuns.Strategy> moe = ValidationRuns.defaults(4, MOE);
        assertTrue(moe.stream().allMatch(s -> s.tp() == 1));
        assertEquals(ValidationRuns.defaults(4).stream().filter(s -> s.tp() == 1).count(), moe.size());
        assertEquals(ValidationRuns.defaults(2), ValidationRuns.defaults(2, GptConfig.tiny()));
    }

    @TempDir
    Path logs;

    @Test
    void measuredMixtureRunsHaveThePredictedModelStates() {
        var f = parallax.engine.parallel.PipelineParallel.Schedule.ONE_F_ONE_B;
        List<ValidationRuns.Strategy> strategies = List.of(
                new ValidationRuns.Strategy("ZeRO-1", 2, 1, 1, 1, 1, f, DType.F32, 0),
                new ValidationRuns.Strategy("PP 1F1B", 1, 1, 2, 0, 4, f, DType.F32, 0));
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 60_000);
        List<MemoryValidation.Measurement> runs;
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts)) {
            runs = ValidationRuns.run(MOE, strategies, 2, 8, n -> pool, (i, s) -> {});
        }
        assertEquals(4, runs.size());
        ModelSpec m = ValidationRuns.spec(MOE);
        ModelSpec dense = ValidationRuns.spec(MOE.withMoe(null));
        for (MemoryValidation.Row r : MemoryValidation.compare(m, runs)) {
            String where = r.measured().strategy() + " rank " + r.measured().rank();
            assertEquals(r.predicted().paramBytes(), r.measured().paramBytes(), where + " parameters");
            assertEquals(r.predicted().gradBytes(), r.measured().gradBytes(), where + " gradients");
            assertEquals(r.predicted().optimizerBytes(), r.measured().optimizerBytes(), where + " optimizer");
            // The engine keeps more than the dense formula scaled by k (router probabilities, each expert's gathered
            // tokens, the gated combine): 18-31% more on moe-tiny (docs/plan.md); held here so that a change shows.
            assertTrue(r.activationGap() > 0 && r.activationGap() < 0.35, where + " activation gap " + r.activationGap());
        }
        // The same measurements against the dense shape of the same GPT: no rank's model states match.
        for (MemoryValidation.Row r : MemoryValidation.compare(dense, runs))
            assertNotEquals(r.predicted().paramBytes(), r.measured().paramBytes(), r.measured().strategy() + " rank " + r.measured().rank());
    }
}
