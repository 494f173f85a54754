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

    public record Result(String checkpoint, long parameters, int heldTokens, List<Row> rows, String llamaCpp) {}

    /** Writes {@code dir}/NAME-TYPE.gguf for each type (f32, f16, q8_0, q5_k_m, q4_k_m, q4_0 ...) and measures it. */
    public static Result run(Path checkpoint, Path dir, List<String> types) {
        Checkpoint.Loaded f32 = Checkpoint.load(checkpoint);
        long params = f32.tensors().values().stream().mapToLong(v -> v.length).sum();
        Optional<String> missing = LlamaCpp.missing();
        long[] held = CheckpointGguf.byteIds(QuantCheck.HELD_TEXT);
        long[] window = Arrays.copyOf(held, Math.min(held.length, f32.config().sequence()));
        double[][] ref = logProbs(f32, window);
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
            QuantCheck.Result q = QuantCheck.run(f32, file, o.label());
            double kl = Double.NaN, top1 = Double.NaN;
            if (missing.isEmpty()) {
                float[][] lp = (float[][]) new LlamaCpp.Request(file, f32.config().sequence(), true).logProbs(window).run().get(0);
                double[] m = klAndTop1(ref, lp);
                kl = m[0];
                top1 = m[1];
            }
            rows.add(new Row(o.label(), bytes, 8.0 * bytes / params, q.meanKl(), q.top1Agreement(), kl, top1));
        }
        return new Result(checkpoint.toString(), params, window.length, rows, missing.orElse("node-llama-cpp " + LlamaCpp.VERSION));
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

    /** Mean KL(P_ref || P_other) over positions and the share of positions with the same argmax. */
    static double[] klAndTop1(double[][] ref, float[][] other) {
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
                + "llama.cpp: %s.", r.parameters(), r.heldTokens(), r.llamaCpp());
        return Report.builder("quant types: size against KL divergence").text(text)
                .table(Table.create("quant types", type, bytes, bits, ekl, etop, lkl, ltop),
                        "bytes of the whole file (header included); KL and top-1 over the held text")
                .chart(c, "Each point one GGUF of the same checkpoint, measured in this run on this machine (F32 against itself is 0; drawn at 1e-12)")
                .data(r).build();
    }
}
