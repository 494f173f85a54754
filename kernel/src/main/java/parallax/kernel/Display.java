package parallax.kernel;

import parallax.engine.report.Progress;

/**
 * What a notebook cell can call to show things, imported statically into every cell:
 * {@code display(chart)}, {@code markdown("**bold**")}, {@code progress("train", 50)}.
 * Outside a running kernel (e.g. in a unit test) values are printed as text.
 */
public final class Display {

    /** Markdown text to render as such. */
    public record Markdown(String text) {}

    /** Raw HTML to render as such. */
    public record Html(String html) {}

    private static volatile DisplaySink sink;

    /** Where display calls go; set by the kernel for its lifetime. */
    interface DisplaySink {
        void display(Object value);

        String displayWithId(Object value);

        void update(String displayId, Object value);

        void clearOutput(boolean wait);

        Progress progress(String label, long total);
    }

    private Display() {}

    static void install(DisplaySink s) {
        sink = s;
    }

    /** Shows a value now: a chart, table, Report, image, Markdown or anything (as text). */
    public static void display(Object value) {
        DisplaySink s = sink;
        if (s == null) System.out.println(value);
        else s.display(value);
    }

    /** Shows a value and returns its display id, for {@link #updateDisplay} later. */
    public static String displayWithId(Object value) {
        DisplaySink s = sink;
        if (s == null) {
            System.out.println(value);
            return "";
        }
        return s.displayWithId(value);
    }

    /** Replaces what an earlier {@link #displayWithId} showed, in place. */
    public static void updateDisplay(String displayId, Object value) {
        DisplaySink s = sink;
        if (s == null) System.out.println(value);
        else s.update(displayId, value);
    }

    /** Clears the cell's output, now or (wait = true) just before the next output. */
    public static void clearOutput(boolean wait) {
        DisplaySink s = sink;
        if (s != null) s.clearOutput(wait);
    }

    public static void clearOutput() {
        clearOutput(false);
    }

    public static Markdown markdown(String text) {
        return new Markdown(text);
    }

    public static Html html(String html) {
        return new Html(html);
    }

    /** A 2-D tensor as a heatmap chart (row 0 on top; more than 64 a side is averaged in blocks). */
    public static org.knowm.xchart.HeatMapChart heatmap(org.bytedeco.pytorch.Tensor t) {
        return TensorPreview.heatmap(t, null);
    }

    /** The same with a title. */
    public static org.knowm.xchart.HeatMapChart heatmap(org.bytedeco.pytorch.Tensor t, String title) {
        return TensorPreview.heatmap(t, title);
    }

    /** A live progress bar updated in place: step i/N, rate, ETA and custom fields. */
    public static Progress progress(String label, long total) {
        DisplaySink s = sink;
        return s == null ? Progress.NONE : s.progress(label, total);
    }
}
