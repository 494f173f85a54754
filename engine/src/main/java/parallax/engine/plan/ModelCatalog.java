package parallax.engine.plan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.plan.ModelSpec.Arch;
import parallax.engine.plan.ModelSpec.Detail;

/**
 * Well-known model shapes, copied from each model's published HF config.json (the
 * repository named beside each entry). Parameter counts are not stored: they are summed
 * from the tensors {@link ModelSpec#tensors()} derives from these shapes.
 */
public final class ModelCatalog {

    private static final Map<String, ModelSpec> MODELS = new LinkedHashMap<>();
    private static final Map<String, String> ALIASES = new LinkedHashMap<>();

    static {
        // meta-llama/Llama-2-{7b,13b,70b}-hf
        add(new ModelSpec("llama-2-7b", Arch.LLAMA, 32, 4096, 32, 32, 11008, 32000, 4096, 1, 1, false));
        add(new ModelSpec("llama-2-13b", Arch.LLAMA, 40, 5120, 40, 40, 13824, 32000, 4096, 1, 1, false));
        add(new ModelSpec("llama-2-70b", Arch.LLAMA, 80, 8192, 64, 8, 28672, 32000, 4096, 1, 1, false));
        // meta-llama/Meta-Llama-3-{8B,70B}
        add(new ModelSpec("llama-3-8b", Arch.LLAMA, 32, 4096, 32, 8, 14336, 128256, 8192, 1, 1, false));
        add(new ModelSpec("llama-3-70b", Arch.LLAMA, 80, 8192, 64, 8, 28672, 128256, 8192, 1, 1, false));
        // mistralai/Mistral-7B-v0.1, mistralai/Mixtral-8x7B-v0.1
        add(new ModelSpec("mistral-7b", Arch.LLAMA, 32, 4096, 32, 8, 14336, 32000, 32768, 1, 1, false));
        add(new ModelSpec("mixtral-8x7b", Arch.LLAMA, 32, 4096, 32, 8, 14336, 32000, 32768, 8, 2, false));
        // mistralai/Mixtral-8x22B-Instruct-v0.1 (vocab_size 32768; the base v0.1 repository differs only in vocabulary)
        add(new ModelSpec("mixtral-8x22b", Arch.LLAMA, 56, 6144, 48, 8, 16384, 32768, 65536, 8, 2, false));
        // meta-llama/Llama-3.1-405B (dense)
        add(new ModelSpec("llama-3.1-405b", Arch.LLAMA, 126, 16384, 128, 8, 53248, 128256, 131072, 1, 1, false));
        // deepseek-ai/DeepSeek-V3: 61 layers, the first 3 dense (intermediate_size 18432), then 1 shared + 256 routed
        // experts of 2048, top-8; MLA with q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64, v 128.
        // The multi-token-prediction module (num_nextn_predict_layers = 1) is left out, as the 671B figure does.
        add(new ModelSpec("deepseek-v3", Arch.DEEPSEEK_V3, 61, 7168, 128, 128, 2048, 129280, 163840, 256, 8, false,
                new Detail(0, 3, 18432, 1, 1536, 512, 128, 64, 128)));
        // Qwen/Qwen3-30B-A3B and Qwen/Qwen3-235B-A22B: every layer MoE (mlp_only_layers empty), head_dim 128,
        // moe_intermediate_size 768 / 1536, 128 experts, top-8.
        add(new ModelSpec("qwen3-30b-a3b", Arch.QWEN3_MOE, 48, 2048, 32, 4, 768, 151936, 40960, 128, 8, false, Detail.headDim(128)));
        add(new ModelSpec("qwen3-235b-a22b", Arch.QWEN3_MOE, 94, 4096, 64, 4, 1536, 151936, 40960, 128, 8, false, Detail.headDim(128)));
        // openai/gpt-oss-20b and openai/gpt-oss-120b: hidden 2880, 64 heads of 64, 8 KV heads, expert size 2880,
        // 32 / 128 experts, top-4 (experts_per_token), vocab 201088, context 131072.
        add(new ModelSpec("gpt-oss-20b", Arch.GPT_OSS, 24, 2880, 64, 8, 2880, 201088, 131072, 32, 4, false, Detail.headDim(64)));
        add(new ModelSpec("gpt-oss-120b", Arch.GPT_OSS, 36, 2880, 64, 8, 2880, 201088, 131072, 128, 4, false, Detail.headDim(64)));
        // openai-community/gpt2, gpt2-medium, gpt2-large, gpt2-xl (n_inner null = 4h, tied)
        add(new ModelSpec("gpt2", Arch.GPT2, 12, 768, 12, 12, 3072, 50257, 1024, 1, 1, true));
        add(new ModelSpec("gpt2-medium", Arch.GPT2, 24, 1024, 16, 16, 4096, 50257, 1024, 1, 1, true));
        add(new ModelSpec("gpt2-large", Arch.GPT2, 36, 1280, 20, 20, 5120, 50257, 1024, 1, 1, true));
        add(new ModelSpec("gpt2-xl", Arch.GPT2, 48, 1600, 25, 25, 6400, 50257, 1024, 1, 1, true));
        // google-bert/bert-base-uncased (BertModel: encoder + pooler, no MLM head)
        add(new ModelSpec("bert-base", Arch.BERT, 12, 768, 12, 12, 3072, 30522, 512, 1, 1, true));
        // Qwen/Qwen2.5-{0.5B,1.5B,3B,7B,14B,32B,72B}
        add(new ModelSpec("qwen2.5-0.5b", Arch.QWEN2, 24, 896, 14, 2, 4864, 151936, 32768, 1, 1, true));
        add(new ModelSpec("qwen2.5-1.5b", Arch.QWEN2, 28, 1536, 12, 2, 8960, 151936, 32768, 1, 1, true));
        add(new ModelSpec("qwen2.5-3b", Arch.QWEN2, 36, 2048, 16, 2, 11008, 151936, 32768, 1, 1, true));
        add(new ModelSpec("qwen2.5-7b", Arch.QWEN2, 28, 3584, 28, 4, 18944, 152064, 32768, 1, 1, false));
        add(new ModelSpec("qwen2.5-14b", Arch.QWEN2, 48, 5120, 40, 8, 13824, 152064, 32768, 1, 1, false));
        add(new ModelSpec("qwen2.5-32b", Arch.QWEN2, 64, 5120, 40, 8, 27648, 152064, 32768, 1, 1, false));
        add(new ModelSpec("qwen2.5-72b", Arch.QWEN2, 80, 8192, 64, 8, 29568, 152064, 32768, 1, 1, false));
        // The engine's GPT presets (parallax.engine.model.GptConfig tiny/small/medium): byte vocabulary,
        // MLP 4h, untied head, embedding and head whole on every TP rank.
        add(new ModelSpec("tiny-gpt", Arch.PARALLAX_GPT, 4, 32, 4, 4, 128, 256, 32, 1, 1, false));
        add(new ModelSpec("small-gpt", Arch.PARALLAX_GPT, 4, 128, 8, 8, 512, 256, 64, 1, 1, false));
        add(new ModelSpec("medium-gpt", Arch.PARALLAX_GPT, 8, 256, 8, 8, 1024, 256, 128, 1, 1, false));

        alias("gpt2-small", "gpt2");
        alias("gpt-2", "gpt2");
        alias("bert-base-uncased", "bert-base");
        alias("bert-base-cased", "bert-base");
        alias("mistral-7b-v0.1", "mistral-7b");
        alias("mixtral-8x7b-v0.1", "mixtral-8x7b");
        alias("meta-llama-3-8b", "llama-3-8b");
        alias("meta-llama-3-70b", "llama-3-70b");
        alias("llama-2-7b-hf", "llama-2-7b");
        alias("llama-2-13b-hf", "llama-2-13b");
        alias("llama-2-70b-hf", "llama-2-70b");
        alias("llama2-7b", "llama-2-7b");
        alias("llama2-13b", "llama-2-13b");
        alias("llama2-70b", "llama-2-70b");
        alias("llama3-8b", "llama-3-8b");
        alias("llama3-70b", "llama-3-70b");
        alias("mixtral-8x22b-v0.1", "mixtral-8x22b");
        alias("mixtral-8x22b-instruct-v0.1", "mixtral-8x22b");
        alias("meta-llama-3.1-405b", "llama-3.1-405b");
        alias("llama-3.1-405b-instruct", "llama-3.1-405b");
        alias("llama3.1-405b", "llama-3.1-405b");
        alias("deepseek-v3-base", "deepseek-v3");
        alias("gptoss-20b", "gpt-oss-20b");
        alias("gptoss-120b", "gpt-oss-120b");
    }

    private ModelCatalog() {}

    private static void add(ModelSpec m) { MODELS.put(m.name(), m); }

    private static void alias(String a, String name) { ALIASES.put(a, name); }

    public static List<ModelSpec> all() { return new ArrayList<>(MODELS.values()); }

    public static List<String> names() { return new ArrayList<>(MODELS.keySet()); }

    /** The catalog entry for a name (case-insensitive, a leading "org/" ignored), if any. */
    public static Optional<ModelSpec> find(String name) {
        String key = name.trim().toLowerCase(Locale.ROOT);
        int slash = key.lastIndexOf('/');
        if (slash >= 0) key = key.substring(slash + 1);
        key = ALIASES.getOrDefault(key, key);
        return Optional.ofNullable(MODELS.get(key));
    }

    /** The entry for a name, or one line naming the close ones. */
    public static ModelSpec get(String name) {
        return find(name).orElseThrow(() -> new UserError("unknown model '" + name + "'."
                + DidYouMean.hint(name, names()) + " Known: " + String.join(", ", names())
                + " (or give --config config.json, or --layers/--hidden/... shapes)"));
    }
}
