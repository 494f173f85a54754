package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import java.util.Map;
import java.util.function.Consumer;
import parallax.engine.report.Progress;
import parallax.engine.report.ProgressMeter;

/**
 * A progress bar shown once with a display id and then updated in place
 * (update_display_data), at most every {@link #MIN_INTERVAL_NANOS} so a fast loop does
 * not flood the front end; the final state is always sent.
 */
final class LiveProgress implements Progress {

    static final long MIN_INTERVAL_NANOS = 150_000_000L;

    private final ProgressMeter meter;
    private final String displayId;
    private final Consumer<DisplayData> update;
    private long lastSent;
    private boolean closed;

    LiveProgress(String label, long total, String displayId, Consumer<DisplayData> show, Consumer<DisplayData> update) {
        this.meter = new ProgressMeter(label, total);
        this.displayId = displayId;
        this.update = update;
        show.accept(render());
        this.lastSent = System.nanoTime();
    }

    @Override
    public synchronized void update(long done, Map<String, String> fields) {
        if (closed) return;
        meter.update(done, fields);
        long now = System.nanoTime();
        if (now - lastSent >= MIN_INTERVAL_NANOS || done >= meter.total()) {
            lastSent = now;
            update.accept(render());
        }
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        update.accept(render());
    }

    DisplayData render() {
        String line = meter.line(30);
        DisplayData d = new DisplayData(line);
        StringBuilder html = new StringBuilder("<div class=\"parallax-progress\" style=\"font-family:monospace\">");
        html.append("<span>").append(Renderers.escape(meter.label())).append("</span> ");
        html.append("<progress value=\"").append(meter.done()).append("\" max=\"").append(Math.max(1, meter.total()))
                .append("\" style=\"width:40%;vertical-align:middle\"></progress> ");
        html.append(Renderers.escape(line.substring(meter.label().length()).replaceFirst("^ \\[[#.]*\\] ", "")));
        html.append("</div>");
        d.putHTML(html.toString());
        d.setDisplayId(displayId);
        return d;
    }
}
