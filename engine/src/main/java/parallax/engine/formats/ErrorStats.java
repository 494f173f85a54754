package parallax.engine.formats;

/**
 * How far written values are from the values read, over the finite inputs seen so far:
 * the largest |x - x'|, and the sum of squares and count that give the RMS. Pieces of a
 * tensor converted apart (chunks, threads) {@link #merge} into the tensor's statistics.
 */
record ErrorStats(double maxAbs, double sumSquares, long count) {

    /** Nothing measured (a lossless piece). */
    static final ErrorStats NONE = new ErrorStats(0, 0, 0);

    ErrorStats merge(ErrorStats o) {
        return new ErrorStats(Math.max(maxAbs, o.maxAbs), sumSquares + o.sumSquares, count + o.count);
    }

    /** Root mean square of x - x' (0 when nothing was counted). */
    double rms() {
        return count == 0 ? 0 : Math.sqrt(sumSquares / count);
    }

    /**
     * Statistics of {@code y[0..m)} against {@code x[0..m)}. The fast loop keeps four
     * independent maxima and partial sums so the CPU can overlap them (a single running sum
     * is one long dependency chain); a NaN or infinity anywhere sends the chunk through the
     * careful loop instead, which skips non-finite inputs and counts a non-finite
     * difference (an overflow in the destination) as an infinite error.
     */
    static ErrorStats of(float[] x, float[] y, int m) {
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        double sum = 0;
        int i = 0;
        for (; i + 1024 <= m; i += 1024) {
            float p0 = 0, p1 = 0, p2 = 0, p3 = 0;
            for (int j = i; j < i + 1024; j += 4) {
                float d0 = Math.abs(x[j] - y[j]), d1 = Math.abs(x[j + 1] - y[j + 1]);
                float d2 = Math.abs(x[j + 2] - y[j + 2]), d3 = Math.abs(x[j + 3] - y[j + 3]);
                m0 = d0 > m0 ? d0 : m0;
                m1 = d1 > m1 ? d1 : m1;
                m2 = d2 > m2 ? d2 : m2;
                m3 = d3 > m3 ? d3 : m3;
                p0 += d0 * d0;
                p1 += d1 * d1;
                p2 += d2 * d2;
                p3 += d3 * d3;
            }
            sum += (double) (p0 + p1) + (double) (p2 + p3);
        }
        double max = Math.max(Math.max(m0, m1), Math.max(m2, m3));
        for (; i < m; i++) {
            double d = Math.abs((double) x[i] - y[i]);
            if (d > max) max = d;
            sum += d * d;
        }
        if (Double.isFinite(sum)) return new ErrorStats(max, sum, m);
        return finiteOnly(x, y, m);
    }

    private static ErrorStats finiteOnly(float[] x, float[] y, int m) {
        double max = 0;
        double sum = 0;
        long count = 0;
        for (int k = 0; k < m; k++) {
            float v = x[k];
            if (!Float.isFinite(v)) continue;
            double d = Math.abs((double) v - y[k]);
            if (d > max || Double.isNaN(d)) max = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            sum += d * d;
            count++;
        }
        return new ErrorStats(max, sum, count);
    }
}
