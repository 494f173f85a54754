package parallax.engine.model;

import parallax.engine.torch.Device;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.UserError;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorEntry;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.torch.Torch;

/**
 * A trained engine GPT as a safetensors file: the gathered full-size float32 parameters
 * under the engine's names ({@code wte}, {@code h0.attn.wq}, ... {@code head.w}) and a
 * {@code __metadata__} map recording the model shape and the run under {@code parallax.*}
 * keys. Written to a temporary file and renamed (the formats package's writer), so a
 * failed save leaves nothing behind. {@link #load} reads it back (also after a lossless
 * trip through GGUF, whose writer keeps the safetensors metadata); {@link #logits} runs
 * the engine's own libtorch forward ({@link Gpt#logits}) on the loaded weights.
 */
public final class Checkpoint {

    /** The value of {@code parallax.format} in a checkpoint's metadata. */
    public static final String FORMAT = "engine-checkpoint";
    /** The prefix of every metadata key the engine writes. */
    public static final String PREFIX = "parallax.";
    /** Where the GGUF writer keeps a safetensors source's metadata. */
    static final String GGUF_PREFIX = "safetensors.metadata.";

    /** A loaded checkpoint: the model shape, its tensors by engine name, and all parallax.* metadata. */
    public record Loaded(GptConfig config, Map<String, float[]> tensors, Map<String, long[]> shapes, Map<String, String> metadata) {}

    private Checkpoint() {}

    /**
     * Writes full-size parameters of {@code cfg} (engine names, every one required) with
     * the model shape and {@code extra} metadata. Tensors go in the model's unit order.
     */
    public static void save(GptConfig cfg, Map<String, float[]> parameters, Map<String, String> extra, Path path) {
        Map<String, long[]> shapes = shapes(cfg);
        List<TensorSpec> specs = new ArrayList<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            float[] v = parameters.get(e.getKey());
            if (v == null) throw new UserError("checkpoint: parameter " + e.getKey() + " is missing");
            if (v.length != DType.elements(e.getValue()))
                throw new UserError("checkpoint: parameter " + e.getKey() + " has " + v.length + " values, expected "
                        + DType.elements(e.getValue()));
            specs.add(new TensorSpec(e.getKey(), DType.F32, e.getValue()));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(PREFIX + "format", FORMAT);
        meta.put(PREFIX + "model.name", cfg.name());
        meta.put(PREFIX + "model.layers", Integer.toString(cfg.layers()));
        meta.put(PREFIX + "model.hidden", Integer.toString(cfg.hidden()));
        meta.put(PREFIX + "model.heads", Integer.toString(cfg.heads()));
        meta.put(PREFIX + "model.vocab", Integer.toString(cfg.vocab()));
        meta.put(PREFIX + "model.sequence", Integer.toString(cfg.sequence()));
        meta.put(PREFIX + "model.ffn", Integer.toString(cfg.ffn()));
        meta.put(PREFIX + "model.parameters", Long.toString(cfg.parameterCount()));
        if (cfg.isMoe()) {
            GptConfig.Moe m = cfg.moe();
            meta.put(PREFIX + "model.experts", Integer.toString(m.experts()));
            meta.put(PREFIX + "model.top_k", Integer.toString(m.topK()));
            meta.put(PREFIX + "model.capacity_factor", Double.toString(m.capacityFactor()));
            meta.put(PREFIX + "model.shared_expert", Boolean.toString(m.sharedExpert()));
            meta.put(PREFIX + "model.aux_loss", Double.toString(m.auxLossWeight()));
        }
        if (extra != null) meta.putAll(extra);
        try (TensorWriter w = Safetensors.writer(path, meta, specs)) {
            for (TensorSpec s : specs) {
                w.beginTensor();
                float[] v = parameters.get(s.name());
                ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(v);
                w.write(b);
            }
            w.commit();
        }
    }

    /** Full shapes of every parameter of {@code cfg}, in unit order. */
    public static Map<String, long[]> shapes(GptConfig cfg) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (Gpt.ParamSpec p : Gpt.allParams(cfg)) out.put(p.name(), p.fullShape());
        return out;
    }

    /** True when {@code file}'s metadata says it is an engine checkpoint. */
    public static boolean isCheckpoint(ModelFile file) {
        return FORMAT.equals(meta(file.metadata()).get(PREFIX + "format"));
    }

    /** The parallax.* metadata of a file (also when a GGUF carries it as safetensors.metadata.parallax.*). */
    static Map<String, String> meta(Map<String, Object> raw) {
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : raw.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(GGUF_PREFIX)) k = k.substring(GGUF_PREFIX.length());
            if (k.startsWith(PREFIX) && e.getValue() instanceof String s) m.put(k, s);
        }
        return m;
    }

    /** Reads a checkpoint (safetensors, or GGUF written from one); any float dtype is decoded to float32. */
    public static Loaded load(Path path) {
        try (ModelFile f = ModelFiles.open(path)) {
            Map<String, String> meta = meta(f.metadata());
            if (!FORMAT.equals(meta.get(PREFIX + "format")))
                throw new UserError(path + " is not an engine checkpoint (no parallax.format=" + FORMAT
                        + " metadata); save one with %parallel ... --save FILE.safetensors");
            GptConfig cfg;
            try {
                cfg = new GptConfig(meta.getOrDefault(PREFIX + "model.name", "checkpoint"), num(meta, path, "layers"),
                        num(meta, path, "hidden"), num(meta, path, "heads"), num(meta, path, "vocab"),
                        num(meta, path, "sequence"), 0);
                if (meta.containsKey(PREFIX + "model.experts"))
                    cfg = cfg.withMoe(new GptConfig.Moe(num(meta, path, "experts"), num(meta, path, "top_k"),
                            Double.parseDouble(meta.get(PREFIX + "model.capacity_factor")),
                            Boolean.parseBoolean(meta.get(PREFIX + "model.shared_expert")),
                            Double.parseDouble(meta.get(PREFIX + "model.aux_loss"))));
            } catch (NumberFormatException | NullPointerException e) {
                throw new UserError(path + ": bad mixture-of-experts metadata (" + PREFIX + "model.capacity_factor, aux_loss)");
            } catch (UserError e) {
                throw new UserError(path + ": " + e.getMessage());
            }
            Map<String, long[]> shapes = shapes(cfg);
            Map<String, TensorEntry> byName = new LinkedHashMap<>();
            for (TensorEntry t : f.tensors()) byName.put(t.name(), t);
            Map<String, float[]> tensors = new LinkedHashMap<>();
            FloatCodec codec = new FloatCodec();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                TensorEntry t = byName.get(e.getKey());
                if (t == null) throw new UserError(path + ": checkpoint tensor " + e.getKey() + " is missing");
                if (t.elements() != DType.elements(e.getValue()))
                    throw new UserError(path + ": " + e.getKey() + " has " + t.elements() + " values, the model needs "
                            + DType.elements(e.getValue()));
                int n = (int) t.elements();
                float[] v = new float[n];
                ByteBuffer b = f.bytes(t, 0, (int) t.length()).order(ByteOrder.LITTLE_ENDIAN);
                codec.decode(t.dtype(), b, v, n);
                tensors.put(e.getKey(), v);
            }
            return new Loaded(cfg, tensors, shapes, meta);
        }
    }

    private static int num(Map<String, String> meta, Path path, String field) {
        String v = meta.get(PREFIX + "model." + field);
        if (v == null) throw new UserError(path + ": checkpoint metadata lacks " + PREFIX + "model." + field);
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UserError(path + ": " + PREFIX + "model." + field + " is not an integer: " + v);
        }
    }

    /**
     * The engine's libtorch forward ({@link Gpt#logits}) of the checkpoint's weights on
     * {@code ids} [B][T]: logits flattened in [B, T, vocab] order.
     */
    public static float[] logits(Loaded c, long[][] ids) {
        Torch.init();
        try (PointerScope scope = new PointerScope()) {
            int b = ids.length, t = ids[0].length;
            long[] flat = new long[b * t];
            for (int i = 0; i < b; i++) System.arraycopy(ids[i], 0, flat, i * t, t);
            Tensor tokens = Device.cpu().fromLongs(flat, b, t);
            Map<String, Tensor> w = new LinkedHashMap<>();
            for (Map.Entry<String, float[]> e : c.tensors().entrySet())
                w.put(e.getKey(), Device.cpu().fromFloats(e.getValue(), c.shapes().get(e.getKey())));
            Function<String, Tensor> get = w::get;
            try (org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                return Device.hostFloats(new Gpt(c.config()).logits(tokens, get));
            }
        }
    }
}
