package parallax.engine.plan;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import parallax.engine.JsonText;
import parallax.engine.UserError;
import parallax.engine.plan.ModelSpec.Arch;

/**
 * Reads a Hugging Face {@code config.json} into a {@link ModelSpec}. Field names follow
 * transformers' configuration classes (LlamaConfig, MistralConfig, MixtralConfig,
 * Qwen2Config, Qwen3MoeConfig, GptOssConfig, DeepseekV3Config, GPT2Config, BertConfig);
 * GPT-2 uses its own names (n_embd, n_layer, ...).
 */
public final class HfConfig {

    private HfConfig() {}

    public static ModelSpec read(Path path) {
        if (!Files.isRegularFile(path)) throw new UserError("no config file at " + path);
        JsonObject o;
        try {
            JsonElement e = JsonText.parse(Files.readString(path), path.toString());
            if (!e.isJsonObject()) throw new UserError(path + " is not a JSON object");
            o = e.getAsJsonObject();
        } catch (IOException ex) {
            throw new UserError("cannot read " + path + ": " + ex.getMessage());
        }
        String name = path.getParent() != null && path.getParent().getFileName() != null
                ? path.getParent().getFileName().toString() : path.getFileName().toString();
        return parse(o, name, path.toString());
    }

    /** Parses a config object; {@code where} names it in error messages. */
    public static ModelSpec parse(JsonObject o, String name, String where) {
        String type = str(o, "model_type");
        if (type == null) throw missing(where, "model_type");
        type = type.toLowerCase(Locale.ROOT);
        Arch arch;
        switch (type) {
            case "llama", "mistral", "mixtral" -> arch = Arch.LLAMA;
            case "qwen2" -> arch = Arch.QWEN2;
            case "gpt2" -> arch = Arch.GPT2;
            case "bert" -> arch = Arch.BERT;
            case "qwen3_moe" -> arch = Arch.QWEN3_MOE;
            case "gpt_oss" -> arch = Arch.GPT_OSS;
            case "deepseek_v3" -> arch = Arch.DEEPSEEK_V3;
            default -> throw new UserError(where + ": model_type '" + type
                    + "' is not one we can count (llama, mistral, mixtral, qwen2, qwen3_moe, gpt_oss, deepseek_v3, gpt2, bert)");
        }
        int hidden = req(o, where, "hidden_size", "n_embd");
        int layers = req(o, where, "num_hidden_layers", "n_layer");
        int heads = req(o, where, "num_attention_heads", "n_head");
        int kv = opt(o, heads, "num_key_value_heads");
        int vocab = req(o, where, "vocab_size");
        int seq = req(o, where, "max_position_embeddings", "n_positions");
        // Routed experts: Mixtral and gpt-oss say num_local_experts, Qwen3-MoE num_experts, DeepSeek n_routed_experts.
        int experts = opt(o, 1, "num_local_experts", "num_experts", "n_routed_experts");
        int topK = opt(o, 1, "num_experts_per_tok", "experts_per_token");
        // PretrainedConfig defaults tie_word_embeddings to true; Llama/Mistral/Qwen2 classes to false.
        boolean tiedDefault = arch == Arch.GPT2 || arch == Arch.BERT;
        boolean tied = o.has("tie_word_embeddings") && !o.get("tie_word_embeddings").isJsonNull()
                ? o.get("tie_word_embeddings").getAsBoolean() : tiedDefault;
        Integer headDim = find(o, where, "head_dim");
        switch (arch) {
            case QWEN3_MOE, GPT_OSS -> {
                // An explicit head size (Qwen3: 128 whatever hidden/heads is; gpt-oss: 64); Qwen3-MoE's experts have
                // their own width, moe_intermediate_size.
                if (arch == Arch.QWEN3_MOE) {
                    if (o.has("mlp_only_layers") && o.get("mlp_only_layers").isJsonArray() && o.getAsJsonArray("mlp_only_layers").size() > 0
                            || opt(o, 1, "decoder_sparse_step") != 1)
                        throw new UserError(where + ": dense MLP layers between the MoE layers (mlp_only_layers, decoder_sparse_step) "
                                + "are not supported; every layer must be MoE");
                }
                int ffn = arch == Arch.QWEN3_MOE ? req(o, where, "moe_intermediate_size") : req(o, where, "intermediate_size");
                ModelSpec.Detail d = headDim != null ? ModelSpec.Detail.headDim(headDim) : ModelSpec.Detail.NONE;
                return new ModelSpec(name, arch, layers, hidden, heads, kv, ffn, vocab, seq, experts, topK, tied, d);
            }
            case DEEPSEEK_V3 -> {
                // Multi-head latent attention, the first first_k_dense_replace layers dense (intermediate_size), then
                // n_shared_experts shared + the routed experts of moe_intermediate_size (DeepSeek-V3 report §2.1).
                // The multi-token-prediction module (num_nextn_predict_layers) is not counted, as the 671B figure is not.
                if (opt(o, 1, "moe_layer_freq") != 1)
                    throw new UserError(where + ": moe_layer_freq other than 1 (MoE layers with dense ones between) is not supported");
                int dense = opt(o, 0, "first_k_dense_replace");
                ModelSpec.Detail d = new ModelSpec.Detail(0, dense, dense > 0 ? req(o, where, "intermediate_size") : 0,
                        opt(o, 0, "n_shared_experts"), opt(o, 0, "q_lora_rank"), req(o, where, "kv_lora_rank"),
                        req(o, where, "qk_nope_head_dim"), req(o, where, "qk_rope_head_dim"), req(o, where, "v_head_dim"));
                return new ModelSpec(name, arch, layers, hidden, heads, kv, req(o, where, "moe_intermediate_size"), vocab, seq,
                        experts, topK, tied, d);
            }
            default -> {
                int ffn = arch == Arch.GPT2 ? opt(o, 4 * hidden, "n_inner") : req(o, where, "intermediate_size");
                if (headDim != null && heads > 0 && headDim * heads != hidden)
                    throw new UserError(where + ": head_dim " + headDim + " x " + heads + " heads differs from hidden_size " + hidden
                            + "; a separate head size is read for qwen3_moe and gpt_oss only");
                return new ModelSpec(name, arch, layers, hidden, heads, kv, ffn, vocab, seq, experts, topK, tied);
            }
        }
    }

    private static UserError missing(String where, String... keys) {
        return new UserError(where + " lacks " + String.join(" (or ", keys) + (keys.length > 1 ? ")" : "")
                + ", which the planner needs");
    }

    private static String str(JsonObject o, String key) {
        return o.has(key) && o.get(key).isJsonPrimitive() ? o.get(key).getAsString() : null;
    }

    private static int req(JsonObject o, String where, String... keys) {
        Integer v = find(o, where, keys);
        if (v == null) throw missing(where, keys);
        return v;
    }

    private static int opt(JsonObject o, int dflt, String... keys) {
        Integer v = find(o, "config", keys);
        return v == null ? dflt : v;
    }

    private static Integer find(JsonObject o, String where, String... keys) {
        for (String k : keys) {
            if (o.has(k) && !o.get(k).isJsonNull()) {
                try {
                    return o.get(k).getAsInt();
                } catch (RuntimeException e) {
                    throw new UserError(where + ": " + k + " is not a whole number: " + o.get(k));
                }
            }
        }
        return null;
    }
}
