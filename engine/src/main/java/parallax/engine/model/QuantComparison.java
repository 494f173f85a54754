package parallax.engine.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.UserError;
import parallax.engine.formats.Converter;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.QuantMix;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Quant types side by side, as a user choosing a download would compare them: the engine
 * checkpoint written as a gpt2 GGUF of each type, its size on disk, and how far it moves the
 * model's next-token distribution from the F32 checkpoint's on a held text (mean KL
 * divergence and top-1 agreement, {@link QuantCheck}'s measure), once with the engine reading
 * the file back and once with llama.cpp running it (when node-llama-cpp is installed).
 */
public final class QuantComparison {

    private QuantComparison() {}

    /** One type: file bytes, bits per parameter (whole file), and the two judges' KL and top-1 (NaN where llama.cpp is missing). */
    public record Row(String type, long bytes, double bitsPerParameter, double engineMeanKl, double engineTop1,
                      double llamaCppMeanKl, double llamaCppTop1) {}

    public record Result(String checkpoint, long parameters, int positions, List<Row> rows, String llamaCpp) {}

    /**
     * Writes {@code dir}/NAME-TYPE.gguf for each type (f32, f16, q8_0, q5_k_m, q4_k_m, q4_0 ...)
     * and measures it over the held text in windows of {@link #window} tokens, the same
     * positions for both judges.
     */
    public static Result run(Path checkpoint, Path dir, List<String> types) {
        Checkpoint.Loaded f32 = Checkpoint.load(checkpoint);
        long params = f32.tensors().values().stream().mapToLong(v -> v.length).sum();
        Optional<String> missing = LlamaCpp.missing();
        List<long[]> windows = windows(f32.config());
        List<double[][]> ref = new ArrayList<>();
        for (long[] w : windows) ref.add(logProbs(f32, w));
        int positions = windows.stream().mapToInt(w -> w.length).sum();
        String stem = checkpoint.getFileName().toString().replaceFirst("\\.safetensors$", "");
        List<Row> rows = new ArrayList<>();
        for (String t : types) {
            Converter.Options o = options(t);
            Path file = dir.resolve(stem + "-" + o.label() + ".gguf");
            CheckpointGguf.convert(checkpoint, file, o, Progress.NONE);
            long bytes;
            try {
                bytes = Files.size(file);
            } catch (IOException e) {
                throw new UserError(file + ": " + e.getMessage());
            }
            Checkpoint.Loaded q = CheckpointGguf.load(file);
            double[] engine = new double[2];
            double[] llama = {Double.NaN, Double.NaN};
            LlamaCpp.Request req = missing.isEmpty() ? new LlamaCpp.Request(file, f32.config().sequence(), true) : null;
            for (int i = 0; i < windows.size(); i++) {
                add(engine, klAndTop1(ref.get(i), logProbs(q, windows.get(i))), windows.get(i).length);
                if (req != null) req.logProbs(windows.get(i));
            }
            if (req != null) {
                try {
                    List<Object> answers = req.run();
                    llama = new double[2];
                    for (int i = 0; i < windows.size(); i++) add(llama, klAndTop1(ref.get(i), (float[][]) answers.get(i)), windows.get(i).length);
                    llama[0] /= positions;
                    llama[1] /= positions;
                } catch (UserError e) {
                    // llama.cpp could not run this file: its column stays empty and the report says why
                    missing = Optional.of(e.getMessage());
                }
            }
            rows.add(new Row(o.label(), bytes, 8.0 * bytes / params, engine[0] / positions, engine[1] / positions, llama[0], llama[1]));
        }
        return new Result(checkpoint.toString(), params, positions, rows, missing.orElse("node-llama-cpp " + LlamaCpp.VERSION));
    }

    /** The held text's byte ids in windows a little shorter than the context (llama.cpp needs room for the next token). */
    static List<long[]> windows(GptConfig c) {
        long[] ids = CheckpointGguf.byteIds(QuantCheck.HELD_TEXT);
        for (int i = 0; i < ids.length; i++) ids[i] %= c.vocab();
        int w = Math.max(2, c.sequence() - 8);
        List<long[]> out = new ArrayList<>();
        for (int start = 0; start + 2 <= ids.length; start += w) out.add(Arrays.copyOfRange(ids, start, Math.min(ids.length, start + w)));
        return out;
    }

    /** Adds a window's (mean KL, top-1 share) weighted by its positions. */
    private static void add(double[] sum, double[] m, int n) {
        sum[0] += m[0] * n;
        sum[1] += m[1] * n;
    }

    static Converter.Options options(String type) {
        String t = type.toLowerCase(Locale.ROOT);
        Converter.Options base = new Converter.Options(null, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD);
        if (t.equals("q4_k_m")) return base.withMix(QuantMix.Q4_K_M);
        if (t.equals("q5_k_m")) return base.withMix(QuantMix.Q5_K_M);
        DType d;
        try {
            d = DType.valueOf(type.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("unknown quant type " + type + " (f32, f16, bf16, q8_0, q5_0, q5_1, q4_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m)");
        }
        return new Converter.Options(d, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD);
    }

    private static double[][] logProbs(Checkpoint.Loaded m, long[] ids) {
        float[] logits = Checkpoint.logits(m, new long[][] {ids});
        int v = m.config().vocab();
        double[][] out = new double[ids.length][];
        for (int t = 0; t < ids.length; t++) out[t] = QuantCheck.logSoftmax(logits, t * v, v);
        return out;
    }

    static double[] klAndTop1(double[][] ref, float[][] other) {
        double[][] d = new double[other.length][];
        for (int t = 0; t < other.length; t++) {
            d[t] = new double[other[t].length];
            for (int k = 0; k < d[t].length; k++) d[t][k] = other[t][k];
        }
        return klAndTop1(ref, d);
    }

    /** Mean KL(P_ref || P_other) over positions and the share of positions with the same argmax. */
    static double[] klAndTop1(double[][] ref, double[][] other) {
        double kl = 0;
        int same = 0;
        for (int t = 0; t < ref.length; t++) {
            int a = 0, b = 0;
            double k = 0;
            for (int i = 0; i < ref[t].length; i++) {
                k += Math.exp(ref[t][i]) * (ref[t][i] - other[t][i]);
                if (ref[t][i] > ref[t][a]) a = i;
                if (other[t][i] > other[t][b]) b = i;
            }
            kl += Math.max(0, k);
            if (a == b) same++;
        }
        return new double[] {kl / ref.length, (double) same / ref.length};
    }

    public static Report report(Result r) {
        StringColumn type = StringColumn.create("type");
        LongColumn bytes = LongColumn.create("bytes");
        DoubleColumn bits = DoubleColumn.create("bits/param");
        DoubleColumn ekl = DoubleColumn.create("KL engine");
        DoubleColumn etop = DoubleColumn.create("top-1 engine %");
        DoubleColumn lkl = DoubleColumn.create("KL llama.cpp");
        DoubleColumn ltop = DoubleColumn.create("top-1 llama.cpp %");
        XYChart c = new XYChartBuilder().width(640).height(380).title("File size against KL divergence from F32")
                .xAxisTitle("file size (MB, 10^6 bytes)").yAxisTitle("mean KL(P_f32 || P_type), nats").build();
        c.getStyler().setYAxisLogarithmic(true);
        List<Double> xs = new ArrayList<>(), ys = new ArrayList<>(), ls = new ArrayList<>();
        for (Row row : r.rows()) {
            type.append(row.type());
            bytes.append(row.bytes());
            bits.append(Math.round(row.bitsPerParameter() * 100) / 100.0);
            ekl.append(Double.parseDouble(String.format(Locale.ROOT, "%.3g", row.engineMeanKl())));
            etop.append(Math.round(1000 * row.engineTop1()) / 10.0);
            lkl.append(Double.isNaN(row.llamaCppMeanKl()) ? Double.NaN : Double.parseDouble(String.format(Locale.ROOT, "%.3g", row.llamaCppMeanKl())));
            ltop.append(Double.isNaN(row.llamaCppTop1()) ? Double.NaN : Math.round(1000 * row.llamaCppTop1()) / 10.0);
            // F32 against itself is 0 for the engine: a log axis shows the floor instead
            xs.add(row.bytes() / 1e6);
            ys.add(Math.max(row.engineMeanKl(), 1e-12));
            ls.add(Double.isNaN(row.llamaCppMeanKl()) ? null : Math.max(row.llamaCppMeanKl(), 1e-12));
        }
        XYSeries s = c.addSeries("engine reads the file", xs, ys);
        s.setMarker(SeriesMarkers.CIRCLE);
        if (ls.stream().allMatch(x -> x != null)) {
            XYSeries l = c.addSeries("llama.cpp runs the file", xs, ls);
            l.setMarker(SeriesMarkers.DIAMOND);
        }
        String text = String.format(Locale.ROOT, "%,d parameters, %d positions of a held text; KL in nats against the F32 checkpoint run by the engine. "
                + "llama.cpp: %s.", r.parameters(), r.positions(), r.llamaCpp());
        return Report.builder("quant types: size against KL divergence").text(text)
                .table(Table.create("quant types", type, bytes, bits, ekl, etop, lkl, ltop),
                        "bytes of the whole file (header included); KL and top-1 over the held text")
                .chart(c, "Each point one GGUF of the same checkpoint, measured in this run on this machine (F32 against itself is 0; drawn at 1e-12)")
                .data(r).build();
    }
}
