package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;

class MixedPrecisionTest {

    @Test
    void dynamicLossScaleHalvesOnOverflowAndGrowsWhenClean() {
        MixedPrecision.LossScaler s = MixedPrecision.scalerFor(DType.F16);
        assertTrue(s.dynamic());
        double start = s.scale();
        s.update(true);
        assertEquals(start / 2, s.scale());
        for (int i = 0; i < 50; i++) s.update(false);
        assertEquals(start, s.scale(), "doubles after 50 clean steps");
        assertFalse(MixedPrecision.scalerFor(DType.BF16).dynamic(), "bf16 needs no scaling");
    }

    @Test
    void fp16SkipsOverflowingStepsAndStillLearns() throws Exception {
        TrainSpec spec = TrainSpec.defaults(GptConfig.tiny()).withSteps(12).withPrecision(DType.F16).withLayout(2, 1, 1);
        var ranks = LocalGroups.run(spec);
        double[] loss = TrainingRun.globalLoss(ranks, 12);
        RankResult r = ranks.get(0);
        assertEquals(r.skippedSteps(), ranks.get(1).skippedSteps(), "ranks agree on every skip");
        assertTrue(loss[11] < loss[0], "loss falls: " + loss[0] + " -> " + loss[11]);
        assertTrue(r.finalLossScale() >= 1);
    }
}
