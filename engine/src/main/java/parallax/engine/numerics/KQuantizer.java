package parallax.engine.numerics;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Writes the K-quants people download: Q4_K, Q5_K and Q6_K, choosing every scale, minimum
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
 *
 * <p>How it is fast and still exact: the search is almost all the work (16 to 22 candidate
 * scales, each a pass over the sub-block), and ggml sums each sub-block's terms one after
 * the other in float, so the sums of one sub-block cannot be reordered. The sums of
 * <em>different</em> sub-blocks are independent, though: a {@link #GROUP} of super-blocks is
 * transposed so that element i of every sub-block sits side by side, and each pass runs
 * across sub-blocks ("lanes") in its inner loop. Every lane still adds its terms in ggml's
 * order, so the results are bit-identical, while the JIT can put eight lanes in one AVX2
 * instruction. Rounding to nearest is ggml's own trick done in float ((v + 1.5·2²³) −
 * 1.5·2²³, exact below 2²²), so the passes have no branches and allocate nothing. After each
 * candidate, each lane decides in ggml's order and with its comparison whether it won (and,
 * for Q4_K/Q5_K, moves its origin to the winner's minimum, as ggml's loop does).
 *
 * <p>Not thread-safe: one instance per thread (it keeps scratch arrays).
 */
public final class KQuantizer {

    static final int QK_K = 256;
    /**
     * Super-blocks searched together: every pass over a sub-block element runs across all
     * the group's lanes, so a longer row pays the JIT's loop entry (alignment and tail
     * iterations) fewer times per value, while 32 × 256 values keep the scratch arrays in L2.
     */
    static final int GROUP = 32;
    /** Levels below this magnitude before clamping are exact integers in the float clamp of {@link #levels}. */
    private static final float LIMIT = 0x1p21f;
    private static final float GROUP_MAX_EPS = 1e-15f;
    /** 1.5 · 2²³: adding and subtracting it rounds a float below 2²² to an integer, ties to even (ggml's nearest_int). */
    private static final float ROUND = 12582912f;
    private static final int MAX_LANES = GROUP * QK_K / 16;

    // The group, transposed: element i of lane j at [i][j]. One row per element keeps every
    // inner loop on plain j-indexed arrays, the shape the JIT vectorizes.
    private final float[][] xt = new float[32][MAX_LANES];
    private final float[][] wt = new float[32][MAX_LANES];
    /** Q6_K: w·x. */
    private final float[][] wx = new float[16][MAX_LANES];
    /** The levels of the candidate being tried, [element][lane]. */
    private final float[][] level = new float[32][MAX_LANES];
    // Per lane (sub-block).
    private final float[] lo = new float[MAX_LANES];
    private final float[] hi = new float[MAX_LANES];
    /** Q6_K: the largest magnitude of the lane. */
    private final float[] range = new float[MAX_LANES];
    private final float[] sumW = new float[MAX_LANES];
    private final float[] sumX = new float[MAX_LANES];
    private final float[] inv = new float[MAX_LANES];
    private final float[] sumL = new float[MAX_LANES];
    private final float[] sumL2 = new float[MAX_LANES];
    private final float[] sumXL = new float[MAX_LANES];
    /** Q4_K/Q5_K: the determinant of the least-squares system of the candidate being tried. */
    private final float[] det = new float[MAX_LANES];
    private final float[] trialScale = new float[MAX_LANES];
    private final float[] trialMin = new float[MAX_LANES];
    private final float[] err = new float[MAX_LANES];
    private final float[] best = new float[MAX_LANES];
    private final boolean[] solvable = new boolean[MAX_LANES];
    private final boolean[] flat = new boolean[MAX_LANES];
    /**
     * Q4_K/Q5_K: lanes whose unclamped levels could reach {@link #LIMIT} for some candidate
     * from their current origin (never the case with finite values and an origin at or below
     * the minimum), and how many there are in the group.
     */
    private final boolean[] wide = new boolean[MAX_LANES];
    private int wideLanes;
    /** Q4_K/Q5_K: the minimum the levels of the next candidate are counted from (ggml's running min). */
    private final float[] origin = new float[MAX_LANES];
    /** Q4_K/Q5_K: the inverse scale and origin of the winning levels, to recompute them where ggml keeps them. */
    private final float[] levelInv = new float[MAX_LANES];
    private final float[] levelOrigin = new float[MAX_LANES];
    /** The result of the search: scale, minimum (as ggml's positive the_min) and, for Q6_K, which candidate won (0: the first guess). */
    private final float[] scales = new float[MAX_LANES];
    private final float[] mins = new float[MAX_LANES];
    private final int[] choice = new int[MAX_LANES];
    private final int[] levels = new int[QK_K];
    /** One packed super-block (at most Q6_K's 210 bytes). */
    private final byte[] blockBytes = new byte[256];
    private final ByteBuffer block = ByteBuffer.wrap(blockBytes).order(ByteOrder.LITTLE_ENDIAN);

    /** The types this class writes. */
    public static boolean writes(DType t) {
        return t == DType.Q4_K || t == DType.Q5_K || t == DType.Q6_K;
    }

    /**
     * Quantizes {@code n} (a multiple of 256) values of {@code x} into {@code out} at its
     * position; when {@code decoded} is not null it receives what a reader will decode.
     */
    public void quantize(DType t, float[] x, int n, ByteBuffer out, float[] decoded) {
        if (n % QK_K != 0) throw new IllegalArgumentException(n + " values are not whole super-blocks of 256");
        if (!writes(t)) throw new IllegalArgumentException("KQuantizer does not write " + t);
        int at = out.position();
        int bytes = t.blockBytes();
        for (int g = 0; g < n; g += GROUP * QK_K) {
            int superBlocks = Math.min(GROUP, (n - g) / QK_K);
            switch (t) {
                case Q4_K: fitScalesAndMins(x, g, superBlocks * 8, 15, -1f, 20); break;
                case Q5_K: fitScalesAndMins(x, g, superBlocks * 8, 31, -0.5f, 15); break;
                default: fitSignedScales(x, g, superBlocks * 16); break;
            }
            for (int s = 0; s < superBlocks; s++, at += bytes) {
                // each super-block is packed in a small heap buffer, then copied out in one piece
                int i = g + s * QK_K;
                switch (t) {
                    case Q4_K: q4K(x, i, block, 0, s * 8); break;
                    case Q5_K: q5K(x, i, block, 0, s * 8); break;
                    default: q6K(x, i, block, 0, s * 16); break;
                }
                out.put(at, blockBytes, 0, bytes);
                if (decoded != null) {
                    // what a reader decodes, by the reader's own code
                    switch (t) {
                        case Q4_K: KQuants.q4K(block, 0, decoded, i); break;
                        case Q5_K: KQuants.q5K(block, 0, decoded, i); break;
                        default: KQuants.q6K(block, 0, decoded, i); break;
                    }
                }
            }
        }
        out.position(at);
    }

    /** ggml's nearest_int: round half to even through the float adder (|v| below 2^22). */
    static int nearestInt(float v) {
        float s = v + ROUND;
        return (Float.floatToRawIntBits(s) & 0x007fffff) - 0x00400000;
    }

    /** Copies {@code lanes} sub-blocks of {@code size} values from x[o..] into xt, element-major. */
    private void transpose(float[] x, int o, int lanes, int size) {
        for (int j = 0; j < lanes; j++) {
            int src = o + size * j;
            for (int i = 0; i < size; i++) xt[i][j] = x[src + i];
        }
    }

    // ---- Q4_K and Q5_K: make_qkx2_quants on every sub-block of 32 -------------------------

    /**
     * Fits x ≈ scale·L − m with L in 0..nmax for each of {@code lanes} sub-blocks of 32 from
     * x[o..]: a first guess from the range, then nstep + 1 candidate inverse scales, each
     * followed by the weighted least-squares scale and minimum for its levels; keeps the
     * lowest weighted squared error (strictly lower, in candidate order, as ggml does). As in
     * ggml, a winning candidate's minimum becomes the origin of the next candidates' levels.
     */
    private void fitScalesAndMins(float[] x, int o, int lanes, int nmax, float rmin, int nstep) {
        transpose(x, o, lanes, 32);
        // weights |x| + sqrt(mean x²), the mean summed in element order
        java.util.Arrays.fill(err, 0, lanes, 0f);
        for (int i = 0; i < 32; i++) {
            float[] xi = xt[i];
            for (int j = 0; j < lanes; j++) err[j] += xi[j] * xi[j];
        }
        for (int j = 0; j < lanes; j++) inv[j] = (float) Math.sqrt(err[j] / 32);
        for (int i = 0; i < 32; i++) {
            float[] xi = xt[i], wi = wt[i];
            for (int j = 0; j < lanes; j++) wi[j] = inv[j] + Math.abs(xi[j]);
        }
        // min and max (comparisons exactly as ggml's), then the weighted sums from the first element on
        for (int j = 0; j < lanes; j++) {
            lo[j] = xt[0][j];
            hi[j] = xt[0][j];
            sumW[j] = wt[0][j];
            sumX[j] = wt[0][j] * xt[0][j];
        }
        for (int i = 1; i < 32; i++) {
            float[] xi = xt[i], wi = wt[i];
            // Math.min/max differ from ggml's comparisons only on NaN and on which zero is kept
            // of −0 and +0, and the sign of a zero minimum changes no byte written.
            for (int j = 0; j < lanes; j++) {
                lo[j] = Math.min(lo[j], xi[j]);
                hi[j] = Math.max(hi[j], xi[j]);
            }
            for (int j = 0; j < lanes; j++) {
                sumW[j] += wi[j];
                sumX[j] += wi[j] * xi[j];
            }
        }
        float top = nmax;
        // the first guess: levels from the range, scale its inverse, minimum the range's
        for (int j = 0; j < lanes; j++) {
            if (lo[j] > 0) lo[j] = 0;
            flat[j] = hi[j] == lo[j];
            origin[j] = lo[j];
            inv[j] = nmax / (hi[j] - lo[j]);
            trialScale[j] = 1 / inv[j];
            trialMin[j] = lo[j];
            levelInv[j] = inv[j];
            levelOrigin[j] = lo[j];
        }
        // the largest numerator of an inverse scale tried bounds the levels of every candidate
        float numMax = nmax;
        for (int is = 0; is <= nstep; is++) numMax = Math.max(numMax, rmin + 0.1f * is + nmax);
        wideLanes = 0;
        for (int j = 0; j < lanes; j++) {
            wide[j] = !flat[j] && !narrow(j, numMax);
            if (wide[j]) wideLanes++;
        }
        levels(lanes, top);
        weightedError(lanes);
        for (int j = 0; j < lanes; j++) {
            best[j] = err[j];
            scales[j] = trialScale[j];
            mins[j] = lo[j];
        }
        for (int is = 0; is <= nstep; is++) {
            float numerator = rmin + 0.1f * is + nmax;
            for (int j = 0; j < lanes; j++) inv[j] = numerator / (hi[j] - origin[j]);
            levels(lanes, top);
            levelSums(lanes);
            // the least-squares solution in a plain loop the JIT vectorizes (divisions included); lanes with
            // det <= 0 get values nobody reads (their error is never compared) ...
            for (int j = 0; j < lanes; j++) {
                float d = sumW[j] * sumL2[j] - sumL[j] * sumL[j];
                trialScale[j] = (sumW[j] * sumXL[j] - sumX[j] * sumL[j]) / d;
                trialMin[j] = (sumL2[j] * sumX[j] - sumL[j] * sumXL[j]) / d;
                det[j] = d;
            }
            // ... then ggml's branches, lane by lane
            for (int j = 0; j < lanes; j++) {
                solvable[j] = det[j] > 0;
                if (solvable[j] && trialMin[j] > 0) {
                    trialMin[j] = 0;
                    trialScale[j] = sumXL[j] / sumL2[j];
                }
            }
            weightedError(lanes);
            for (int j = 0; j < lanes; j++) {
                if (solvable[j] && err[j] < best[j]) {
                    best[j] = err[j];
                    scales[j] = trialScale[j];
                    mins[j] = trialMin[j];
                    levelInv[j] = inv[j];
                    levelOrigin[j] = origin[j];
                    origin[j] = trialMin[j];
                    if (!flat[j]) {
                        boolean w = !narrow(j, numMax);
                        if (w != wide[j]) wideLanes += w ? 1 : -1;
                        wide[j] = w;
                    }
                }
            }
        }
        for (int j = 0; j < lanes; j++) {
            if (flat[j]) { // every level 0, scale 0
                scales[j] = 0;
                mins[j] = lo[j];
            }
            mins[j] = -mins[j];
        }
    }

    /**
     * Whether every unrounded level inv · (x − origin) of lane j stays within ±{@link #LIMIT}
     * for inverse scales num / (hi − origin) up to {@code num}: the float operations are
     * monotonic in x and in num, so the ends of the lane's range bound every element. NaN
     * and infinite values fail the test.
     */
    private boolean narrow(int j, float num) {
        float d = hi[j] - origin[j];
        float iv = num / d;
        float a = iv * (lo[j] - origin[j]), b = iv * d;
        return Math.abs(a) <= LIMIT && Math.abs(b) <= LIMIT;
    }

    /**
     * The levels clamp(round(inv · (x − origin)), 0, top) of every element and lane, into
     * {@link #level}. Java's Math.min/max on floats cost the JIT a few blends each (for NaN
     * and −0); when no lane of the group is {@link #wide}, every rounded v is an integer
     * below 2²¹ in magnitude and ½((|v| + top) − |v − top|) is the same clamp, exactly, with
     * two absolute values (flat lanes, whose levels are NaN and unused, give NaN either way).
     */
    private void levels(int lanes, float top) {
        if (wideLanes == 0) {
            for (int i = 0; i < 32; i++) {
                float[] xi = xt[i], li = level[i];
                for (int j = 0; j < lanes; j++) {
                    float v = (inv[j] * (xi[j] - origin[j]) + ROUND) - ROUND;
                    li[j] = 0.5f * ((Math.abs(v) + top) - Math.abs(v - top));
                }
            }
            return;
        }
        for (int i = 0; i < 32; i++) {
            float[] xi = xt[i], li = level[i];
            for (int j = 0; j < lanes; j++) li[j] = Math.max(0f, Math.min(top, (inv[j] * (xi[j] - origin[j]) + ROUND) - ROUND));
        }
    }

    /** Σ w·L, Σ w·L², Σ w·L·x per lane, summed in element order. */
    private void levelSums(int lanes) {
        java.util.Arrays.fill(sumL, 0, lanes, 0f);
        java.util.Arrays.fill(sumL2, 0, lanes, 0f);
        java.util.Arrays.fill(sumXL, 0, lanes, 0f);
        for (int i = 0; i < 32; i++) {
            float[] xi = xt[i], wi = wt[i], li = level[i];
            for (int j = 0; j < lanes; j++) {
                float wl = wi[j] * li[j];
                sumL[j] += wl;
                sumL2[j] += wl * li[j];
                sumXL[j] += wl * xi[j];
            }
        }
    }

    /** Σ w·(scale·L + min − x)² per lane for the levels in {@link #level}. */
    private void weightedError(int lanes) {
        java.util.Arrays.fill(err, 0, lanes, 0f);
        for (int i = 0; i < 32; i++) {
            float[] xi = xt[i], wi = wt[i], li = level[i];
            for (int j = 0; j < lanes; j++) {
                float diff = trialScale[j] * li[j] + trialMin[j] - xi[j];
                err[j] += wi[j] * (diff * diff);
            }
        }
    }

    /**
     * The levels the search left for lane {@code j} (sub-block of 32 at x[o..]); ggml keeps
     * them where the quantized scale comes out 0, so they are recomputed only then.
     */
    private void searchLevels(float[] x, int o, int lane, int nmax, int into) {
        for (int i = 0; i < 32; i++) {
            levels[into + i] = flat[lane] ? 0 : Math.max(0, Math.min(nmax, nearestInt(levelInv[lane] * (x[o + i] - levelOrigin[lane]))));
        }
    }

    private void q4K(float[] x, int i, ByteBuffer b, int at, int lane0) {
        packScalesAndRequantize(x, i, b, at, 15, lane0);
        for (int j = 0, q = at + 16; j < QK_K; j += 64, q += 32) {
            for (int l = 0; l < 32; l++) b.put(q + l, (byte) (levels[j + l] | levels[j + l + 32] << 4));
        }
    }

    private void q5K(float[] x, int i, ByteBuffer b, int at, int lane0) {
        packScalesAndRequantize(x, i, b, at, 31, lane0);
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

    /** 6-bit scales and minimums against the largest of each (d, dmin in fp16), packed into 12 bytes; then every value re-quantized. */
    private void packScalesAndRequantize(float[] x, int i, ByteBuffer b, int at, int nmax, int lane0) {
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            if (scales[lane0 + j] > maxScale) maxScale = scales[lane0 + j];
            if (mins[lane0 + j] > maxMin) maxMin = mins[lane0 + j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        int s = at + 4;
        for (int k = 0; k < 12; k++) b.put(s + k, (byte) 0);
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[lane0 + j]) & 0xff);
            int lm = Math.min(63, nearestInt(invMin * mins[lane0 + j]) & 0xff);
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
            if (d == 0) {
                searchLevels(x, i + 32 * j, lane0 + j, nmax, 32 * j);
                continue;
            }
            float dm = mAll * KQuants.min(b, s, j);
            for (int ii = 0; ii < 32; ii++) {
                int l = nearestInt((x[i + 32 * j + ii] + dm) / d);
                levels[32 * j + ii] = Math.max(0, Math.min(nmax, l));
            }
        }
    }

    // ---- Q6_K: make_qx_quants (weights x²) on every sub-block of 16 -----------------------

    /**
     * The signed scale of each of {@code lanes} sub-blocks of 16 from x[o..] for levels
     * −32..31: start from −32 / (the value of largest magnitude), then try 18 nearby inverse
     * scales and keep, in ggml's order and with its comparison, the one whose least-squares
     * scale explains most of the weighted signal.
     */
    private void fitSignedScales(float[] x, int o, int lanes) {
        final int nmax = 32;
        transpose(x, o, lanes, 16);
        // hi = the value of largest magnitude (the first of equals), range = its magnitude
        java.util.Arrays.fill(hi, 0, lanes, 0f);
        java.util.Arrays.fill(range, 0, lanes, 0f);
        for (int i = 0; i < 16; i++) {
            float[] xi = xt[i];
            for (int j = 0; j < lanes; j++) {
                float ax = Math.abs(xi[j]);
                if (ax > range[j]) {
                    range[j] = ax;
                    hi[j] = xi[j];
                }
            }
        }
        for (int i = 0; i < 16; i++) {
            float[] xi = xt[i], wi = wt[i], wxi = wx[i];
            for (int j = 0; j < lanes; j++) {
                wi[j] = xi[j] * xi[j];
                wxi[j] = wi[j] * xi[j];
            }
        }
        for (int j = 0; j < lanes; j++) inv[j] = -nmax / hi[j];
        signedSums(lanes);
        for (int j = 0; j < lanes; j++) {
            scales[j] = sumL2[j] != 0 ? sumXL[j] / sumL2[j] : 0f;
            best[j] = scales[j] * sumXL[j];
            choice[j] = 0;
        }
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            float numerator = -(nmax + 0.1f * is);
            for (int j = 0; j < lanes; j++) inv[j] = numerator / hi[j];
            signedSums(lanes);
            for (int j = 0; j < lanes; j++) {
                if (sumL2[j] > 0 && sumXL[j] * sumXL[j] > best[j] * sumL2[j]) {
                    scales[j] = sumXL[j] / sumL2[j];
                    best[j] = scales[j] * sumXL[j];
                    choice[j] = is;
                }
            }
        }
        for (int j = 0; j < lanes; j++) {
            if (range[j] < GROUP_MAX_EPS) scales[j] = 0f;
        }
    }

    /** Σ w·x·L and Σ w·L² per lane (w = x²) for L = clamp(round(inv · x), −32, 31), in element order. */
    private void signedSums(int lanes) {
        java.util.Arrays.fill(sumXL, 0, lanes, 0f);
        java.util.Arrays.fill(sumL2, 0, lanes, 0f);
        for (int i = 0; i < 16; i++) {
            float[] xi = xt[i], li = level[i];
            // clamp(v, −32, 31) = ½((|v + 32| − 1) − |v − 31|), exact for the integers v here: |inv · x| stays
            // below 33 wherever the lane's largest magnitude is at least GROUP_MAX_EPS, and the other lanes are
            // written as zeros whatever their levels
            for (int j = 0; j < lanes; j++) {
                float v = (inv[j] * xi[j] + ROUND) - ROUND;
                li[j] = 0.5f * ((Math.abs(v + 32f) - 1f) - Math.abs(v - 31f));
            }
        }
        for (int i = 0; i < 16; i++) {
            float[] wi = wt[i], wxi = wx[i], li = level[i];
            for (int j = 0; j < lanes; j++) {
                sumXL[j] += wxi[j] * li[j];
                sumL2[j] += wi[j] * li[j] * li[j];
            }
        }
    }

    /** The levels (offset by 32) the search left for a Q6_K lane; recomputed only where its int8 scale is 0. */
    private void signedLevels(float[] x, int o, int lane, int into) {
        final int nmax = 32;
        if (range[lane] < GROUP_MAX_EPS) {
            for (int i = 0; i < 16; i++) levels[into + i] = 0;
            return;
        }
        float iscale = choice[lane] == 0 ? -nmax / hi[lane] : -(nmax + 0.1f * choice[lane]) / hi[lane];
        for (int i = 0; i < 16; i++) {
            levels[into + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[o + i])));
        }
    }

    private void q6K(float[] x, int i, ByteBuffer b, int at, int lane0) {
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++) {
            float scale = scales[lane0 + ib];
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
        for (int ib = 0; ib < 16; ib++) b.put(at + 192 + ib, (byte) Math.min(127, nearestInt(iscale * scales[lane0 + ib])));
        float dAll = MiniFloats.halfToFloat(d16);
        for (int j = 0; j < 16; j++) {
            float d = dAll * b.get(at + 192 + j);
            if (d == 0) {
                signedLevels(x, i + 16 * j, lane0 + j, 16 * j);
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestInt(x[i + 16 * j + ii] / d);
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
}
