package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.Arrays;
import java.util.Base64;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class RenderersTest {

    private final Renderers renderers = new Renderers();

    private static XYChart chart(int w, int h) {
        XYChart c = new XYChartBuilder().width(w).height(h).title("loss").build();
        c.addSeries("fp32", new double[] {1, 2, 3}, new double[] {3, 2, 1});
        return c;
    }

    private static BufferedImage decode(Object base64) throws Exception {
        byte[] png = Base64.getDecoder().decode(base64.toString());
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));
        return ImageIO.read(new ByteArrayInputStream(png));
    }

    @Test
    void chartIsPngAndSvgAtItsOwnSize() throws Exception {
        DisplayData d = renderers.render(chart(640, 480));
        BufferedImage img = decode(d.getData(MIMEType.parse("image/png")));
        assertEquals(640, img.getWidth());
        assertEquals(480, img.getHeight());
        String svg = d.getData(MIMEType.parse("image/svg+xml")).toString();
        assertTrue(svg.startsWith("<svg"), "no XML declaration before the inline SVG");
        assertTrue(svg.contains("640"), "the SVG keeps the chart size");
    }

    @Test
    void tableIsHtmlAndTextWithEveryColumnType() {
        Table t = Table.create("formats", StringColumn.create("name", "fp16", "bf16<"),
                IntColumn.create("bits", 16, 16), DoubleColumn.create("eps", 9.765625E-4, 0.0078125));
        DisplayData d = renderers.render(t);
        String html = d.getData(MIMEType.TEXT_HTML).toString();
        assertTrue(html.contains("<th>bits</th>"));
        assertTrue(html.contains("<td>16</td>"));
        assertTrue(html.contains("bf16&lt;"), "cells are escaped");
        assertTrue(d.getData(MIMEType.TEXT_PLAIN).toString().contains("fp16"));
    }

    @Test
    void longTablesAreCut() {
        int[] values = new int[Renderers.MAX_TABLE_ROWS + 50];
        Table t = Table.create("big", IntColumn.create("i", values));
        String html = renderers.render(t).getData(MIMEType.TEXT_HTML).toString();
        assertTrue(html.contains("50 more rows not shown"));
    }

    @Test
    void reportIsOneBundleWithChartsInline() throws Exception {
        Report r = Report.builder("Run").text("**loss** fell").table(Table.create("t", IntColumn.create("x", 1)), "numbers")
                .chart(chart(300, 200), "measured on this machine").build();
        DisplayData d = renderers.render(r);
        String html = d.getData(MIMEType.TEXT_HTML).toString();
        assertTrue(html.contains("<strong>loss</strong>"), html);
        assertTrue(html.contains("<table"));
        assertTrue(html.contains("data:image/png;base64,"));
        assertTrue(html.contains("measured on this machine"));
        assertEquals(300, decode(d.getData(MIMEType.parse("image/png"))).getWidth());
        assertTrue(d.getData(MIMEType.TEXT_PLAIN).toString().contains("Run"));
    }

    @Test
    void markdownAndHtmlHelpers() {
        DisplayData md = renderers.render(Display.markdown("# Title"));
        assertEquals("# Title", md.getData(MIMEType.parse("text/markdown")));
        assertTrue(md.getData(MIMEType.TEXT_HTML).toString().contains("<h1>Title</h1>"));
        DisplayData html = renderers.render(Display.html("<b>x</b>"));
        assertEquals("<b>x</b>", html.getData(MIMEType.TEXT_HTML));
    }

    @Test
    void anythingElseIsText() {
        DisplayData d = renderers.render(java.util.List.of(1, 2));
        assertEquals("[1, 2]", d.getData(MIMEType.TEXT_PLAIN));
        assertFalse(d.hasDataForType(MIMEType.TEXT_HTML));
        assertNotNull(renderers.render("s"));
    }
}
