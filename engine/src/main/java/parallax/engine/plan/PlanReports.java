package parallax.engine.plan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.plan.Conventions.Units;
import parallax.engine.plan.TrainingPlan.Comm;
import parallax.engine.plan.TrainingPlan.Line;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** Turns plans into Reports: tables with each line's formula and source, charts, JSON data. */
public final class PlanReports {

    private PlanReports() {}

    static String count(double n) {
        if (n >= 1e12) return String.format("%.2fT", n / 1e12);
        if (n >= 1e9) return String.format("%.2fB", n / 1e9);
        if (n >= 1e6) return String.format("%.1fM", n / 1e6);
        return String.format("%.0f", n);
    }

    static String seconds(double s) {
        if (s >= 86400 * 2) return String.format("%.1f days", s / 86400);
        if (s >= 3600) return String.format("%.1f h", s / 3600);
        if (s >= 1) return String.format("%.2f s", s);
        return String.format("%.1f ms", s * 1e3);
    }

    /** The full report of one training plan, with a per-ZeRO-stage chart; {@code tokens} budget may be 0. */
    public static Report training(TrainingPlan p, double tokens, List<TrainingPlan> zeroStages) {
        Units u = p.conventions().units();
        Layout l = p.layout();
        GpuProfile g = p.cluster().gpu();
        StringBuilder head = new StringBuilder();
        head.append("**Model** ").append(p.model().shapeLine()).append("  \n");
        head.append(String.format("Ψ = %,d parameters (%s)%s  %n", p.parameters(), count(p.parameters()),
                p.model().moe() ? String.format(", %,d active per token (%s)", p.activeParameters(), count(p.activeParameters())) : ""));
        head.append("**Cluster** ").append(p.cluster().describe()).append("  \n");
        head.append(String.format("**Layout** dp=%d%s, tp=%d, pp=%d%s, ZeRO-%d, micro-batch %d x %d per step, sequence %d, "
                        + "global batch %,d sequences (%,d tokens), recompute %s%s, %s, %s%s%s  %n",
                l.dp(), l.cp() > 1 ? ", cp=" + l.cp() + " (" + l.localSeq() + " tokens of each sequence per rank)" : "", l.tp(), l.pp(),
                l.pp() == 1 ? "" : " (" + l.schedule().label() + (l.virtualStages() > 1 ? ", v=" + l.virtualStages() : "") + ")",
                l.zero(), l.microBatch(),
                l.microBatches(), l.seq(), l.globalBatch(), l.tokensPerStep(), l.recompute().name().toLowerCase(),
                l.sequenceParallel() ? ", sequence parallel" : "", l.dtype().label(), l.optimizer().name().toLowerCase().replace('_', '-'),
                l.offloadOptimizer() ? ", optimizer on CPU" : "", l.offloadParams() ? ", parameters on CPU" : ""));
        Planner.StateBytes sb = Planner.stateBytes(l, p.conventions());
        head.append(String.format("**Conventions** sizes in %s (%s); %d bytes per parameter for model states (%d param + %d grad + %d optimizer, "
                        + "the %d-byte convention%s); headroom %.0f%% of GPU memory; GEMMs at %.0f%% of dense peak; links at %.0f%% "
                        + "of bandwidth; data-parallel communication %.0f%% overlapped with backward compute; activations %s dropout.",
                u.label(), u == Units.GIB ? "2^30 bytes" : "10^9 bytes", sb.total(), sb.param(), sb.grad(), sb.optimizer(),
                p.conventions().bytesPerParam(), p.conventions().bytesPerParam() == 16 ? ", ZeRO paper [1]" : ", fp32 gradients",
                p.conventions().headroom() * 100, p.conventions().computeEfficiency() * 100, p.conventions().linkEfficiency() * 100,
                p.conventions().overlap() * 100, p.conventions().dropout() ? "with" : "without"));

        Table mem = Table.create("memory per GPU");
        StringColumn comp = StringColumn.create("component");
        StringColumn size = StringColumn.create("per GPU");
        StringColumn formula = StringColumn.create("formula");
        StringColumn src = StringColumn.create("source");
        for (Line line : p.memory()) {
            comp.append(line.component());
            size.append(u.format(line.bytes()));
            formula.append(line.formula());
            src.append("[" + line.source() + "]");
        }
        comp.append("total");
        size.append(u.format(p.totalBytes()));
        formula.append("sum of the above");
        src.append("");
        comp.append("headroom");
        size.append(u.format(p.headroomBytes()));
        formula.append(String.format("%.0f%% of %s", p.conventions().headroom() * 100, u.format(g.memoryBytes())));
        src.append("");
        mem.addColumns(comp, size, formula, src);

        String verdict = dominance(p) + (p.fits()
                ? String.format("**Fits**: %s of %s usable per GPU (pipeline stage %d of %d), %s to spare.",
                        u.format(p.totalBytes()), u.format(p.usableBytes()), p.stage(), l.pp(), u.format(p.marginBytes()))
                : String.format("**Does not fit**: %s needed but %s usable per GPU (pipeline stage %d of %d), %s short.",
                        u.format(p.totalBytes()), u.format(p.usableBytes()), p.stage(), l.pp(), u.format(-p.marginBytes())));
        if (p.cpuBytesPerNode() > 0) {
            verdict += String.format(" CPU memory per node for offloaded states: %s of %s [10].", u.format(p.cpuBytesPerNode()),
                    u.format(g.cpuMemoryPerNodeBytes()));
        }

        Table comm = Table.create("communication per step per GPU");
        StringColumn dim = StringColumn.create("dimension");
        IntColumn group = IntColumn.create("group");
        StringColumn link = StringColumn.create("link");
        StringColumn vol = StringColumn.create("bytes sent");
        StringColumn time = StringColumn.create("time");
        StringColumn exposed = StringColumn.create("exposed");
        StringColumn cf = StringColumn.create("formula");
        StringColumn cs = StringColumn.create("source");
        for (Comm c : p.comms()) {
            dim.append(c.dimension());
            group.append(c.groupSize());
            link.append(c.link());
            vol.append(u.format(c.bytes()));
            time.append(seconds(c.seconds()));
            exposed.append(seconds(c.exposedSeconds()));
            cf.append(c.formula());
            cs.append("[" + c.source() + "]");
        }
        comm.addColumns(dim, group, link, vol, time, exposed, cf, cs);

        Table time2 = Table.create("time");
        StringColumn what = StringColumn.create("quantity");
        StringColumn val = StringColumn.create("value");
        StringColumn how = StringColumn.create("formula");
        add(time2, what, val, how, "compute per step", seconds(p.computeSeconds()),
                (l.recompute() == Layout.Recompute.FULL ? "8" : "6") + "·Ψ_active·tokens / GPUs / (peak x efficiency) [6]");
        add(time2, what, val, how, "pipeline bubble", String.format("%.1f%%", p.bubbleFraction() * 100), l.pp() == 1 ? "no pipeline"
                : switch (l.schedule()) {
                    case INTERLEAVED -> "(p−1)/(v·m) of the ideal time [3]";
                    case ZB_H1 -> "(p−1)(t_F + t_B − t_W)/(m(t_F + t_B + t_W)) = (p−1)/(3m) with t_F = t_B = t_W (2Ψ each) [12]";
                    default -> "(p−1)/m of the ideal time [3]";
                });
        add(time2, what, val, how, "step time", seconds(p.stepSeconds()), "compute x (1 + bubble) + exposed communication");
        add(time2, what, val, how, "tokens/s", String.format("%,.0f", p.tokensPerSecond()), "global batch tokens / step time");
        double attention = Planner.attentionSeconds(p.model(), p.cluster(), l, p.conventions());
        add(time2, what, val, how, "attention scores (not above)", seconds(attention), String.format(
                "%s·L·s·h·tokens / GPUs / (peak x efficiency): Q·Kᵀ and P·V, causal; %.0f%% of the 6Ψ compute, left out of the step "
                        + "time and MFU as the 6Ψ rule does [6]", l.recompute() == Layout.Recompute.FULL ? "8" : "6",
                100 * attention / p.computeSeconds()));
        add(time2, what, val, how, "MFU", String.format("%.1f%%", p.mfu() * 100),
                String.format("6·Ψ_active·tokens/s / (GPUs x %.0f TFLOP/s %s) [6][9]", p.peakFlops() / 1e12, l.dtype().label()));
        if (tokens > 0) {
            double sec = p.trainingSeconds(tokens);
            add(time2, what, val, how, "training time", seconds(sec),
                    String.format("%s tokens / tokens/s; 6·Ψ·tokens = %.3g FLOPs [6]", count(tokens), p.trainingFlops(tokens)));
            add(time2, what, val, how, "GPU hours", String.format("%,.0f", sec / 3600 * p.cluster().gpus()), "training time x GPUs");
        }
        time2.addColumns(what, val, how);

        Table others = null;
        if (l.tp() == 1 && l.pp() == 1) {
            double[] ds = Planner.deepSpeedEstimates(p.model(), l.dp(), l.offloadOptimizer(), l.offloadParams());
            double ours = p.bytesOf("parameters") + p.bytesOf("gradients") + p.bytesOf("optimizer states");
            others = Table.create("other estimators");
            StringColumn est = StringColumn.create("estimator"), gpuCol = StringColumn.create("model states per GPU"),
                    note = StringColumn.create("what it counts");
            est.append("this plan (ZeRO-" + l.zero() + ")");
            gpuCol.append(u.format(ours));
            note.append(sb.total() + " B/param split as above; activations and buffers are separate lines");
            est.append("DeepSpeed estimate_zero2");
            gpuCol.append(u.format(ds[0]));
            note.append(l.offloadOptimizer() ? "2Ψ (optimizer offloaded)" : "2Ψ + 18Ψ/N: fp32 gradients counted; no activations");
            est.append("DeepSpeed estimate_zero3");
            gpuCol.append(u.format(ds[1]));
            note.append("4 B x largest layer + " + (l.offloadParams() ? "0" : l.offloadOptimizer() ? "2Ψ/N" : "18Ψ/N") + "; no activations");
            others.addColumns(est, gpuCol, note);
        }

        StringBuilder notes = new StringBuilder("Sources:  \n");
        for (int i = 0; i < Planner.SOURCES.size(); i++) notes.append("[").append(i + 1).append("] ").append(Planner.SOURCES.get(i)).append("  \n");

        Report.Builder r = Report.builder("Plan: " + p.model().name() + " on " + p.cluster().gpus() + " x " + g.description())
                .text(head.toString()).table(mem, "Memory per GPU (the busiest pipeline stage)").text(verdict);
        if (!p.comms().isEmpty()) r.table(comm, "Communication per optimizer step, per GPU, on the link each group crosses");
        r.table(time2, "Time (estimates: every assumption is in the Conventions line)");
        if (others != null) r.table(others, "Other estimators for the same model and " + l.dp() + " GPUs, in " + u.label()
                + " (DeepSpeed's helpers print 2^30-byte units labelled GB; their CPU-side figures add a 1.5x buffer factor) [7]");
        if (zeroStages != null && !zeroStages.isEmpty()) r.chart(memoryChart(zeroStages, u, "ZeRO-"), "Estimated memory per GPU for "
                + p.model().name() + " under ZeRO stages 0-3, other settings as above (formulas [1][2]); the title gives the usable memory per GPU.");
        r.text(notes.toString());
        r.data(json(p, tokens));
        return r.build();
    }

    /**
     * One sentence when activations are the largest memory line: why (they grow with the
     * tokens each rank holds, model states do not) and what divides them.
     */
    static String dominance(TrainingPlan p) {
        Layout l = p.layout();
        double act = p.bytesOf("activations");
        double states = p.bytesOf("parameters") + p.bytesOf("gradients") + p.bytesOf("optimizer states");
        if (act <= states) return "";
        Units u = p.conventions().units();
        List<String> cures = new ArrayList<>();
        if (l.recompute() != Layout.Recompute.FULL) cures.add("--recompute full keeps only each layer's input");
        cures.add("--cp " + Math.max(2, 2 * l.cp()) + " halves the tokens per rank");
        if (l.tp() > 1 && !l.sequenceParallel()) cures.add("--sp divides the rest by tp");
        if (l.microBatch() > 1) cures.add("a smaller --micro-batch");
        return String.format("**Activations dominate**: %s of the %s per GPU (model states %s). They grow with the tokens each rank "
                        + "holds, micro-batch x seq/cp = %,d x %,d%s, while model states do not depend on the sequence at all%s: %s.  %n",
                u.format(act), u.format(p.totalBytes()), u.format(states), l.microBatch(), l.localSeq(),
                l.cp() == 1 && l.recompute() == Layout.Recompute.NONE ? ", and the attention scores with its square" : "",
                l.cp() > 1 ? " (cp already cuts every sequence " + l.cp() + " ways)" : "", String.join("; ", cures));
    }

    private static void add(Table t, StringColumn a, StringColumn b, StringColumn c, String x, String y, String z) {
        a.append(x);
        b.append(y);
        c.append(z);
    }

    /** Stacked bars of the memory components of several plans, labelled by their varying setting. */
    public static CategoryChart memoryChart(List<TrainingPlan> plans, Units u, String labelPrefix) {
        CategoryChart ch = new CategoryChartBuilder().width(760).height(440)
                .title("Memory per GPU: " + plans.get(0).model().name() + " on " + plans.get(0).cluster().gpu().description())
                .xAxisTitle(labelPrefix.equals("ZeRO-") ? "ZeRO stage" : labelPrefix.equals("recompute") ? "activation recomputation"
                        : "layout").yAxisTitle(u.label()).build();
        ch.getStyler().setStacked(true);
        ch.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
        List<String> labels = new ArrayList<>();
        for (TrainingPlan p : plans) labels.add(label(p, labelPrefix));
        for (String component : List.of("parameters", "gradients", "optimizer states", "activations", "communication buffers")) {
            List<Double> ys = new ArrayList<>();
            for (TrainingPlan p : plans) ys.add(u.of(p.bytesOf(component)));
            ch.addSeries(component, labels, ys);
        }
        ch.setTitle(ch.getTitle() + String.format(" (usable %.0f %s)", u.of(plans.get(0).usableBytes()), u.label()));
        return ch;
    }

    static String label(TrainingPlan p, String prefix) {
        Layout l = p.layout();
        return switch (prefix) {
            case "ZeRO-" -> "ZeRO-" + l.zero() + (l.offloadOptimizer() ? "+off" : "");
            case "recompute" -> l.recompute().name().toLowerCase();
            default -> l.label();
        };
    }

    static Map<String, Object> json(TrainingPlan p, double tokens) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("model", p.model().name());
        j.put("parameters", p.parameters());
        j.put("active_parameters", p.activeParameters());
        j.put("gpu", p.cluster().gpu().name());
        j.put("gpus", p.cluster().gpus());
        Layout l = p.layout();
        Map<String, Object> lay = new LinkedHashMap<>();
        lay.put("dp", l.dp());
        lay.put("cp", l.cp());
        lay.put("tp", l.tp());
        lay.put("pp", l.pp());
        lay.put("vpp", l.virtualStages());
        lay.put("schedule", l.schedule().label());
        lay.put("zero", l.zero());
        lay.put("micro_batch", l.microBatch());
        lay.put("micro_batches", l.microBatches());
        lay.put("seq", l.seq());
        lay.put("recompute", l.recompute().name().toLowerCase());
        lay.put("sequence_parallel", l.sequenceParallel());
        lay.put("dtype", l.dtype().label());
        j.put("layout", lay);
        Map<String, Object> mem = new LinkedHashMap<>();
        for (Line line : p.memory()) mem.put(line.component().replace(' ', '_') + "_bytes", line.bytes());
        mem.put("total_bytes", p.totalBytes());
        mem.put("headroom_bytes", p.headroomBytes());
        mem.put("usable_bytes", p.usableBytes());
        mem.put("gpu_bytes", p.cluster().gpu().memoryBytes());
        mem.put("fits", p.fits());
        mem.put("stage", p.stage());
        mem.put("cpu_bytes_per_node", p.cpuBytesPerNode());
        j.put("memory", mem);
        List<Map<String, Object>> comms = new ArrayList<>();
        for (Comm c : p.comms()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dimension", c.dimension());
            m.put("group", c.groupSize());
            m.put("link", c.link());
            m.put("bytes", c.bytes());
            m.put("seconds", c.seconds());
            m.put("exposed_seconds", c.exposedSeconds());
            comms.add(m);
        }
        j.put("communication", comms);
        j.put("bubble_fraction", p.bubbleFraction());
        j.put("compute_seconds", p.computeSeconds());
        j.put("attention_seconds", Planner.attentionSeconds(p.model(), p.cluster(), l, p.conventions()));
        j.put("step_seconds", p.stepSeconds());
        j.put("tokens_per_second", p.tokensPerSecond());
        j.put("mfu", p.mfu());
        if (tokens > 0) {
            j.put("training_tokens", tokens);
            j.put("training_seconds", p.trainingSeconds(tokens));
            j.put("training_flops", p.trainingFlops(tokens));
        }
        j.put("conventions", Map.of("units", p.conventions().units().label(), "bytes_per_param", p.conventions().bytesPerParam(),
                "headroom", p.conventions().headroom(), "compute_efficiency", p.conventions().computeEfficiency(),
                "link_efficiency", p.conventions().linkEfficiency(), "overlap", p.conventions().overlap()));
        return j;
    }

    /** The search's table (top {@code top} rows) and a memory vs tokens/s scatter with the Pareto front. */
    public static Report search(LayoutSearch.Result r, int top, double elapsedSeconds) {
        TrainingPlan any = r.ranked().get(0);
        Units u = any.conventions().units();
        Table t = Table.create("layouts");
        IntColumn rank = IntColumn.create("rank");
        StringColumn lay = StringColumn.create("layout");
        IntColumn acc = IntColumn.create("micro-batches");
        StringColumn mem = StringColumn.create("memory/GPU");
        StringColumn fits = StringColumn.create("fits");
        DoubleColumn tps = DoubleColumn.create("tokens/s");
        StringColumn mfu = StringColumn.create("MFU");
        StringColumn bubble = StringColumn.create("bubble");
        StringColumn pareto = StringColumn.create("Pareto");
        TreeSet<Integer> paretoIds = new TreeSet<>();
        for (TrainingPlan p : r.pareto()) paretoIds.add(System.identityHashCode(p));
        int i = 0;
        for (TrainingPlan p : r.ranked()) {
            if (i >= top) break;
            i++;
            rank.append(i);
            lay.append(p.layout().label());
            acc.append(p.layout().microBatches());
            mem.append(u.format(p.totalBytes()));
            fits.append(p.fits() ? "yes" : "no");
            tps.append(Math.round(p.tokensPerSecond()));
            mfu.append(String.format("%.1f%%", p.mfu() * 100));
            bubble.append(String.format("%.1f%%", p.bubbleFraction() * 100));
            pareto.append(paretoIds.contains(System.identityHashCode(p)) ? "*" : "");
        }
        t.addColumns(rank, lay, acc, mem, fits, tps, mfu, bubble, pareto);

        XYChart ch = new XYChartBuilder().width(760).height(460)
                .title("Layouts of " + any.model().name() + " on " + any.cluster().gpus() + " x " + any.cluster().gpu().name())
                .xAxisTitle("estimated memory per GPU (" + u.label() + ")").yAxisTitle("estimated tokens/s").build();
        ch.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        ch.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideS);
        ch.getStyler().setMarkerSize(6);
        List<Double> fx = new ArrayList<>(), fy = new ArrayList<>(), nx = new ArrayList<>(), ny = new ArrayList<>();
        double clip = 2 * any.usableBytes();
        int clipped = 0;
        for (TrainingPlan p : r.ranked()) {
            if (!p.fits() && p.totalBytes() > clip) { clipped++; continue; }
            (p.fits() ? fx : nx).add(u.of(p.totalBytes()));
            (p.fits() ? fy : ny).add(p.tokensPerSecond());
        }
        if (!fx.isEmpty()) ch.addSeries("fits", fx, fy).setMarker(SeriesMarkers.CIRCLE);
        if (!nx.isEmpty()) ch.addSeries("does not fit", nx, ny).setMarker(SeriesMarkers.CROSS).setMarkerColor(java.awt.Color.LIGHT_GRAY);
        if (!r.pareto().isEmpty()) {
            List<Double> px = new ArrayList<>(), py = new ArrayList<>();
            for (TrainingPlan p : r.pareto()) { px.add(u.of(p.totalBytes())); py.add(p.tokensPerSecond()); }
            XYSeries s = ch.addSeries("Pareto front", px, py);
            s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            s.setMarker(SeriesMarkers.DIAMOND);
            s.setLineColor(java.awt.Color.RED);
            s.setMarkerColor(java.awt.Color.RED);
        }
        List<Double> limit = List.of(u.of(any.usableBytes()), u.of(any.usableBytes()));
        double ymax = r.ranked().stream().mapToDouble(TrainingPlan::tokensPerSecond).max().orElse(1);
        XYSeries lim = ch.addSeries("usable memory", limit, List.of(0.0, ymax));
        lim.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        lim.setMarker(SeriesMarkers.NONE);
        lim.setLineColor(java.awt.Color.DARK_GRAY);

        TrainingPlan best = r.best();
        String head = String.format("%d layouts evaluated in %.0f ms%s, %d fit in %s usable per GPU.", r.evaluated(),
                elapsedSeconds * 1e3, r.pruned() > 0 ? String.format(" (%d more skipped: their model states and first-stage "
                        + "activations alone exceed it)", r.pruned()) : "", r.fitting(), u.format(any.usableBytes()))
                + (best == null ? " **None fits**: add GPUs, use a smaller model or a larger GPU."
                : String.format(" Best: **%s**, %s per GPU, %,.0f tokens/s, MFU %.1f%%.", best.layout().label(),
                u.format(best.totalBytes()), best.tokensPerSecond(), best.mfu() * 100))
                + "  \nRules: tp divides a node's GPUs and the heads; cp divides the rest and the sequence into 2·cp chunks; "
                + "pp ≤ layers; pp > 1 with ZeRO 0-1 only, schedules 1F1B, ZB-H1 (zb) and interleaved with v = 2 or 4 (ppPvV) "
                + "where the layers divide; sequence parallel with tp > 1; layout label dpD·cpC·tpT·ppP zZeRO mbMICRO recompute. "
                + "Same conventions as a single %plan.";
        List<Map<String, Object>> rows = new ArrayList<>();
        for (TrainingPlan p : r.ranked()) {
            if (rows.size() >= top) break;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("layout", p.layout().label());
            row.put("dp", p.layout().dp());
            row.put("tp", p.layout().tp());
            row.put("pp", p.layout().pp());
            row.put("cp", p.layout().cp());
            row.put("vpp", p.layout().virtualStages());
            row.put("schedule", p.layout().schedule().label());
            row.put("sequence_parallel", p.layout().sequenceParallel());
            row.put("bubble", p.bubbleFraction());
            row.put("zero", p.layout().zero());
            row.put("micro_batch", p.layout().microBatch());
            row.put("recompute", p.layout().recompute().name().toLowerCase());
            row.put("memory_bytes", p.totalBytes());
            row.put("fits", p.fits());
            row.put("tokens_per_second", p.tokensPerSecond());
            row.put("mfu", p.mfu());
            rows.add(row);
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("model", any.model().name());
        data.put("gpus", any.cluster().gpus());
        data.put("evaluated", r.evaluated());
        data.put("fitting", r.fitting());
        data.put("pruned", r.pruned());
        data.put("pareto", r.pareto().size());
        data.put("search_seconds", elapsedSeconds);
        data.put("top", rows);
        return Report.builder("Layout search: " + any.model().name() + " on " + any.cluster().describe())
                .text(head).table(t, "Top " + Math.min(top, r.ranked().size()) + " layouts by estimated tokens/s (fitting first)")
                .chart(ch, "Each point is one layout's estimate (planner formulas, not measured); red: the Pareto front among "
                        + "those that fit (no layout uses less memory and runs faster)"
                        + (clipped > 0 ? "; " + clipped + " layouts needing more than twice the usable memory are left out." : "."))
                .data(data).build();
    }

    /** The inference report: weights, KV cache, per-GPU fit and the largest context. */
    public static Report inference(InferencePlan.Result r, Units u) {
        ModelSpec m = r.model();
        String head = String.format("**Model** %s  %nΨ = %,d parameters (%s). Weights in %s: %s. KV cache per token: 2 (K, V) x %d layers "
                        + "x %d KV heads x %d head dim x %d B = %,.0f bytes%s. For context %,d x batch %d: %s of KV cache. "
                        + "**Total %s** plus a headroom of %.0f%% of each GPU for the runtime's buffers.",
                m.shapeLine(), m.parameters(), count(m.parameters()), r.encoding().label, u.format(r.weightBytes()), m.layers(),
                m.kvHeads(), m.headDim(), r.kvBytes(), r.kvBytesPerToken(),
                m.kvHeads() < m.heads() ? String.format(" (GQA: %dx smaller than %d full heads)", m.heads() / m.kvHeads(), m.heads()) : "",
                r.context(), r.batch(), u.format(r.kvCacheBytes()), u.format(r.totalBytes()), r.headroom() * 100);
        Table t = Table.create("fit");
        StringColumn gpu = StringColumn.create("GPU");
        StringColumn usable = StringColumn.create("usable");
        StringColumn fits = StringColumn.create("fits on one");
        IntColumn need = IntColumn.create("GPUs needed");
        StringColumn maxCtx = StringColumn.create("max context on one (batch " + r.batch() + ")");
        for (InferencePlan.Fit f : r.fits()) {
            gpu.append(f.gpu().description());
            usable.append(u.format(f.usableBytes()));
            fits.append(f.gpusNeeded() <= 1 ? "yes" : "no");
            need.append(f.gpusNeeded());
            String ctx = f.maxContext() <= 0 ? "weights do not fit" : String.format("%,d tokens", f.maxContext());
            if (f.maxContext() > m.maxSeq()) ctx += String.format(" (model trained to %,d)", m.maxSeq());
            maxCtx.append(ctx);
        }
        t.addColumns(gpu, usable, fits, need, maxCtx);

        CategoryChart ch = new CategoryChartBuilder().width(760).height(420)
                .title("Serving memory: " + m.name() + " by weight encoding, context " + r.context() + " x batch " + r.batch())
                .xAxisTitle("encoding").yAxisTitle(u.label()).build();
        ch.getStyler().setStacked(true);
        List<String> encs = new ArrayList<>();
        List<Double> ws = new ArrayList<>(), ks = new ArrayList<>();
        for (InferencePlan.Encoding e : InferencePlan.Encoding.values()) {
            encs.add(e.label);
            ws.add(u.of(InferencePlan.weightBytes(m, e)));
            ks.add(u.of(r.kvCacheBytes()));
        }
        ch.addSeries("weights", encs, ws);
        ch.addSeries("KV cache (" + (r.kvBytes() == 2 ? "f16" : r.kvBytes() + " B") + ")", encs, ks);

        Map<String, Object> data = new LinkedHashMap<>();
        data.put("model", m.name());
        data.put("parameters", m.parameters());
        data.put("encoding", r.encoding().label);
        data.put("weight_bytes", r.weightBytes());
        data.put("kv_bytes_per_token", r.kvBytesPerToken());
        data.put("kv_cache_bytes", r.kvCacheBytes());
        data.put("total_bytes", r.totalBytes());
        List<Map<String, Object>> fl = new ArrayList<>();
        for (InferencePlan.Fit f : r.fits()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("gpu", f.gpu().name());
            x.put("usable_bytes", f.usableBytes());
            x.put("gpus_needed", f.gpusNeeded());
            x.put("max_context", f.maxContext());
            fl.add(x);
        }
        data.put("gpus", fl);
        return Report.builder("Inference: " + m.name() + " in " + r.encoding().label)
                .text(head).table(t, "Which GPUs hold it (weights + KV cache within usable memory)")
                .chart(ch, "Weights by encoding (block sizes from ggml; Q4_K_M per llama.cpp's tensor rule) plus the KV cache formula; estimates.")
                .text("Sources: KV cache 2·layers·kv_heads·head_dim·bytes per token (docs/reference.md#kv-cache); GGUF block layouts: Q8_0 34 B and Q4_0 18 B "
                        + "per 32 weights, Q4_K 144 B and Q6_K 210 B per 256 (ggml/src/ggml-common.h); memory from vendor datasheets.")
                .data(data).build();
    }
}
