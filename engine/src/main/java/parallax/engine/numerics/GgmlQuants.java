package parallax.engine.numerics;

import java.nio.ByteBuffer;

/**
 * ggml's block quantizers, following the reference (non-SIMD) code in ggml-quants.c as
 * summarised in docs/reference.md#ggml-block-types. Blocks hold 32 values and an fp16 scale d:
 * <ul>
 * <li>Q8_0: d = max|x| / 127, q = round(x / d) (roundf: half away from zero); 34 bytes.</li>
 * <li>Q4_0: m = the value of largest |x| with its sign, d = m / -8,
 *     q = min(15, (int8)(x / d + 8.5)); nibble j holds q[j], nibble j + 16 the high half;
 *     x = (q - 8) d; 18 bytes.</li>
 * <li>Q4_1, Q5_0, Q5_1: decoded only.</li>
 * </ul>
 * The scale is computed in float32 and stored rounded to fp16; dequantization uses the
 * stored fp16 scale, as ggml does.
 */
public final class GgmlQuants {

    public static final int QK = 32;

    private GgmlQuants() {}

    /** Quantizes {@code n} (a multiple of 32) floats into Q8_0 blocks. */
    public static void quantizeQ8_0(float[] x, int n, ByteBuffer out) {
        byte[] b = new byte[n / QK * 34];
        quantizeQ8_0(x, n, b, null);
        out.put(b);
    }

    /**
     * Q8_0 into {@code out} (34 bytes per block); when {@code dequantized} is not null it
     * receives q * fp16(d), what a reader will decode, so error statistics cost no second pass.
     */
    public static void quantizeQ8_0(float[] x, int n, byte[] out, float[] dequantized) {
        int o = 0;
        for (int i = 0; i < n; i += QK) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[i + j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            short h = MiniFloats.floatToHalf(d);
            out[o] = (byte) h;
            out[o + 1] = (byte) (h >> 8);
            o += 2;
            float d16 = dequantized != null ? MiniFloats.halfToFloat(h) : 0f;
            for (int j = 0; j < QK; j++) {
                int q = roundf(x[i + j] * id);
                out[o++] = (byte) q;
                if (dequantized != null) dequantized[i + j] = q * d16;
            }
        }
    }

    /** Quantizes {@code n} (a multiple of 32) floats into Q4_0 blocks. */
    public static void quantizeQ4_0(float[] x, int n, ByteBuffer out) {
        byte[] b = new byte[n / QK * 18];
        quantizeQ4_0(x, n, b, null);
        out.put(b);
    }

    /** Q4_0 into {@code out} (18 bytes per block), optionally with the decoded values. */
    public static void quantizeQ4_0(float[] x, int n, byte[] out, float[] dequantized) {
        int o = 0;
        for (int i = 0; i < n; i += QK) {
            float amax = 0;
            float max = 0;
            for (int j = 0; j < QK; j++) {
                float v = x[i + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8f;
            float id = d != 0 ? 1f / d : 0f;
            short h = MiniFloats.floatToHalf(d);
            out[o] = (byte) h;
            out[o + 1] = (byte) (h >> 8);
            o += 2;
            float d16 = dequantized != null ? MiniFloats.halfToFloat(h) : 0f;
            for (int j = 0; j < QK / 2; j++) {
                int q0 = Math.min(15, (byte) (int) (x[i + j] * id + 8.5f));
                int q1 = Math.min(15, (byte) (int) (x[i + QK / 2 + j] * id + 8.5f));
                out[o++] = (byte) (q0 | (q1 << 4));
                if (dequantized != null) {
                    dequantized[i + j] = (q0 - 8) * d16;
                    dequantized[i + QK / 2 + j] = (q1 - 8) * d16;
                }
            }
        }
    }

    /** C's roundf: nearest, halves away from zero. */
    static int roundf(float v) {
        // v + 0.5 with v's sign is exact in double for any float below 2^24; truncation then
        // rounds halves away from zero, and 0.49999997f stays 0 (a float add would round up).
        return (int) (v + Math.copySign(0.5, v));
    }

    /** Decodes {@code n} elements of a block type into floats. */
    public static void dequantize(DType t, ByteBuffer in, float[] y, int n) {
        for (int i = 0; i < n; i += QK) {
            float d = MiniFloats.halfToFloat(in.getShort());
            switch (t) {
                case Q8_0:
                    for (int j = 0; j < QK; j++) y[i + j] = in.get() * d;
                    break;
                case Q4_0:
                    for (int j = 0; j < QK / 2; j++) {
                        int b = in.get() & 0xff;
                        y[i + j] = ((b & 0x0f) - 8) * d;
                        y[i + j + QK / 2] = ((b >>> 4) - 8) * d;
                    }
                    break;
                case Q4_1: {
                    float m = MiniFloats.halfToFloat(in.getShort());
                    for (int j = 0; j < QK / 2; j++) {
                        int b = in.get() & 0xff;
                        y[i + j] = (b & 0x0f) * d + m;
                        y[i + j + QK / 2] = (b >>> 4) * d + m;
                    }
                    break;
                }
                case Q5_0: case Q5_1: {
                    float m = t == DType.Q5_1 ? MiniFloats.halfToFloat(in.getShort()) : 0f;
                    int qh = in.getInt();
                    for (int j = 0; j < QK / 2; j++) {
                        int b = in.get() & 0xff;
                        int h0 = ((qh >>> j) << 4) & 0x10;
                        int h1 = (qh >>> (j + 12)) & 0x10;
                        if (t == DType.Q5_0) {
                            y[i + j] = (((b & 0x0f) | h0) - 16) * d;
                            y[i + j + QK / 2] = (((b >>> 4) | h1) - 16) * d;
                        } else {
                            y[i + j] = ((b & 0x0f) | h0) * d + m;
                            y[i + j + QK / 2] = ((b >>> 4) | h1) * d + m;
                        }
                    }
                    break;
                }
                default:
                    throw new IllegalArgumentException(t + " is not a block type");
            }
        }
    }
}
