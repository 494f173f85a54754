package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import parallax.engine.cluster.TestBed;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;

class CommValidationTest {

    @Test
    void thePredictionIsThePlannersBytesOverTheRate() {
        GptConfig small = GptConfig.small();
        ModelSpec m = ValidationRuns.spec(small);
        Conventions c = Conventions.defaults();
        TrainingPlan.Comm dp = CommValidation.predicted(m, small, 2, 1, 8, 100_000_000L, c);
        assertEquals(4.0 * small.parameterCount(), dp.bytes(), 1e-6, "DP=2 sends 2Ψ(dp−1)/dp fp32 gradients = 4Ψ bytes");
        assertEquals(dp.bytes() / (100e6 / 8 * c.linkEfficiency()), dp.seconds(), 1e-12);
        TrainingPlan.Comm tp = CommValidation.predicted(m, small, 1, 2, 8, 1_000_000_000L, c);
        // 4 all-reduces per layer of b x s x h fp32 values, x 2(t−1)/t = 1 for t = 2
        assertEquals(4.0 * small.layers() * 8 * small.sequence() * small.hidden() * 4, tp.bytes(), 1e-6);
        assertEquals(List.of(100_000_000L, 1_000_000_000L), CommValidation.rates("100mbit, 1gbit"));
    }

    /** On a two-node test bed (root) at 100 Mbit/s the planner's DP and TP times hold within 25%. */
    @Test
    void atAHundredMegabitsThePlannerAgreesWithTheEngine() {
        String why = TestBed.unavailableReason();
        Assumptions.assumeTrue(why == null, () -> "test bed skipped: " + why);
        List<CommValidation.Row> rows = CommValidation.run(GptConfig.small(), List.of(100_000_000L), 3, 8, Conventions.defaults(),
                WorkerPool.Options.defaults(), (i, what) -> { });
        assertEquals(2, rows.size());
        for (CommValidation.Row r : rows) {
            System.out.printf("%s at 100 Mbit/s: predicted %.1f ms, measured %.1f ms (%.2f); p2p %.3f Gbit/s%n",
                    r.dimension(), r.predictedMs(), r.measuredMs(), r.ratio(), r.p2pGbps() * 8);
            assertEquals(r.predictedBytes(), r.handedBytes(), 1e-6, r.dimension() + ": the engine hands the bytes the planner counts");
            assertTrue(r.agrees(), r.dimension() + ": measured " + r.measuredMs() + " ms (in training " + r.trainingMs() + "), predicted " + r.predictedMs() + " ms");
            assertTrue(r.p2pGbps() * 8 > 0.08 && r.p2pGbps() * 8 < 0.11, "the pair reads the 100 Mbit/s link: " + r.p2pGbps() * 8);
        }
    }
}
