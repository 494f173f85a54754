package parallax.engine.formats;

import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.formats.ConversionPlan.TensorPlan;
import parallax.engine.formats.Converter.Names;
import parallax.engine.formats.Converter.Options;
import parallax.engine.formats.onnx.OnnxProto;
import parallax.engine.numerics.DType;

/**
 * Opens the destination's writer with the metadata its format keeps: a safetensors
 * {@code __metadata__} (and a Hugging Face config.json for Llama from GGUF), GGUF
 * key-values (general.*, llama.* from config.json, parallax.dtype.* for tensors GGUF holds
 * under another type), or ONNX metadata_props on a graph with initializers only.
 */
final class DestinationMetadata {

    private DestinationMetadata() {}

    static TensorWriter writer(ModelFile in, Path dst, Format f, ConversionPlan plan, Options o) {
        List<TensorSpec> specs = new ArrayList<>();
        for (TensorPlan p : plan.tensors()) specs.add(new TensorSpec(p.name(), p.dstType(), p.dstShape()));
        switch (f) {
            case SAFETENSORS:
                Map<String, String> m = safetensorsMetadata(in);
                if (o.names() == Names.GGUF_TO_HF && "llama".equals(o.arch())) writeHfConfig(in.metadata(), dst);
                return Safetensors.writer(dst, m, specs);
            case GGUF:
                return Gguf.writer(dst, ggufKv(in, plan, o), specs);
            case ONNX:
                return Onnx.writer(dst, onnxModel(in.metadata()), initializersOnly(), specs, false, o.onnxExternalThreshold());
            default:
                throw new UserError("cannot write " + f.label());
        }
    }

    /**
     * What a safetensors {@code __metadata__} held before (read back from safetensors, GGUF
     * or ONNX), "format: pt" for a PyTorch checkpoint, else the source's scalar metadata.
     */
    private static Map<String, String> safetensorsMetadata(ModelFile in) {
        Map<String, Object> meta = in.metadata();
        Map<String, String> m = new LinkedHashMap<>();
        boolean restored = in.format() == Format.PYTORCH;
        if (restored) m.put("format", "pt");
        for (var e : meta.entrySet()) {
            if (e.getKey().startsWith("safetensors.metadata.")) {
                m.put(e.getKey().substring("safetensors.metadata.".length()), String.valueOf(e.getValue()));
                restored = true;
            }
        }
        if (in.format() == Format.ONNX) {
            // ONNX metadata_props carry what a safetensors __metadata__ held; graph facts stay behind
            for (var e : meta.entrySet()) {
                if (e.getKey().startsWith("metadata.")) m.put(e.getKey().substring("metadata.".length()), String.valueOf(e.getValue()));
            }
            restored = true;
        }
        if (!restored) {
            for (var e : meta.entrySet()) {
                Object v = e.getValue();
                if (v instanceof String || v instanceof Number || v instanceof Boolean) {
                    if (!e.getKey().startsWith("parallax.dtype.")) m.put(e.getKey(), String.valueOf(v));
                }
            }
        }
        return m;
    }

    private static Map<String, GgufValue> ggufKv(ModelFile in, ConversionPlan plan, Options o) {
        Map<String, GgufValue> kv = new LinkedHashMap<>();
        Map<String, GgufValue> carried = in instanceof Gguf g ? g.kv() : Map.of();
        GgufValue srcArch = carried.get("general.architecture");
        String arch = o.arch() != null ? o.arch() : srcArch != null && srcArch.value() instanceof String s ? s : "parallax";
        kv.put("general.architecture", GgufValue.string(arch));
        // GGUF to GGUF (re-quantizing): the source's keys travel (hyper-parameters, tokenizer), except those this file restates.
        carried.forEach((k, v) -> {
            if (k.equals("general.architecture") || k.equals("general.file_type") || k.equals("general.quantization_version")
                    || k.equals("general.alignment") || k.startsWith("parallax.dtype.") || v.type() == GgufValue.Type.ARRAY && v.value() == null) return;
            kv.put(k, v);
        });
        String stem = in.path().getFileName().toString().replaceFirst("\\.[^.]*$", "");
        if (!kv.containsKey("general.name")) kv.put("general.name", GgufValue.string(stem));
        if (o.to() != null) {
            int ft = o.mix() != null ? o.mix().fileType() : fileType(o.to());
            if (ft >= 0) kv.put("general.file_type", GgufValue.u32(ft));
            if (o.to().isBlock()) kv.put("general.quantization_version", GgufValue.u32(2));
        }
        if ("llama".equals(o.arch())) llamaKv(in.path(), kv);
        if ("llama".equals(o.arch()) && o.names() == Names.HF_TO_GGUF) tokenizerKv(in.path(), plan, kv);
        if (in.format() == Format.SAFETENSORS || in.format() == Format.SAFETENSORS_INDEX) {
            in.metadata().forEach((k, v) -> {
                if (v instanceof String s && in.format() == Format.SAFETENSORS) kv.put("safetensors.metadata." + k, GgufValue.string(s));
            });
        }
        for (TensorPlan p : plan.tensors()) {
            if (p.dstType() == DType.I8 && p.srcType() != DType.I8 || p.srcShape().length == 0
                    || p.dstType() == DType.F16 && (p.srcType() == DType.F8_E4M3 || p.srcType() == DType.F8_E5M2)) {
                kv.put("parallax.dtype." + p.name(), GgufValue.string(p.srcType() + " " + Arrays.toString(p.srcShape())));
            }
        }
        return kv;
    }

    /** general.file_type as llama.cpp numbers it (llama_ftype), or -1 where it has none. */
    private static int fileType(DType d) {
        switch (d) {
            case F32: return 0;
            case F16: return 1;
            case Q4_0: return 2;
            case Q8_0: return 7;
            case Q5_0: return 8;
            case Q5_1: return 9;
            case Q4_K: return 14; // llama.cpp names the nearest preset, Q4_K_S
            case Q5_K: return 16; // Q5_K_S
            case Q6_K: return 18;
            case BF16: return 32;
            default: return -1;
        }
    }

    /** llama.* keys from the Hugging Face config.json beside the source (names as llama.cpp's converter writes them). */
    private static void llamaKv(Path src, Map<String, GgufValue> kv) {
        JsonObject c = Converter.hfConfig(src);
        if (c == null) throw new UserError("--arch llama needs config.json beside " + src);
        int hidden = c.get("hidden_size").getAsInt();
        int heads = c.get("num_attention_heads").getAsInt();
        if (c.has("max_position_embeddings")) kv.put("llama.context_length", GgufValue.u32(c.get("max_position_embeddings").getAsLong()));
        kv.put("llama.embedding_length", GgufValue.u32(hidden));
        kv.put("llama.block_count", GgufValue.u32(c.get("num_hidden_layers").getAsLong()));
        if (c.has("intermediate_size")) kv.put("llama.feed_forward_length", GgufValue.u32(c.get("intermediate_size").getAsLong()));
        kv.put("llama.rope.dimension_count", GgufValue.u32(hidden / heads));
        kv.put("llama.attention.head_count", GgufValue.u32(heads));
        kv.put("llama.attention.head_count_kv", GgufValue.u32(c.has("num_key_value_heads") ? c.get("num_key_value_heads").getAsLong() : heads));
        if (c.has("rms_norm_eps")) kv.put("llama.attention.layer_norm_rms_epsilon", GgufValue.f32(c.get("rms_norm_eps").getAsFloat()));
        if (c.has("rope_theta")) kv.put("llama.rope.freq_base", GgufValue.f32(c.get("rope_theta").getAsFloat()));
        if (c.has("vocab_size")) kv.put("llama.vocab_size", GgufValue.u32(c.get("vocab_size").getAsLong()));
    }

    /**
     * tokenizer.* keys from the tokenizer.json or tokenizer.model beside a Hugging Face
     * checkpoint, the vocabulary padded to the token embedding's rows as llama.cpp's converter does.
     */
    private static void tokenizerKv(Path src, ConversionPlan plan, Map<String, GgufValue> kv) {
        Tokenizer t = Tokenizer.beside(src);
        if (t == null) return;
        long rows = plan.tensors().stream().filter(p -> p.name().equals("token_embd.weight")).mapToLong(p -> p.dstShape()[0]).findFirst()
                .orElse(kv.get("llama.vocab_size") != null ? kv.get("llama.vocab_size").asLong() : t.size());
        kv.putAll(t.ggufKv(rows));
    }

    /** The config.json a Hugging Face loader needs beside the weights, from the GGUF llama.* keys; a user's own is kept. */
    private static void writeHfConfig(Map<String, Object> meta, Path dst) {
        JsonObject c = new JsonObject();
        c.addProperty("model_type", "llama");
        putIf(c, "hidden_size", meta.get("llama.embedding_length"));
        putIf(c, "num_hidden_layers", meta.get("llama.block_count"));
        putIf(c, "intermediate_size", meta.get("llama.feed_forward_length"));
        putIf(c, "num_attention_heads", meta.get("llama.attention.head_count"));
        putIf(c, "num_key_value_heads", meta.get("llama.attention.head_count_kv"));
        putIf(c, "max_position_embeddings", meta.get("llama.context_length"));
        putIf(c, "rms_norm_eps", meta.get("llama.attention.layer_norm_rms_epsilon"));
        putIf(c, "rope_theta", meta.get("llama.rope.freq_base"));
        putIf(c, "vocab_size", meta.get("llama.vocab_size"));
        Path cfg = dst.toAbsolutePath().resolveSibling("config.json");
        if (Files.exists(cfg)) return; // never overwrite a user's config
        try (AtomicFile f = new AtomicFile(cfg)) {
            f.write(c.toString().getBytes(StandardCharsets.UTF_8));
            f.commit();
        }
    }

    private static void putIf(JsonObject c, String k, Object v) {
        if (v instanceof Number n) c.addProperty(k, n);
    }

    /** The source's string metadata as ONNX metadata_props. */
    private static OnnxProto.Model.Builder onnxModel(Map<String, Object> meta) {
        OnnxProto.Model.Builder m = OnnxProto.Model.newBuilder().setIrVersion(8).setProducerName("parallax")
                .setProducerVersion("0.1").addOpsetImport(OnnxProto.OperatorSetId.newBuilder().setDomain("").setVersion(17));
        meta.forEach((k, v) -> {
            if (v instanceof String s) m.addMetadataProps(Onnx.entry(k, s));
        });
        return m;
    }

    private static OnnxProto.Graph initializersOnly() {
        return OnnxProto.Graph.newBuilder().setName("initializers").setDocString("weights converted by parallax %convert; no nodes").build();
    }
}
