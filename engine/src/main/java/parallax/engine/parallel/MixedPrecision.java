package parallax.engine.parallel;

import parallax.engine.torch.Device;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.numerics.DType;

/**
 * Mixed-precision training (Micikevicius et al., ICLR 2018): the forward and backward
 * run in bf16 or fp16 on a low-precision copy of the weights, while the optimizer updates
 * fp32 master weights ({@link Zero} keeps both). fp16's narrow range needs loss scaling:
 * the loss is multiplied by S before backward so small gradients do not flush to zero,
 * gradients are divided by S before the step; if any gradient overflowed (inf/NaN) on any
 * rank, the step is skipped and S halved; after {@code growthInterval} clean steps S
 * doubles (dynamic loss scaling, as torch.cuda.amp.GradScaler does). bf16 has fp32's
 * exponent range and needs no scaling; fp32 is the baseline.
 */
public final class MixedPrecision {

    private MixedPrecision() {}

    /**
     * Dynamic loss scale (fp16 here and in {@code %precision train}); a constant for fp32
     * and bf16. Halving stops at 1.
     */
    public static final class LossScaler {
        private final boolean dynamic;
        private double scale;
        private final int growthInterval;
        private int cleanSteps;

        /** A dynamic scaler (or, with {@code dynamic} false, a constant {@code initial}). */
        public LossScaler(boolean dynamic, double initial, int growthInterval) {
            this.dynamic = dynamic;
            this.scale = initial;
            this.growthInterval = growthInterval;
        }

        public boolean dynamic() { return dynamic; }

        public double scale() { return scale; }

        /** Clean steps since the last overflow or growth (the growth clock a checkpoint keeps). */
        public int cleanSteps() { return cleanSteps; }

        /** Puts back the state a checkpoint saved. */
        public void restore(double scale, int cleanSteps) {
            this.scale = scale;
            this.cleanSteps = cleanSteps;
        }

        /** After a step: halve on overflow, double after growthInterval clean steps. */
        public void update(boolean overflow) {
            if (!dynamic) return;
            if (overflow) {
                scale = Math.max(1.0, scale / 2);
                cleanSteps = 0;
            } else if (++cleanSteps % growthInterval == 0) {
                scale *= 2;
            }
        }
    }

    public static LossScaler scalerFor(DType precision) {
        if (precision == DType.F16) return new LossScaler(true, 65536.0, 50);
        return new LossScaler(false, 1.0, Integer.MAX_VALUE);
    }

    /** Agrees on overflow across every group this rank is in (any rank overflowed -> all skip). */
    static boolean anyRankOverflowed(boolean mine, Device device, Comm... groups) {
        try (PointerScope s = new PointerScope()) {
            Tensor flag = device.full(mine ? 1.0 : 0.0, DType.F32, 1);
            for (Comm g : groups) g.allReduce(flag);
            return Device.hostValue(flag) > 0;
        }
    }
}
