package parallax.engine.numerics;

import static parallax.engine.numerics.KQuants.half;
import static parallax.engine.numerics.KQuants.u8;

import java.nio.ByteBuffer;

/**
 * ggml's i-quants (decoding only). IQ2/IQ3/IQ1 store, per group of 8 (or 4) values, an
 * index into a fixed lattice codebook ({@link GgmlGrids}) plus signs and a sub-block
 * scale; IQ4_NL and IQ4_XS store 4-bit indices into 16 non-uniform levels. Layouts are
 * the block_iq* structs of ggml-common.h; each method repeats the products of
 * {@code dequantize_row_iq*} in ggml-quants.c in the same order, in float, so the values
 * are bit-identical to ggml's (docs/reference.md#i-quants).
 */
final class IQuants {

    private IQuants() {}

    /** The 16 levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl). */
    static final int[] IQ4_LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    static final float IQ1_DELTA = 0.125f;

    private static float sign(int signs, int j) { return (signs & (1 << j)) != 0 ? -1f : 1f; }

    /** IQ2_XXS, 66 bytes: d, then per 32 values two u32: four grid indices, and 4 x 7 sign bits + a 4-bit scale. */
    static void iq2xxs(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        for (int ib = 0; ib < 8; ib++) {
            int idx = b.getInt(at + 2 + 8 * ib);
            int aux = b.getInt(at + 2 + 8 * ib + 4);
            float db = d * (0.5f + (aux >>> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, o += 8) {
                int g = 8 * ((idx >>> (8 * l)) & 0xff);
                int signs = GgmlGrids.SIGNS[(aux >>> (7 * l)) & 127];
                for (int j = 0; j < 8; j++) y[o + j] = db * (GgmlGrids.IQ2XXS[g + j] & 0xff) * sign(signs, j);
            }
        }
    }

    /** IQ2_XS, 74 bytes: d, 32 u16 (9-bit grid index, 7 sign bits), 8 bytes of two 4-bit scales. */
    static void iq2xs(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        for (int ib = 0; ib < 8; ib++) {
            int sc = u8(b, at + 66 + ib);
            float db0 = d * (0.5f + (sc & 0xf)) * 0.25f;
            float db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
            for (int l = 0; l < 4; l++, o += 8) {
                int q = b.getShort(at + 2 + 2 * (4 * ib + l)) & 0xffff;
                int g = 8 * (q & 511);
                int signs = GgmlGrids.SIGNS[q >>> 9];
                float db = l < 2 ? db0 : db1;
                for (int j = 0; j < 8; j++) y[o + j] = db * (GgmlGrids.IQ2XS[g + j] & 0xff) * sign(signs, j);
            }
        }
    }

    /** IQ2_S, 82 bytes: d, qs[32] grid index low bits, signs[32], qh[8] index high bits, scales[8]. */
    static void iq2s(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        int qs = at + 2, signs = at + 34;
        for (int ib = 0; ib < 8; ib++, qs += 4, signs += 4) {
            int sc = u8(b, at + 74 + ib);
            int qh = u8(b, at + 66 + ib);
            float db0 = d * (0.5f + (sc & 0xf)) * 0.25f;
            float db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
            for (int l = 0; l < 4; l++, o += 8) {
                float dl = l < 2 ? db0 : db1;
                int g = 8 * (u8(b, qs + l) | ((qh << (8 - 2 * l)) & 0x300));
                int s = u8(b, signs + l);
                for (int j = 0; j < 8; j++) y[o + j] = dl * (GgmlGrids.IQ2S[g + j] & 0xff) * sign(s, j);
            }
        }
    }

    /** IQ3_XXS, 98 bytes: d, 64 grid indices (4 values each), then per 32 values a u32 of 4 x 7 sign bits + a 4-bit scale. */
    static void iq3xxs(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        int qs = at + 2;
        for (int ib = 0; ib < 8; ib++, qs += 8) {
            int aux = b.getInt(at + 66 + 4 * ib);
            float db = d * (0.5f + (aux >>> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, o += 8) {
                int signs = GgmlGrids.SIGNS[(aux >>> (7 * l)) & 127];
                int g1 = 4 * u8(b, qs + 2 * l), g2 = 4 * u8(b, qs + 2 * l + 1);
                for (int j = 0; j < 4; j++) {
                    y[o + j] = db * (GgmlGrids.IQ3XXS[g1 + j] & 0xff) * sign(signs, j);
                    y[o + j + 4] = db * (GgmlGrids.IQ3XXS[g2 + j] & 0xff) * sign(signs, j + 4);
                }
            }
        }
    }

    /** IQ3_S, 110 bytes: d, qs[64] index low bits, qh[8] ninth bits, signs[32], scales[4] (two 4-bit per byte). */
    static void iq3s(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        int qs = at + 2, qh = at + 66, signs = at + 74;
        for (int ib = 0; ib < 8; ib += 2) {
            int sc = u8(b, at + 106 + ib / 2);
            float[] db = {d * (1 + 2 * (sc & 0xf)), d * (1 + 2 * (sc >>> 4))};
            for (int half = 0; half < 2; half++, qh++, qs += 8, signs += 4) {
                int h = u8(b, qh);
                for (int l = 0; l < 4; l++, o += 8) {
                    int g1 = 4 * (u8(b, qs + 2 * l) | ((h << (8 - 2 * l)) & 256));
                    int g2 = 4 * (u8(b, qs + 2 * l + 1) | ((h << (7 - 2 * l)) & 256));
                    int s = u8(b, signs + l);
                    for (int j = 0; j < 4; j++) {
                        y[o + j] = db[half] * (GgmlGrids.IQ3S[g1 + j] & 0xff) * sign(s, j);
                        y[o + j + 4] = db[half] * (GgmlGrids.IQ3S[g2 + j] & 0xff) * sign(s, j + 4);
                    }
                }
            }
        }
    }

    /** IQ1_S, 50 bytes: d, qs[32] index low bits, 8 u16: 4 x 3 index high bits, a 3-bit scale, the sign of the shift. */
    static void iq1s(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        for (int ib = 0; ib < 8; ib++) {
            int qh = b.getShort(at + 34 + 2 * ib) & 0xffff;
            float dl = d * (2 * ((qh >>> 12) & 7) + 1);
            float delta = (qh & 0x8000) != 0 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++, o += 8) {
                int g = 8 * (u8(b, at + 2 + 4 * ib + l) | (((qh >>> (3 * l)) & 7) << 8));
                for (int j = 0; j < 8; j++) y[o + j] = dl * (GgmlGrids.IQ1S[g + j] + delta);
            }
        }
    }

    /**
     * IQ1_M, 56 bytes: qs[32] index low bits, qh[16] (3 high bits and a shift sign per group
     * of 8), scales[8] as four u16 holding 3-bit sub-block scales and, in their top nibbles,
     * the fp16 super-block scale.
     */
    static void iq1m(ByteBuffer b, int at, float[] y, int o) {
        int[] sc = new int[4];
        for (int k = 0; k < 4; k++) sc[k] = b.getShort(at + 48 + 2 * k) & 0xffff;
        int bits = (sc[0] >>> 12) | ((sc[1] >>> 8) & 0x00f0) | ((sc[2] >>> 4) & 0x0f00) | (sc[3] & 0xf000);
        float d = MiniFloats.halfToFloat((short) bits);
        int qs = at, qh = at + 32;
        for (int ib = 0; ib < 8; ib++, qs += 4, qh += 2) {
            float dl1 = d * (2 * ((sc[ib / 2] >>> (6 * (ib % 2))) & 7) + 1);
            float dl2 = d * (2 * ((sc[ib / 2] >>> (6 * (ib % 2) + 3)) & 7) + 1);
            int h0 = u8(b, qh), h1 = u8(b, qh + 1);
            int[] idx = {u8(b, qs) | ((h0 << 8) & 0x700), u8(b, qs + 1) | ((h0 << 4) & 0x700),
                u8(b, qs + 2) | ((h1 << 8) & 0x700), u8(b, qs + 3) | ((h1 << 4) & 0x700)};
            float[] delta = {(h0 & 0x08) != 0 ? -IQ1_DELTA : IQ1_DELTA, (h0 & 0x80) != 0 ? -IQ1_DELTA : IQ1_DELTA,
                (h1 & 0x08) != 0 ? -IQ1_DELTA : IQ1_DELTA, (h1 & 0x80) != 0 ? -IQ1_DELTA : IQ1_DELTA};
            for (int l = 0; l < 4; l++, o += 8) {
                float dl = l < 2 ? dl1 : dl2;
                for (int j = 0; j < 8; j++) y[o + j] = dl * (GgmlGrids.IQ1S[8 * idx[l] + j] + delta[l]);
            }
        }
    }

    /** IQ4_NL, 18 bytes per 32: d, 16 bytes of 4-bit level indices (element j low nibble, j + 16 high). */
    static void iq4nl(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        for (int j = 0; j < 16; j++) {
            int q = u8(b, at + 2 + j);
            y[o + j] = d * IQ4_LEVELS[q & 0xf];
            y[o + j + 16] = d * IQ4_LEVELS[q >>> 4];
        }
    }

    /** IQ4_XS, 136 bytes: d, u16 scales_h (2 high bits each), scales_l[4] (4 low bits each), qs[128]. */
    static void iq4xs(ByteBuffer b, int at, float[] y, int o) {
        float d = half(b, at);
        int scalesH = b.getShort(at + 2) & 0xffff;
        for (int ib = 0; ib < 8; ib++, o += 32) {
            int ls = ((u8(b, at + 4 + ib / 2) >>> (4 * (ib % 2))) & 0xf) | (((scalesH >>> (2 * ib)) & 3) << 4);
            float dl = d * (ls - 32);
            int qs = at + 8 + 16 * ib;
            for (int j = 0; j < 16; j++) {
                int q = u8(b, qs + j);
                y[o + j] = dl * IQ4_LEVELS[q & 0xf];
                y[o + j + 16] = dl * IQ4_LEVELS[q >>> 4];
            }
        }
    }
}
