package parallax.engine.formats;

import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import parallax.engine.UserError;
import parallax.engine.formats.Converter.Names;
import parallax.engine.formats.Converter.Options;
import parallax.engine.numerics.DType;

/**
 * What a conversion will do before a byte is written: for every source tensor, its name
 * in the destination, the element type and shape it is read as and written as, whether
 * its Q/K rows are permuted, and a note saying why when the type is not the one asked for.
 * Tensors the destination does not keep are left out with a note in {@link #notes}.
 * Everything a conversion cannot do is refused here, before the destination is opened.
 */
record ConversionPlan(List<TensorPlan> tensors, List<String> notes) {

    /**
     * One tensor: read {@code srcShape} of {@code srcType} from {@code src}, write
     * {@code dstShape} of {@code dstType} as {@code name}.
     *
     * @param permuteHeads    heads whose Q/K rows are permuted (0: none)
     * @param ggufToHfPermute whether the permutation is undone (GGUF to Hugging Face) rather than applied
     */
    record TensorPlan(TensorEntry src, DType srcType, long[] srcShape, String name, DType dstType, long[] dstShape,
                      int permuteHeads, boolean ggufToHfPermute, String note) {}

    /** The type and shape a source tensor holds (GGUF keeps some under another type, see {@link #stored}). */
    private record Stored(DType type, long[] shape, DType restore) {}

    /** The type and shape a tensor is written as, and why when it differs from what was asked. */
    private record Target(DType type, long[] shape, String note) {}

    static ConversionPlan of(ModelFile in, Path src, Format dstFormat, Options o) {
        int[] heads = llamaHeads(in, src, o);
        List<String> notes = new ArrayList<>();
        List<TensorPlan> out = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (TensorEntry t : in.tensors()) destinationName(t.name(), o.names()).ifPresent(names::add);
        QuantMix.Census census = QuantMix.Census.of(names);
        int[] seen = new int[2]; // attn_v-like and ffn_down tensors so far, for the mix's layer rules
        for (TensorEntry t : in.tensors()) {
            Stored s = stored(in, t);
            Optional<String> name = destinationName(t.name(), o.names());
            if (name.isEmpty()) {
                notes.add("dropped " + t.name() + " (llama.cpp recomputes it)");
                continue;
            }
            Target want = requested(s, o, dstFormat);
            if (dstFormat == Format.GGUF && (o.mix() != null || isKQuant(o.to())) && s.type().isFloatConvertible() && s.shape().length >= 2) {
                want = llamaCppType(name.get(), s, o, census, seen);
            }
            Target target = storable(want, s, name.get(), dstFormat, t.name());
            out.add(permuted(t, s, name.get(), target, heads, o.names()));
        }
        if (out.isEmpty()) throw new UserError(in.path() + ": no tensors to convert");
        if (dstFormat == Format.GGUF && "llama".equals(o.arch()) && o.names() == Names.HF_TO_GGUF) notes.add(tokenizerNote(src));
        return new ConversionPlan(out, notes);
    }

    /** (heads, kvHeads) when Q/K rows must be permuted, else null. */
    private static int[] llamaHeads(ModelFile in, Path src, Options o) {
        if (o.names() == Names.KEEP) return null;
        if (!"llama".equals(o.arch())) return null;
        if (o.names() == Names.HF_TO_GGUF) {
            JsonObject cfg = Converter.hfConfig(src);
            if (cfg == null || !cfg.has("num_attention_heads")) {
                throw new UserError("--arch llama needs config.json (with num_attention_heads) beside " + src);
            }
            int h = cfg.get("num_attention_heads").getAsInt();
            int kv = cfg.has("num_key_value_heads") ? cfg.get("num_key_value_heads").getAsInt() : h;
            return new int[] {h, kv};
        }
        Object h = in.metadata().get("llama.attention.head_count");
        Object kv = in.metadata().get("llama.attention.head_count_kv");
        if (!(h instanceof Number)) throw new UserError(src + ": no llama.attention.head_count to undo the Q/K permutation");
        return new int[] {((Number) h).intValue(), kv instanceof Number ? ((Number) kv).intValue() : ((Number) h).intValue()};
    }

    /** What the destination's tokenizer.* keys come from (read, and so checked, here: before anything is written). */
    private static String tokenizerNote(Path src) {
        Tokenizer t = Tokenizer.beside(src);
        if (t == null) return "no tokenizer.json or tokenizer.model beside the source: no tokenizer.ggml.* keys, so llama.cpp will not load the file";
        return "tokenizer from " + t.source() + ": " + t.size() + " tokens, GGUF model \"" + t.kind().ggml() + "\""
                + (t.kind() == Tokenizer.Kind.BYTE_LEVEL ? ", pre-tokenizer \"" + t.pre + "\"" : "")
                + (t.specials().chatTemplate() != null ? ", chat template" : "");
    }

    /** The tensor's name in the destination, or empty when llama.cpp drops it. */
    private static Optional<String> destinationName(String name, Names names) {
        if (names == Names.HF_TO_GGUF) return LlamaNames.hfToGguf(name);
        if (names == Names.GGUF_TO_HF) return Optional.of(LlamaNames.ggufToHf(name));
        return Optional.of(name);
    }

    /**
     * A tensor GGUF could not hold natively was stored as bytes (I8) or, for FP8, exactly
     * as F16, with its type and shape in a {@code parallax.dtype.<name>} entry: read it as
     * what it was.
     */
    private static Stored stored(ModelFile in, TensorEntry t) {
        DType st = t.dtype();
        long[] shape = t.shape();
        Object orig = in.metadata().get("parallax.dtype." + t.name());
        if (in.format() != Format.GGUF || !(orig instanceof String s)) return new Stored(st, shape, null);
        DType restore = null;
        int sp = s.indexOf(' ');
        DType od = DType.parse(sp < 0 ? s : s.substring(0, sp)).orElseThrow(() -> new FormatError(in.path(), "bad parallax.dtype entry " + s));
        long[] oshape = parseShape(s.substring(sp + 1));
        if (st == DType.I8 && od != DType.I8) {
            st = od; // bytes of a type GGUF lacks
            if (st.bytesFor(DType.elements(oshape)) != t.length()) throw new FormatError(in.path(), "parallax.dtype entry " + s + " does not match the stored bytes");
        } else if (od != st) {
            restore = od; // an FP8 tensor GGUF held exactly as F16
        }
        if (DType.elements(oshape) != DType.elements(shape) && st == t.dtype()) {
            throw new FormatError(in.path(), "parallax.dtype entry " + s + " does not match the tensor's shape");
        }
        return new Stored(st, oshape, restore);
    }

    /** The type the options ask for: --to for float tensors (block types only for whole rows of blocks), or the restored type. */
    private static Target requested(Stored s, Options o, Format dstFormat) {
        String note = "";
        DType dt = s.type();
        if (s.restore() != null && o.to() == null && dstFormat != Format.GGUF) {
            dt = s.restore();
            note = "restored " + s.restore() + " (GGUF held it exactly as F16)";
        }
        if (o.to() != null && s.type().isFloatConvertible()) {
            dt = o.to();
            long[] shape = s.shape();
            long last = shape.length == 0 ? 1 : shape[shape.length - 1];
            if ((dt.isBlock() || dstFormat == Format.GGUF && (dt == DType.F16 || dt == DType.BF16)) && shape.length < 2) {
                dt = DType.F32;
                note = "1-D: kept F32 (as llama.cpp does for norms and biases; its CPU adds them only in F32)";
            } else if (dt.isBlock() && last % dt.blockElements() != 0) {
                dt = DType.F16;
                note = "rows of " + last + " are not whole blocks of 32: F16";
            }
        }
        return new Target(dt, s.shape(), note);
    }

    /**
     * What the destination format can hold: GGUF has no FP8 (F16 holds it exactly) and no
     * unsigned, boolean or other mini-float types (kept as bytes); only GGUF has blocks;
     * ONNX has no FP4, FP6 or E8M0.
     */
    private static Target storable(Target want, Stored s, String name, Format dstFormat, String srcName) {
        DType dt = want.type();
        long[] dshape = want.shape();
        String note = want.note();
        DType st = s.type();
        if (dstFormat == Format.GGUF && !ggufStores(dt)) {
            if (dt == DType.F8_E4M3 || dt == DType.F8_E5M2) {
                dt = DType.F16; // every E4M3FN and E5M2 value is exact in FP16
                note = "GGUF has no " + st + ": F16 (exact)";
            } else {
                note = "GGUF has no " + st + ": stored as bytes, type kept in parallax.dtype." + name;
                dshape = new long[] {st.bytesFor(DType.elements(s.shape()))};
                dt = DType.I8;
            }
        } else if (dstFormat != Format.GGUF && dt.isBlock()) {
            dt = DType.F32;
            note = "dequantized from " + st;
        }
        if (dstFormat == Format.ONNX && (dt == DType.F4 || dt == DType.F6_E2M3 || dt == DType.F6_E3M2 || dt == DType.F8_E8M0)) {
            throw new UserError("ONNX has no element type for " + dt + " (tensor " + srcName + ")");
        }
        if (dshape.length == 0 && dstFormat == Format.GGUF) dshape = new long[] {1};
        return new Target(dt, dshape, note);
    }

    /** The Q/K row permutation llama.cpp's RoPE layout needs (see {@link LlamaNames}), when converting Llama names. */
    private static TensorPlan permuted(TensorEntry t, Stored s, String name, Target target, int[] heads, Names names) {
        int ph = 0;
        boolean inverse = false;
        String note = target.note();
        long[] shape = s.shape();
        if (heads != null) {
            ph = LlamaNames.permutedHeads(t.name(), heads[0], heads[1]);
            inverse = names == Names.GGUF_TO_HF;
            if (ph > 0 && (shape.length != 2 || shape[0] % (2L * ph) != 0)) {
                throw new UserError(t.name() + " " + t.shapeText() + " cannot be split into " + ph + " heads of row pairs");
            }
            if (ph > 0) note = (note.isEmpty() ? "" : note + "; ") + "Q/K rows permuted for RoPE (" + ph + " heads)";
        }
        return new TensorPlan(t, s.type(), shape, name, target.type(), target.shape(), ph, inverse, note);
    }

    private static boolean isKQuant(DType d) {
        return d == DType.Q4_K || d == DType.Q5_K || d == DType.Q6_K;
    }

    /** The type llama.cpp's quantize tool gives this tensor (see {@link QuantMix}), with a note when it is not the one asked for. */
    private static Target llamaCppType(String name, Stored s, Options o, QuantMix.Census census, int[] seen) {
        int index = QuantMix.isAttnV(name) ? seen[0]++ : name.contains("ffn_down") ? seen[1]++ : 0;
        long cols = s.shape()[s.shape().length - 1];
        if (!QuantMix.quantizable(name, s.shape())) {
            DType keep = s.type() == DType.F16 || s.type() == DType.BF16 ? s.type() : DType.F32;
            return new Target(keep, s.shape(), "not quantized by llama.cpp (" + (s.shape().length < 2 ? "1-D" : "norm or position table") + "): " + keep);
        }
        DType chosen = o.mix() != null ? o.mix().typeFor(name, census, index) : o.to();
        DType t = QuantMix.fallback(chosen, cols);
        String note = "";
        if (chosen != o.to()) note = o.mix() + " gives " + name + " " + chosen;
        if (t != chosen) note = (note.isEmpty() ? "" : note + "; ") + "rows of " + cols + " are not whole " + chosen + " blocks of "
                + chosen.blockElements() + ": " + t + " (llama.cpp's fallback)";
        return new Target(t, s.shape(), note);
    }

    /** "[2, 3]" (as {@link java.util.Arrays#toString(long[])} writes it) to a shape. */
    private static long[] parseShape(String s) {
        String body = s.trim().replace("[", "").replace("]", "").trim();
        if (body.isEmpty()) return new long[0];
        String[] parts = body.split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = Long.parseLong(parts[i].trim());
        return out;
    }

    private static boolean ggufStores(DType d) {
        return Gguf.stores(d);
    }
}
