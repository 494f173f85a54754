package parallax.engine.report;

import java.util.Arrays;

/** Summary statistics of measured series. */
public final class Stats {

    private Stats() {}

    /** The median of {@code values} after dropping the first {@code skip} (warm-up); at least one value is kept. */
    public static double median(double[] values, int skip) {
        double[] v = Arrays.copyOfRange(values, Math.min(skip, values.length - 1), values.length);
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
}
