package parallax.engine.numerics;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Test oracle: the straightforward transcription of ggml's reference K-quant writers that
 * {@link KQuantizer} replaced (one sub-block at a time, every candidate a scalar loop). It
 * is checked against ggml's own output like KQuantizer is; {@code KQuantizerTest} compares
 * the two on many random super-blocks, which the C-made fixture cannot cover.
 *
 * <p>Original description: writes the K-quants people download: Q4_K, Q5_K and Q6_K, choosing every scale, minimum
 * and level exactly as ggml's reference quantizers do (quantize_row_q4_K_ref, _q5_K_ref,
 * _q6_K_ref in ggml-quants.c, which llama.cpp's quantize tool runs when no importance
 * matrix is given), so the bytes are the same as llama.cpp's (KQuantizerTest checks them
 * against ggml's output). The algorithm (docs/reference.md#k-quants):
 * <ul>
 * <li>Q4_K/Q5_K: each sub-block of 32 gets a scale and a minimum fitted by a weighted
 *     least-squares search over candidate inverse scales (weights |x| + RMS of the
 *     sub-block); the eight scales and eight minimums are then quantized to 6 bits
 *     against the super-block's largest, which become the fp16 d and dmin; finally each
 *     value is re-quantized with the stored scales.</li>
 * <li>Q6_K: each sub-block of 16 gets a signed scale from a search weighted by x² over 19
 *     candidate inverse scales; the sixteen scales are quantized to int8 against the
 *     largest magnitude (d = max / −128 in fp16) and the values re-quantized to −32..31.</li>
 * </ul>
 * Not thread-safe: one instance per thread (it keeps scratch arrays).
 */
final class KQuantizerScalar {

    static final int QK_K = 256;
    private static final float GROUP_MAX_EPS = 1e-15f;

    private final int[] levels = new int[QK_K];
    private final int[] aux = new int[32];
    private final float[] weights = new float[32];
    private final float[] scales = new float[16];
    private final float[] mins = new float[8];

    /** The types this class writes. */
    static boolean writes(DType t) {
        return t == DType.Q4_K || t == DType.Q5_K || t == DType.Q6_K;
    }

    /**
     * Quantizes {@code n} (a multiple of 256) values of {@code x} into {@code out} at its
     * position; when {@code decoded} is not null it receives what a reader will decode.
     */
    public void quantize(DType t, float[] x, int n, ByteBuffer out, float[] decoded) {
        if (n % QK_K != 0) throw new IllegalArgumentException(n + " values are not whole super-blocks of 256");
        ByteBuffer b = out.order() == ByteOrder.LITTLE_ENDIAN ? out : out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int at = out.position();
        for (int i = 0; i < n; i += QK_K, at += t.blockBytes()) {
            switch (t) {
                case Q4_K: q4K(x, i, b, at); break;
                case Q5_K: q5K(x, i, b, at); break;
                case Q6_K: q6K(x, i, b, at); break;
                default: throw new IllegalArgumentException("KQuantizer does not write " + t);
            }
        }
        if (decoded != null) {
            ByteBuffer written = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            written.position(out.position());
            GgmlQuants.dequantize(t, written, decoded, n);
        }
        out.position(at);
    }

    /** ggml's nearest_int: round half to even through the float adder (|v| below 2^22). */
    static int nearestIntScalar(float v) {
        float s = v + 12582912f;
        return (Float.floatToRawIntBits(s) & 0x007fffff) - 0x00400000;
    }

    private void q4K(float[] x, int i, ByteBuffer b, int at) {
        fitSubBlocks(x, i, 15, -1f, 20);
        packScalesAndRequantize(x, i, b, at, 15);
        for (int j = 0, q = at + 16; j < QK_K; j += 64, q += 32) {
            for (int l = 0; l < 32; l++) b.put(q + l, (byte) (levels[j + l] | levels[j + l + 32] << 4));
        }
    }

    private void q5K(float[] x, int i, ByteBuffer b, int at) {
        fitSubBlocks(x, i, 31, -0.5f, 15);
        packScalesAndRequantize(x, i, b, at, 31);
        int qh = at + 16, ql = at + 48;
        for (int k = 0; k < 32; k++) b.put(qh + k, (byte) 0);
        int m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = levels[n + j], l2 = levels[n + j + 32];
                int h = b.get(qh + j);
                if (l1 > 15) { l1 -= 16; h |= m1; }
                if (l2 > 15) { l2 -= 16; h |= m2; }
                b.put(qh + j, (byte) h);
                b.put(ql + j, (byte) (l1 | l2 << 4));
            }
        }
    }

    /** Scales and minimums of the eight sub-blocks of 32 (make_qkx2_quants with weights |x| + RMS). */
    private void fitSubBlocks(float[] x, int i, int nmax, float rmin, int nstep) {
        for (int j = 0; j < 8; j++) {
            int o = i + 32 * j;
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[o + l] * x[o + l];
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[o + l]);
            scales[j] = fitScaleAndMin(x, o, nmax, 32 * j, rmin, 0.1f, nstep, j);
        }
    }

    /**
     * Fits x ≈ scale·L − m with L in 0..nmax over 32 values: a first guess from the range,
     * then nstep + 1 candidate inverse scales, each followed by the weighted least-squares
     * scale and minimum for its levels; keeps the lowest weighted squared error. Stores the
     * levels at {@code levels[lo..lo+32)} and the minimum (as a positive number) in mins[j].
     */
    private float fitScaleAndMin(float[] x, int o, int nmax, int lo, float rmin, float rdelta, int nstep, int j) {
        float min = x[o], max = x[o];
        float sumW = weights[0];
        float sumX = sumW * x[o];
        for (int i = 1; i < 32; i++) {
            if (x[o + i] < min) min = x[o + i];
            if (x[o + i] > max) max = x[o + i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[o + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < 32; i++) levels[lo + i] = 0;
            mins[j] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < 32; i++) {
            int l = Math.max(0, Math.min(nmax, nearestIntScalar(iscale * (x[o + i] - min))));
            levels[lo + i] = l;
            float diff = scale * l + min - x[o + i];
            bestError += weights[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < 32; i++) {
                int l = Math.max(0, Math.min(nmax, nearestIntScalar(iscale * (x[o + i] - min))));
                aux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[o + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float err = 0;
                for (int i = 0; i < 32; i++) {
                    float diff = thisScale * aux[i] + thisMin - x[o + i];
                    err += weights[i] * (diff * diff);
                }
                if (err < bestError) {
                    System.arraycopy(aux, 0, levels, lo, 32);
                    bestError = err;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        mins[j] = -min;
        return scale;
    }

    /** 6-bit scales and minimums against the largest of each (d, dmin in fp16), packed into 12 bytes; then every value re-quantized. */
    private void packScalesAndRequantize(float[] x, int i, ByteBuffer b, int at, int nmax) {
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        int s = at + 4;
        for (int k = 0; k < 12; k++) b.put(s + k, (byte) 0);
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestIntScalar(invScale * scales[j]) & 0xff);
            int lm = Math.min(63, nearestIntScalar(invMin * mins[j]) & 0xff);
            if (j < 4) {
                b.put(s + j, (byte) ls);
                b.put(s + j + 4, (byte) lm);
            } else {
                b.put(s + j + 4, (byte) ((ls & 0xf) | (lm & 0xf) << 4));
                b.put(s + j - 4, (byte) (b.get(s + j - 4) | (ls >>> 4) << 6));
                b.put(s + j, (byte) (b.get(s + j) | (lm >>> 4) << 6));
            }
        }
        short d16 = MiniFloats.floatToHalf(maxScale / 63f);
        short m16 = MiniFloats.floatToHalf(maxMin / 63f);
        b.putShort(at, d16);
        b.putShort(at + 2, m16);
        float dAll = MiniFloats.halfToFloat(d16), mAll = MiniFloats.halfToFloat(m16);
        for (int j = 0; j < 8; j++) {
            float d = dAll * KQuants.scale(b, s, j);
            if (d == 0) continue;
            float dm = mAll * KQuants.min(b, s, j);
            for (int ii = 0; ii < 32; ii++) {
                int l = nearestIntScalar((x[i + 32 * j + ii] + dm) / d);
                levels[32 * j + ii] = Math.max(0, Math.min(nmax, l));
            }
        }
    }

    private void q6K(float[] x, int i, ByteBuffer b, int at) {
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++) {
            float scale = signedScale(x, i + 16 * ib, 16 * ib);
            scales[ib] = scale;
            float abs = Math.abs(scale);
            if (abs > maxAbsScale) {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) {
            for (int k = 0; k < 210; k++) b.put(at + k, (byte) 0);
            return;
        }
        float iscale = -128f / maxScale;
        short d16 = MiniFloats.floatToHalf(1 / iscale);
        b.putShort(at + 208, d16);
        for (int ib = 0; ib < 16; ib++) b.put(at + 192 + ib, (byte) Math.min(127, nearestIntScalar(iscale * scales[ib])));
        float dAll = MiniFloats.halfToFloat(d16);
        for (int j = 0; j < 16; j++) {
            float d = dAll * b.get(at + 192 + j);
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestIntScalar(x[i + 16 * j + ii] / d);
                levels[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
            }
        }
        int ql = at, qh = at + 128;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                int q1 = levels[j + l], q2 = levels[j + l + 32], q3 = levels[j + l + 64], q4 = levels[j + l + 96];
                b.put(ql + l, (byte) ((q1 & 0xf) | (q3 & 0xf) << 4));
                b.put(ql + l + 32, (byte) ((q2 & 0xf) | (q4 & 0xf) << 4));
                b.put(qh + l, (byte) ((q1 >>> 4) | (q2 >>> 4) << 2 | (q3 >>> 4) << 4 | (q4 >>> 4) << 6));
            }
        }
    }

    /**
     * The signed scale of 16 values for levels −32..31 (make_qx_quants, weights x²): start
     * from −32 / (the value of largest magnitude), then try 18 nearby inverse scales and
     * keep the one whose least-squares scale explains most of the weighted signal.
     * Levels (offset by 32) go to {@code levels[lo..lo+16)}.
     */
    private float signedScale(float[] x, int o, int lo) {
        final int nmax = 32;
        float max = 0, amax = 0;
        for (int i = 0; i < 16; i++) {
            float ax = Math.abs(x[o + i]);
            if (ax > amax) {
                amax = ax;
                max = x[o + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < 16; i++) levels[lo + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < 16; i++) {
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestIntScalar(iscale * x[o + i])));
            levels[lo + i] = l + nmax;
            float w = x[o + i] * x[o + i];
            sumLX += w * x[o + i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < 16; i++) {
                int l = Math.max(-nmax, Math.min(nmax - 1, nearestIntScalar(iscale * x[o + i])));
                float w = x[o + i] * x[o + i];
                sumLX += w * x[o + i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < 16; i++) {
                    levels[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestIntScalar(iscale * x[o + i])));
                }
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }
}
