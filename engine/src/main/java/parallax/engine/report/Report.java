package parallax.engine.report;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import org.knowm.xchart.internal.chartpart.Chart;
import tech.tablesaw.api.Table;

/**
 * A result as data: a title, an ordered list of parts (text, tables, charts) and an
 * optional machine-readable payload for {@code --json}. The engine builds reports; the
 * kernel renders them as one MIME bundle and the CLI prints them as text.
 */
public final class Report {

    /** One piece of a report, rendered in order. */
    public sealed interface Part permits Text, TablePart, ChartPart {}

    /** Markdown text (plain text is valid Markdown). */
    public record Text(String markdown) implements Part {}

    /** A Tablesaw table with an optional caption. */
    public record TablePart(Table table, String caption) implements Part {}

    /** An XChart chart; the caption says what was measured and on what. */
    public record ChartPart(Chart<?, ?> chart, String caption) implements Part {}

    private final String title;
    private final List<Part> parts;
    private final Object data;

    private Report(String title, List<Part> parts, Object data) {
        this.title = title;
        this.parts = Collections.unmodifiableList(parts);
        this.data = data;
    }

    public static Builder builder(String title) {
        return new Builder(title);
    }

    public String title() { return title; }

    public List<Part> parts() { return parts; }

    /** The payload printed by {@code --json}; may be null, then the parts are serialised. */
    public Object data() { return data; }

    /** Plain-text rendering, used by the CLI and by the kernel's text/plain fallback. */
    public String toText() {
        StringBuilder sb = new StringBuilder();
        if (title != null && !title.isEmpty()) sb.append(title).append('\n');
        for (Part p : parts) {
            if (p instanceof Text t) {
                sb.append(t.markdown()).append('\n');
            } else if (p instanceof TablePart t) {
                if (t.caption() != null) sb.append(t.caption()).append('\n');
                sb.append(t.table().printAll()).append('\n');
            } else if (p instanceof ChartPart c) {
                sb.append("[chart: ").append(c.chart().getTitle())
                        .append(c.caption() == null ? "" : " — " + c.caption()).append("]\n");
            }
        }
        return sb.toString();
    }

    @Override
    public String toString() { return toText(); }

    public static final class Builder {
        private final String title;
        private final List<Part> parts = new ArrayList<>();
        private Object data;

        private Builder(String title) { this.title = title; }

        public Builder text(String markdown) { parts.add(new Text(Objects.requireNonNull(markdown))); return this; }

        public Builder table(Table table) { return table(table, null); }

        public Builder table(Table table, String caption) { parts.add(new TablePart(table, caption)); return this; }

        public Builder chart(Chart<?, ?> chart) { return chart(chart, null); }

        public Builder chart(Chart<?, ?> chart, String caption) { parts.add(new ChartPart(chart, caption)); return this; }

        public Builder data(Object data) { this.data = data; return this; }

        public Report build() { return new Report(title, new ArrayList<>(parts), data); }
    }
}
