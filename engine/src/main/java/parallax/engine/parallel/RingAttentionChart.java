package parallax.engine.parallel;

import java.awt.BasicStroke;
import java.awt.Color;
import java.util.Locale;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Ring attention's causal score matrix in chunks ({@link ContextParallel#ringSteps}): one
 * square per (query chunk, key chunk) pair, query chunk 0 on top, coloured by the rank that
 * computes it and labelled with the ring step at which the key block reaches that rank.
 * Diagonal pairs (causal mask inside) are drawn lighter, fully masked pairs grey.
 */
public final class RingAttentionChart {

    private RingAttentionChart() {}

    private static final Color[] RANKS = {new Color(0x4C72B0), new Color(0xDD8452), new Color(0x55A868), new Color(0xC44E52),
        new Color(0x8172B3), new Color(0x937860), new Color(0xDA8BC3), new Color(0x8C8C8C)};
    private static final Color MASKED = new Color(0xE6E6E6);

    public static XYChart grid(ContextParallel.RingSteps ring) {
        int n = 2 * ring.cp(), size = 560;
        String title = String.format(Locale.ROOT, "cp=%d, %s chunks: critical path %.1f blocks", ring.cp(),
                ring.zigzag() ? "zig-zag" : "contiguous", ring.criticalPath());
        XYChart c = new XYChartBuilder().width(size).height(size + 60).title(title)
                .xAxisTitle("key chunk").yAxisTitle("query chunk").build();
        org.knowm.xchart.style.XYStyler st = c.getStyler();
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        st.setLegendLayout(Styler.LegendLayout.Horizontal);
        st.setPlotGridLinesVisible(false);
        st.setAxisTicksVisible(false);
        st.setXAxisMin(-0.6);
        st.setXAxisMax(n - 0.4);
        st.setYAxisMin(-0.6);
        st.setYAxisMax(n - 0.4);
        // A square's side in pixels: the plot is about the chart less its title, axes and legend.
        float side = 0.85f * (size - 150) / n;
        for (int r = 0; r < ring.cp(); r++) {
            int[] ch = ContextParallel.chunks(r, ring.cp(), ring.zigzag());
            XYSeries key = c.addSeries("rank " + r + " (queries " + ch[0] + ", " + ch[1] + ")", new double[] {0, 0}, new double[] {-10, -10});
            key.setMarker(SeriesMarkers.NONE);
            key.setLineColor(RANKS[r % RANKS.length]);
            key.setLineStyle(new BasicStroke(8f));
        }
        XYSeries masked = c.addSeries("masked", new double[] {0, 0}, new double[] {-10, -10});
        masked.setMarker(SeriesMarkers.NONE);
        masked.setLineColor(MASKED);
        masked.setLineStyle(new BasicStroke(8f));
        int i = 0;
        for (ContextParallel.RingBlock b : ring.blocks()) {
            double x = b.keyChunk(), y = n - 1 - b.queryChunk();
            Color col = switch (b.kind()) {
                case FULL -> RANKS[b.rank() % RANKS.length];
                case DIAGONAL -> lighter(RANKS[b.rank() % RANKS.length]);
                case MASKED -> MASKED;
            };
            // A horizontal stroke as thick as it is long: the square of this pair.
            double half = 0.5 * 0.85 - 0.01;
            XYSeries s = c.addSeries("#" + (i++), new double[] {x - half, x + half}, new double[] {y, y});
            s.setMarker(SeriesMarkers.NONE);
            s.setLineColor(col);
            s.setLineStyle(new BasicStroke(side, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER));
            s.setShowInLegend(false);
            c.addAnnotation(new AnnotationText("s" + b.step(), x, y, false));
        }
        for (int k = 0; k < n; k++) {
            c.addAnnotation(new AnnotationText(String.valueOf(k), k, -0.55, false));
            c.addAnnotation(new AnnotationText(String.valueOf(k), -0.55, n - 1 - k, false));
        }
        return c;
    }

    private static Color lighter(Color c) {
        return new Color((c.getRed() + 2 * 255) / 3, (c.getGreen() + 2 * 255) / 3, (c.getBlue() + 2 * 255) / 3);
    }
}
