package parallax.engine.plan;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The words model names are made of and what each means: the vocabulary {@link ModelName}
 * reads a name with. Lookups use the lower-case word.
 */
final class ModelNameWords {

    /** A model family as a name starts with it ({@code key}, lower case), its display name and what it is. */
    record Family(String key, String display, String what) {}

    /** In lookup order: a longer key comes first where one is a prefix of another (codellama before llama, mixtral before mistral...). */
    static final List<Family> FAMILIES = List.of(
            new Family("codellama", "Code Llama", "Meta's LLaMA 2 further trained on code"),
            new Family("tinyllama", "TinyLlama", "a 1.1B LLaMA-architecture model trained on 3T tokens"),
            new Family("llava", "LLaVA", "vision-language model: a CLIP image encoder feeding a LLaMA/Vicuna decoder"),
            new Family("llama", "LLaMA", "Meta's decoder-only transformer family (RMSNorm, SwiGLU, RoPE)"),
            new Family("mixtral", "Mixtral", "Mistral AI's sparse mixture-of-experts decoder"),
            new Family("mistral", "Mistral", "Mistral AI's decoder family (GQA, sliding-window attention in v0.1)"),
            new Family("codestral", "Codestral", "Mistral AI's code model"),
            new Family("pixtral", "Pixtral", "Mistral AI's vision-language model"),
            new Family("qwq", "QwQ", "Alibaba Qwen's reasoning model"),
            new Family("qwen", "Qwen", "Alibaba's Qwen decoder family"),
            new Family("gemma", "Gemma", "Google's open decoder family (from Gemini research)"),
            new Family("phi", "Phi", "Microsoft's small language models trained on curated/synthetic data"),
            new Family("falcon", "Falcon", "TII's decoder family"),
            new Family("deepseek", "DeepSeek", "DeepSeek's model family (dense and MoE)"),
            new Family("yi", "Yi", "01.AI's decoder family"),
            new Family("gpt", "GPT", "OpenAI-style generative pre-trained transformer (decoder-only)"),
            new Family("distilbert", "DistilBERT", "BERT compressed by knowledge distillation (Sanh et al. 2019)"),
            new Family("roberta", "RoBERTa", "BERT retrained with more data and no next-sentence objective"),
            new Family("deberta", "DeBERTa", "BERT variant with disentangled attention"),
            new Family("albert", "ALBERT", "parameter-shared BERT"),
            new Family("bert", "BERT", "Google's bidirectional encoder (masked-language-model pre-training)"),
            new Family("flan", "FLAN", "instruction-tuned (FLAN collection) version of the following model"),
            new Family("t5", "T5", "Google's encoder-decoder text-to-text transformer"),
            new Family("mt5", "mT5", "multilingual T5"),
            new Family("bart", "BART", "Meta's denoising encoder-decoder"),
            new Family("palm", "PaLM", "Google's Pathways Language Model (decoder-only)"),
            new Family("bloomz", "BLOOMZ", "BLOOM fine-tuned on multitask prompts"),
            new Family("bloom", "BLOOM", "BigScience's multilingual decoder"),
            new Family("opt", "OPT", "Meta's Open Pre-trained Transformers"),
            new Family("pythia", "Pythia", "EleutherAI's suite for interpretability research"),
            new Family("starcoder", "StarCoder", "BigCode's code model"),
            new Family("stablelm", "StableLM", "Stability AI's decoder family"),
            new Family("olmo", "OLMo", "AI2's fully open language model"),
            new Family("mpt", "MPT", "MosaicML's decoder family"),
            new Family("vicuna", "Vicuna", "LLaMA fine-tuned on shared chat conversations"),
            new Family("zephyr", "Zephyr", "Mistral fine-tuned with distilled DPO"),
            new Family("clip", "CLIP", "OpenAI's contrastive image-text encoder pair"),
            new Family("siglip", "SigLIP", "Google's sigmoid-loss image-text encoder"),
            new Family("vit", "ViT", "Vision Transformer (image encoder)"),
            new Family("whisper", "Whisper", "OpenAI's speech recognition encoder-decoder"),
            new Family("bge", "BGE", "BAAI's text embedding models"),
            new Family("e5", "E5", "Microsoft's text embedding models"),
            new Family("internlm", "InternLM", "Shanghai AI Lab's decoder family"),
            new Family("baichuan", "Baichuan", "Baichuan Inc.'s decoder family"),
            new Family("chatglm", "ChatGLM", "Zhipu's GLM chat model"),
            new Family("glm", "GLM", "Zhipu's General Language Model"),
            new Family("granite", "Granite", "IBM's decoder family"),
            new Family("nemotron", "Nemotron", "NVIDIA's decoder family"),
            new Family("dbrx", "DBRX", "Databricks' mixture-of-experts decoder"),
            new Family("jamba", "Jamba", "AI21's hybrid Mamba-transformer MoE"),
            new Family("mamba", "Mamba", "state-space sequence model (no attention)"));

    /** Hub organisations and the publisher each stands for. */
    static final Map<String, String> PUBLISHERS = Map.of("meta", "Meta", "microsoft", "Microsoft", "google", "Google",
            "mistralai", "Mistral AI", "openai", "OpenAI", "nvidia", "NVIDIA", "ibm", "IBM", "thebloke", "TheBloke (quantized re-uploads)",
            "bigscience", "BigScience", "eleutherai", "EleutherAI");

    /** What a model was tuned for. */
    static final Map<String, String> PURPOSE = table(
            "instruct", "instruction-tuned: follows single-turn instructions",
            "it", "instruction-tuned (Google's suffix)",
            "chat", "tuned for multi-turn dialogue",
            "code", "specialised for source code",
            "coder", "specialised for source code",
            "math", "specialised for mathematics",
            "med", "specialised for medicine",
            "medical", "specialised for medicine",
            "meditron", "specialised for medicine",
            "bio", "specialised for biomedicine",
            "legal", "specialised for law",
            "law", "specialised for law",
            "finance", "specialised for finance",
            "fin", "specialised for finance",
            "embed", "produces embeddings (vectors for search), not text",
            "embedding", "produces embeddings (vectors for search), not text",
            "reward", "reward model: scores responses for RLHF",
            "guard", "safety classifier for prompts and responses",
            "reasoning", "tuned for long chain-of-thought reasoning",
            "nemo", "NVIDIA NeMo collaboration / framework name");

    /** How the weights were trained or derived. */
    static final Map<String, String> TRAINING = table(
            "base", "pre-trained only (no instruction or chat tuning)",
            "pretrained", "pre-trained only",
            "pt", "pre-trained only (Google's suffix)",
            "sft", "supervised fine-tuning on instruction data",
            "rlhf", "reinforcement learning from human feedback",
            "dpo", "direct preference optimisation (Rafailov et al. 2023)",
            "orpo", "odds-ratio preference optimisation",
            "kto", "Kahneman-Tversky optimisation (preference tuning)",
            "lora", "low-rank adapter weights (Hu et al. 2021), applied on top of a base model",
            "qlora", "LoRA trained on a 4-bit quantised base (Dettmers et al. 2023)",
            "adapter", "adapter weights, applied on top of a base model",
            "peft", "parameter-efficient fine-tuning weights",
            "distill", "distilled from a larger teacher model",
            "distilled", "distilled from a larger teacher model",
            "merged", "weights merged from several models or an adapter",
            "ft", "fine-tuned",
            "finetuned", "fine-tuned",
            "uncensored", "fine-tuned to remove refusals");

    /** What a model takes as input besides text. */
    static final Map<String, String> MODALITY = table(
            "vl", "vision-language: takes images and text",
            "vision", "takes images as input",
            "visual", "takes images as input",
            "audio", "takes audio as input",
            "omni", "takes text, images, audio (and video)",
            "mm", "multimodal",
            "multimodal", "multimodal",
            "video", "takes video as input",
            "speech", "speech input or output");

    /** Size words of a family (used where there is no parameter count). */
    static final Map<String, String> SCALE = table(
            "nano", "the family's smallest size",
            "tiny", "a very small size of the family",
            "mini", "a small size of the family",
            "small", "the family's small size",
            "medium", "the family's medium size",
            "base", "the family's base size (BERT-base: 12 layers, hidden 768)",
            "large", "the family's large size",
            "xl", "extra large size",
            "xxl", "extra-extra large size",
            "lite", "a lighter (smaller/faster) variant",
            "turbo", "a faster variant",
            "flash", "a faster variant",
            "pro", "a larger/stronger tier",
            "max", "the largest tier",
            "plus", "a stronger tier");

    /** How the weights are stored (llama.cpp quantisation labels are read by pattern instead). */
    static final Map<String, String> ENCODING = table(
            "f32", "weights as 32-bit floats (4 bytes each)",
            "fp32", "weights as 32-bit floats (4 bytes each)",
            "f16", "weights as IEEE half floats (2 bytes each)",
            "fp16", "weights as IEEE half floats (2 bytes each)",
            "bf16", "weights as bfloat16 (2 bytes each)",
            "fp8", "weights as 8-bit floats (1 byte each)",
            "int8", "weights as 8-bit integers with scales",
            "int4", "weights as 4-bit integers with scales",
            "8bit", "weights as 8-bit integers (bitsandbytes)",
            "4bit", "weights as 4-bit values (bitsandbytes NF4/FP4)",
            "nf4", "4-bit NormalFloat (QLoRA)",
            "gptq", "GPTQ post-training quantisation, usually 4-bit (Frantar et al. 2022)",
            "awq", "activation-aware weight quantisation, 4-bit (Lin et al. 2023)",
            "exl2", "ExLlamaV2 mixed-bit quantisation",
            "mlx", "converted for Apple's MLX framework");

    /** Other words names carry, each with its meaning. */
    static final Map<String, String> OTHER = Map.of(
            "multilingual", "trained on many languages",
            "open", "an openly licensed reproduction (e.g. OpenLLaMA)",
            "neo", "\"new\": EleutherAI's open GPT-style models (GPT-Neo)",
            "neox", "EleutherAI's GPT-NeoX architecture",
            "j", "GPT-J (EleutherAI's 6B model)",
            "zero", "zero-shot (used without task examples)",
            "few", "few-shot (a few task examples in the prompt)",
            "mt", "multitask fine-tuned with multilingual prompts (BLOOMZ's xP3mt)",
            "x", "\"extended\" or \"cross\": a general-purpose or scaled variant",
            "oss", "open-source (open-weight) release, as in OpenAI's gpt-oss");

    private ModelNameWords() {}

    /** The family a lower-case word names (exactly, or followed by a version or a short variant suffix), or null. */
    static Family family(String lw) {
        for (Family f : FAMILIES) {
            String k = f.key();
            if (lw.equals(k)) return f;
            if (lw.startsWith(k)) {
                String rest = lw.substring(k.length());
                if (rest.matches("\\d+(\\.\\d+)*") || rest.matches("[a-z]{1,3}") && !k.equals("phi") && !k.equals("yi") && !k.equals("opt")
                        && !k.equals("gpt") && !k.equals("vit") && !k.equals("glm")) return f;
            }
        }
        return null;
    }

    /** word, meaning, word, meaning...: an unmodifiable map in the order given. */
    private static Map<String, String> table(String... wordMeaning) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < wordMeaning.length; i += 2) m.put(wordMeaning[i], wordMeaning[i + 1]);
        return Collections.unmodifiableMap(m);
    }
}
