package parallax.engine.formats;

import parallax.engine.numerics.FloatFormat;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The unrolled error statistics agree with the plain definition, NaN and infinity included. */
class ConverterErrorsTest {

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

    @Test
    void matchesThePlainDefinition() {
        for (int n : new int[] {1, 1023, 1024, 5000}) {
            float[] x = TestData.gaussian(n, 1, n);
            float[] y = new float[n];
            for (int i = 0; i < n; i++) y[i] = FloatFormat.FP16.decode(FloatFormat.FP16.encode(x[i]));
            double[] a = Converter.errors(x, y, n);
            double[] b = plain(x, y);
            assertEquals(b[0], a[0], 0.0, "max, n=" + n);
            assertEquals(b[1], a[1], b[1] * 1e-5, "sum of squares, n=" + n);
            assertEquals(b[2], a[2]);
            x[n / 2] = Float.NaN;
            if (n > 2) x[n / 3] = Float.POSITIVE_INFINITY;
            if (n > 3) y[n / 4] = Float.POSITIVE_INFINITY; // an overflow in the destination
            a = Converter.errors(x, y, n);
            b = plain(x, y);
            assertEquals(b[0], a[0], 0.0, "max with specials, n=" + n);
            assertEquals(b[2], a[2], "finite inputs counted, n=" + n);
        }
    }
}
