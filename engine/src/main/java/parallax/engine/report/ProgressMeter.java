package parallax.engine.report;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The arithmetic behind a progress bar: fraction done, rate and ETA from a monotonic
 * clock. Shared by the kernel's live bar and the CLI's stderr line so both agree.
 */
public final class ProgressMeter {

    private final String label;
    private final long total;
    private final LongSupplier nanoClock;
    private final long startNanos;
    private long done;
    private long lastNanos;
    private Map<String, String> fields = Map.of();

    public ProgressMeter(String label, long total) {
        this(label, total, System::nanoTime);
    }

    ProgressMeter(String label, long total, LongSupplier nanoClock) {
        if (total < 0) throw new IllegalArgumentException("total < 0");
        this.label = label;
        this.total = total;
        this.nanoClock = nanoClock;
        this.startNanos = nanoClock.getAsLong();
        this.lastNanos = startNanos;
    }

    public void update(long done, Map<String, String> fields) {
        this.done = Math.max(0, total > 0 ? Math.min(done, total) : done);
        this.fields = new LinkedHashMap<>(fields);
        this.lastNanos = nanoClock.getAsLong();
    }

    public String label() { return label; }
    public long total() { return total; }
    public long done() { return done; }
    public Map<String, String> fields() { return fields; }

    public double fraction() { return total == 0 ? 1.0 : (double) done / total; }

    public double elapsedSeconds() { return (lastNanos - startNanos) / 1e9; }

    /** Steps per second so far, or NaN before the first step. */
    public double rate() {
        double s = elapsedSeconds();
        return done == 0 || s <= 0 ? Double.NaN : done / s;
    }

    /** Seconds left at the average rate so far, or NaN when unknown. */
    public double etaSeconds() {
        double r = rate();
        return Double.isNaN(r) ? Double.NaN : (total - done) / r;
    }

    /** One line such as {@code train  12/50  24%  3.1 it/s  ETA 0:12  loss=2.31}. */
    public String line(int barWidth) {
        StringBuilder sb = new StringBuilder();
        sb.append(label).append(' ');
        if (barWidth > 0) {
            int filled = (int) Math.round(fraction() * barWidth);
            sb.append('[').append("#".repeat(filled)).append(".".repeat(barWidth - filled)).append("] ");
        }
        sb.append(done).append('/').append(total)
          .append(String.format(" %3d%%", Math.round(fraction() * 100)));
        double r = rate();
        if (!Double.isNaN(r)) sb.append(String.format(" %.2f it/s", r));
        double eta = etaSeconds();
        if (!Double.isNaN(eta)) sb.append(" ETA ").append(clock(eta));
        sb.append(" elapsed ").append(clock(elapsedSeconds()));
        fields.forEach((k, v) -> sb.append("  ").append(k).append('=').append(v));
        return sb.toString();
    }

    static String clock(double seconds) {
        Duration d = Duration.ofMillis(Math.round(seconds * 1000));
        long h = d.toHours();
        int m = d.toMinutesPart();
        int s = d.toSecondsPart();
        return h > 0 ? String.format("%d:%02d:%02d", h, m, s) : String.format("%d:%02d", m, s);
    }
}
