package parallax.engine.formats;

import java.nio.ByteBuffer;

/**
 * ggml's block quantizers, following the reference (non-SIMD) code in ggml-quants.c as
 * summarised in REFERENCE.md. Blocks hold 32 values and an fp16 scale d:
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
        for (int i = 0; i < n; i += QK) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[i + j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            out.putShort(MiniFloats.floatToHalf(d));
            for (int j = 0; j < QK; j++) out.put((byte) roundf(x[i + j] * id));
        }
    }

    /** Quantizes {@code n} (a multiple of 32) floats into Q4_0 blocks. */
    public static void quantizeQ4_0(float[] x, int n, ByteBuffer out) {
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
            out.putShort(MiniFloats.floatToHalf(d));
            for (int j = 0; j < QK / 2; j++) {
                int q0 = Math.min(15, (byte) (int) (x[i + j] * id + 8.5f));
                int q1 = Math.min(15, (byte) (int) (x[i + QK / 2 + j] * id + 8.5f));
                out.put((byte) (q0 | (q1 << 4)));
            }
        }
    }

    /** C's roundf: nearest, halves away from zero. */
    static int roundf(float v) {
        return v < 0 ? -Math.round(-v) : Math.round(v); // Math.round(float) is exact for |v|
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
