package parallax.engine.precision;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.UserError;
import parallax.engine.parallel.MixedPrecision;
import parallax.engine.report.Progress;

/**
 * One small model trained the same way in FP32, BF16 and FP16 (with and without loss
 * scaling), the recipe of Micikevicius et al., "Mixed Precision Training" (ICLR 2018):
 * FP32 master weights; each step casts them to the compute dtype, runs forward and
 * backward there, and the gradients arrive back in FP32 through the cast. The loss is
 * computed in FP32 (as autocast does for MSE), so the gradient that enters the
 * low-precision graph is dL/dy = 2(y - t)/N, and in FP16 that is where it underflows.
 *
 * <p>The setup is chosen to make underflow visible, and says so: a 16-64-4 ReLU MLP
 * regresses a fixed random teacher whose outputs are scaled to about 1e-4, and the mean
 * over N = batch x 4 outputs divides the gradient further, so dL/dy sits around FP16's
 * smallest subnormal 2^-24 and falls below it as the fit improves. Real models reach the
 * same regime through small activation gradients deep in the network (paper, Fig. 3).
 *
 * <p>Dynamic loss scaling follows PyTorch's GradScaler, with the training engine's
 * {@link MixedPrecision.LossScaler}: start at 2^16, multiply the loss before backward, skip
 * the step and halve the scale when a gradient is inf/NaN, double it after
 * {@code growthInterval} clean steps. Without loss scaling a non-finite step is skipped too
 * and the scale stays 1. The optimizer (SGD with momentum) runs in
 * Java on the FP32 master copy.
 */
public final class PrecisionTraining {

    /** A way to train. */
    public enum Mode {
        FP32("fp32", ScalarType.Float, false),
        BF16("bf16", ScalarType.BFloat16, false),
        FP16("fp16", ScalarType.Half, true),
        FP16_NOSCALE("fp16-noscale", ScalarType.Half, false);

        final String label;
        final ScalarType dtype;
        final boolean lossScaling;

        Mode(String label, ScalarType dtype, boolean lossScaling) {
            this.label = label;
            this.dtype = dtype;
            this.lossScaling = lossScaling;
        }

        public String label() { return label; }

        public boolean lossScaling() { return lossScaling; }

        /** Bytes held per parameter: FP32 master + momentum, plus the half copy and its gradient. */
        public int bytesPerParameter() {
            return this == FP32 ? 4 + 4 + 4 : 4 + 4 + 2 + 2 + 4;
        }

        public static List<Mode> parseList(String csv) {
            return ModeList.parse(csv, values(), Mode::label, "");
        }
    }

    /** What to train. {@code targetScale} sets the size of the outputs, hence of the gradients. */
    public record Config(List<Mode> modes, int steps, int batch, double lr, double targetScale,
                         double initialScale, int growthInterval, long seed) {
        public static Config defaults(List<Mode> modes, int steps) {
            return new Config(modes, steps, 512, 0.1, 3e-4, 65536, 5, 42);
        }

        public Config {
            if (steps < 1) throw new UserError("--steps must be at least 1, got " + steps);
            if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
            if (!(lr > 0) || Double.isInfinite(lr)) throw new UserError("--lr must be a positive number, got " + lr);
        }
    }

    /** One mode's run: loss per step (FP32 loss of the low-precision forward), scale trace. */
    public record Run(Mode mode, double[] loss, double[] lossScale, List<Integer> skippedAt, double samplesPerSecond,
                      double zeroGradientShare, float[][] weights) {
        public int skippedSteps() { return skippedAt.size(); }

        public double finalLoss() {
            double s = 0;
            int k = Math.min(10, loss.length);
            for (int i = loss.length - k; i < loss.length; i++) s += loss[i];
            return s / k;
        }
    }

    /**
     * All runs, plus |dL/dy| measured in FP32 on the FP32-trained model at the first and
     * the last step (the gradient that enters the low-precision graph).
     */
    public record Result(Config config, List<Run> runs, float[] outputGradFirst, float[] outputGradLast) {}

    static final int IN = 16, HIDDEN = 64, OUT = 16, SAMPLES = 8192;

    private PrecisionTraining() {}

    public static Result run(Config c, Progress progress) {
        float[][] data = dataset(c);
        // A few untimed steps first, so the first mode's samples/s is not the JIT's warm-up.
        train(Mode.FP32, new Config(List.of(Mode.FP32), 5, c.batch(), c.lr(), c.targetScale(), c.initialScale(),
                c.growthInterval(), c.seed()), data, null, 0, null);
        List<Run> runs = new ArrayList<>();
        float[][] grads = new float[2][];
        long total = (long) c.steps() * c.modes().size();
        long done = 0;
        for (Mode mode : c.modes()) {
            runs.add(train(mode, c, data, progress, done, mode == Mode.FP32 ? grads : null));
            done += c.steps();
        }
        if (grads[0] == null) {
            // No FP32 run asked for: measure the reference gradients on a short FP32 run.
            Config probe = new Config(List.of(Mode.FP32), c.steps(), c.batch(), c.lr(), c.targetScale(),
                    c.initialScale(), c.growthInterval(), c.seed());
            train(Mode.FP32, probe, data, Progress.NONE, 0, grads);
        }
        progress.update(total);
        return new Result(c, runs, grads[0], grads[1]);
    }

    /**
     * Inputs x ~ N(0, 1) and targets t = scale * relu(x W1_0^T) B: a teacher the student can
     * fit exactly (W1_0 is the student's own initial first layer, B is random), so FP32 keeps
     * improving and any plateau is the number format's doing.
     */
    static float[][] dataset(Config c) {
        SplittableRandom r = new SplittableRandom(c.seed());
        float[] w1 = initialWeights(c)[0];
        float[] b = gaussian(r, HIDDEN * OUT, 1 / Math.sqrt(HIDDEN));
        float[] x = gaussian(r, SAMPLES * IN, 1);
        float[] t = new float[SAMPLES * OUT];
        float[] hid = new float[HIDDEN];
        for (int s = 0; s < SAMPLES; s++) {
            for (int j = 0; j < HIDDEN; j++) {
                double acc = 0;
                for (int i = 0; i < IN; i++) acc += x[s * IN + i] * w1[j * IN + i];
                hid[j] = (float) Math.max(0, acc);
            }
            for (int o = 0; o < OUT; o++) {
                double acc = 0;
                for (int j = 0; j < HIDDEN; j++) acc += hid[j] * b[j * OUT + o];
                t[s * OUT + o] = (float) (c.targetScale() * acc);
            }
        }
        return new float[][] {x, t};
    }

    /** The same initial weights for every mode: He-initialised W1, a small W2, zero biases. */
    static float[][] initialWeights(Config c) {
        SplittableRandom init = new SplittableRandom(c.seed() + 1);
        return new float[][] {
                gaussian(init, HIDDEN * IN, Math.sqrt(2.0 / IN)), new float[HIDDEN],
                gaussian(init, OUT * HIDDEN, 0.1 * c.targetScale() / Math.sqrt(HIDDEN)), new float[OUT]};
    }

    static float[] gaussian(SplittableRandom r, int n, double std) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller; SplittableRandom has no nextGaussian on Java 17
            double u = 1 - r.nextDouble(), v = r.nextDouble();
            out[i] = (float) (std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
        }
        return out;
    }

    private static Run train(Mode mode, Config c, float[][] data, Progress progress, long offset, float[][] gradOut) {
        TorchCast.oneThread();
        float[][] params = initialWeights(c);
        long[][] shapes = {{HIDDEN, IN}, {HIDDEN}, {OUT, HIDDEN}, {OUT}};
        float[][] momentum = new float[params.length][];
        for (int i = 0; i < params.length; i++) momentum[i] = new float[params[i].length];
        float[][] grads = new float[params.length][];
        for (int i = 0; i < params.length; i++) grads[i] = new float[params[i].length];

        double[] loss = new double[c.steps()];
        double[] scaleTrace = new double[c.steps()];
        MixedPrecision.LossScaler scaler = new MixedPrecision.LossScaler(mode.lossScaling,
                mode.lossScaling ? c.initialScale() : 1, c.growthInterval());
        List<Integer> skipped = new ArrayList<>();
        long zeroGrads = 0, gradCount = 0;
        float[] xb = new float[c.batch() * IN];
        float[] tb = new float[c.batch() * OUT];
        float[] yb = new float[c.batch() * OUT];
        long t0 = System.nanoTime();
        for (int step = 0; step < c.steps(); step++) {
            for (int s = 0; s < c.batch(); s++) {
                int row = (step * c.batch() + s) % SAMPLES;
                System.arraycopy(data[0], row * IN, xb, s * IN, IN);
                System.arraycopy(data[1], row * OUT, tb, s * OUT, OUT);
            }
            double scale = scaler.scale();
            scaleTrace[step] = scale;
            try (PointerScope scope = new PointerScope()) {
                Tensor[] p = new Tensor[params.length];
                for (int i = 0; i < p.length; i++) p[i] = Device.cpu().fromFloats(params[i], shapes[i]).set_requires_grad(true);
                Tensor x = Device.cpu().fromFloats(xb, c.batch(), IN).to(mode.dtype);
                Tensor h = x.matmul(p[0].to(mode.dtype).t()).add(p[1].to(mode.dtype)).relu();
                Tensor y = h.matmul(p[2].to(mode.dtype).t()).add(p[3].to(mode.dtype)).to(ScalarType.Float);
                Tensor l = torch.mse_loss(y, Device.cpu().fromFloats(tb, c.batch(), OUT));
                loss[step] = l.item_float();
                l.mul(new Scalar(scale)).backward();
                for (int i = 0; i < p.length; i++) {
                    Tensor g = p[i].grad().contiguous();
                    new FloatPointer(g.data_ptr()).capacity(grads[i].length).get(grads[i]);
                }
                if (gradOut != null && (step == 0 || step == c.steps() - 1)) {
                    Tensor yc = y.contiguous();
                    new FloatPointer(yc.data_ptr()).capacity(yb.length).get(yb);
                    float[] g = new float[yb.length];
                    for (int i = 0; i < g.length; i++) g[i] = Math.abs(2 * (yb[i] - tb[i]) / g.length);
                    gradOut[step == 0 ? 0 : 1] = g;
                }
            }
            boolean finite = true;
            for (float[] g : grads) for (float v : g) if (!Float.isFinite(v)) finite = false;
            if (!finite) {
                skipped.add(step);
            } else {
                for (int i = 0; i < params.length; i++) {
                    float[] w = params[i], g = grads[i], m = momentum[i];
                    for (int k = 0; k < w.length; k++) {
                        float gk = (float) (g[k] / scale);
                        if (gk == 0) zeroGrads++;
                        gradCount++;
                        m[k] = 0.9f * m[k] + gk;
                        w[k] -= (float) (c.lr() * m[k]);
                    }
                }
            }
            scaler.update(!finite);   // halve on overflow, double after growthInterval clean steps
            if (progress != null && (step % 10 == 9 || step == c.steps() - 1)) {
                progress.update(offset + step + 1, Map.of("dtype", mode.label, "loss", String.format("%.3g", loss[step])));
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return new Run(mode, loss, scaleTrace, skipped, c.steps() * (double) c.batch() / seconds,
                gradCount == 0 ? 0 : (double) zeroGrads / gradCount, params);
    }
}
