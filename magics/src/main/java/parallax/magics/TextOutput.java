package parallax.magics;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.internal.chartpart.Chart;
import parallax.engine.report.Output;
import parallax.engine.report.Progress;
import parallax.engine.report.ProgressMeter;
import parallax.engine.report.Report;
import tech.tablesaw.api.Table;

/**
 * The terminal's {@link Output}: reports as text on stdout, progress as one line
 * rewritten on stderr, and with an output folder every chart saved as PNG and SVG.
 */
public final class TextOutput implements Output {

    private final PrintStream out;
    private final PrintStream err;
    private final Path chartDir;
    private int chartCount;

    public TextOutput(PrintStream out, PrintStream err, Path chartDir) {
        this.out = out;
        this.err = err;
        this.chartDir = chartDir;
    }

    @Override
    public PrintStream out() {
        return out;
    }

    @Override
    public void display(Object value) {
        if (value instanceof Report r) {
            out.print(r.toText());
            for (Report.Part p : r.parts()) {
                if (p instanceof Report.ChartPart c) saveChart(c.chart());
            }
        } else if (value instanceof Table t) {
            out.println(t.printAll());
        } else if (value instanceof Chart<?, ?> c) {
            out.println("[chart: " + c.getTitle() + "]");
            saveChart(c);
        } else {
            out.println(value);
        }
        out.flush();
    }

    private void saveChart(Chart<?, ?> chart) {
        if (chartDir == null) return;
        try {
            Files.createDirectories(chartDir);
            String base = String.format("chart-%02d-%s", ++chartCount, slug(chart.getTitle()));
            BitmapEncoder.saveBitmap(chart, chartDir.resolve(base).toString(), BitmapEncoder.BitmapFormat.PNG);
            VectorGraphicsEncoder.saveVectorGraphic(chart, chartDir.resolve(base).toString(),
                    VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
            err.println("wrote " + chartDir.resolve(base + ".png") + " and .svg");
        } catch (IOException e) {
            throw new UncheckedIOException("could not write chart to " + chartDir + ": " + e.getMessage(), e);
        }
    }

    static String slug(String title) {
        String s = title == null ? "chart" : title.toLowerCase().replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
        return s.isEmpty() ? "chart" : s.length() > 40 ? s.substring(0, 40) : s;
    }

    @Override
    public Progress progress(String label, long total) {
        ProgressMeter meter = new ProgressMeter(label, total);
        return new Progress() {
            @Override
            public void update(long done, Map<String, String> fields) {
                meter.update(done, fields);
                err.print("\r" + meter.line(20));
                err.flush();
            }

            @Override
            public void close() {
                err.println();
            }
        };
    }
}
