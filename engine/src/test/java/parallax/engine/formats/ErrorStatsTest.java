package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.FloatFormat;

/** The unrolled error statistics agree with the plain definition, NaN and infinity included, and merge piece by piece. */
class ErrorStatsTest {

    static double[] plain(float[] x, float[] y) {
        double max = 0, sum = 0;
        long n = 0;
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) continue;
            double d = Math.abs((double) x[i] - y[i]);
            max = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(max, d);
            sum += d * d;
            n++;
        }
        return new double[] {max, sum, n};
    }

    static float[] halfRounded(float[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) y[i] = FloatFormat.FP16.decode(FloatFormat.FP16.encode(x[i]));
        return y;
    }

    @Test
    void matchesThePlainDefinition() {
        for (int n : new int[] {1, 1023, 1024, 5000}) {
            float[] x = TestData.gaussian(n, 1, n);
            float[] y = halfRounded(x);
            ErrorStats a = ErrorStats.of(x, y, n);
            double[] b = plain(x, y);
            assertEquals(b[0], a.maxAbs(), 0.0, "max, n=" + n);
            assertEquals(b[1], a.sumSquares(), b[1] * 1e-5, "sum of squares, n=" + n);
            assertEquals((long) b[2], a.count());
            x[n / 2] = Float.NaN;
            if (n > 2) x[n / 3] = Float.POSITIVE_INFINITY;
            if (n > 3) y[n / 4] = Float.POSITIVE_INFINITY; // an overflow in the destination
            a = ErrorStats.of(x, y, n);
            b = plain(x, y);
            assertEquals(b[0], a.maxAbs(), 0.0, "max with specials, n=" + n);
            assertEquals((long) b[2], a.count(), "finite inputs counted, n=" + n);
        }
    }

    @Test
    void piecesMergeIntoTheWhole() {
        int n = 10_000;
        float[] x = TestData.gaussian(n, 1, 7);
        float[] y = halfRounded(x);
        ErrorStats whole = ErrorStats.of(x, y, n);
        ErrorStats merged = ErrorStats.NONE;
        for (int from = 0; from < n; from += 3000) {
            int m = Math.min(3000, n - from);
            merged = merged.merge(ErrorStats.of(Arrays.copyOfRange(x, from, from + m), Arrays.copyOfRange(y, from, from + m), m));
        }
        assertEquals(whole.maxAbs(), merged.maxAbs(), 0.0);
        assertEquals(whole.count(), merged.count());
        assertEquals(whole.rms(), merged.rms(), whole.rms() * 1e-6);
        double[] b = plain(x, y);
        assertEquals(Math.sqrt(b[1] / n), merged.rms(), merged.rms() * 1e-5);
        assertEquals(0.0, ErrorStats.NONE.rms(), 0.0);
    }
}
