package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.function.Function;
import javax.imageio.ImageIO;
import org.commonmark.ext.gfm.tables.TablesExtension;
import org.commonmark.parser.Parser;
import org.commonmark.renderer.html.HtmlRenderer;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.internal.chartpart.Chart;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.report.Report;
import tech.tablesaw.api.Table;

/**
 * The renderer registry: turns values into Jupyter MIME bundles. XChart charts become
 * image/png plus image/svg+xml, Tablesaw tables text/html plus text/plain, engine
 * {@link Report}s one bundle (HTML with the charts inline, plain text, and the first
 * chart as image/png for front ends that cannot show HTML), libtorch tensors a header and
 * PyTorch-style preview ({@link TensorPreview}), arrays and JDK collections compact text
 * ({@link ValuePreview}). Lookup is by the first registered type the value is an instance of.
 */
public final class Renderers {

    /** Rows shown of a table before "... N more rows". */
    static final int MAX_TABLE_ROWS = 200;

    private record Registration<T>(Class<T> type, Function<? super T, DisplayData> render) {}

    private final List<Registration<?>> registrations = new ArrayList<>();
    private final Parser markdownParser;
    private final HtmlRenderer markdownHtml;

    public Renderers() {
        var extensions = List.of(TablesExtension.create());
        markdownParser = Parser.builder().extensions(extensions).build();
        markdownHtml = HtmlRenderer.builder().extensions(extensions).build();
        register(DisplayData.class, d -> d);
        register(Report.class, this::report);
        register(Table.class, this::table);
        register(Chart.class, c -> chart((Chart<?, ?>) c));
        register(BufferedImage.class, Renderers::image);
        register(Tensor.class, TensorPreview::render);
        register(Display.Markdown.class, m -> markdown(m.text()));
        register(Display.Html.class, h -> {
            DisplayData d = new DisplayData(h.html());
            d.putHTML(h.html());
            return d;
        });
    }

    /** Adds a renderer; later registrations of a more specific type should come first. */
    public <T> void register(Class<T> type, Function<? super T, DisplayData> render) {
        registrations.add(new Registration<>(type, render));
    }

    public DisplayData render(Object value) {
        if (value == null) return null;
        for (Registration<?> r : registrations) {
            if (r.type().isInstance(value)) return apply(r, value);
        }
        if (ValuePreview.handles(value)) return new DisplayData(ValuePreview.text(value));
        return new DisplayData(String.valueOf(value));
    }

    private static <T> DisplayData apply(Registration<T> r, Object value) {
        return r.render().apply(r.type().cast(value));
    }

    DisplayData markdown(String text) {
        DisplayData d = new DisplayData(text);
        d.putMarkdown(text);
        d.putHTML(markdownToHtml(text));
        return d;
    }

    String markdownToHtml(String text) {
        return markdownHtml.render(markdownParser.parse(text));
    }

    DisplayData report(Report r) {
        StringBuilder html = new StringBuilder("<div class=\"parallax-report\">");
        if (r.title() != null && !r.title().isEmpty()) html.append("<h3>").append(escape(r.title())).append("</h3>");
        String firstPng = null;
        for (Report.Part part : r.parts()) {
            if (part instanceof Report.Text t) {
                html.append(markdownToHtml(t.markdown()));
            } else if (part instanceof Report.TablePart t) {
                if (t.caption() != null) html.append("<p><b>").append(escape(t.caption())).append("</b></p>");
                html.append(tableHtml(t.table()));
            } else if (part instanceof Report.ChartPart c) {
                String png = base64(pngBytes(c.chart()));
                if (firstPng == null) firstPng = png;
                html.append("<figure style=\"margin:0.5em 0\"><img src=\"data:image/png;base64,").append(png)
                        .append("\" alt=\"").append(escape(c.chart().getTitle())).append("\"/>");
                if (c.caption() != null) html.append("<figcaption><small>").append(escape(c.caption())).append("</small></figcaption>");
                html.append("</figure>");
            }
        }
        html.append("</div>");
        DisplayData d = new DisplayData(r.toText());
        d.putHTML(html.toString());
        if (firstPng != null) d.putData("image/png", firstPng);
        return d;
    }

    DisplayData table(Table t) {
        DisplayData d = new DisplayData(t.rowCount() > MAX_TABLE_ROWS
                ? t.first(MAX_TABLE_ROWS).printAll() + "\n... " + (t.rowCount() - MAX_TABLE_ROWS) + " more rows"
                : t.printAll());
        d.putHTML(tableHtml(t));
        return d;
    }

    static String tableHtml(Table t) {
        StringBuilder sb = new StringBuilder("<table class=\"parallax-table\">");
        if (t.name() != null && !t.name().isBlank()) sb.append("<caption>").append(escape(t.name())).append("</caption>");
        sb.append("<thead><tr>");
        for (String c : t.columnNames()) sb.append("<th>").append(escape(c)).append("</th>");
        sb.append("</tr></thead><tbody>");
        int rows = Math.min(t.rowCount(), MAX_TABLE_ROWS);
        for (int r = 0; r < rows; r++) {
            sb.append("<tr>");
            for (int c = 0; c < t.columnCount(); c++) {
                sb.append("<td>").append(escape(t.column(c).getString(r))).append("</td>");
            }
            sb.append("</tr>");
        }
        sb.append("</tbody></table>");
        if (t.rowCount() > MAX_TABLE_ROWS) {
            sb.append("<p><i>").append(t.rowCount() - MAX_TABLE_ROWS).append(" more rows not shown</i></p>");
        }
        return sb.toString();
    }

    static DisplayData chart(Chart<?, ?> chart) {
        DisplayData d = new DisplayData("[chart: " + chart.getTitle() + "]");
        d.putData("image/png", base64(pngBytes(chart)));
        d.putSVG(svg(chart));
        return d;
    }

    static DisplayData image(BufferedImage img) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(img, "png", out);
            DisplayData d = new DisplayData("[image " + img.getWidth() + "x" + img.getHeight() + "]");
            d.putData("image/png", base64(out.toByteArray()));
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] pngBytes(Chart<?, ?> chart) {
        try {
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String svg(Chart<?, ?> chart) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            VectorGraphicsEncoder.saveVectorGraphic(chart, out, VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
            // Inline SVG in a notebook must not carry an XML declaration or DOCTYPE
            // (nbconvert's HTML sanitiser rejects them).
            String svg = out.toString(StandardCharsets.UTF_8);
            int start = svg.indexOf("<svg");
            return start > 0 ? svg.substring(start) : svg;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String base64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }

    static String escape(String s) {
        if (s == null) return "";
        StringBuilder sb = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '&' -> sb.append("&amp;");
                case '"' -> sb.append("&quot;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }
}
