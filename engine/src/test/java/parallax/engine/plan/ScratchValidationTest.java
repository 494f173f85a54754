package parallax.engine.plan;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;

class ScratchValidationTest {
    @TempDir
    Path logs;

    @Test
    void print() {
        String preset = System.getProperty("preset", "tiny");
        int ranks = Integer.getInteger("ranks", 2);
        int batch = Integer.getInteger("batch", 8);
        GptConfig cfg = GptConfig.preset(preset);
        ModelSpec m = ValidationRuns.spec(cfg);
        List<ValidationRuns.Strategy> strategies = Boolean.getBoolean("all") ? ValidationRuns.defaults(ranks) : ValidationRuns.longContext(ranks);
        String only = System.getProperty("only");
        if (only != null) strategies = strategies.stream().filter(s -> s.name().matches(only)).toList();
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(120_000, 120_000);
        List<MemoryValidation.Measurement> runs;
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(ranks), ranks, opts)) {
            runs = ValidationRuns.run(cfg, strategies, 2, batch, n -> pool, (i, s) -> {});
        }
        for (MemoryValidation.Row r : MemoryValidation.compare(m, runs)) {
            System.out.printf("ROW %s rank %d states %s act pred %.0f meas %d gap %+.3f%n", r.measured().strategy(), r.measured().rank(),
                    r.statesExact(), r.predicted().activationBytes(), r.measured().activationBytes(), r.activationGap());
        }
    }
}
