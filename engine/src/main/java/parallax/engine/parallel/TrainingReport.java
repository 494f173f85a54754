package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import parallax.engine.model.GptConfig;
import parallax.engine.report.Report;
import parallax.engine.report.Stats;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Turns finished runs into Reports: loss curve, per-rank memory as stacked bars
 * (parameters, gradients, optimizer state, activations), per-rank time split (compute,
 * communication, pipeline idle), throughput; or, for several runs, the same side by side.
 * Every number comes from the ranks' own measurements.
 */
public final class TrainingReport {

    private static final double MIB = 1024.0 * 1024.0;

    private TrainingReport() {}

    /** Median over steps (first excluded as warm-up) of a per-step series of one rank. */
    static double med(double[] perStep) { return Stats.median(perStep, perStep.length > 2 ? 1 : 0); }

    public static Report single(TrainingRun run) { return single(run, null); }

    /** One run; with {@code peer}, also PyTorch DDP's step time on the same shape and batch. */
    public static Report single(TrainingRun run, DdpPeer.Result peer) {
        TrainSpec s = run.spec();
        double[] loss = run.loss();
        double stepMs = run.medianStepMs();
        double tps = run.tokensPerSecond();
        RankResult r0 = run.ranks().get(0);
        double achieved = r0.flopsPerStep() / (stepMs / 1000.0) / s.world();
        double fraction = achieved / r0.matmulFlops();
        String text = String.format(java.util.Locale.ROOT,
                "**%s** on %d ranks: model %s (%,d parameters), global batch %d x %d tokens, %s, %d steps.%n%n"
                        + "Loss %.4f -> %.4f. Median step %.1f ms (slowest rank), %,.0f tokens/s. "
                        + "Achieved %.2f GFLOP/s per rank (6·Ψ·tokens%s / step time) = %.0f%% of this machine's measured "
                        + "256x256 fp32 matmul rate (%.2f GFLOP/s, one thread).",
                s.label(), s.world(), s.model().name(), s.model().parameterCount(), s.batch(), s.model().sequence(),
                s.fp8Recipe() != null ? s.fp8Recipe().label() : s.precision().label(), s.steps(), loss[0], loss[loss.length - 1], stepMs, tps,
                achieved / 1e9, s.checkpointEvery() > 0 || s.zero() == 3 ? ", 8· with recompute" : "", 100 * fraction, r0.matmulFlops() / 1e9);
        if (s.offloadOptimizer()) {
            RankResult.RankMemory m = r0.memory();
            boolean moved = run.ranks().stream().anyMatch(r -> !r.device().equals(r.memory().optimizerDevice()));
            text += String.format(java.util.Locale.ROOT, " ZeRO-Offload: optimizer state and fp32 master weights (%.2f MiB on rank 0) "
                    + "live in host memory and the optimizer steps there%s.", m.optimizerBytes() / MIB,
                    moved ? "; gradients go down and weights come back up every step"
                            : "; these are CPU ranks, whose host and device memory are one, so nothing moved");
        }
        if (s.model().isMoe()) text += " " + expertsText(run);
        if (run.ranks().stream().anyMatch(r -> r.skippedSteps() > 0))
            text += String.format(" fp16: %d step(s) skipped on overflow, final loss scale %.0f.", r0.skippedSteps(), r0.finalLossScale());
        String resilience = ResilienceReport.text(run);
        if (!resilience.isEmpty()) text += "\n\n" + resilience;
        Map<String, Object> data = data(run);
        if (peer != null) {
            double ours = Double.isNaN(peer.oursMedianMs()) ? stepMs : peer.oursMedianMs(), theirs = peer.medianStepMs();
            text += String.format(java.util.Locale.ROOT,
                    "%n%nPyTorch DistributedDataParallel (Gloo, python3-torch, same shape, batch and steps, %d ranks)%s: "
                            + "median step %.1f ms vs ours %.1f ms: ours / DDP = %.2f.", s.dp(),
                    peer.peerRounds() == null ? "" : ", " + peer.peerRounds().size() + " alternating rounds, median of round medians",
                    theirs, ours, ours / theirs);
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("ddpMedianStepMs", theirs);
            p.put("oursMedianStepMs", ours);
            p.put("ratioOursOverDdp", ours / theirs);
            p.put("ddpStepMs", peer.stepMs());
            if (peer.oursRounds() != null) {
                p.put("oursRoundMedians", peer.oursRounds());
                p.put("ddpRoundMedians", peer.peerRounds());
            }
            data.put("peer", p);
        }
        Report.Builder b = Report.builder("%parallel " + s.label()).text(text);
        if (s.pp() > 1)
            b.chart(ScheduleChart.measured(run), "The pipeline passes of the last step on each stage (data, context and tensor rank 0), "
                    + "as they ran: blue forward, green backward" + (PipelineSchedule.splitsBackward(s.schedule())
                    ? " (input gradients only), orange the weight-gradient passes the zero-bubble schedule moves into the bubble" : "")
                    + "; a number is the micro-batch" + (s.virtualStages() > 1 ? ", lighter bars the later model chunks" : "")
                    + "; white space is time the stage waited.");
        b
                .chart(lossChart(List.of(run)), "Training loss per step (mean cross-entropy over the global batch), measured.")
                .chart(memoryChart(run), "Per-rank memory counted from live tensors at the end of backward (activations: peak held for backward).")
                .chart(timeChart(run), "Per-rank median step time split, measured: communication = time in collectives on the training thread "
                        + "and waits for overlapped DP buckets; idle = time blocked in pipeline receives; compute = the rest of the step.")
                .table(rankTable(run), "Per rank: memory (MiB = 2^20 bytes); median times (ms): comm = time inside collectives on the training thread "
                        + "plus waits for overlapped DP buckets, measured; bytes handed to each collective type over the run (counted per call, "
                        + "receives excluded); ring traffic = handed x the ring algorithm's factor (" + CommMeter.FACTORS + "), an estimate of the bytes on the wire.");
        if (s.model().isMoe())
            b.chart(expertLoadChart(run), "Tokens routed to each expert of each block over the run, summed over the ranks, counted before "
                    + "the capacity cut (a token counts once per expert it chose); a balanced router gives every expert the same share.");
        Fp8Scaling.Trace fp8 = run.fp8Trace();
        if (fp8 != null) {
            Fp8Report.addTo(b, fp8, s.fp8Recipe(), "this run");
            data.put("fp8", Fp8Report.data(fp8, s.fp8Recipe()));
        }
        return b.data(data).build();
    }

    public static Report compare(List<TrainingRun> runs) {
        Table t = Table.create("compare", StringColumn.create("layout"), IntColumn.create("ranks"),
                DoubleColumn.create("tokens/s"), DoubleColumn.create("step ms"), DoubleColumn.create("compute ms"),
                DoubleColumn.create("comm ms"), DoubleColumn.create("idle ms"), DoubleColumn.create("max model-state MiB"),
                DoubleColumn.create("max activations MiB"), DoubleColumn.create("handed to collectives MiB/step"), DoubleColumn.create("final loss"));
        CategoryChart mem = bars("Memory of the fullest rank", "MiB");
        CategoryChart time = bars("Median step time split (slowest rank)", "ms");
        CategoryChart tput = new CategoryChartBuilder().width(720).height(360).title("Throughput").xAxisTitle("layout").yAxisTitle("tokens/s").build();
        tput.getStyler().setLegendVisible(false);
        List<String> names = new ArrayList<>();
        double[][] memParts = new double[4][runs.size()];
        double[][] timeParts = new double[3][runs.size()];
        double[] tokens = new double[runs.size()];
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            TrainingRun run = runs.get(i);
            String name = run.label();
            names.add(name);
            RankResult full = fullest(run);
            RankResult slow = slowest(run);
            memParts[0][i] = full.memory().parameterBytes() / MIB;
            memParts[1][i] = full.memory().gradientBytes() / MIB;
            memParts[2][i] = full.memory().optimizerBytes() / MIB;
            memParts[3][i] = full.memory().activationBytes() / MIB;
            timeParts[0][i] = med(slow.computeMs());
            timeParts[1][i] = med(slow.commMs());
            timeParts[2][i] = med(slow.idleMs());
            tokens[i] = run.tokensPerSecond();
            long bytes = 0;
            for (Map.Entry<String, RankResult.CommTotals> e : full.comm().entrySet()) if (!e.getKey().equals("recv")) bytes += e.getValue().bytesHanded();
            double maxAct = 0;
            for (RankResult r : run.ranks()) maxAct = Math.max(maxAct, r.memory().activationBytes() / MIB);
            t.stringColumn("layout").append(name);
            t.intColumn("ranks").append(run.spec().world());
            t.doubleColumn("tokens/s").append(Math.round(tokens[i]));
            t.doubleColumn("step ms").append(round(run.medianStepMs()));
            t.doubleColumn("compute ms").append(round(timeParts[0][i]));
            t.doubleColumn("comm ms").append(round(timeParts[1][i]));
            t.doubleColumn("idle ms").append(round(timeParts[2][i]));
            t.doubleColumn("max model-state MiB").append(round(full.memory().modelStateBytes() / MIB));
            t.doubleColumn("max activations MiB").append(round(maxAct));
            t.doubleColumn("handed to collectives MiB/step").append(round(bytes / MIB / run.spec().steps()));
            t.doubleColumn("final loss").append(Math.round(run.loss()[run.loss().length - 1] * 10000) / 10000.0);
            Map<String, Object> row = data(run);
            row.put("layout", name);
            rows.add(row);
        }
        String[] memNames = {"parameters", "gradients", "optimizer", "activations"};
        for (int k = 0; k < 4; k++) mem.addSeries(memNames[k], names, toList(memParts[k]));
        String[] timeNames = {"compute", "communication", "pipeline idle"};
        for (int k = 0; k < 3; k++) time.addSeries(timeNames[k], names, toList(timeParts[k]));
        tput.addSeries("tokens/s", names, toList(tokens));
        Report.Builder b = Report.builder("%parallel --compare")
                .table(t, "Each layout trained the same model, batch and steps; all numbers measured on the ranks. "
                        + "Handed: bytes given to collectives by the fullest rank, counted per call (receives excluded).")
                .chart(mem, "Memory of each layout's fullest rank, counted from live tensors.")
                .chart(tput, "Global tokens per second from the median step.")
                .chart(time, "Median step time split on each layout's slowest rank.")
                .chart(lossChart(runs), "Loss per step of every layout, measured (layouts computing the same math draw one line).");
        List<TrainingRun> fp8 = runs.stream().filter(r -> r.fp8Trace() != null).toList();
        if (!fp8.isEmpty()) {
            b.chart(fp8FlushChart(fp8), "Share of the E5M2 output gradients that flushed to zero per step in each FP8 run (mean over the "
                    + "layers), measured: without scaling the small gradients of a language model fall below E5M2's 2^-17 and vanish");
            for (int i = 0; i < rows.size(); i++) {
                TrainingRun run = runs.get(i);
                if (run.fp8Trace() != null) rows.get(i).put("fp8", Fp8Report.data(run.fp8Trace(), run.spec().fp8Recipe()));
            }
        }
        return b.data(Map.of("runs", rows)).build();
    }

    /** Share of each FP8 run's E5M2 gradients that flushed to zero per step (mean over its layers). */
    public static XYChart fp8FlushChart(List<TrainingRun> runs) {
        XYChart c = new XYChartBuilder().width(720).height(360).title("FP8 gradients flushed to zero").xAxisTitle("step")
                .yAxisTitle("dy values flushed (%)").build();
        c.getStyler().setMarkerSize(0);
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        for (TrainingRun run : runs) {
            Fp8Scaling.Trace t = run.fp8Trace();
            double[] share = new double[run.spec().steps()];
            int n = 0;
            for (int i = 0; i < t.slots().size(); i++) {
                if (!t.roles().get(i).equals(Fp8Scaling.Role.DY.name())) continue;
                for (int k = 0; k < share.length && k < t.flushedShare()[i].length; k++) share[k] += 100 * t.flushedShare()[i][k];
                n++;
            }
            double[] x = new double[share.length];
            for (int k = 0; k < share.length; k++) {
                x[k] = k + 1;
                share[k] /= Math.max(1, n);
            }
            c.addSeries(run.label(), x, share).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        }
        return c;
    }

    static RankResult fullest(TrainingRun run) {
        RankResult best = run.ranks().get(0);
        for (RankResult r : run.ranks())
            if (r.memory().modelStateBytes() + r.memory().activationBytes() > best.memory().modelStateBytes() + best.memory().activationBytes()) best = r;
        return best;
    }

    static RankResult slowest(TrainingRun run) {
        RankResult best = run.ranks().get(0);
        for (RankResult r : run.ranks()) if (med(r.stepMs()) > med(best.stepMs())) best = r;
        return best;
    }

    static XYChart lossChart(List<TrainingRun> runs) {
        XYChart c = new XYChartBuilder().width(720).height(360).title("Training loss").xAxisTitle("step").yAxisTitle("loss").build();
        c.getStyler().setMarkerSize(3);
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        for (TrainingRun run : runs) {
            double[] x = new double[run.loss().length];
            for (int i = 0; i < x.length; i++) x[i] = i + 1;
            c.addSeries(run.label(), x, run.loss());
        }
        if (runs.size() == 1) ResilienceReport.markRestarts(c, runs.get(0));
        return c;
    }

    static CategoryChart memoryChart(TrainingRun run) {
        CategoryChart c = bars("Memory per rank", "MiB");
        List<String> ranks = new ArrayList<>();
        double[][] parts = new double[4][run.ranks().size()];
        for (int i = 0; i < run.ranks().size(); i++) {
            RankResult r = run.ranks().get(i);
            ranks.add("rank " + r.rank());
            parts[0][i] = r.memory().parameterBytes() / MIB;
            parts[1][i] = r.memory().gradientBytes() / MIB;
            parts[2][i] = r.memory().optimizerBytes() / MIB;
            parts[3][i] = r.memory().activationBytes() / MIB;
        }
        String[] names = {"parameters", "gradients", "optimizer", "activations"};
        for (int k = 0; k < 4; k++) c.addSeries(names[k], ranks, toList(parts[k]));
        return c;
    }

    /** Tokens per expert of each block, summed over every rank and step: {@code [layer][expert]}. */
    public static long[][] expertLoad(TrainingRun run) {
        GptConfig.Moe moe = run.spec().model().moe();
        long[][] load = new long[run.spec().model().layers()][moe.experts()];
        for (RankResult r : run.ranks())
            if (r.experts() != null && r.tpRank() == 0)
                for (int l = 0; l < load.length; l++) for (int e = 0; e < load[l].length; e++) load[l][e] += r.experts().load()[l][e];
        return load;
    }

    /** One line on the mixture: experts, routing, the load's spread and the tokens dropped. */
    static String expertsText(TrainingRun run) {
        GptConfig cfg = run.spec().model();
        long[][] load = expertLoad(run);
        long max = 0, total = 0, dropped = 0, routed = 0;
        for (long[] l : load) for (long v : l) { max = Math.max(max, v); total += v; }
        for (RankResult r : run.ranks()) if (r.experts() != null && r.tpRank() == 0) {
            dropped += r.experts().dropped();
            routed += r.experts().routedPerStep();
        }
        double mean = total / (double) (load.length * load[0].length);
        return String.format(java.util.Locale.ROOT, "Mixture of experts (%s, %,d of %,d parameters active per token): the busiest expert "
                        + "took %.2fx the mean load; %,d of %,d (token, expert) assignments dropped over capacity in the run (%.2f%%).",
                cfg.moe().label(), cfg.activeParameterCount(), cfg.parameterCount(), mean == 0 ? 0 : max / mean, dropped,
                routed * (long) run.spec().steps(), routed == 0 ? 0 : 100.0 * dropped / (routed * (double) run.spec().steps()));
    }

    static CategoryChart expertLoadChart(TrainingRun run) {
        long[][] load = expertLoad(run);
        CategoryChart c = new CategoryChartBuilder().width(720).height(360).title("Tokens per expert").xAxisTitle("block")
                .yAxisTitle("tokens routed").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        List<String> blocks = new ArrayList<>();
        for (int l = 0; l < load.length; l++) blocks.add("block " + l);
        for (int e = 0; e < load[0].length; e++) {
            List<Double> v = new ArrayList<>();
            for (long[] l : load) v.add((double) l[e]);
            c.addSeries("expert " + e, blocks, v);
        }
        return c;
    }

    static CategoryChart timeChart(TrainingRun run) {
        CategoryChart c = bars("Median step time per rank", "ms");
        List<String> ranks = new ArrayList<>();
        double[][] parts = new double[3][run.ranks().size()];
        for (int i = 0; i < run.ranks().size(); i++) {
            RankResult r = run.ranks().get(i);
            ranks.add("rank " + r.rank());
            parts[0][i] = med(r.computeMs());
            parts[1][i] = med(r.commMs());
            parts[2][i] = med(r.idleMs());
        }
        String[] names = {"compute", "communication", "pipeline idle"};
        for (int k = 0; k < 3; k++) c.addSeries(names[k], ranks, toList(parts[k]));
        return c;
    }

    static CategoryChart bars(String title, String unit) {
        CategoryChart c = new CategoryChartBuilder().width(720).height(360).title(title).yAxisTitle(unit).build();
        c.getStyler().setStacked(true);
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        return c;
    }

    static Table rankTable(TrainingRun run) {
        boolean cp = run.spec().cp() > 1;
        String coords = cp ? "dp,cp,tp,pp" : "dp,tp,pp";
        Table t = Table.create("ranks", IntColumn.create("rank"), StringColumn.create(coords),
                DoubleColumn.create("params MiB"), DoubleColumn.create("grads MiB"), DoubleColumn.create("optimizer MiB"),
                DoubleColumn.create("activations MiB"), DoubleColumn.create("peak RSS MiB"),
                DoubleColumn.create("compute ms"), DoubleColumn.create("comm ms"), DoubleColumn.create("idle ms"),
                StringColumn.create("handed to collectives (MiB)"), DoubleColumn.create("ring traffic MiB"));
        for (RankResult r : run.ranks()) {
            t.intColumn("rank").append(r.rank());
            t.stringColumn(coords).append(r.dpRank() + "," + (cp ? r.coords().cpRank() + "," : "") + r.tpRank() + "," + r.ppRank());
            t.doubleColumn("params MiB").append(round(r.memory().parameterBytes() / MIB));
            t.doubleColumn("grads MiB").append(round(r.memory().gradientBytes() / MIB));
            t.doubleColumn("optimizer MiB").append(round(r.memory().optimizerBytes() / MIB));
            t.doubleColumn("activations MiB").append(round(r.memory().activationBytes() / MIB));
            t.doubleColumn("peak RSS MiB").append(round(r.memory().peakRssBytes() / MIB));
            t.doubleColumn("compute ms").append(round(med(r.computeMs())));
            t.doubleColumn("comm ms").append(round(med(r.commMs())));
            t.doubleColumn("idle ms").append(round(med(r.idleMs())));
            StringBuilder b = new StringBuilder();
            double ring = 0;
            for (Map.Entry<String, RankResult.CommTotals> e : r.comm().entrySet()) {
                if (e.getKey().equals("recv")) continue;
                if (b.length() > 0) b.append(", ");
                b.append(e.getKey()).append(' ').append(String.format(java.util.Locale.ROOT, "%.2f", e.getValue().bytesHanded() / MIB));
                ring += e.getValue().ringBytes();
            }
            t.stringColumn("handed to collectives (MiB)").append(b.length() == 0 ? "-" : b.toString());
            t.doubleColumn("ring traffic MiB").append(round(ring / MIB));
        }
        if (run.spec().model().isMoe()) {
            LongColumn dropped = LongColumn.create("tokens dropped");
            DoubleColumn perStep = DoubleColumn.create("dropped/step");
            for (RankResult r : run.ranks()) {
                long d = r.experts() == null ? 0 : r.experts().dropped();
                dropped.append(d);
                perStep.append(round(d / (double) Math.max(1, r.loss().length)));
            }
            t.addColumns(dropped, perStep);
        }
        if (run.spec().ep() > 1) {
            // Expert parallelism: what each rank's all-to-alls moved and took, and the tokens its own experts served.
            DoubleColumn bytes = DoubleColumn.create("all-to-all MiB"), ms = DoubleColumn.create("all-to-all ms/step");
            LongColumn served = LongColumn.create("tokens to its experts");
            long[] byRank = servedByRank(run);
            for (int i = 0; i < run.ranks().size(); i++) {
                RankResult r = run.ranks().get(i);
                RankResult.CommTotals a = r.comm().get("allToAll");
                bytes.append(round((a == null ? 0 : a.bytesHanded()) / MIB));
                ms.append(round(a == null || a.msPerStep() == null ? 0 : med(a.msPerStep())));
                served.append(byRank[i]);
            }
            t.addColumns(bytes, ms, served);
        }
        if (run.ranks().stream().anyMatch(r -> r.memory().devicePeakAllocatedBytes() >= 0)) {
            // GPU ranks: what the CUDA caching allocator held, beside the live-tensor counts above.
            DoubleColumn peak = DoubleColumn.create("GPU peak allocated MiB"), reserved = DoubleColumn.create("GPU reserved MiB");
            for (RankResult r : run.ranks()) {
                peak.append(round(r.memory().devicePeakAllocatedBytes() / MIB));
                reserved.append(round(r.memory().deviceReservedBytes() / MIB));
            }
            t.insertColumn(7, peak).insertColumn(8, reserved);
        }
        return t;
    }

    /**
     * Under expert parallelism, the token copies each rank's experts served over the run (in
     * the order of {@code run.ranks()}): the loads its expert-parallel group routed to the
     * experts it holds, E/ep of each block. Counted before the capacity cut.
     */
    static long[] servedByRank(TrainingRun run) {
        TrainSpec spec = run.spec();
        int ep = spec.ep();
        java.util.Map<Integer, RankResult> byRank = new java.util.HashMap<>();
        for (RankResult r : run.ranks()) byRank.put(r.rank(), r);
        long[] out = new long[run.ranks().size()];
        for (int i = 0; i < out.length; i++) {
            RankResult r = run.ranks().get(i);
            int[] group = parallax.engine.cluster.Mesh.epGroup(spec.mesh(), ep, r.rank());
            int at = 0;
            while (group[at] != r.rank()) at++;
            int local = spec.model().moe().experts() / ep;
            for (int member : group) {
                RankResult m = byRank.get(member);
                if (m == null || m.experts() == null) continue;
                for (long[] block : m.experts().load()) for (int e = at * local; e < (at + 1) * local; e++) out[i] += block[e];
            }
        }
        return out;
    }

    /** The --json payload: spec, per-step loss, throughput, and per-rank measurements. */
    public static Map<String, Object> data(TrainingRun run) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("layout", run.label());
        m.put("spec", run.spec());
        m.put("loss", run.loss());
        m.put("medianStepMs", run.medianStepMs());
        m.put("tokensPerSecond", run.tokensPerSecond());
        if (run.history().eventful()) m.put("history", ResilienceReport.data(run));
        if (run.spec().model().isMoe()) m.put("expertLoad", expertLoad(run));
        List<Map<String, Object>> ranks = new ArrayList<>();
        long[] served = run.spec().ep() > 1 ? servedByRank(run) : null;
        for (RankResult r : run.ranks()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("rank", r.rank());
            x.put("device", r.device());
            x.put("dpRank", r.dpRank());
            x.put("tpRank", r.tpRank());
            x.put("ppRank", r.ppRank());
            x.put("memory", r.memory());
            x.put("modelStateBytes", r.memory().modelStateBytes());
            x.put("stepMs", r.stepMs());
            x.put("computeMs", r.computeMs());
            x.put("commMs", r.commMs());
            x.put("idleMs", r.idleMs());
            x.put("rssMiB", r.rssMiB());
            x.put("comm", r.comm());
            x.put("matmulFlops", r.matmulFlops());
            x.put("skippedSteps", r.skippedSteps());
            if (r.experts() != null) {
                x.put("expertLoad", r.experts().load());
                x.put("droppedPerStep", r.experts().droppedPerStep());
            }
            if (served != null) x.put("expertTokensServed", served[ranks.size()]);
            ranks.add(x);
        }
        m.put("ranks", ranks);
        return m;
    }

    private static List<Double> toList(double[] a) {
        List<Double> l = new ArrayList<>();
        for (double d : a) l.add(d);
        return l;
    }

    private static double round(double v) { return Math.round(v * 100) / 100.0; }
}
