package parallax.engine.precision;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.cluster.Mesh;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.Comm;
import parallax.engine.parallel.Fp8Recipe;
import parallax.engine.parallel.RankResult;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.TrainingLoop;
import parallax.engine.parallel.TrainingRun;
import parallax.engine.report.Progress;
import parallax.engine.torch.Device;

/**
 * The GPT trained the same way in several precisions, in this process (one rank, the
 * engine's own training loop, so every precision is exactly what {@code %parallel
 * --precision} runs): fp32, bf16, fp16 with dynamic loss scaling, and FP8 with delayed,
 * current or no scaling. Same weights, same batches, same seed.
 */
public final class GptPrecisionTraining {

    /** A way to train the GPT. */
    public enum Mode {
        FP32("fp32"), BF16("bf16"), FP16("fp16"), FP8("fp8"), FP8_CURRENT("fp8-current"), FP8_NOSCALE("fp8-noscale");

        private final String label;

        Mode(String label) { this.label = label; }

        public String label() { return label; }

        /** {@code base} trained this way. */
        public TrainSpec apply(TrainSpec base) {
            return switch (this) {
                case FP32 -> base.withPrecision(DType.F32);
                case BF16 -> base.withPrecision(DType.BF16);
                case FP16 -> base.withPrecision(DType.F16);
                case FP8 -> base.withFp8(Fp8Recipe.defaults());
                case FP8_CURRENT -> base.withFp8(Fp8Recipe.defaults().withScaling(Fp8Recipe.Scaling.CURRENT));
                case FP8_NOSCALE -> base.withFp8(Fp8Recipe.defaults().withScaling(Fp8Recipe.Scaling.NONE));
            };
        }

        public static List<Mode> parseList(String csv) {
            return ModeList.parse(csv, values(), Mode::label, " for the GPT");
        }
    }

    /** Every mode's run, in the order asked. */
    public record Result(GptConfig model, List<Mode> modes, List<TrainingRun> runs) {}

    private GptPrecisionTraining() {}

    /** The base run every mode changes: the model, steps, batch and seed; AdamW as %parallel's default. */
    public static TrainSpec base(GptConfig model, int steps, int batch, long seed) {
        if (steps < 1) throw new UserError("--steps must be at least 1, got " + steps);
        if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
        return TrainSpec.defaults(model).withSteps(steps).withBatch(batch).withSeed(seed);
    }

    public static Result run(TrainSpec base, List<Mode> modes, Progress progress) {
        List<TrainingRun> runs = new ArrayList<>();
        long total = (long) base.steps() * modes.size();
        long[] done = {0};
        for (Mode m : modes) {
            TrainSpec spec = m.apply(base);
            spec.validate(1);
            long offset = done[0];
            RankResult r = TrainingLoop.train(spec, 0, Mesh.coords(spec.mesh(), 0), Device.cpu(),
                    new TrainingLoop.Groups(Comm.single(), Comm.single(), Comm.single()), (step, metrics) -> {
                        Object loss = metrics.get("loss");
                        progress.update(offset + step, Map.of("dtype", m.label(),
                                "loss", loss instanceof Number n ? String.format(Locale.ROOT, "%.3f", n.doubleValue()) : "-"));
                    });
            runs.add(TrainingRun.of(spec, List.of(r)));
            done[0] += base.steps();
        }
        progress.update(total);
        return new Result(base.model(), modes, runs);
    }
}
