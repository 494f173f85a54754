package parallax.engine.parallel;

import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;

class Fp8ScratchTest {
    @Test
    void scratch() throws Exception {
        String model = System.getProperty("m", "small");
        int steps = Integer.getInteger("steps", 60);
        TrainSpec base = TrainSpec.defaults(GptConfig.preset(model)).withSteps(steps).withBatch(8);
        for (TrainSpec s : List.of(base.withPrecision(DType.BF16), base.withFp8(Fp8Recipe.defaults()),
                base.withFp8(Fp8Recipe.defaults().withScaling(Fp8Recipe.Scaling.CURRENT)),
                base.withFp8(Fp8Recipe.defaults().withScaling(Fp8Recipe.Scaling.NONE)), base)) {
            long t0 = System.nanoTime();
            List<RankResult> r = LocalGroups.run(s);
            double[] loss = TrainingRun.globalLoss(r, steps);
            double last = 0; for (int i = steps - 10; i < steps; i++) last += loss[i] / 10;
            System.out.printf("%-25s first %.4f last10 %.4f  %.1f ms/step%n", s.label(), loss[0], last, (System.nanoTime() - t0) / 1e6 / steps);
            if (r.get(0).fp8() != null) {
                var tr = r.get(0).fp8();
                for (int i = 0; i < Math.min(6, tr.slots().size()); i++)
                    System.out.printf("   %-20s amax %.3g scale %.3g sat %.2g flush %.2g%n", tr.slots().get(i), tr.amax()[i][steps-1], tr.scale()[i][steps-1], tr.saturatedShare()[i][steps-1], tr.flushedShare()[i][steps-1]);
            }
        }
    }
}
