package parallax.engine.precision;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.TreeMap;
import parallax.engine.UserError;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.TensorEntry;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.model.Trainer;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.numerics.Rounding;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.TrainingRun;
import parallax.engine.report.Report;

/**
 * Where the tensors of {@code %precision cast} come from: a model file of any format the
 * formats package reads (safetensors, a sharded index, GGUF, ONNX, a PyTorch checkpoint
 * through the safe unpickler), read one tensor at a time; or a trained GPT, the one of the
 * last {@code %parallel} run in this JVM when there is one.
 */
public final class CastSources {

    /** Steps of the fallback training of the tiny GPT when no %parallel run exists. */
    public static final int FALLBACK_STEPS = 20;

    /** Values decoded per read from the file (4 MiB of floats). */
    static final int CHUNK = 1 << 20;

    private CastSources() {}

    /** Element types cast here: every floating-point type, ggml blocks (K-quants, i-quants, MXFP4 ...) dequantized first. */
    static boolean isPlainFloat(DType d) {
        switch (d) {
            case F32: case F16: case BF16: case F64:
            case F8_E4M3: case F8_E5M2: case F8_E4M3FNUZ: case F8_E5M2FNUZ:
                return true;
            default:
                return d.isBlock();
        }
    }

    /**
     * Casts every floating-point tensor of {@code path} (format recognised by content) and
     * reports the errors per tensor. Quantized GGUF tensors and non-float tensors are skipped
     * and named in the text; a file with no float tensors is a one-line error naming the
     * dtypes it holds.
     */
    public static Report file(Path path, List<CastTarget> formats, CastAnalysis.Scaling scaling, Rounding rounding) {
        try (ModelFile m = ModelFiles.open(path)) {
            List<TensorEntry> floats = new ArrayList<>();
            Map<String, Integer> quantized = new TreeMap<>(), other = new TreeMap<>();
            for (TensorEntry t : m.tensors()) {
                if (isPlainFloat(t.dtype())) floats.add(t);
                else other.merge(t.dtype().name(), 1, Integer::sum);
                if (t.dtype().isBlock()) quantized.merge(t.dtype().name(), 1, Integer::sum);
            }
            if (floats.isEmpty()) {
                Map<String, Integer> found = new TreeMap<>(quantized);
                found.putAll(other);
                throw new UserError(path + " has no floating-point tensors to cast"
                        + (found.isEmpty() ? " (it holds no tensors at all)" : " (dtypes found: " + String.join(", ", found.keySet()) + ")")
                        + (quantized.isEmpty() ? "" : "; quantized ggml blocks are already rounded and are not cast again"));
            }
            StringBuilder note = new StringBuilder(m.format().label());
            if (!quantized.isEmpty()) {
                note.append("; ").append(count(quantized)).append(" quantized tensor(s) (").append(String.join(", ", quantized.keySet()))
                        .append(") dequantized as ggml does, then cast");
            }
            if (!other.isEmpty()) {
                note.append("; skipped ").append(count(other)).append(" non-float tensor(s) (").append(String.join(", ", other.keySet())).append(')');
            }
            Map<String, Integer> stored = new TreeMap<>();
            for (TensorEntry t : floats) stored.merge(t.dtype().name(), 1, Integer::sum);
            note.append("; stored as ").append(String.join(", ", stored.keySet())).append(", decoded to FP32 tensor by tensor");
            return CastAnalysis.analyse(path.getFileName().toString(), note.toString(), lazy(m, floats), formats, scaling, rounding);
        }
    }

    private static int count(Map<String, Integer> m) {
        return m.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** The tensors of {@code entries}, each decoded only when the iteration reaches it. */
    static Iterable<CastAnalysis.NamedTensor> lazy(ModelFile m, List<TensorEntry> entries) {
        return () -> new Iterator<>() {
            final FloatCodec codec = new FloatCodec();
            int next;

            @Override
            public boolean hasNext() { return next < entries.size(); }

            @Override
            public CastAnalysis.NamedTensor next() {
                if (!hasNext()) throw new NoSuchElementException();
                return read(m, entries.get(next++), codec);
            }
        };
    }

    /** One tensor as FP32, read from the file's memory map in chunks. */
    static CastAnalysis.NamedTensor read(ModelFile m, TensorEntry t, FloatCodec codec) {
        long n = t.elements();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UserError(m.path() + ": tensor '" + t.name() + "' has " + n + " values, more than one Java array holds (2^31)");
        }
        float[] values = new float[(int) n];
        float[] chunk = new float[(int) Math.min(CHUNK, n)];
        for (int i = 0; i < n; i += CHUNK) {
            int k = (int) Math.min(CHUNK, n - i);
            ByteBuffer b = m.bytes(t, t.dtype().bytesFor(i), (int) t.dtype().bytesFor(k)).order(ByteOrder.LITTLE_ENDIAN);
            codec.decode(t.dtype(), b, chunk, k);
            System.arraycopy(chunk, 0, values, i, k);
        }
        return new CastAnalysis.NamedTensor(t.name(), t.shape(), values);
    }

    /** A trained model's weights and one sentence on which model it is and how it was obtained. */
    public record ModelWeights(String description, List<CastAnalysis.NamedTensor> tensors) {}

    /**
     * The GPT of {@code run} (the session's last {@code %parallel} run, or null), with the
     * weights gathered from its ranks. A run that kept no weights is retrained here from its spec with the
     * single-process FP32 reference ({@link Trainer}), which every layout reproduces. Without
     * any run, the tiny GPT is trained in-process for {@link #FALLBACK_STEPS} steps.
     */
    public static ModelWeights trainedGpt(TrainingRun run) {
        if (run != null) {
            TrainSpec s = run.spec();
            Map<String, float[]> p = run.parameters();
            String what = describe(s) + ", from the last %parallel run in this session (" + layout(s) + ", " + s.steps() + " steps, "
                    + s.precision().label() + ")";
            if (!p.isEmpty()) return new ModelWeights(what + ", weights gathered from its ranks", named(s.model(), p));
            Trainer.Result r = Trainer.train(s.model(), s.data(), s.seed(), s.steps(), s.batch(), s.optimizer(), s.lr());
            String caveat = "";
            if (s.precision() != parallax.engine.numerics.DType.F32) caveat += "; the run trained in " + s.precision().label()
                    + ", the reference in FP32, so the weights are close, not identical";
            if (s.localSgdEvery() > 0) caveat += "; the run used local SGD, the reference does not, so the weights differ";
            return new ModelWeights(what + ": the run kept no weights, so its spec was retrained in-process with the single-process "
                    + "FP32 reference trainer, which every layout reproduces" + caveat, named(s.model(), r.parameters()));
        }
        TrainSpec d = TrainSpec.defaults(GptConfig.tiny());
        Trainer.Result r = Trainer.train(d.model(), d.data(), d.seed(), FALLBACK_STEPS, d.batch(), d.optimizer(), d.lr());
        return new ModelWeights(describe(d) + ", trained in-process for " + FALLBACK_STEPS + " steps (" + d.optimizer() + ", lr "
                + d.lr() + ", batch " + d.batch() + ") with the single-process FP32 reference trainer; no %parallel run in this session",
                named(d.model(), r.parameters()));
    }

    static String describe(TrainSpec s) {
        GptConfig c = s.model();
        return String.format(Locale.ROOT, "the %s GPT of %d layers, hidden size %d and %,d parameters", c.name(), c.layers(), c.hidden(),
                c.parameterCount());
    }

    private static String layout(TrainSpec s) {
        return "dp=" + s.dp() + " tp=" + s.tp() + " pp=" + s.pp() + (s.zero() > 0 ? " zero=" + s.zero() : "");
    }

    /** The parameters in the model's own order, with their full shapes. */
    static List<CastAnalysis.NamedTensor> named(GptConfig cfg, Map<String, float[]> params) {
        Gpt model = new Gpt(cfg);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (int u = 0; u < model.units(); u++) for (Gpt.ParamSpec p : model.params(u)) shapes.put(p.name(), p.fullShape());
        List<CastAnalysis.NamedTensor> out = new ArrayList<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            float[] v = params.get(e.getKey());
            if (v != null) out.add(new CastAnalysis.NamedTensor(e.getKey(), e.getValue(), v));
        }
        for (Map.Entry<String, float[]> e : params.entrySet()) {
            if (!shapes.containsKey(e.getKey())) out.add(new CastAnalysis.NamedTensor(e.getKey(), new long[] {e.getValue().length}, e.getValue()));
        }
        return out;
    }
}
