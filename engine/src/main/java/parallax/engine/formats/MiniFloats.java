package parallax.engine.formats;

/**
 * Scalar FP16 / BF16 / FP8 conversions, round to nearest, ties to even, as PyTorch's casts
 * (c10/util/Half.h, BFloat16.h, Float8_e4m3fn.h, Float8_e5m2.h; facts in REFERENCE.md):
 * no saturation, so E4M3FN overflow gives NaN and E5M2 overflow gives infinity; BF16 NaN
 * becomes 0x7FC0. A small private version for the formats package; see docs/formats.md.
 */
final class MiniFloats {

    private MiniFloats() {}

    private static final float[] F16 = new float[1 << 16];
    private static final float[] E4M3 = new float[256];
    private static final float[] E5M2 = new float[256];
    private static final float[] E4M3FNUZ = new float[256];
    private static final float[] E5M2FNUZ = new float[256];

    static {
        for (int i = 0; i < F16.length; i++) F16[i] = decodeHalf(i);
        for (int i = 0; i < 256; i++) {
            E4M3[i] = decodeMini(i, 4, 3, 7);
            if ((i & 0x7f) == 0x7f) E4M3[i] = Float.NaN; // E4M3FN: S.1111.111 is NaN, no infinities
            E5M2[i] = (i & 0x7f) >= 0x7c ? ((i & 0x7f) == 0x7c ? ((i & 0x80) != 0 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY) : Float.NaN)
                    : decodeMini(i, 5, 2, 15);
            E4M3FNUZ[i] = i == 0x80 ? Float.NaN : decodeMini(i, 4, 3, 8);
            E5M2FNUZ[i] = i == 0x80 ? Float.NaN : decodeMini(i, 5, 2, 16);
        }
    }

    /** A finite sign/exponent/mantissa byte with the given widths and bias. */
    private static float decodeMini(int bits, int e, int m, int bias) {
        int sign = (bits >> (e + m)) & 1;
        int exp = (bits >> m) & ((1 << e) - 1);
        int man = bits & ((1 << m) - 1);
        double v = exp == 0 ? man * Math.pow(2, 1 - bias - m) : (1 + man / (double) (1 << m)) * Math.pow(2, exp - bias);
        return (float) (sign != 0 ? -v : v);
    }

    private static float decodeHalf(int h) {
        int sign = (h & 0x8000) << 16;
        int e = (h >>> 10) & 0x1f;
        int m = h & 0x3ff;
        if (e == 0) {
            float v = m * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (e == 31) return Float.intBitsToFloat(sign | 0x7f800000 | (m << 13));
        return Float.intBitsToFloat(sign | ((e + 112) << 23) | (m << 13));
    }

    static float halfToFloat(short h) { return F16[h & 0xffff]; }

    static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int abs = x & 0x7fffffff;
        if (abs >= 0x7f800000) { // infinity or NaN (keep NaN quiet and non-zero)
            return (short) (sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 | ((abs >>> 13) & 0x3ff) : 0));
        }
        if (abs >= 0x477ff000) return (short) (sign | 0x7c00); // rounds to >= 65520: infinity
        if (abs >= 0x38800000) { // a normal half: add half an ulp (ties to even) then shift
            int r = abs + 0xfff + ((abs >>> 13) & 1);
            return (short) (sign | ((r - 0x38000000) >>> 13));
        }
        int e = abs >>> 23;
        if (e < 102) return (short) sign; // below 2^-25: rounds to zero
        int m = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - e; // subnormal half units of 2^-24
        int q = m >>> shift;
        int rem = m & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        if (rem > half || (rem == half && (q & 1) == 1)) q++;
        return (short) (sign | q);
    }

    static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) return (short) 0x7fc0;
        return (short) ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
    }

    static float fp8ToFloat(DType t, byte b) {
        switch (t) {
            case F8_E4M3: return E4M3[b & 0xff];
            case F8_E5M2: return E5M2[b & 0xff];
            case F8_E4M3FNUZ: return E4M3FNUZ[b & 0xff];
            case F8_E5M2FNUZ: return E5M2FNUZ[b & 0xff];
            default: throw new IllegalArgumentException(t.name());
        }
    }

    /** float -> E4M3FN (bias 7, max 448, NaN 0x7F) or E5M2 (bias 15, max 57344, inf 0x7C). */
    static byte floatToFp8(DType t, float f) {
        boolean e4 = t == DType.F8_E4M3;
        int mbits = e4 ? 3 : 2;
        int bias = e4 ? 7 : 15;
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
        if (Float.isNaN(f)) return (byte) (sign | (e4 ? 0x7f : 0x7e));
        float a = Math.abs(f);
        if (a == 0) return (byte) sign;
        int code;
        if (Float.isInfinite(a)) {
            code = e4 ? 0x7f : 0x7c;
        } else {
            int e = Math.getExponent(a);
            int emin = 1 - bias;
            if (e < emin) {
                code = (int) Math.rint(a / Math.scalb(1.0, emin - mbits)); // subnormal; may carry into the first normal
            } else {
                long q = (long) Math.rint(a / Math.scalb(1.0, e - mbits));
                if (q == (2L << mbits)) {
                    e++;
                    q = 1L << mbits;
                }
                long c = ((long) (e + bias) << mbits) | (q - (1L << mbits));
                code = (int) Math.min(c, 0xff);
            }
            if (e4 && code > 0x7e) code = 0x7f;       // past 448 after rounding: NaN
            if (!e4 && code > 0x7b) code = 0x7c;      // past 57344 after rounding: infinity
        }
        return (byte) (sign | code);
    }
}
