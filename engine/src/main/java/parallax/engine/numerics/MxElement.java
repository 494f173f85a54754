package parallax.engine.numerics;

import java.util.Locale;

/**
 * The element types of the block-scaled formats (OCP MX v1.0, section 5.3; NVFP4 stores
 * E2M1 too). The float elements are sign / exponent / mantissa with bias 2^(e−1) − 1; the
 * FP6 and FP4 ones have no infinity and no NaN, so every exponent code holds numbers (a NaN
 * or infinity is carried by the block's scale instead). INT8 is a two's-complement integer
 * with an implicit scale of 2^−6 (values −2 to 127/64).
 *
 * <p>Encoding takes a value already divided by the block scale and rounds it to nearest,
 * ties to even, saturating at ±max, as the MX conversion does (section 6.3). Every code
 * decodes exactly to FP32.
 */
public enum MxElement {

    FP8_E4M3("FP8 E4M3", 4, 3, FloatFormat.E4M3FN),
    FP8_E5M2("FP8 E5M2", 5, 2, FloatFormat.E5M2),
    FP6_E3M2("FP6 E3M2", 3, 2, null),
    FP6_E2M3("FP6 E2M3", 2, 3, null),
    FP4_E2M1("FP4 E2M1", 2, 1, null),
    INT8("INT8", 0, 7, null);

    private final String label;
    private final int exponentBits, mantissaBits, bias;
    private final FloatFormat fp8;
    private final float[] table;
    private final int maxCode;
    private final float magic;

    MxElement(String label, int exponentBits, int mantissaBits, FloatFormat fp8) {
        this.label = label;
        this.exponentBits = exponentBits;
        this.mantissaBits = mantissaBits;
        this.bias = exponentBits == 0 ? 0 : (1 << (exponentBits - 1)) - 1;
        this.fp8 = fp8;
        this.maxCode = fp8 != null ? fp8.maxFiniteBits() : (1 << (exponentBits + mantissaBits)) - 1;
        this.magic = Float.intBitsToFloat(((127 - bias) + (23 - mantissaBits) + 1) << 23);
        this.table = new float[1 << bits()];
        for (int c = 0; c < table.length; c++) table[c] = exact(c);
    }

    public String label() { return label; }

    /** Bits per element: 8, 6 or 4. */
    public int bits() { return 1 + exponentBits + mantissaBits; }

    public int exponentBits() { return exponentBits; }

    public int mantissaBits() { return mantissaBits; }

    public int bias() { return bias; }

    public boolean isInteger() { return exponentBits == 0; }

    /** The FP8 format of an FP8 element (its own codec), else null. */
    public FloatFormat fp8() { return fp8; }

    /** The exponent of the largest normal value, emax of the MX scale rule (0 for INT8). */
    public int emax() { return Math.getExponent(maxFinite()); }

    /** Largest magnitude: 448, 57344, 28, 7.5, 6, 127/64. */
    public float maxFinite() { return decode(maxCode); }

    /** Smallest positive value: 2^(1 − bias − mantissaBits), 2^−6 for INT8. */
    public float minSubnormal() { return decode(1); }

    /** Smallest normal value (the first with an implicit leading 1); INT8: 2^−6. */
    public float minNormal() { return isInteger() ? decode(1) : Math.scalb(1f, 1 - bias); }

    /** The code of the largest magnitude (without the sign). */
    public int maxCode() { return maxCode; }

    /** Values of this type, counting ±0 and any NaN codes: 2^bits. */
    public int codes() { return table.length; }

    /** The value of a code (only the low {@link #bits()} bits are read). */
    public float decode(int code) { return table[code & (table.length - 1)]; }

    /**
     * The code nearest to {@code x} (already divided by the block scale): ties to even,
     * saturating at ±max. NaN is the caller's (the block scale carries it).
     */
    public int encode(float x) {
        if (fp8 != null) return fp8.encode(x, Rounding.SATURATE);
        if (isInteger()) {
            // ties to even on the 2^-6 grid, clamped symmetric to +-127 (-128 is decoded, never produced)
            double q = Math.rint(Math.max(-127, Math.min(127, (double) x * 64)));
            return (int) q & 0xFF;
        }
        int b = Float.floatToRawIntBits(x);
        return FloatFormat.encodeBits(b, 23 - mantissaBits, (bias - 127) << 23, (127 + 1 - bias) << 23, magic, maxCode, maxCode,
                maxCode, exponentBits + mantissaBits, false, true);
    }

    /** Whether {@code x} lies beyond the largest magnitude, so that it saturates to ±max. */
    public boolean clamps(float x) { return Math.abs(x) > maxFinite(); }

    /** The bits as sign.exponent.mantissa, e.g. "0.11.1" (INT8: two's complement, "1111.1111"). */
    public String bitString(int code) {
        StringBuilder sb = new StringBuilder();
        for (int i = bits() - 1; i >= 0; i--) {
            sb.append((code >>> i) & 1);
            if (!isInteger() && i > 0 && (i == bits() - 1 || i == mantissaBits)) sb.append('.');
        }
        return sb.toString();
    }

    /** Accepted spellings: e2m1/fp4, e2m3/fp6_e2m3, e3m2, int8, fp8 names. */
    public String shortName() { return name().toLowerCase(Locale.ROOT).replace("fp8_", "").replace("fp6_", "").replace("fp4_", ""); }

    private float exact(int code) {
        if (isInteger()) return (byte) code / 64f;
        if (fp8 != null) return fp8.decode(code);
        int sign = (code >>> (exponentBits + mantissaBits)) & 1;
        int e = (code >>> mantissaBits) & ((1 << exponentBits) - 1);
        int m = code & ((1 << mantissaBits) - 1);
        double v = e == 0 ? Math.scalb((double) m, 1 - bias - mantissaBits)
                : Math.scalb((double) (m | (1 << mantissaBits)), e - bias - mantissaBits);
        return (float) (sign == 1 ? -v : v);
    }
}
