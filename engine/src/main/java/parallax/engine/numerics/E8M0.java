package parallax.engine.numerics;

import java.util.Locale;

/**
 * E8M0, the shared block scale of the OCP Microscaling formats (OCP MX v1.0, section 5.4.1):
 * eight exponent bits and nothing else. Code e is 2^(e − 127), from 2^−127 (code 0) to
 * 2^127 (code 254); 0xFF is NaN. There is no sign and no zero (docs/reference.md#microscaling-formats). libtorch calls it
 * {@code float8_e8m0fnu}.
 */
public final class E8M0 {

    private E8M0() {}

    /** The NaN code. */
    public static final int NAN = 0xFF;

    /** Smallest and largest exponent a code holds. */
    public static final int MIN_EXPONENT = -127, MAX_EXPONENT = 127;

    /** The value of a code (only the low 8 bits are read): 2^(code − 127), NaN for 0xFF. */
    public static float decode(int code) {
        int c = code & 0xFF;
        return c == NAN ? Float.NaN : Math.scalb(1f, c - 127);
    }

    /** The code of 2^e, with e clamped into [−127, 127] (the MX rule clamps the shared exponent). */
    public static int ofExponent(int e) {
        return Math.max(MIN_EXPONENT, Math.min(MAX_EXPONENT, e)) + 127;
    }

    /** The exponent a (non-NaN) code stands for. */
    public static int exponent(int code) { return (code & 0xFF) - 127; }

    /**
     * libtorch's cast of an FP32 value to {@code float8_e8m0fnu} (c10's Float8_e8m0fnu,
     * checked bit for bit in the tests). The sign is dropped and the FP32 exponent field is
     * rounded on the fraction's first bit, ties to "even" where the implicit leading bit
     * counts as the last kept bit: a normal value goes up to the next power of two from
     * 1.5 · 2^k (a tie goes up); an FP32 subnormal becomes 2^−126 when above 2^−127 and
     * 2^−127 otherwise (there is no zero). 1.5 · 2^127 and above, infinity and NaN are NaN.
     */
    public static int nearest(float x) {
        int a = Float.floatToRawIntBits(x) & 0x7FFFFFFF;
        int e = a >>> 23;
        if (e == 0xFF) return NAN;
        if (e == 0) return a > 0x00400000 ? 1 : 0; // implicit bit 0: a tie at 2^-127 stays
        return Math.min(NAN, e + ((a >>> 22) & 1)); // implicit bit 1: a tie goes up
    }

    /** floor(log2 |x|) of a finite non-zero float, exact for FP32 subnormals too. */
    public static int floorLog2(float x) {
        int a = Float.floatToRawIntBits(x) & 0x7FFFFFFF;
        int e = a >>> 23;
        if (e != 0) return e - 127;
        return 31 - Integer.numberOfLeadingZeros(a) - 149;
    }

    /** The 8 bits as a string, e.g. "01111111". */
    public static String bitString(int code) {
        return String.format(Locale.ROOT, "%8s", Integer.toBinaryString(code & 0xFF)).replace(' ', '0');
    }
}
