package parallax.engine.model;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Optimizers written out on flat fp32 tensors, so that ZeRO can give each rank the state
 * of its own slice only. {@link #step} updates {@code params} in place from {@code grads}
 * (already averaged) under no-grad; {@code stateBytes} is the memory its state holds.
 */
public sealed interface Optimizer permits Optimizer.Sgd, Optimizer.AdamW {

    void step(Tensor params, Tensor grads);

    long stateBytes();

    /** Bytes of state per parameter (fp32): SGD momentum 4, AdamW m and v 8. */
    int stateBytesPerParam();

    /**
     * The state tensors by PyTorch's names ({@code momentum_buffer}; {@code exp_avg},
     * {@code exp_avg_sq}), each shaped like the flat parameters: a checkpoint saves and
     * restores them in place.
     */
    Map<String, Tensor> state();

    /** Optimizer steps taken (AdamW's bias correction counts them; restored with the state). */
    long steps();

    /** Sets the step count, when the state is restored from a checkpoint. */
    void restoreSteps(long steps);

    /** SGD's momentum and AdamW's betas, epsilon and decoupled weight decay in every run. */
    double SGD_MOMENTUM = 0.9;
    double ADAMW_BETA1 = 0.9;
    double ADAMW_BETA2 = 0.95;
    double ADAMW_EPS = 1e-8;
    double ADAMW_WEIGHT_DECAY = 0.01;

    /** The optimizer {@code name} for the flat fp32 parameters {@code params}, its state beside them (same device). */
    static Optimizer create(String name, Tensor params, double lr) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "sgd": return new Sgd(params, lr, SGD_MOMENTUM);
            case "adamw": return new AdamW(params, lr, ADAMW_BETA1, ADAMW_BETA2, ADAMW_EPS, ADAMW_WEIGHT_DECAY);
            default: throw new parallax.engine.UserError("unknown optimizer '" + name + "' (sgd, adamw)");
        }
    }

    /** SGD with heavy-ball momentum: buf = mu*buf + g; p -= lr*buf (PyTorch's convention). */
    final class Sgd implements Optimizer {
        private final Tensor momentum;
        private final double lr, mu;
        private long t;

        public Sgd(Tensor params, double lr, double mu) {
            this.momentum = torch.zeros_like(params.reshape(-1));
            this.lr = lr;
            this.mu = mu;
        }

        @Override
        public void step(Tensor params, Tensor grads) {
            t++;
            try (org.bytedeco.javacpp.PointerScope s = new org.bytedeco.javacpp.PointerScope();
                 org.bytedeco.pytorch.NoGradGuard ng = new org.bytedeco.pytorch.NoGradGuard()) {
                momentum.mul_(new Scalar(mu)).add_(grads);
                params.add_(momentum, new Scalar(-lr));
            }
        }

        @Override public long stateBytes() { return momentum.nbytes(); }

        @Override public int stateBytesPerParam() { return 4; }

        @Override public Map<String, Tensor> state() { return Map.of("momentum_buffer", momentum); }

        @Override public long steps() { return t; }

        @Override public void restoreSteps(long steps) { t = steps; }
    }

    /**
     * AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019):
     * p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
     * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). Decay applies to every
     * element (one flat group), unlike recipes that exempt biases and LayerNorms.
     */
    final class AdamW implements Optimizer {
        private final Tensor m, v;
        private final double lr, b1, b2, eps, wd;
        private long t;

        public AdamW(Tensor params, double lr, double b1, double b2, double eps, double wd) {
            this.m = torch.zeros_like(params.reshape(-1));
            this.v = torch.zeros_like(params.reshape(-1));
            this.lr = lr;
            this.b1 = b1;
            this.b2 = b2;
            this.eps = eps;
            this.wd = wd;
        }

        @Override
        public void step(Tensor params, Tensor grads) {
            t++;
            try (org.bytedeco.javacpp.PointerScope s = new org.bytedeco.javacpp.PointerScope();
                 org.bytedeco.pytorch.NoGradGuard ng = new org.bytedeco.pytorch.NoGradGuard()) {
                params.mul_(new Scalar(1 - lr * wd));
                m.mul_(new Scalar(b1)).add_(grads, new Scalar(1 - b1));
                v.mul_(new Scalar(b2)).addcmul_(grads, grads, new Scalar(1 - b2));
                double c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(b2, t);
                Tensor denom = v.div(new Scalar(c2)).sqrt().add_(new Scalar(eps));
                params.addcdiv_(m, denom, new Scalar(-lr / c1));
            }
        }

        @Override public long stateBytes() { return m.nbytes() + v.nbytes(); }

        @Override public int stateBytesPerParam() { return 8; }

        @Override
        public Map<String, Tensor> state() {
            Map<String, Tensor> s = new LinkedHashMap<>();
            s.put("exp_avg", m);
            s.put("exp_avg_sq", v);
            return s;
        }

        @Override public long steps() { return t; }

        @Override public void restoreSteps(long steps) { t = steps; }
    }
}
