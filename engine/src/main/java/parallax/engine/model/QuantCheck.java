package parallax.engine.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * How much a quantized GGUF of the engine's GPT changes what the model says, measured as
 * llama.cpp's perplexity tool measures it with --kl-divergence: over every position of a
 * held text, the KL divergence of the quantized model's next-token distribution from the
 * F32 model's, KL(P_f32 || P_quant) = sum_k p_k (log p_k − log q_k), and how often both
 * pick the same most likely token ("same top p"). The F32 side is the checkpoint itself;
 * the quantized side is the written file, read back and dequantized by the engine's
 * readers, both run by the engine's libtorch forward.
 */
public final class QuantCheck {

    /** A held text (not in the training corpus), in windows of the model's context. */
    public static final String HELD_TEXT = "A model file is only as good as the numbers it keeps. When the weights of a "
            + "network are rounded to four or five bits, every layer drifts a little from the original, and the drift "
            + "adds up from the first block to the last. The only fair way to judge a quantized file is to ask it the "
            + "same questions as the original and to compare the answers, one token at a time, on text neither has seen.";

    public record Result(String file, String type, int tokens, double meanKl, double medianKl, double p99Kl, double maxKl,
                         double top1Agreement, double[] perTokenKl) {}

    private QuantCheck() {}

    public static Result run(Checkpoint.Loaded f32, Path gguf, String type) {
        Checkpoint.Loaded q = CheckpointGguf.load(gguf);
        long[] ids = CheckpointGguf.byteIds(HELD_TEXT);
        int seq = f32.config().sequence(), v = f32.config().vocab();
        for (int i = 0; i < ids.length; i++) ids[i] %= v; // a model of fewer than 256 ids reads the text's bytes modulo its vocabulary
        List<Double> kls = new ArrayList<>();
        int same = 0;
        for (int start = 0; start + 2 <= ids.length; start += seq) {
            long[] w = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + seq));
            float[] a = Checkpoint.logits(f32, new long[][] {w});
            float[] b = Checkpoint.logits(q, new long[][] {w});
            for (int t = 0; t < w.length; t++) {
                double[] p = logSoftmax(a, t * v, v), r = logSoftmax(b, t * v, v);
                double kl = 0;
                int ap = 0, bp = 0;
                for (int k = 0; k < v; k++) {
                    kl += Math.exp(p[k]) * (p[k] - r[k]);
                    if (p[k] > p[ap]) ap = k;
                    if (r[k] > r[bp]) bp = k;
                }
                kls.add(Math.max(0, kl));
                if (ap == bp) same++;
            }
        }
        double[] sorted = kls.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double mean = Arrays.stream(sorted).average().orElse(0);
        return new Result(gguf.toString(), type, sorted.length, mean, sorted[sorted.length / 2],
                sorted[(int) Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)], sorted[sorted.length - 1],
                (double) same / sorted.length, kls.stream().mapToDouble(Double::doubleValue).toArray());
    }

    static double[] logSoftmax(float[] x, int off, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < v; k++) max = Math.max(max, x[off + k]);
        double sum = 0;
        for (int k = 0; k < v; k++) sum += Math.exp(x[off + k] - max);
        double[] out = new double[v];
        for (int k = 0; k < v; k++) out[k] = x[off + k] - max - Math.log(sum);
        return out;
    }

    /** The check as a report: the numbers, and a chart of the per-token KL divergence (log-spaced bins). */
    public static Report report(Result r) {
        StringColumn what = StringColumn.create("measure");
        DoubleColumn value = DoubleColumn.create("value");
        String[] names = {"tokens", "mean KL", "median KL", "99th percentile KL", "max KL", "same top-1 token %"};
        double[] values = {r.tokens(), r.meanKl(), r.medianKl(), r.p99Kl(), r.maxKl(), 100 * r.top1Agreement()};
        for (int i = 0; i < names.length; i++) {
            what.append(names[i]);
            value.append(values[i]);
        }
        List<String> bins = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        for (int e = -9; e <= 0; e++) {
            bins.add(e == -9 ? "<1e-8" : "1e" + (e - 1) + "..1e" + e);
            counts.add(0);
        }
        bins.add(">=1");
        counts.add(0);
        for (double kl : r.perTokenKl()) {
            int bin = kl < 1e-8 ? 0 : kl >= 1 ? bins.size() - 1 : (int) Math.floor(Math.log10(kl)) + 9;
            counts.set(Math.max(0, Math.min(bins.size() - 1, bin)), counts.get(Math.max(0, Math.min(bins.size() - 1, bin))) + 1);
        }
        CategoryChart c = new CategoryChartBuilder().width(640).height(360).title("KL divergence per token, " + r.type() + " vs F32")
                .xAxisTitle("KL(P_f32 || P_" + r.type() + ") in nats").yAxisTitle("tokens").build();
        c.getStyler().setLegendVisible(false);
        c.getStyler().setXAxisLabelRotation(45);
        c.addSeries("tokens", bins, counts);
        String text = String.format(Locale.ROOT, "**--check %s**: over %d positions of a held text, mean KL divergence from the F32 model "
                + "%.3g nats (median %.3g, 99th percentile %.3g, max %.3g), same most likely next token at %.1f%% of positions. "
                + "Measured as llama.cpp's perplexity --kl-divergence reports it; both sides run the engine's libtorch forward, "
                + "the quantized one on the weights read back from %s.", r.type(), r.tokens(), r.meanKl(), r.medianKl(), r.p99Kl(),
                r.maxKl(), 100 * r.top1Agreement(), r.file());
        return Report.builder("%convert --check").text(text).table(Table.create("quantization check", what, value),
                "KL(P_f32 || P_quant) per position, in nats, and top-1 agreement")
                .chart(c, "How many positions of the held text fall in each KL range, " + r.type() + " against F32, measured on this machine")
                .data(r).build();
    }
}
