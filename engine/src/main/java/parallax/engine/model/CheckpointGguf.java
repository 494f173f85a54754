package parallax.engine.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.formats.Converter;
import parallax.engine.formats.Format;
import parallax.engine.formats.Gguf;
import parallax.engine.formats.GgufValue;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.TensorEntry;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.report.Progress;

/**
 * The engine's GPT as a GGUF file llama.cpp runs: architecture {@code gpt2}, whose graph
 * (llama.cpp's llm_build_gpt2) is the engine's: learned token and position embeddings,
 * pre-LayerNorm blocks with a fused Q/K/V projection with bias, GELU MLP, a final
 * LayerNorm and an untied output layer. The tensor names are llama.cpp's for gpt2
 * (docs/reference.md#gpt2-in-gguf), Q, K and V are stacked by rows into {@code attn_qkv},
 * and the vocabulary is the byte-level one the engine trains on: token i is byte i, written
 * as GPT-2's printable stand-in for that byte (bytes_to_unicode), with no merges, so
 * llama.cpp's byte-level BPE tokenizer maps text to exactly the engine's byte ids.
 *
 * <p>{@link #convert} writes an F32 file first and then quantizes it through the
 * converter, so every --to type and llama.cpp mix applies; {@link #load} reads such a file
 * (any type) back into the engine's names, which is how {@code --check} runs a quantized file.
 */
public final class CheckpointGguf {

    public static final String ARCH = "gpt2";
    static final float LAYER_NORM_EPS = 1e-5f;

    private CheckpointGguf() {}

    /** GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others for U+0100 onwards in order. */
    public static List<String> byteTokens() {
        List<String> out = new ArrayList<>(256);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
            out.add(new String(Character.toChars(printable ? b : next++)));
        }
        return out;
    }

    /** The gpt2.* and tokenizer.ggml.* keys of a model of shape {@code c}, and the checkpoint's parallax.* metadata. */
    static Map<String, GgufValue> kv(GptConfig c, Map<String, String> meta, String name) {
        if (c.vocab() > 256) throw new UserError("the gpt2 export writes the engine's byte-level vocabulary (at most 256 tokens); this model has " + c.vocab());
        Map<String, GgufValue> kv = new LinkedHashMap<>();
        kv.put("general.architecture", GgufValue.string(ARCH));
        kv.put("general.name", GgufValue.string(name));
        kv.put("gpt2.context_length", GgufValue.u32(c.sequence()));
        kv.put("gpt2.embedding_length", GgufValue.u32(c.hidden()));
        kv.put("gpt2.feed_forward_length", GgufValue.u32(c.ffn()));
        kv.put("gpt2.block_count", GgufValue.u32(c.layers()));
        kv.put("gpt2.attention.head_count", GgufValue.u32(c.heads()));
        kv.put("gpt2.attention.layer_norm_epsilon", GgufValue.f32(LAYER_NORM_EPS));
        kv.put("tokenizer.ggml.model", GgufValue.string("gpt2"));
        kv.put("tokenizer.ggml.pre", GgufValue.string("gpt-2"));
        // A model trained on fewer ids (synthetic data) keeps the first vocab byte tokens.
        kv.put("tokenizer.ggml.tokens", GgufValue.arrayOf(GgufValue.Type.STRING, byteTokens().subList(0, c.vocab())));
        List<Integer> types = new ArrayList<>();
        for (int i = 0; i < c.vocab(); i++) types.add(1); // NORMAL
        kv.put("tokenizer.ggml.token_type", GgufValue.arrayOf(GgufValue.Type.INT32, types));
        kv.put("tokenizer.ggml.merges", GgufValue.arrayOf(GgufValue.Type.STRING, List.of()));
        // The byte vocabulary has no special tokens: the NUL byte, absent from text, stands for BOS and EOS.
        kv.put("tokenizer.ggml.bos_token_id", GgufValue.u32(0));
        kv.put("tokenizer.ggml.eos_token_id", GgufValue.u32(0));
        kv.put("tokenizer.ggml.add_bos_token", GgufValue.of(GgufValue.Type.BOOL, false));
        meta.forEach((k, v) -> kv.put("safetensors.metadata." + k, GgufValue.string(v)));
        return kv;
    }

    /** gguf name -> the engine names whose rows it stacks (one name, or Q, K, V). */
    static Map<String, List<String>> names(GptConfig c) {
        Map<String, List<String>> m = new LinkedHashMap<>();
        m.put("token_embd.weight", List.of("wte"));
        m.put("position_embd.weight", List.of("wpe"));
        for (int l = 0; l < c.layers(); l++) {
            String b = "blk." + l + ".", h = "h" + l + ".";
            m.put(b + "attn_norm.weight", List.of(h + "ln1.w"));
            m.put(b + "attn_norm.bias", List.of(h + "ln1.b"));
            m.put(b + "attn_qkv.weight", List.of(h + "attn.wq", h + "attn.wk", h + "attn.wv"));
            m.put(b + "attn_qkv.bias", List.of(h + "attn.bq", h + "attn.bk", h + "attn.bv"));
            m.put(b + "attn_output.weight", List.of(h + "attn.wo"));
            m.put(b + "attn_output.bias", List.of(h + "attn.bo"));
            m.put(b + "ffn_norm.weight", List.of(h + "ln2.w"));
            m.put(b + "ffn_norm.bias", List.of(h + "ln2.b"));
            m.put(b + "ffn_up.weight", List.of(h + "mlp.w1"));
            m.put(b + "ffn_up.bias", List.of(h + "mlp.b1"));
            m.put(b + "ffn_down.weight", List.of(h + "mlp.w2"));
            m.put(b + "ffn_down.bias", List.of(h + "mlp.b2"));
        }
        m.put("output_norm.weight", List.of("lnf.w"));
        m.put("output_norm.bias", List.of("lnf.b"));
        m.put("output.weight", List.of("head.w"));
        return m;
    }

    /** Writes the checkpoint as an F32 gpt2 GGUF at {@code dst}. */
    public static void writeF32(Checkpoint.Loaded c, Path dst) {
        if (c.config().isMoe())
            throw new UserError("a mixture-of-experts checkpoint cannot be written as llama.cpp's gpt2 GGUF (that architecture has no experts)");
        Map<String, List<String>> names = names(c.config());
        List<TensorSpec> specs = new ArrayList<>();
        for (var e : names.entrySet()) {
            long[] first = c.shapes().get(e.getValue().get(0));
            long[] shape = first.clone();
            shape[0] = first[0] * e.getValue().size();
            specs.add(new TensorSpec(e.getKey(), DType.F32, shape));
        }
        String name = c.metadata().getOrDefault(Checkpoint.PREFIX + "model.name", "parallax-gpt");
        try (TensorWriter w = Gguf.writer(dst, kv(c.config(), c.metadata(), name), specs)) {
            for (var e : names.entrySet()) {
                w.beginTensor();
                for (String part : e.getValue()) {
                    float[] v = c.tensors().get(part);
                    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                    b.asFloatBuffer().put(v);
                    w.write(b);
                }
            }
            w.commit();
        }
    }

    /**
     * Converts an engine checkpoint to a gpt2 GGUF of the options' type (F32 when none):
     * the F32 file is written beside {@code dst} under a hidden temporary name, converted,
     * and deleted; the result names the checkpoint as its source.
     */
    public static Converter.Result convert(Path checkpoint, Path dst, Converter.Options o, Progress progress) {
        Checkpoint.Loaded c = Checkpoint.load(checkpoint);
        Path tmp = dst.toAbsolutePath().resolveSibling("." + dst.getFileName() + "." + Long.toHexString(System.nanoTime()) + ".f32.gguf");
        try {
            writeF32(c, tmp);
            Converter.Options gguf = new Converter.Options(o.to() == null ? DType.F32 : o.to(), null, Converter.Names.KEEP,
                    o.onnxExternalThreshold(), o.mix());
            Converter.Result r = Converter.convert(tmp, dst, gguf, progress);
            long bytesIn = c.tensors().values().stream().mapToLong(v -> 4L * v.length).sum();
            List<String> notes = new ArrayList<>(r.notes());
            notes.add(0, "engine checkpoint exported as GGUF architecture gpt2 (Q, K, V stacked into attn_qkv; byte-level vocabulary of 256 tokens)");
            return new Converter.Result(checkpoint.toString(), "engine checkpoint", r.destination(), r.destinationFormat(), r.tensors(),
                    bytesIn, r.bytesOut(), (double) r.bytesOut() / bytesIn, r.seconds(), r.mbPerSecond(), r.perTensor(), notes);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // a leftover hidden temp file is harmless; the destination is complete or absent
            }
        }
    }

    /** True when {@code path} is a GGUF of architecture gpt2. */
    public static boolean isGpt2(ModelFile f) {
        return f.format() == Format.GGUF && ARCH.equals(f.metadata().get("general.architecture"));
    }

    /**
     * Reads a gpt2 GGUF (any tensor types, dequantized) into the engine's names and shape,
     * splitting attn_qkv back into Q, K and V. A file without output.weight (a tied head)
     * uses the token embedding as the head.
     */
    public static Checkpoint.Loaded load(Path path) {
        try (ModelFile f = ModelFiles.open(path)) {
            if (!isGpt2(f)) throw new UserError(path + " is not a GGUF of architecture gpt2");
            Map<String, Object> m = f.metadata();
            Map<String, TensorEntry> byName = new LinkedHashMap<>();
            for (TensorEntry t : f.tensors()) byName.put(t.name(), t);
            TensorEntry wte = byName.get("token_embd.weight");
            if (wte == null) throw new UserError(path + ": no token_embd.weight");
            GptConfig cfg = new GptConfig(String.valueOf(m.getOrDefault("general.name", "gguf")), num(m, path, "gpt2.block_count"),
                    num(m, path, "gpt2.embedding_length"), num(m, path, "gpt2.attention.head_count"), (int) wte.shape()[0],
                    num(m, path, "gpt2.context_length"), 0);
            if (m.get("gpt2.feed_forward_length") instanceof Number ff && ff.intValue() != cfg.ffn())
                throw new UserError(path + ": feed_forward_length " + ff + " is not 4 x embedding_length, the engine GPT's MLP width");
            Map<String, long[]> shapes = Checkpoint.shapes(cfg);
            Map<String, float[]> tensors = new LinkedHashMap<>();
            FloatCodec codec = new FloatCodec();
            for (var e : names(cfg).entrySet()) {
                TensorEntry t = byName.get(e.getKey());
                if (t == null && e.getKey().equals("output.weight")) t = wte;
                if (t == null) throw new UserError(path + ": tensor " + e.getKey() + " is missing");
                float[] all = new float[(int) t.elements()];
                codec.decode(t.dtype(), f.bytes(t, 0, (int) t.length()).order(ByteOrder.LITTLE_ENDIAN), all, all.length);
                int at = 0;
                for (String part : e.getValue()) {
                    int n = (int) DType.elements(shapes.get(part));
                    if (at + n > all.length) throw new UserError(path + ": " + e.getKey() + " is smaller than the model needs");
                    float[] v = new float[n];
                    System.arraycopy(all, at, v, 0, n);
                    at += n;
                    tensors.put(part, v);
                }
            }
            Map<String, String> meta = new LinkedHashMap<>();
            m.forEach((k, v) -> {
                if (k.startsWith("safetensors.metadata.") && v instanceof String s) meta.put(k.substring("safetensors.metadata.".length()), s);
            });
            return new Checkpoint.Loaded(cfg, tensors, shapes, meta);
        }
    }

    private static int num(Map<String, Object> m, Path path, String key) {
        if (m.get(key) instanceof Number n) return n.intValue();
        throw new UserError(path + ": no " + key);
    }

    /** The bytes of {@code text} as the engine's token ids (its vocabulary is the 256 byte values). */
    public static long[] byteIds(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        long[] ids = new long[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xff;
        return ids;
    }

    /** Byte ids back to text (bytes that are not UTF-8 shown as U+FFFD). */
    public static String text(long[] ids) {
        byte[] b = new byte[ids.length];
        for (int i = 0; i < ids.length; i++) b[i] = (byte) ids[i];
        return new String(b, StandardCharsets.UTF_8);
    }

    /** {@code n} tokens chosen by argmax after {@code prompt}, by the engine's libtorch forward (the context slides past the model's). */
    static long[] greedy(Checkpoint.Loaded m, long[] prompt, int n) {
        long[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        int v = m.config().vocab();
        for (int i = prompt.length; i < seq.length; i++) {
            long[] ctx = java.util.Arrays.copyOfRange(seq, Math.max(0, i - m.config().sequence()), i);
            float[] logits = Checkpoint.logits(m, new long[][] {ctx});
            int off = (ctx.length - 1) * v, best = 0;
            for (int k = 1; k < v; k++) if (logits[off + k] > logits[off + best]) best = k;
            seq[i] = best;
        }
        return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
    }
}
