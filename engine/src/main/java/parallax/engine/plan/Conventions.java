package parallax.engine.plan;

import parallax.engine.UserError;

/**
 * The assumptions a plan states up front. {@code bytesPerParam} 16 is the ZeRO paper's
 * mixed-precision Adam (2 + 2 + 12); 18 keeps fp32 gradients (HF transformers docs,
 * Megatron) so gradients cost 4 bytes. {@code headroom} is the fraction of GPU memory
 * kept free for the CUDA context, the allocator's fragmentation and kernel workspaces.
 * {@code computeEfficiency} is the fraction of dense peak FLOP/s the model's GEMMs reach;
 * {@code linkEfficiency} the fraction of a link's bandwidth a collective reaches
 * (nccl-tests busbw); {@code overlap} the fraction of data-parallel communication that
 * may hide behind backward compute. {@code dropout} counts dropout masks and outputs in the
 * activations (the paper's counting; modern LLM pre-training usually runs without dropout).
 */
public record Conventions(Units units, int bytesPerParam, double headroom, double computeEfficiency,
                          double linkEfficiency, double overlap, boolean dropout) {

    /** Conventions with dropout counted in the activations, as the Korthikanti formulas do. */
    public Conventions(Units units, int bytesPerParam, double headroom, double computeEfficiency, double linkEfficiency,
                       double overlap) {
        this(units, bytesPerParam, headroom, computeEfficiency, linkEfficiency, overlap, true);
    }

    public enum Units {
        GIB(1L << 30, "GiB"), GB(1_000_000_000L, "GB");

        final long size;
        final String label;

        Units(long size, String label) { this.size = size; this.label = label; }

        public String format(double bytes) {
            double v = bytes / size;
            return v >= 100 ? String.format("%.0f %s", v, label) : v >= 10 ? String.format("%.1f %s", v, label)
                    : String.format("%.2f %s", v, label);
        }

        public double of(double bytes) { return bytes / size; }

        public String label() { return label; }
    }

    public static Conventions defaults() {
        return new Conventions(Units.GIB, 16, 0.10, 0.55, 0.80, 1.0, true);
    }

    public Conventions {
        if (bytesPerParam != 16 && bytesPerParam != 18)
            throw new UserError("bytes per parameter convention must be 16 (ZeRO paper) or 18 (fp32 gradients), got " + bytesPerParam);
        // Written as "inside the range" so that NaN is refused too.
        if (!(headroom >= 0 && headroom < 1)) throw new UserError("headroom must be a fraction in [0, 1), got " + headroom);
        if (!(computeEfficiency > 0 && computeEfficiency <= 1))
            throw new UserError("compute efficiency must be in (0, 1], got " + computeEfficiency);
        if (!(linkEfficiency > 0 && linkEfficiency <= 1))
            throw new UserError("link efficiency must be in (0, 1], got " + linkEfficiency);
        if (!(overlap >= 0 && overlap <= 1)) throw new UserError("overlap must be in [0, 1], got " + overlap);
    }
}
