package parallax.engine.precision;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.precision.PrecisionTraining.Mode;
import parallax.engine.precision.PrecisionTraining.Run;
import parallax.engine.parallel.Fp8Report;
import parallax.engine.parallel.Fp8Scaling;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.TrainingRun;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** The charts and table of a {@link PrecisionTraining} comparison. */
public final class PrecisionTrainingReport {

    private PrecisionTrainingReport() {}

    public static Report of(PrecisionTraining.Result r) {
        PrecisionTraining.Config c = r.config();
        String setup = String.format(Locale.ROOT, "16-64-16 ReLU MLP, MSE on a realisable random teacher with outputs ~%.0e, "
                + "batch %d, SGD momentum 0.9, lr %s, %d steps, one CPU thread", c.targetScale(), c.batch(), c.lr(), c.steps());

        XYChart loss = new XYChartBuilder().width(900).height(480).title("Training loss by precision")
                .xAxisTitle("step").yAxisTitle("MSE loss (log)").build();
        loss.getStyler().setYAxisLogarithmic(true);
        loss.getStyler().setMarkerSize(0);
        loss.getStyler().setYAxisDecimalPattern("0.0E0");
        for (Run run : r.runs()) {
            double[] x = new double[run.loss().length];
            for (int i = 0; i < x.length; i++) x[i] = i;
            loss.addSeries(run.mode().label(), x, positive(run.loss())).setMarker(SeriesMarkers.NONE);
        }

        XYChart scale = new XYChartBuilder().width(900).height(360).title("Dynamic loss scale (fp16)")
                .xAxisTitle("step").yAxisTitle("loss scale (log)").build();
        scale.getStyler().setYAxisLogarithmic(true);
        scale.getStyler().setMarkerSize(7);
        scale.getStyler().setYAxisDecimalPattern("0E0");
        boolean anyScaled = false;
        for (Run run : r.runs()) {
            if (!run.mode().lossScaling()) continue;
            anyScaled = true;
            double[] x = new double[run.lossScale().length];
            for (int i = 0; i < x.length; i++) x[i] = i;
            scale.addSeries("scale", x, run.lossScale()).setMarker(SeriesMarkers.NONE);
            if (!run.skippedAt().isEmpty()) {
                List<Double> sx = new ArrayList<>(), sy = new ArrayList<>();
                for (int s : run.skippedAt()) {
                    sx.add((double) s);
                    sy.add(run.lossScale()[s]);
                }
                XYSeries sk = scale.addSeries("overflow: step skipped (" + run.skippedSteps() + ")", sx, sy);
                sk.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                sk.setMarker(SeriesMarkers.DIAMOND);
            }
        }

        XYChart grads = gradientHistogram(r);

        CategoryChart memory = new CategoryChartBuilder().width(450).height(340).title("Bytes per parameter")
                .xAxisTitle("dtype").yAxisTitle("bytes").build();
        CategoryChart speed = new CategoryChartBuilder().width(450).height(340).title("Samples per second")
                .xAxisTitle("dtype").yAxisTitle("samples/s").build();
        List<String> names = new ArrayList<>();
        List<Number> bytes = new ArrayList<>(), sps = new ArrayList<>();
        for (Run run : r.runs()) {
            names.add(run.mode().label());
            bytes.add(run.mode().bytesPerParameter());
            sps.add(run.samplesPerSecond());
        }
        memory.addSeries("bytes/param", names, bytes);
        speed.addSeries("samples/s", names, sps);
        memory.getStyler().setLegendVisible(false);
        speed.getStyler().setLegendVisible(false);

        Table t = Table.create("Precision training runs");
        StringColumn cMode = StringColumn.create("dtype"), cFinal = StringColumn.create("final loss (last 10)"),
                cRatio = StringColumn.create("vs fp32"), cSkip = StringColumn.create("skipped steps"),
                cScale = StringColumn.create("final scale"), cZero = StringColumn.create("weight grads = 0"),
                cBytes = StringColumn.create("bytes/param"), cSps = StringColumn.create("samples/s");
        double fp32 = Double.NaN;
        for (Run run : r.runs()) if (run.mode() == Mode.FP32) fp32 = run.finalLoss();
        List<Map<String, Object>> data = new ArrayList<>();
        for (Run run : r.runs()) {
            cMode.append(run.mode().label());
            cFinal.append(String.format(Locale.ROOT, "%.3g", run.finalLoss()));
            cRatio.append(Double.isNaN(fp32) ? "-" : String.format(Locale.ROOT, "%.2fx", run.finalLoss() / fp32));
            cSkip.append(run.mode().lossScaling() ? String.valueOf(run.skippedSteps()) : "-");
            cScale.append(run.mode().lossScaling() ? "2^" + Math.getExponent(run.lossScale()[run.lossScale().length - 1]) : "-");
            cZero.append(CastAnalysis.pct(run.zeroGradientShare()));
            cBytes.append(String.valueOf(run.mode().bytesPerParameter()));
            cSps.append(String.format(Locale.ROOT, "%.0f", run.samplesPerSecond()));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dtype", run.mode().label());
            m.put("finalLoss", run.finalLoss());
            m.put("loss", run.loss());
            m.put("lossScale", run.lossScale());
            m.put("skippedSteps", run.skippedAt());
            m.put("zeroGradientShare", run.zeroGradientShare());
            m.put("bytesPerParameter", run.mode().bytesPerParameter());
            m.put("samplesPerSecond", run.samplesPerSecond());
            data.add(m);
        }
        t.addColumns(cMode, cFinal, cRatio, cSkip, cScale, cZero, cBytes, cSps);
        double[] under = underflowShares(r);

        Report.Builder b = Report.builder("Mixed-precision training compared")
                .text("Setup: " + setup + ". Every dtype starts from the same weights and sees the same batches; "
                        + "FP32 master weights, forward and backward in the dtype, loss in FP32 (Micikevicius et al. 2018). "
                        + "The targets are deliberately small (~" + String.format(Locale.ROOT, "%.0e", c.targetScale())
                        + ") so that dL/dy = 2(y - t)/N lands near FP16's smallest subnormal 2^-24: this is a constructed "
                        + "demonstration of underflow, not a claim about any particular large model. "
                        + String.format(Locale.ROOT, "On the FP32 run, %.1f%% of dL/dy values are below 2^-25 (they flush to 0 in FP16) "
                        + "at the first step and %.1f%% at the last.", 100 * under[0], 100 * under[1]))
                .table(t, "Final loss = mean of the last 10 steps; weight grads = 0: share of parameter gradients that "
                        + "were exactly 0 after the low-precision backward; bytes/param: FP32 master + SGD momentum, plus "
                        + "the 16-bit copy and its gradient for the mixed modes")
                .chart(loss, "Loss per step of each dtype (" + setup + "); fp16-noscale stalls once dL/dy underflows");
        if (anyScaled) {
            b.chart(scale, "fp16 loss scale: starts at 2^" + Math.getExponent(c.initialScale()) + ", doubles after "
                    + c.growthInterval() + " clean steps, halves and skips the step on an inf/NaN gradient (PyTorch GradScaler rule)");
        }
        b.chart(grads, "|dL/dy| of the FP32 run at its first and last step against FP16's limits: below 2^-25 a value "
                        + "flushes to 0, below 2^-14 it is subnormal with fewer bits")
                .chart(memory, "Bytes per parameter held by this run's training state (by layout, not measured)")
                .chart(speed, "Measured samples/s per dtype on this machine's CPU, one libtorch thread, including the casts "
                        + "and the Java optimizer step; CPU kernels say little about GPU tensor-core speedups");
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("setup", setup);
        json.put("runs", data);
        json.put("fp32OutputGradBelowFlushFirst", under[0]);
        json.put("fp32OutputGradBelowFlushLast", under[1]);
        return b.data(json).build();
    }

    /**
     * The GPT trained in several precisions ({@link GptPrecisionTraining}): loss curves, final
     * losses against bf16 and fp32, step times, and for FP8 the scales, amaxes and the shares
     * of values that saturated or flushed.
     */
    public static Report ofGpt(GptPrecisionTraining.Result r) {
        List<TrainingRun> runs = r.runs();
        TrainSpec first = runs.get(0).spec();
        String setup = String.format(Locale.ROOT, "the %s GPT (%d layers, hidden %d, %,d parameters), batch %d x %d tokens, %s lr %s, "
                        + "%d steps, seed %d, one process, one CPU thread", r.model().name(), r.model().layers(), r.model().hidden(),
                r.model().parameterCount(), first.batch(), r.model().sequence(), first.optimizer(), first.lr(), first.steps(), first.seed());
        XYChart loss = new XYChartBuilder().width(900).height(480).title("GPT training loss by precision")
                .xAxisTitle("step").yAxisTitle("cross-entropy loss").build();
        loss.getStyler().setMarkerSize(0);
        double fp32 = Double.NaN, bf16 = Double.NaN;
        for (int i = 0; i < runs.size(); i++) {
            GptPrecisionTraining.Mode m = r.modes().get(i);
            double f = finalLoss(runs.get(i).loss());
            if (m == GptPrecisionTraining.Mode.FP32) fp32 = f;
            if (m == GptPrecisionTraining.Mode.BF16) bf16 = f;
        }
        Table t = Table.create("GPT precision runs");
        StringColumn cMode = StringColumn.create("dtype"), cFinal = StringColumn.create("final loss (last 10)"),
                cBf16 = StringColumn.create("vs bf16"), cFp32 = StringColumn.create("vs fp32"), cMs = StringColumn.create("ms/step"),
                cSat = StringColumn.create("FP8 saturated"), cFlush = StringColumn.create("FP8 dy flushed");
        List<Map<String, Object>> data = new ArrayList<>();
        TrainingRun delayed = null;
        List<TrainingRun> fp8Runs = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            TrainingRun run = runs.get(i);
            GptPrecisionTraining.Mode m = r.modes().get(i);
            double[] x = new double[run.loss().length];
            for (int k = 0; k < x.length; k++) x[k] = k + 1;
            loss.addSeries(m.label(), x, run.loss()).setMarker(SeriesMarkers.NONE);
            double f = finalLoss(run.loss());
            Fp8Scaling.Trace trace = run.fp8Trace();
            double sat = Double.NaN, flushDy = Double.NaN;
            if (trace != null) {
                fp8Runs.add(run);
                if (m == GptPrecisionTraining.Mode.FP8) delayed = run;
                double s = 0;
                int n = 0;
                for (Fp8Report.RoleSummary rs : Fp8Report.summary(trace)) {
                    s += rs.saturatedShare();
                    n++;
                    if (rs.format().equals(parallax.engine.numerics.FloatFormat.E5M2.label())) flushDy = rs.flushedShare();
                }
                sat = n == 0 ? 0 : s / n;
            }
            cMode.append(m.label());
            cFinal.append(String.format(Locale.ROOT, "%.4f", f));
            cBf16.append(Double.isNaN(bf16) ? "-" : String.format(Locale.ROOT, "%.3fx", f / bf16));
            cFp32.append(Double.isNaN(fp32) ? "-" : String.format(Locale.ROOT, "%.3fx", f / fp32));
            cMs.append(String.format(Locale.ROOT, "%.1f", run.medianStepMs()));
            cSat.append(trace == null ? "-" : CastAnalysis.pct(sat));
            cFlush.append(trace == null ? "-" : CastAnalysis.pct(flushDy));
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("dtype", m.label());
            row.put("loss", run.loss());
            row.put("finalLoss", f);
            row.put("medianStepMs", run.medianStepMs());
            if (trace != null) row.put("fp8", Fp8Report.data(trace, run.spec().fp8Recipe()));
            data.add(row);
        }
        t.addColumns(cMode, cFinal, cBf16, cFp32, cMs, cSat, cFlush);
        Report.Builder b = Report.builder("GPT training by precision")
                .text("Setup: " + setup + ". Every dtype starts from the same weights and sees the same batches, trained by the "
                        + "engine's training loop exactly as %parallel --precision runs it. fp16 uses dynamic loss scaling; fp8 casts the "
                        + "blocks' linear-layer inputs and weights to E4M3 and their output gradients to E5M2 with per-tensor scales "
                        + "(fp8: delayed scaling from the amax history; fp8-current: each tensor's own amax; fp8-noscale: scale 1), "
                        + "everything else in bf16.")
                .table(t, "Final loss = mean of the last 10 steps, measured; ms/step: median on this machine's CPU (FP8 is emulated "
                        + "with extra casts, so it is slower here; on FP8 hardware the matmuls are the fast part); FP8 columns: mean share "
                        + "of values saturated over all cast tensors, and of output gradients flushed to zero")
                .chart(loss, "Loss per step of each dtype (" + setup + ")");
        if (!fp8Runs.isEmpty()) b.chart(parallax.engine.parallel.TrainingReport.fp8FlushChart(fp8Runs),
                "E5M2 output gradients flushed to zero per step, each FP8 run (mean over layers), measured");
        if (delayed != null) Fp8Report.addTo(b, delayed.fp8Trace(), delayed.spec().fp8Recipe(), "the fp8 (delayed scaling) run");
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("setup", setup);
        json.put("model", r.model().name());
        json.put("runs", data);
        return b.data(json).build();
    }

    static double finalLoss(double[] loss) {
        double s = 0;
        int k = Math.min(10, loss.length);
        for (int i = loss.length - k; i < loss.length; i++) s += loss[i];
        return s / k;
    }

    static double[] underflowShares(PrecisionTraining.Result r) {
        double flush = Math.scalb(1.0, -25);
        double[] out = new double[2];
        float[][] g = {r.outputGradFirst(), r.outputGradLast()};
        for (int k = 0; k < 2; k++) {
            if (g[k] == null || g[k].length == 0) continue;
            int below = 0;
            for (float v : g[k]) if (v < flush) below++;
            out[k] = (double) below / g[k].length;
        }
        return out;
    }

    private static XYChart gradientHistogram(PrecisionTraining.Result r) {
        XYChart h = new XYChartBuilder().width(900).height(420).title("Gradient magnitudes vs FP16 limits")
                .xAxisTitle("log2 |dL/dy|").yAxisTitle("share of values").build();
        h.getStyler().setMarkerSize(0);
        double lo = -40, hi = -5;
        int bins = 70;
        double top = 0;
        String[] labels = {"FP32 run, first step", "FP32 run, last step"};
        float[][] g = {r.outputGradFirst(), r.outputGradLast()};
        for (int k = 0; k < 2; k++) {
            if (g[k] == null) continue;
            double[] xs = new double[bins], ys = new double[bins];
            for (int i = 0; i < bins; i++) xs[i] = lo + (i + 0.5) * (hi - lo) / bins;
            for (float v : g[k]) {
                double l = v == 0 ? lo : Math.log(v) / Math.log(2);
                int b = (int) Math.floor((l - lo) / (hi - lo) * bins);
                ys[Math.max(0, Math.min(bins - 1, b))] += 1.0 / g[k].length;
            }
            for (double y : ys) top = Math.max(top, y);
            h.addSeries(labels[k], xs, ys).setMarker(SeriesMarkers.NONE);
        }
        double[][] lines = {{-25, 0}, {-24, 0}, {-14, 0}};
        String[] lineNames = {"2^-25: flushes to 0 below", "2^-24: FP16 min subnormal", "2^-14: FP16 min normal"};
        for (int i = 0; i < lines.length; i++) {
            XYSeries s = h.addSeries(lineNames[i], new double[] {lines[i][0], lines[i][0]}, new double[] {0, top * 1.05});
            s.setMarker(SeriesMarkers.NONE);
        }
        return h;
    }

    private static double[] positive(double[] v) {
        double[] out = v.clone();
        for (int i = 0; i < out.length; i++) if (!(out[i] > 0) || Double.isInfinite(out[i])) out[i] = Double.NaN; // a gap in the line
        return out;
    }
}
