package parallax.engine.model;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import parallax.engine.UserError;
import parallax.engine.formats.Converter;
import parallax.engine.formats.GptOnnxExporter;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.Table;

/**
 * An engine checkpoint as an ONNX inference graph: the weights renamed to nanoGPT's
 * layout ({@link #nanoGptWeights}, from the model's own table; Q/K/V fused) and exported as the full
 * opset-17 GPT graph, and the check that ONNX Runtime's logits of that graph match the
 * engine's own libtorch forward ({@link Gpt#logits}) of the same weights.
 */
public final class CheckpointOnnx {

    /** Pass when max |ORT - libtorch| <= TOLERANCE x max(1, max |logit|). */
    public static final double TOLERANCE = 1e-5;

    /** One compared batch: its shape, the largest difference and the logit scale. */
    public record Row(int batch, int tokens, long logits, double maxAbsDiff, double logitScale) {}

    /** The whole check. {@code relative} = maxAbsDiff / max(1, logitScale). */
    public record Check(String model, List<Row> rows, double maxAbsDiff, double logitScale, double relative,
                        double tolerance, boolean passed, String runtime) {}

    private CheckpointOnnx() {}

    /** Writes {@code c} as an ONNX inference graph at {@code dst} (temporary file, then rename). */
    public static void export(Checkpoint.Loaded c, Path dst, long externalThreshold) {
        GptConfig g = c.config();
        if (g.isMoe()) throw new UserError("a mixture-of-experts checkpoint cannot be exported to ONNX yet (the graph has dense MLPs only)");
        GptOnnxExporter.GptSpec spec = new GptOnnxExporter.GptSpec(g.layers(), g.hidden(), g.heads(), g.vocab(), g.sequence());
        GptOnnxExporter.export(spec, nanoGptWeights(c), dst, externalThreshold);
    }

    /**
     * The checkpoint's tensors under nanoGPT's names, as {@link Gpt#allParams} maps them:
     * parameters that share a nanoGPT name (Q, K and V, and their biases) are stacked by rows
     * in the table's order, into nanoGPT's fused c_attn.
     */
    static Map<String, GptOnnxExporter.Weight> nanoGptWeights(Checkpoint.Loaded c) {
        Map<String, List<Gpt.ParamSpec>> byTarget = new LinkedHashMap<>();
        for (Gpt.ParamSpec p : Gpt.allParams(c.config())) byTarget.computeIfAbsent(p.nanoGpt(), k -> new ArrayList<>()).add(p);
        Map<String, GptOnnxExporter.Weight> out = new LinkedHashMap<>();
        for (Map.Entry<String, List<Gpt.ParamSpec>> e : byTarget.entrySet()) {
            List<Gpt.ParamSpec> parts = e.getValue();
            long rows = 0;
            int total = 0;
            for (Gpt.ParamSpec p : parts) {
                rows += p.fullShape()[0];
                total += (int) p.numel();
            }
            float[] data = new float[total];
            int at = 0;
            for (Gpt.ParamSpec p : parts) {
                float[] v = c.tensors().get(p.name());
                System.arraycopy(v, 0, data, at, v.length);
                at += v.length;
            }
            long[] shape = parts.get(0).fullShape().clone();
            shape[0] = rows;
            out.put(e.getKey(), new GptOnnxExporter.Weight(shape, data));
        }
        return out;
    }

    /**
     * %convert of an engine checkpoint to .onnx: the full graph, reported as a conversion
     * (one row per engine tensor; lossless float32).
     */
    public static Converter.Result convert(Path src, Path dst, Converter.Options o, Progress progress) {
        if (o.to() != null && o.to() != parallax.engine.numerics.DType.F32)
            throw new UserError("the ONNX inference graph is float32: drop --to " + o.to().name().toLowerCase(Locale.ROOT)
                    + " (or write .safetensors / .gguf for other types)");
        if (o.names() != Converter.Names.KEEP || o.arch() != null)
            throw new UserError("--arch/--names do not apply to an engine checkpoint exported as an ONNX graph");
        long t0 = System.nanoTime();
        try (Progress p = progress) {
            Checkpoint.Loaded c = Checkpoint.load(src);
            p.update(1, Map.of("step", "loaded"));
            export(c, dst, o.onnxExternalThreshold());
            p.update(2, Map.of("step", "exported"));
            List<Converter.TensorResult> rows = new ArrayList<>();
            long in = 0;
            for (Map.Entry<String, float[]> e : c.tensors().entrySet()) {
                long b = 4L * e.getValue().length;
                in += b;
                rows.add(new Converter.TensorResult(e.getKey(), e.getKey(), "F32", "F32",
                        java.util.Arrays.toString(c.shapes().get(e.getKey())), b, b, 0, 0, note(e.getKey())));
            }
            long out = size(dst) + size(dst.resolveSibling(dst.getFileName() + ".data"));
            double s = (System.nanoTime() - t0) / 1e9;
            List<String> notes = List.of("Engine checkpoint (" + c.config().name() + ": " + c.config().layers() + " layers, hidden "
                    + c.config().hidden() + ", " + c.config().heads() + " heads, vocab " + c.config().vocab() + ", sequence "
                    + c.config().sequence() + ") exported as the full ONNX opset-17 inference graph: input_ids int64 [batch, seq]"
                    + " -> logits float [batch, seq, vocab]; Q, K and V fused into c_attn, linear weights stored transposed.");
            return new Converter.Result(src.toString(), "engine checkpoint (safetensors)", dst.toString(), "ONNX graph",
                    rows.size(), in, out, in == 0 ? 1 : (double) out / in, s, in / 1e6 / s, rows, notes);
        }
    }

    private static String note(String engineName) {
        if (engineName.contains("attn.w") && !engineName.endsWith("wo") || engineName.contains("attn.b") && !engineName.endsWith("bo"))
            return "fused into c_attn";
        return "";
    }

    private static long size(Path p) {
        try {
            return Files.isRegularFile(p) ? Files.size(p) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Token batches for the check: [2 x 1], [2 x seq/2], [2 x seq], deterministic. */
    public static List<long[][]> sequences(GptConfig cfg, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<long[][]> out = new ArrayList<>();
        for (int t : new int[] {1, Math.max(2, cfg.sequence() / 2), cfg.sequence()}) {
            long[][] ids = new long[2][t];
            for (long[] row : ids) for (int i = 0; i < t; i++) row[i] = r.nextInt(cfg.vocab());
            out.add(ids);
        }
        return out;
    }

    /** Runs {@code onnx} in ONNX Runtime and the checkpoint in libtorch on the same tokens and compares the logits. */
    public static Check check(Checkpoint.Loaded c, Path onnx) {
        List<Row> rows = new ArrayList<>();
        double max = 0, scale = 0;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setIntraOpNumThreads(1);
            so.setInterOpNumThreads(1);
            try (OrtSession session = env.createSession(onnx.toString(), so)) {
                for (long[][] ids : sequences(c.config(), 17)) {
                    float[] ort = run(env, session, ids);
                    float[] ref = Checkpoint.logits(c, ids);
                    if (ort.length != ref.length)
                        throw new UserError(onnx + ": ONNX Runtime returned " + ort.length + " logits, libtorch " + ref.length);
                    double m = 0, sc = 0;
                    for (int i = 0; i < ref.length; i++) {
                        double d = Math.abs((double) ort[i] - ref[i]);
                        if (!(d <= m)) m = d; // NaN propagates as a failure
                        sc = Math.max(sc, Math.abs(ref[i]));
                    }
                    rows.add(new Row(ids.length, ids[0].length, ref.length, m, sc));
                    max = Double.isNaN(max) || Double.isNaN(m) ? Double.NaN : Math.max(max, m);
                    scale = Math.max(scale, sc);
                }
            }
        } catch (OrtException e) {
            throw new UserError(onnx + ": ONNX Runtime failed: " + firstLine(e.getMessage()));
        }
        double rel = max / Math.max(1.0, scale);
        return new Check(onnx.toString(), rows, max, scale, rel, TOLERANCE, rel <= TOLERANCE, "ONNX Runtime " + env.getVersion());
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int n = s.indexOf('\n');
        return n < 0 ? s : s.substring(0, n);
    }

    private static float[] run(OrtEnvironment env, OrtSession s, long[][] ids) throws OrtException {
        try (OnnxTensor in = OnnxTensor.createTensor(env, ids);
             OrtSession.Result r = s.run(Map.of("input_ids", in))) {
            float[][][] out = (float[][][]) r.get(0).getValue();
            float[] flat = new float[out.length * out[0].length * out[0][0].length];
            int k = 0;
            for (float[][] a : out) for (float[] b : a) for (float v : b) flat[k++] = v;
            return flat;
        }
    }

    /** The conversion summary followed by the check; JSON data {convert, check}. */
    public static Report report(Report convert, Converter.Result r, Check c) {
        Report.Builder b = Report.builder(convert.title());
        for (Report x : List.of(convert, report(c))) {
            for (Report.Part p : x.parts()) {
                if (p instanceof Report.Text t) b.text(t.markdown());
                else if (p instanceof Report.TablePart t) b.table(t.table(), t.caption());
                else if (p instanceof Report.ChartPart t) b.chart(t.chart(), t.caption());
            }
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("convert", r);
        data.put("check", c);
        return b.data(data).build();
    }

    private static double sig(double x) {
        if (x == 0 || !Double.isFinite(x)) return x;
        return new java.math.BigDecimal(x).round(new java.math.MathContext(3)).doubleValue();
    }

    /** The check as a report section: one row per batch, then the verdict. */
    public static Report report(Check c) {
        IntColumn batch = IntColumn.create("batch");
        IntColumn tokens = IntColumn.create("tokens");
        IntColumn logits = IntColumn.create("logits");
        DoubleColumn diff = DoubleColumn.create("max |ORT - libtorch|");
        DoubleColumn scale = DoubleColumn.create("max |logit|");
        for (Row r : c.rows()) {
            batch.append(r.batch());
            tokens.append(r.tokens());
            logits.append((int) r.logits());
            diff.append(sig(r.maxAbsDiff()));
            scale.append(sig(r.logitScale()));
        }
        String verdict = String.format(Locale.ROOT,
                "**--check %s**: %s vs the engine's libtorch forward of the same weights on %d token batches: "
                        + "max |difference| %.3g, logit scale %.3g, relative %.3g (tolerance %.0e x max(1, scale)).",
                c.passed() ? "passed" : "FAILED", c.runtime(), c.rows().size(), c.maxAbsDiff(), c.logitScale(), c.relative(), c.tolerance());
        return Report.builder("%convert --check").text(verdict)
                .table(Table.create("check", batch, tokens, logits, diff, scale),
                        "Logits of random token sequences, ONNX Runtime (CPU, 1 thread) against libtorch on this machine")
                .data(c).build();
    }
}
