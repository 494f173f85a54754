package parallax.engine.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiConsumer;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.UserError;
import parallax.engine.cluster.CollectiveBenchmark;
import parallax.engine.cluster.TestBed;
import parallax.engine.cluster.Topology;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.RankResult;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.Training;
import parallax.engine.parallel.TrainingRun;
import parallax.engine.report.Report;
import parallax.engine.report.Stats;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * {@code %plan --validate-comm}: the planner's communication time per dimension against
 * the time the engine measures on links shaped to a known rate. Two nodes of one rank each
 * ({@link TestBed}), so a DP=2 or TP=2 group crosses the link; at each rate the engine's GPT
 * trains with DP=2 and with TP=2, and the all-reduce time per step is set beside the
 * planner's {@link Planner} figure for the same model, batch and layout on a network of that
 * rate: bytes per GPU per step (DP 2Ψ(dp−1)/dp, TP 8bsh(t−1)/t per layer) over the rate
 * times the link efficiency.
 *
 * <p>Measured: the step's all-reduces replayed alone on the link (as many calls, as many
 * bytes, same two ranks), which is what the planner's figure describes. Also reported, from
 * the training run itself: each rank's time inside all-reduce calls per step, taking the rank
 * that waited least, median over the steps after the first; it holds waits for the other
 * rank's compute too, which on shared cores can be most of it.
 */
public final class CommValidation {

    /** How far measured may be from predicted, as a fraction of predicted, to count as agreeing. */
    public static final double TOLERANCE = 0.25;

    /**
     * One dimension at one rate, with what a pair of ranks measured point to point on the
     * link just before ({@link Topology}): how much of the rate it delivers, and its latency.
     */
    public record Row(String dimension, long bitsPerSecond, double predictedBytes, double handedBytes, double callsPerStep,
                      double predictedMs, double trainingMs, double measuredMs, double p2pGbps, double p2pLatencyUs) {
        /** Measured (the step's calls alone on the link) over predicted. */
        public double ratio() { return measuredMs / predictedMs; }

        public boolean agrees() { return Math.abs(ratio() - 1) <= TOLERANCE; }
    }

    private CommValidation() {}

    /**
     * Builds a two-node test bed (root), and at each rate trains {@code cfg} for {@code steps}
     * steps of {@code batch} sequences with DP=2 and with TP=2 on it; removes the bed after.
     */
    public static List<Row> run(GptConfig cfg, List<Long> rates, int steps, int batch, Conventions conv,
                                WorkerPool.Options options, BiConsumer<Integer, String> progress) {
        if (steps < 3) throw new UserError("--validate-comm needs at least 3 steps (the first is warm-up), not " + steps);
        if (batch % 2 != 0) throw new UserError("the global batch must split over dp=2: " + batch);
        ModelSpec m = ValidationRuns.spec(cfg);
        List<Row> rows = new ArrayList<>();
        try (TestBed bed = TestBed.build(2, 1, new TestBed.Link(rates.get(0), 0));
             WorkerPool pool = WorkerPool.start(bed.nodesConfig(), 2, options)) {
            int i = 0;
            for (long rate : rates) {
                bed.shape(new TestBed.Link(rate, 0));
                Topology.Result p2p = Topology.measure(pool, 4L << 20, 3, e -> { });
                double gbps = p2p.medianGbps(Topology.LinkKind.NETWORK), latency = p2p.medianLatencyUs(Topology.LinkKind.NETWORK);
                for (int[] layout : new int[][] {{2, 1}, {1, 2}}) {
                    String dimension = layout[0] > 1 ? "data parallel" : "tensor parallel";
                    progress.accept(i++, dimension + " at " + bed.link().describe());
                    TrainSpec spec = TrainSpec.defaults(cfg).withLayout(layout[0], layout[1], 1).withSteps(steps).withBatch(batch);
                    TrainingRun run = Training.run(pool, spec, null);
                    TrainingPlan.Comm c = predicted(m, cfg, layout[0], layout[1], batch, rate, conv);
                    double handed = handedPerStep(run, steps), calls = callsPerStep(run, steps);
                    rows.add(new Row(dimension, rate, c.bytes(), handed, calls, c.seconds() * 1e3, allReduceMsPerStep(run),
                            aloneMs(pool, handed, calls), gbps, latency));
                }
            }
            progress.accept(i, "done");
        }
        return rows;
    }

    /** The planner's communication of the one parallel dimension of dp x tp on two one-GPU nodes joined by {@code bitsPerS}. */
    static TrainingPlan.Comm predicted(ModelSpec m, GptConfig cfg, int dp, int tp, int batch, long bitsPerS, Conventions conv) {
        // Compute and memory are made large: only the communication lines are used.
        double fast = 1e18;
        GpuProfile g = new GpuProfile("link " + bitsPerS + " bit/s", "a node of one rank on a link of " + bitsPerS + " bit/s",
                1L << 50, fast, fast, fast, 0, fast, bitsPerS / 8.0, fast, 1, 1L << 50);
        Layout l = new Layout(dp, tp, 1, 1, 0, batch / dp, 1, cfg.sequence(), Layout.Recompute.NONE, false,
                Layout.Optimizer.ADAMW, DType.F32, false, false, null);
        TrainingPlan p = Planner.plan(m, new GpuCluster(g, dp * tp), l, conv, false);
        String want = dp > 1 ? "data parallel" : "tensor parallel";
        return p.comms().stream().filter(c -> c.dimension().startsWith(want)).findFirst()
                .orElseThrow(() -> new IllegalStateException("the plan has no " + want + " communication"));
    }

    /**
     * A run's all-reduce time per step (ms): per step the least over the ranks (the rank that
     * arrived last waited least: its time is the transfer), then the median of steps 2..n.
     */
    public static double allReduceMsPerStep(TrainingRun run) {
        int steps = run.loss().length;
        double[] perStep = new double[steps];
        Arrays.fill(perStep, Double.POSITIVE_INFINITY);
        for (RankResult r : run.ranks()) {
            RankResult.CommTotals t = r.comm().get("allReduce");
            if (t == null) continue;
            for (int s = 0; s < steps; s++) perStep[s] = Math.min(perStep[s], t.msPerStep()[s]);
        }
        return Stats.median(perStep, 1);
    }

    /**
     * The step's all-reduces alone on the link (ms): as many calls as the step made, of the
     * step's bytes each divided evenly, back to back on the same two ranks
     * ({@link CollectiveBenchmark}: median of 7 calls, slowest rank). In training a call also
     * waits for the other rank to finish its compute; alone it is the transfer.
     */
    static double aloneMs(WorkerPool pool, double handedPerStep, double callsPerStep) {
        long calls = Math.max(1, Math.round(callsPerStep));
        long bytes = Math.max(4, Math.round(handedPerStep / calls / 4) * 4);
        // a few warm-up calls: the ranks' code is warm from training, and each call may take a while on a slow link
        List<CollectiveBenchmark.Row> r = CollectiveBenchmark.measure(pool, "allreduce", List.of(bytes), List.of("runtime"), 7, 3, e -> { });
        return r.get(0).seconds() * calls * 1e3;
    }

    private static double handedPerStep(TrainingRun run, int steps) {
        return run.ranks().stream().mapToLong(r -> r.bytesHanded("allReduce")).max().orElse(0) / (double) steps;
    }

    private static double callsPerStep(TrainingRun run, int steps) {
        return run.ranks().stream().mapToLong(r -> r.comm().containsKey("allReduce") ? r.comm().get("allReduce").calls() : 0)
                .max().orElse(0) / (double) steps;
    }

    public static Report report(GptConfig cfg, List<Row> rows, int steps, int batch, Conventions conv) {
        long agree = rows.stream().filter(Row::agrees).count();
        StringBuilder text = new StringBuilder(String.format(Locale.ROOT,
                "The planner's communication time per step against the engine's, on two nodes (network namespaces of this "
                        + "machine) joined by links shaped to each rate with tc, one rank per node, so the DP=2 and the TP=2 group "
                        + "both cross the link. Model %s GPT, global batch %d, fp32, %d steps per run. Predicted: the planner's bytes "
                        + "per GPU per step (DP: all-reduce 2Ψ(dp−1)/dp; TP: 8·bsh(t−1)/t per layer) over rate × link efficiency "
                        + "%.2f. Measured: the step's all-reduces alone on the link (as many calls as the step made, its bytes "
                        + "split evenly, back to back on the same two ranks, median of 7). In training: time inside all-reduce calls "
                        + "per step on the rank that waited least, median of steps 2..%d; it also holds the waits for the other rank's "
                        + "compute, which on this machine's shared cores can be most of it. p2p: one pair's point-to-point bandwidth "
                        + "and latency on the link just before (%%cluster topology). %d of %d within %.0f%%.",
                cfg.name(), batch, steps, conv.linkEfficiency(), steps, agree, rows.size(), TOLERANCE * 100));
        for (Row r : rows) {
            if (r.agrees()) continue;
            text.append(String.format(Locale.ROOT, "%n%n%s at %s: measured %.2f ms against %.2f ms predicted (%.2fx). ",
                    r.dimension(), new TestBed.Link(r.bitsPerSecond(), 0).describe(), r.measuredMs(), r.predictedMs(), r.ratio()));
            double deliver = r.p2pGbps() * 8e9 / r.bitsPerSecond();
            text.append(r.ratio() > 1
                    ? String.format(Locale.ROOT, "The planner's model is bandwidth alone, and here the link is not what limits: a pair "
                            + "of ranks moved %.2f Gbit/s point to point (%.2f of the rate) with %.0f µs latency, since both nodes share "
                            + "this machine's %d cores for TCP, shaping and compute; and %.0f calls a step of %.0f KiB each pay that "
                            + "latency each.", r.p2pGbps() * 8, deliver, r.p2pLatencyUs(), Runtime.getRuntime().availableProcessors(),
                            r.callsPerStep(), r.handedBytes() / r.callsPerStep() / 1024)
                    : String.format(Locale.ROOT, "The link delivered %.2f of its rate point to point, more than the assumed efficiency %.2f.",
                            deliver, conv.linkEfficiency()));
        }
        Table t = Table.create("comm validation", StringColumn.create("dimension"), StringColumn.create("link"),
                DoubleColumn.create("bytes_per_step_planned"), DoubleColumn.create("bytes_per_step_handed"), DoubleColumn.create("calls_per_step"),
                DoubleColumn.create("predicted_ms"), DoubleColumn.create("measured_ms"), DoubleColumn.create("in_training_ms"),
                DoubleColumn.create("measured_over_predicted"),
                StringColumn.create("within_25%"), DoubleColumn.create("p2p_Gbit/s"), DoubleColumn.create("p2p_latency_us"));
        for (Row r : rows) {
            t.stringColumn("dimension").append(r.dimension());
            t.stringColumn("link").append(new TestBed.Link(r.bitsPerSecond(), 0).describe());
            t.doubleColumn("bytes_per_step_planned").append(Math.round(r.predictedBytes()));
            t.doubleColumn("bytes_per_step_handed").append(Math.round(r.handedBytes()));
            t.doubleColumn("calls_per_step").append(Math.round(r.callsPerStep() * 10) / 10.0);
            t.doubleColumn("predicted_ms").append(Math.round(r.predictedMs() * 100) / 100.0);
            t.doubleColumn("measured_ms").append(Math.round(r.measuredMs() * 100) / 100.0);
            t.doubleColumn("in_training_ms").append(Math.round(r.trainingMs() * 100) / 100.0);
            t.doubleColumn("measured_over_predicted").append(Math.round(r.ratio() * 1000) / 1000.0);
            t.stringColumn("within_25%").append(r.agrees() ? "yes" : "no");
            t.doubleColumn("p2p_Gbit/s").append(Math.round(r.p2pGbps() * 8 * 1000) / 1000.0);
            t.doubleColumn("p2p_latency_us").append(Math.round(r.p2pLatencyUs()));
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("model", cfg.name());
        data.put("batch", batch);
        data.put("steps", steps);
        data.put("linkEfficiency", conv.linkEfficiency());
        data.put("tolerance", TOLERANCE);
        data.put("agree", agree);
        data.put("rows", rows);
        return Report.builder("Communication model vs measured, on shaped links")
                .text(text.toString())
                .table(t, "Predicted and measured communication time per step, per dimension and link rate")
                .chart(chart(rows), "Predicted (planner) and measured (engine on the test bed) all-reduce time per step")
                .data(data).build();
    }

    static XYChart chart(List<Row> rows) {
        XYChart c = new XYChartBuilder().width(720).height(420).title("communication per step vs link rate")
                .xAxisTitle("link rate (Mbit/s, log scale)").yAxisTitle("time per step (ms, log scale)").build();
        c.getStyler().setXAxisLogarithmic(true);
        c.getStyler().setYAxisLogarithmic(true);
        for (String dim : rows.stream().map(Row::dimension).distinct().toList()) {
            List<Row> rs = rows.stream().filter(r -> r.dimension().equals(dim)).toList();
            double[] x = rs.stream().mapToDouble(r -> r.bitsPerSecond() / 1e6).toArray();
            c.addSeries(dim + " predicted", x, rs.stream().mapToDouble(Row::predictedMs).toArray()).setMarker(SeriesMarkers.NONE);
            c.addSeries(dim + " measured", x, rs.stream().mapToDouble(Row::measuredMs).toArray()).setMarker(SeriesMarkers.CIRCLE);
            c.addSeries(dim + " in training", x, rs.stream().mapToDouble(Row::trainingMs).toArray()).setMarker(SeriesMarkers.DIAMOND);
        }
        return c;
    }

    /** "100mbit,1gbit,10gbit" as bits per second. */
    public static List<Long> rates(String spec) {
        List<Long> out = new ArrayList<>();
        for (String r : spec.split(",")) out.add(TestBed.Link.parse(r.strip(), null).bitsPerSecond());
        if (out.isEmpty() || out.contains(0L)) throw new UserError("--rates takes link rates such as 100mbit,1gbit,10gbit: '" + spec + "'");
        return out;
    }
}
