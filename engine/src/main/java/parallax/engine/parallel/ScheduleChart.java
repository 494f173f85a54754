package parallax.engine.parallel;

import java.awt.BasicStroke;
import java.awt.Color;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * A pipeline schedule drawn as a timeline: one row per stage, one bar per pass (forward,
 * backward, and the zero-bubble schedule's weight-gradient pass), labelled with its
 * micro-batch; an interleaved stage's later model chunks are drawn lighter. White space on a row is
 * that stage's bubble. Draws a simulated schedule ({@link PipelineSchedule#simulate}) or
 * the passes a run measured in its last step ({@link RankResult#lastStepOps}).
 */
public final class ScheduleChart {

    private ScheduleChart() {}

    /** One pass on one row, from {@code start} to {@code end}. */
    public record Bar(int row, PipelineSchedule.Kind kind, int microBatch, int chunk, double start, double end) {}

    private static final Color FORWARD = new Color(0x4C72B0), BACKWARD = new Color(0x55A868), WEIGHTS = new Color(0xDD8452);

    /** The simulated schedule, in units of one chunk's forward time. */
    public static XYChart simulated(PipelineSchedule.Timeline t) {
        List<Bar> bars = new ArrayList<>();
        for (PipelineSchedule.Slot s : t.slots())
            bars.add(new Bar(s.stage(), s.op().kind(), s.op().microBatch(), s.op().chunk(), s.start(), s.end()));
        String title = String.format(java.util.Locale.ROOT, "%s, p=%d%s, m=%d: bubble %.1f%% (simulated)", t.schedule().label(), t.p(),
                t.v() > 1 ? ", v=" + t.v() : "", t.m(), 100 * t.bubbleFraction());
        return chart(title, "time (simulated units)", t.p(), bars, PipelineSchedule.splitsBackward(t.schedule()));
    }

    /**
     * The passes of the run's last step as the ranks of one pipeline (data, context and
     * tensor rank 0) measured them, in ms from each rank's step start.
     */
    public static XYChart measured(TrainingRun run) {
        TrainSpec s = run.spec();
        List<Bar> bars = new ArrayList<>();
        for (RankResult r : run.ranks()) {
            if (r.coords().dpRank() != 0 || r.coords().tpRank() != 0 || r.coords().cpRank() != 0) continue;
            for (RankResult.OpTime op : r.lastStepOps())
                bars.add(bar(r.ppRank(), op));
        }
        String title = s.schedule().label() + ", p=" + s.pp() + (s.virtualStages() > 1 ? ", v=" + s.virtualStages() : "")
                + ", m=" + s.microBatches() + ": last step, measured";
        return chart(title, "ms from the step's start", s.pp(), bars, PipelineSchedule.splitsBackward(s.schedule()));
    }

    /** A measured pass, named as {@link PipelineSchedule.Op#toString} names it ("F3", "B2.1"). */
    private static Bar bar(int row, RankResult.OpTime t) {
        String[] mbChunk = t.op().substring(1).split("\\.");
        return new Bar(row, PipelineSchedule.Kind.valueOf(t.op().substring(0, 1)), Integer.parseInt(mbChunk[0]),
                mbChunk.length > 1 ? Integer.parseInt(mbChunk[1]) : 0, t.startMs(), t.endMs());
    }

    static XYChart chart(String title, String xTitle, int rows, List<Bar> bars, boolean split) {
        XYChart c = new XYChartBuilder().width(900).height(90 + 46 * rows).title(title).xAxisTitle(xTitle).yAxisTitle("stage").build();
        org.knowm.xchart.style.XYStyler st = c.getStyler();
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        st.setLegendLayout(Styler.LegendLayout.Horizontal);
        st.setPlotGridHorizontalLinesVisible(false);
        st.setYAxisMin(-0.6);
        st.setYAxisMax(rows - 0.4);
        // Stage 0 on top, as pipeline diagrams draw it: rows are named beside the axis.
        st.setYAxisTicksVisible(false);
        double span = bars.stream().mapToDouble(Bar::end).max().orElse(1);
        st.setXAxisMin(-0.07 * span);
        for (int r = 0; r < rows; r++) c.addAnnotation(new AnnotationText(String.valueOf(r), -0.035 * span, rows - 1 - r, false));
        float thickness = Math.min(28f, 200f / rows);
        // The legend: one entry per kind of pass, in its first chunk's colour (drawn off the plot).
        for (PipelineSchedule.Kind k : PipelineSchedule.Kind.values()) {
            if (bars.stream().noneMatch(b -> b.kind() == k)) continue;
            XYSeries key = c.addSeries(name(k, split), new double[] {0, 0}, new double[] {-10, -10});
            key.setMarker(SeriesMarkers.NONE);
            key.setLineColor(color(k, 0));
            key.setLineStyle(new BasicStroke(8f));
        }
        List<Bar> sorted = new ArrayList<>(bars);
        sorted.sort(Comparator.comparingDouble(Bar::start));
        int n = 0;
        for (Bar b : sorted) {
            double y = rows - 1 - b.row();
            XYSeries series = c.addSeries("#" + (n++), new double[] {b.start(), b.end()}, new double[] {y, y});
            series.setMarker(SeriesMarkers.NONE);
            series.setLineColor(color(b.kind(), b.chunk()));
            series.setLineStyle(new BasicStroke(thickness, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER));
            series.setShowInLegend(false);
            c.addAnnotation(new AnnotationText(String.valueOf(b.microBatch()), (b.start() + b.end()) / 2, y, false));
        }
        return c;
    }

    /** The pass's colour, lighter for each later model chunk. */
    private static Color color(PipelineSchedule.Kind k, int chunk) {
        Color c = switch (k) {
            case F -> FORWARD;
            case B -> BACKWARD;
            case W -> WEIGHTS;
        };
        double f = Math.min(0.6, 0.35 * chunk);
        return new Color((int) (c.getRed() + (255 - c.getRed()) * f), (int) (c.getGreen() + (255 - c.getGreen()) * f),
                (int) (c.getBlue() + (255 - c.getBlue()) * f));
    }

    private static String name(PipelineSchedule.Kind k, boolean split) {
        return switch (k) {
            case F -> "forward (F)";
            case B -> split ? "backward, input gradients (B)" : "backward (B)";
            case W -> "backward, weight gradients (W)";
        };
    }
}
