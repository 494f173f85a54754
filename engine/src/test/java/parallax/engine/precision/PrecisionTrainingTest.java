package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.precision.PrecisionTraining.Mode;
import parallax.engine.precision.PrecisionTraining.Run;
import parallax.engine.report.Progress;

class PrecisionTrainingTest {

    @Test
    void fp16WithoutLossScalingStallsWhereGradientsUnderflow() {
        PrecisionTraining.Result r = PrecisionTraining.run(
                PrecisionTraining.Config.defaults(List.of(Mode.FP32, Mode.FP16, Mode.FP16_NOSCALE), 150), Progress.NONE);
        Run fp32 = r.runs().get(0), fp16 = r.runs().get(1), noscale = r.runs().get(2);
        assertTrue(fp32.finalLoss() < fp32.loss()[0] / 100, "FP32 learns: " + fp32.loss()[0] + " -> " + fp32.finalLoss());
        assertTrue(fp16.finalLoss() < 2 * fp32.finalLoss(), "loss-scaled FP16 tracks FP32: " + fp16.finalLoss() + " vs " + fp32.finalLoss());
        assertTrue(noscale.finalLoss() > 4 * fp32.finalLoss(), "unscaled FP16 stalls: " + noscale.finalLoss() + " vs " + fp32.finalLoss());
        assertTrue(noscale.zeroGradientShare() > 0.3, "many gradients flushed to zero: " + noscale.zeroGradientShare());
        double[] under = PrecisionTrainingReport.underflowShares(r);
        assertTrue(under[1] > under[0], "dL/dy falls further below 2^-25 as the fit improves");
        // The scaler's rule: every skipped step halves the scale.
        for (int s : fp16.skippedAt()) {
            if (s + 1 < fp16.lossScale().length) assertEquals(fp16.lossScale()[s] / 2, fp16.lossScale()[s + 1]);
        }
        for (double v : noscale.lossScale()) assertEquals(1.0, v, "without loss scaling the scale stays 1, overflow or not");
    }

    @Test
    void reportHasTheChartsAndBadDtypesAreUserErrors() {
        PrecisionTraining.Result r = PrecisionTraining.run(
                PrecisionTraining.Config.defaults(List.of(Mode.BF16, Mode.FP16), 12), Progress.NONE);
        var report = PrecisionTrainingReport.of(r);
        long charts = report.parts().stream().filter(p -> p instanceof parallax.engine.report.Report.ChartPart).count();
        assertEquals(5, charts);
        String msg = assertThrows(UserError.class, () -> Mode.parseList("fp32,fp61")).getMessage();
        assertTrue(msg.contains("fp61") && msg.contains("Did you mean"), msg);
        assertThrows(UserError.class, () -> PrecisionTraining.Config.defaults(List.of(Mode.FP32), 0));
    }
}
