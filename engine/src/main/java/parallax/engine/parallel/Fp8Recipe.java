package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/**
 * How an FP8 run trains: the linear layers of the blocks take their inputs and weights in
 * E4M3 and their output gradients in E5M2 (TransformerEngine's "HYBRID" format), each
 * tensor multiplied by a per-tensor scale before the cast so that its largest values land
 * near the format's max.
 *
 * <ul>
 * <li>{@code scaling}: DELAYED (TransformerEngine's default recipe: the scale of step s
 *     comes from the largest |x| seen over the last {@code history} steps, amax history
 *     with the "max" rule), CURRENT (from this tensor's own amax, computed before the cast),
 *     or NONE (scale 1: what FP8 does without scaling).</li>
 * <li>{@code margin}: scale = (max / amax) / 2^margin, headroom for growth (0 by default).</li>
 * <li>{@code base}: the precision around the FP8 matmuls: the weights the casts are taken
 *     from, activations and every other op. BF16 (the default; the optimizer keeps FP32
 *     master weights, as in the bf16 runs) or FP32 (FP32 master weights used directly).</li>
 * </ul>
 */
public record Fp8Recipe(Scaling scaling, int history, int margin, DType base) {

    /** Where the per-tensor scale comes from. */
    public enum Scaling {
        DELAYED("delayed"), CURRENT("current"), NONE("none");

        private final String label;

        Scaling(String label) { this.label = label; }

        public String label() { return label; }

        public static Scaling parse(String s) {
            List<String> known = new ArrayList<>();
            for (Scaling v : values()) {
                known.add(v.label);
                if (v.label.equalsIgnoreCase(s.trim())) return v;
            }
            throw new UserError("unknown FP8 scaling '" + s + "'." + DidYouMean.hint(s.trim().toLowerCase(Locale.ROOT), known)
                    + " Known: " + String.join(", ", known) + ".");
        }
    }

    /** TransformerEngine's DelayedScaling defaults: amax history of 1024 steps, margin 0; bf16 around the FP8 matmuls. */
    public static Fp8Recipe defaults() { return new Fp8Recipe(Scaling.DELAYED, 1024, 0, DType.BF16); }

    public Fp8Recipe withScaling(Scaling s) { return new Fp8Recipe(s, history, margin, base); }

    public Fp8Recipe withHistory(int h) { return new Fp8Recipe(scaling, h, margin, base); }

    public Fp8Recipe withBase(DType b) { return new Fp8Recipe(scaling, history, margin, b); }

    /** Checks the knobs; a one-line {@link UserError} names the bad one. */
    public void validate() {
        if (history < 1) throw new UserError("--fp8-history must be at least 1 step, not " + history);
        if (margin < 0 || margin > 30) throw new UserError("the FP8 margin must be 0..30, not " + margin);
        if (base != DType.F32 && base != DType.BF16) throw new UserError("--fp8-base must be bf16 or fp32, not " + base.label());
        if (scaling == null) throw new UserError("an FP8 run needs a scaling: delayed, current or none");
    }

    /** A few characters for labels: "fp8", "fp8-current", "fp8-noscale" (plus "/fp32" for an FP32 base). */
    public String label() {
        String s = switch (scaling) {
            case DELAYED -> "fp8";
            case CURRENT -> "fp8-current";
            case NONE -> "fp8-noscale";
        };
        return base == DType.F32 ? s + "/fp32" : s;
    }
}
