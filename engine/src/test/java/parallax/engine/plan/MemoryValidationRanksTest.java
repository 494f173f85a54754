package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;

/**
 * The planner against the training engine over real worker JVMs (Gloo on 127.0.0.1):
 * every rank of every default strategy (DP, ZeRO 1-3, TP, PP 1F1B and GPipe, bf16,
 * checkpointing) holds exactly the predicted parameter, gradient and optimizer bytes.
 * Activations are within 15% on every rank, ZeRO-3 included (its parameters are
 * re-gathered for the backward; the activations are kept as the paper counts them).
 * Run with: mvn -B -q -o -pl engine test -Dtest=MemoryValidationRanksTest
 */
class MemoryValidationRanksTest {

    @TempDir
    Path logs;

    @Test
    void engineMeasurementsMatchThePlanner() {
        GptConfig cfg = GptConfig.tiny();
        ModelSpec m = ValidationRuns.spec(cfg);
        List<ValidationRuns.Strategy> strategies = ValidationRuns.defaults(2);
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 60_000);
        List<MemoryValidation.Measurement> runs;
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts)) {
            runs = ValidationRuns.run(cfg, strategies, 2, 8, n -> pool, (i, s) -> {});
        }
        assertEquals(strategies.size() * 2, runs.size());
        for (MemoryValidation.Row r : MemoryValidation.compare(m, runs)) {
            String where = r.measured().strategy() + " rank " + r.measured().rank();
            assertEquals(r.predicted().paramBytes(), r.measured().paramBytes(), where + " parameters");
            assertEquals(r.predicted().gradBytes(), r.measured().gradBytes(), where + " gradients");
            assertEquals(r.predicted().optimizerBytes(), r.measured().optimizerBytes(), where + " optimizer");
            assertTrue(r.measured().activationBytes() > 0, where);
            assertTrue(r.activationOk(), where + " activation gap " + r.activationGap());
        }
    }
}
