package parallax.engine.numerics;

import java.nio.ByteBuffer;

/**
 * ggml's K-quants: super-blocks of 256 values cut into 16 or 8 sub-blocks, each sub-block
 * with a small integer scale (and minimum) that is itself scaled by the super-block's
 * fp16 d (and dmin). Layouts are the block_q*_K structs of ggml-common.h; decoding follows
 * {@code dequantize_row_q*_K} in ggml-quants.c operation for operation (same products in
 * the same order, in float), so the values are bit-identical to ggml's
 * (docs/reference.md#k-quants). The writers are in {@link KQuantizer}.
 */
final class KQuants {

    static final int QK_K = 256;

    private KQuants() {}

    static float half(ByteBuffer b, int at) { return MiniFloats.halfToFloat(b.getShort(at)); }

    static int u8(ByteBuffer b, int at) { return b.get(at) & 0xff; }

    /** Q2_K, 84 bytes: scales[16] (low nibble scale, high nibble min), qs[64] (2 bits), d, dmin. */
    static void q2K(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at + 80), min = half(b, at + 82);
        int q = at + 16;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    int sc = u8(b, at + is++);
                    float dl = d * (sc & 0xf), ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) y[o++] = dl * ((u8(b, q + l + 16 * half) >>> shift) & 3) - ml;
                }
                shift += 2;
            }
            q += 32;
        }
    }

    /** Q3_K, 110 bytes: hmask[32] (high bit, set = no -4), qs[64] (low 2 bits), 12 bytes of 6-bit scales, d. */
    static void q3K(ByteBuffer b, int at, float[] y, int o) {
        float dAll = half(b, at + 108);
        int[] scales = q3Scales(b, at + 96);
        int q = at + 32, hm = at;
        int m = 1;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    float dl = dAll * (scales[is++] - 32);
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        y[o++] = dl * (((u8(b, q + k) >>> shift) & 3) - ((u8(b, hm + k) & m) != 0 ? 0 : 4));
                    }
                }
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }

    /** The sixteen 6-bit Q3_K scales: low nibbles in bytes 0..7, the top two bits in bytes 8..11. */
    static int[] q3Scales(ByteBuffer b, int at) {
        int[] s = new int[16];
        for (int j = 0; j < 16; j++) {
            int low = j < 8 ? u8(b, at + j) & 0xf : u8(b, at + j - 8) >>> 4;
            int high = (u8(b, at + 8 + (j & 3)) >>> (2 * (j / 4))) & 3;
            s[j] = low | high << 4;
        }
        return s;
    }

    /** The 6-bit scale and min of sub-block j packed in Q4_K/Q5_K's 12 scale bytes (ggml's get_scale_min_k4). */
    static int scale(ByteBuffer b, int s, int j) {
        return j < 4 ? u8(b, s + j) & 63 : (u8(b, s + j + 4) & 0xf) | (u8(b, s + j - 4) >>> 6) << 4;
    }

    static int min(ByteBuffer b, int s, int j) {
        return j < 4 ? u8(b, s + j + 4) & 63 : (u8(b, s + j + 4) >>> 4) | (u8(b, s + j) >>> 6) << 4;
    }

    /** Q4_K, 144 bytes: d, dmin, 12 bytes of 6-bit scales and mins, qs[128]; x = d·sc·q − dmin·m. */
    static void q4K(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at), dmin = half(b, at + 2);
        int s = at + 4, q = at + 16;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
            float d1 = d * scale(b, s, is), m1 = dmin * min(b, s, is);
            float d2 = d * scale(b, s, is + 1), m2 = dmin * min(b, s, is + 1);
            for (int l = 0; l < 32; l++) y[o++] = d1 * (u8(b, q + l) & 0xf) - m1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * (u8(b, q + l) >>> 4) - m2;
        }
    }

    /** Q5_K, 176 bytes: d, dmin, scales, qh[32] (fifth bits), qs[128]. */
    static void q5K(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at), dmin = half(b, at + 2);
        int s = at + 4, qh = at + 16, ql = at + 48;
        int u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            float d1 = d * scale(b, s, is), m1 = dmin * min(b, s, is);
            float d2 = d * scale(b, s, is + 1), m2 = dmin * min(b, s, is + 1);
            for (int l = 0; l < 32; l++) y[o++] = d1 * ((u8(b, ql + l) & 0xf) + ((u8(b, qh + l) & u1) != 0 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * ((u8(b, ql + l) >>> 4) + ((u8(b, qh + l) & u2) != 0 ? 16 : 0)) - m2;
        }
    }

    /** Q6_K, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], d; x = d·sc·(q − 32). */
    static void q6K(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at + 208);
        int ql = at, qh = at + 128, sc = at + 192;
        for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32, sc += 8, o += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int h = u8(b, qh + l);
                int q1 = ((u8(b, ql + l) & 0xf) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(b, ql + l + 32) & 0xf) | (((h >>> 2) & 3) << 4)) - 32;
                int q3 = ((u8(b, ql + l) >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                int q4 = ((u8(b, ql + l + 32) >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                y[o + l] = d * b.get(sc + is) * q1;
                y[o + l + 32] = d * b.get(sc + is + 2) * q2;
                y[o + l + 64] = d * b.get(sc + is + 4) * q3;
                y[o + l + 96] = d * b.get(sc + is + 6) * q4;
            }
        }
    }

    /** Q8_K, 292 bytes: a float32 d, qs[256] int8, 16 int16 block sums (for dot products only). */
    static void q8K(ByteBuffer b, int at, float[] y, int o) {
        float d = b.getFloat(at);
        for (int j = 0; j < QK_K; j++) y[o + j] = d * b.get(at + 4 + j);
    }
}
