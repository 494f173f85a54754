package parallax.engine.numerics;

/**
 * What an encoder does with a finite value beyond the target's largest finite number.
 * Both modes round to nearest, ties to even, first; they differ only at the top of the range.
 */
public enum Rounding {

    /**
     * PyTorch's {@code tensor.to(dtype)}: a value that rounds past the largest finite number
     * becomes infinity where the format has one (FP16, BF16, E5M2) and NaN where it does not
     * (E4M3FN, the FNUZ formats). So in E4M3FN 464 rounds down to 448 but 465 becomes NaN.
     */
    NON_SATURATING,

    /**
     * Clamp to the largest finite number (keeping the sign); infinities clamp too, NaN stays NaN.
     * This is what FP8 training recipes do after scaling (NVIDIA's "satfinite" conversions).
     */
    SATURATE
}
