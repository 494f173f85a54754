package parallax.engine.numerics;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * ggml's block quantizers, following the reference (non-SIMD) code in ggml-quants.c as
 * summarised in docs/reference.md#ggml-block-types. Blocks hold 32 values and an fp16 scale d:
 * <ul>
 * <li>Q8_0: d = max|x| / 127, q = round(x / d) (roundf: half away from zero); 34 bytes.</li>
 * <li>Q4_0: m = the value of largest |x| with its sign, d = m / -8,
 *     q = min(15, (int8)(x / d + 8.5)); nibble j holds q[j], nibble j + 16 the high half;
 *     x = (q - 8) d; 18 bytes.</li>
 * <li>Q4_1, Q5_0, Q5_1, Q8_1, TQ1_0, TQ2_0, Q1_0, Q2_0: decoded only.</li>
 * </ul>
 * The scale is computed in float32 and stored rounded to fp16; dequantization uses the
 * stored fp16 scale, as ggml does. {@link #dequantize} is the one entry point for decoding
 * every block type: the K-quants are in {@link KQuants}, the i-quants in {@link IQuants},
 * MXFP4 and NVFP4 in {@link Fp4Blocks}; the K-quant writers in {@link KQuantizer}.
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

    /**
     * Q5_0 (quantize_row_q5_0_ref): m = the value of largest |x| with its sign, d = m / -16,
     * q = min(31, (int8)(x / d + 16.5)); low nibbles as in Q4_0, fifth bits in qh.
     */
    public static void quantizeQ5_0(float[] x, int n, byte[] out, float[] dequantized) {
        for (int i = 0, o = 0; i < n; i += QK, o += 22) {
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) {
                float v = x[i + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -16f;
            float id = d != 0 ? 1f / d : 0f;
            int[] q = new int[QK];
            for (int j = 0; j < QK; j++) q[j] = Math.min(31, (byte) (int) (x[i + j] * id + 16.5f)) & 0xff;
            packQ5(out, o, MiniFloats.floatToHalf(d), null, q);
        }
        if (dequantized != null) dequantize(DType.Q5_0, ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN), dequantized, n);
    }

    /** Q5_1 (quantize_row_q5_1_ref): d = (max - min) / 31, m = min, q = (uint8)((x - min) / d + 0.5). */
    public static void quantizeQ5_1(float[] x, int n, byte[] out, float[] dequantized) {
        for (int i = 0, o = 0; i < n; i += QK, o += 24) {
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (int j = 0; j < QK; j++) {
                float v = x[i + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 31;
            float id = d != 0 ? 1f / d : 0f;
            int[] q = new int[QK];
            for (int j = 0; j < QK; j++) q[j] = (int) ((x[i + j] - min) * id + 0.5f) & 0xff;
            packQ5(out, o, MiniFloats.floatToHalf(d), MiniFloats.floatToHalf(min), q);
        }
        if (dequantized != null) dequantize(DType.Q5_1, ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN), dequantized, n);
    }

    private static void packQ5(byte[] out, int o, short d, Short m, int[] q) {
        out[o++] = (byte) d;
        out[o++] = (byte) (d >> 8);
        if (m != null) {
            out[o++] = (byte) (short) m;
            out[o++] = (byte) (m >> 8);
        }
        int qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            qh |= ((q[j] & 0x10) >>> 4) << j;
            qh |= ((q[j + QK / 2] & 0x10) >>> 4) << (j + QK / 2);
        }
        for (int k = 0; k < 4; k++) out[o++] = (byte) (qh >>> (8 * k));
        for (int j = 0; j < QK / 2; j++) out[o + j] = (byte) ((q[j] & 0x0f) | (q[j + QK / 2] & 0x0f) << 4);
    }

    /** C's roundf: nearest, halves away from zero. */
    static int roundf(float v) {
        // v + 0.5 with v's sign is exact in double for any float below 2^24; truncation then
        // rounds halves away from zero, and 0.49999997f stays 0 (a float add would round up).
        return (int) (v + Math.copySign(0.5, v));
    }

    /**
     * Decodes {@code n} elements (whole blocks) of any ggml block type from {@code in}'s
     * position into {@code y[0..n)}, advancing the position past the blocks read. Every
     * type decodes bit-identically to ggml's dequantize_row_* (GgmlBlocksTest).
     */
    public static void dequantize(DType t, ByteBuffer in, float[] y, int n) {
        if (!t.isBlock()) throw new IllegalArgumentException(t + " is not a block type");
        if (n % t.blockElements() != 0) throw new IllegalArgumentException(n + " is not a whole number of " + t + " blocks");
        ByteBuffer b = in.order() == ByteOrder.LITTLE_ENDIAN ? in : in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int at = in.position();
        int bytes = t.blockBytes();
        int per = t.blockElements();
        if (in.remaining() < (long) n / per * bytes) {
            throw new java.nio.BufferUnderflowException();
        }
        for (int o = 0; o < n; o += per, at += bytes) block(t, b, at, y, o);
        in.position(at);
    }

    private static void block(DType t, ByteBuffer b, int at, float[] y, int o) {
        switch (t) {
            case Q8_0: q8(b, at + 2, KQuants.half(b, at), y, o); break;
            case Q8_1: q8(b, at + 4, KQuants.half(b, at), y, o); break;
            case Q4_0: q40(b, at, y, o); break;
            case Q4_1: q41(b, at, y, o); break;
            case Q5_0: case Q5_1: q5(t, b, at, y, o); break;
            case Q2_K: KQuants.q2K(b, at, y, o); break;
            case Q3_K: KQuants.q3K(b, at, y, o); break;
            case Q4_K: KQuants.q4K(b, at, y, o); break;
            case Q5_K: KQuants.q5K(b, at, y, o); break;
            case Q6_K: KQuants.q6K(b, at, y, o); break;
            case Q8_K: KQuants.q8K(b, at, y, o); break;
            case IQ2_XXS: IQuants.iq2xxs(b, at, y, o); break;
            case IQ2_XS: IQuants.iq2xs(b, at, y, o); break;
            case IQ2_S: IQuants.iq2s(b, at, y, o); break;
            case IQ3_XXS: IQuants.iq3xxs(b, at, y, o); break;
            case IQ3_S: IQuants.iq3s(b, at, y, o); break;
            case IQ1_S: IQuants.iq1s(b, at, y, o); break;
            case IQ1_M: IQuants.iq1m(b, at, y, o); break;
            case IQ4_NL: IQuants.iq4nl(b, at, y, o); break;
            case IQ4_XS: IQuants.iq4xs(b, at, y, o); break;
            case TQ1_0: tq1(b, at, y, o); break;
            case TQ2_0: tq2(b, at, y, o); break;
            case Q1_0: q1(b, at, y, o); break;
            case Q2_0: q2(b, at, y, o); break;
            case MXFP4: Fp4Blocks.mxfp4(b, at, y, o); break;
            case NVFP4: Fp4Blocks.nvfp4(b, at, y, o); break;
            default: throw new IllegalArgumentException(t + " is not a block type");
        }
    }

    /** Q8_0 and Q8_1: 32 int8 values times d (Q8_1's second fp16, d times their sum, is for dot products). */
    private static void q8(ByteBuffer b, int qs, float d, float[] y, int o) {
        for (int j = 0; j < QK; j++) y[o + j] = b.get(qs + j) * d;
    }

    /** Q4_0: d, nibbles; x = (q - 8) d. Element j in the low nibble of byte j, j + 16 in the high one. */
    private static void q40(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at);
        for (int j = 0; j < QK / 2; j++) {
            int q = b.get(at + 2 + j) & 0xff;
            y[o + j] = ((q & 0x0f) - 8) * d;
            y[o + j + QK / 2] = ((q >>> 4) - 8) * d;
        }
    }

    /** Q4_1: d, m, nibbles; x = q d + m. */
    private static void q41(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at), m = KQuants.half(b, at + 2);
        for (int j = 0; j < QK / 2; j++) {
            int q = b.get(at + 4 + j) & 0xff;
            y[o + j] = (q & 0x0f) * d + m;
            y[o + j + QK / 2] = (q >>> 4) * d + m;
        }
    }

    /** Q5_0: d, qh (u32, bit j = fifth bit of element j), nibbles; x = (q - 16) d. Q5_1: d, m, qh, nibbles; x = q d + m. */
    private static void q5(DType t, ByteBuffer b, int at, float[] y, int o) {
        boolean min = t == DType.Q5_1;
        float d = KQuants.half(b, at);
        float m = min ? KQuants.half(b, at + 2) : 0f;
        int p = at + (min ? 4 : 2);
        int qh = b.getInt(p);
        for (int j = 0; j < QK / 2; j++) {
            int q = b.get(p + 4 + j) & 0xff;
            int h0 = ((qh >>> j) << 4) & 0x10;
            int h1 = (qh >>> (j + 12)) & 0x10;
            if (min) {
                y[o + j] = ((q & 0x0f) | h0) * d + m;
                y[o + j + QK / 2] = ((q >>> 4) | h1) * d + m;
            } else {
                y[o + j] = (((q & 0x0f) | h0) - 16) * d;
                y[o + j + QK / 2] = (((q >>> 4) | h1) - 16) * d;
            }
        }
    }

    /**
     * TQ1_0, 54 bytes per 256: ternary digits packed five to a byte (qs[48]) and four to a
     * byte (qh[4]) as fixed-point fractions of 243, then d. Digit n of byte q is
     * ((q * 3^n mod 256) * 3) >> 8; x = (digit - 1) d.
     */
    private static void tq1(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at + 52);
        int[] pow3 = {1, 3, 9, 27, 81, 243};
        for (int n = 0; n < 5; n++) for (int m = 0; m < 32; m++) y[o++] = (trit(b.get(at + m), pow3[n]) - 1) * d;
        for (int n = 0; n < 5; n++) for (int m = 0; m < 16; m++) y[o++] = (trit(b.get(at + 32 + m), pow3[n]) - 1) * d;
        for (int n = 0; n < 4; n++) for (int j = 0; j < 4; j++) y[o++] = (trit(b.get(at + 48 + j), pow3[n]) - 1) * d;
    }

    private static int trit(byte q, int pow3) {
        return (((q * pow3) & 0xff) * 3) >> 8;
    }

    /** TQ2_0, 66 bytes per 256: 2-bit codes (four per byte, in 32-byte groups), then d; x = (q - 1) d. */
    private static void tq2(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at + 64);
        for (int j = 0; j < 64; j += 32) {
            for (int l = 0; l < 4; l++) {
                for (int m = 0; m < 32; m++) y[o++] = (((b.get(at + j + m) >>> (2 * l)) & 3) - 1) * d;
            }
        }
    }

    /** Q1_0, 18 bytes per 128: d, one bit per element (LSB first); x = d when set, else -d. */
    private static void q1(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at);
        for (int j = 0; j < 128; j++) y[o + j] = ((b.get(at + 2 + j / 8) >>> (j % 8)) & 1) != 0 ? d : -d;
    }

    /** Q2_0, 18 bytes per 64: d, 2-bit codes (LSB first), 0..3 meaning -1, 0, +1, +2; x = (q - 1) d. */
    private static void q2(ByteBuffer b, int at, float[] y, int o) {
        float d = KQuants.half(b, at);
        for (int j = 0; j < 64; j++) y[o + j] = (((b.get(at + 2 + j / 4) >>> (2 * (j % 4))) & 3) - 1) * d;
    }
}
