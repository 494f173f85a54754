package parallax.engine.plan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parallax.engine.UserError;

/**
 * Reads a model's name the way people in the field write them: family and version,
 * size label (7B, 8x7B mixture of experts, A14B active), purpose (Instruct, Chat,
 * Code...), training (base, SFT, DPO, LoRA, distilled...), modality (VL, Vision),
 * context length (32k), encoding (F16, Q4_K_M, GPTQ, AWQ), shards and the GGUF file
 * naming convention {@code BaseName-SizeLabel-FineTune-Version-Encoding-Type-Shard.gguf}
 * (ggml docs/gguf.md). Every token is reported with what it means; tokens we cannot
 * read are reported as such, never guessed silently.
 */
public final class ModelName {

    public enum Kind { PUBLISHER, FAMILY, VERSION, SIZE, EXPERTS, ACTIVE, SCALE, PURPOSE, TRAINING, MODALITY, CONTEXT,
        ENCODING, FORMAT, SHARD, TYPE, CASING, OTHER, UNKNOWN }

    /** One token of the name, its kind, its meaning in words and its GGUF naming field (or ""). */
    public record Token(String text, Kind kind, String meaning, String ggufField) {}

    public record Decoded(String input, List<Token> tokens, String family, String version, Double parameters,
                          Integer experts, Double activeParameters, Integer context, String encoding, String format,
                          String shard, List<String> purposes, Optional<ModelSpec> catalog, Optional<ModelSpec> nearest) {

        public List<Token> of(Kind k) { return tokens.stream().filter(t -> t.kind() == k).toList(); }

        public boolean has(Kind k) { return tokens.stream().anyMatch(t -> t.kind() == k); }
    }

    /** Family words (lower case, as a name starts) -> display name and what it is. */
    private static final Map<String, String[]> FAMILIES = new LinkedHashMap<>();

    private static void fam(String key, String display, String what) { FAMILIES.put(key, new String[] {display, what}); }

    static {
        // Longer keys first where one is a prefix of another (codellama before llama, mixtral before mistral...).
        fam("codellama", "Code Llama", "Meta's LLaMA 2 further trained on code");
        fam("tinyllama", "TinyLlama", "a 1.1B LLaMA-architecture model trained on 3T tokens");
        fam("llava", "LLaVA", "vision-language model: a CLIP image encoder feeding a LLaMA/Vicuna decoder");
        fam("llama", "LLaMA", "Meta's decoder-only transformer family (RMSNorm, SwiGLU, RoPE)");
        fam("mixtral", "Mixtral", "Mistral AI's sparse mixture-of-experts decoder");
        fam("mistral", "Mistral", "Mistral AI's decoder family (GQA, sliding-window attention in v0.1)");
        fam("codestral", "Codestral", "Mistral AI's code model");
        fam("pixtral", "Pixtral", "Mistral AI's vision-language model");
        fam("qwq", "QwQ", "Alibaba Qwen's reasoning model");
        fam("qwen", "Qwen", "Alibaba's Qwen decoder family");
        fam("gemma", "Gemma", "Google's open decoder family (from Gemini research)");
        fam("phi", "Phi", "Microsoft's small language models trained on curated/synthetic data");
        fam("falcon", "Falcon", "TII's decoder family");
        fam("deepseek", "DeepSeek", "DeepSeek's model family (dense and MoE)");
        fam("yi", "Yi", "01.AI's decoder family");
        fam("gpt", "GPT", "OpenAI-style generative pre-trained transformer (decoder-only)");
        fam("distilbert", "DistilBERT", "BERT compressed by knowledge distillation (Sanh et al. 2019)");
        fam("roberta", "RoBERTa", "BERT retrained with more data and no next-sentence objective");
        fam("deberta", "DeBERTa", "BERT variant with disentangled attention");
        fam("albert", "ALBERT", "parameter-shared BERT");
        fam("bert", "BERT", "Google's bidirectional encoder (masked-language-model pre-training)");
        fam("flan", "FLAN", "instruction-tuned (FLAN collection) version of the following model");
        fam("t5", "T5", "Google's encoder-decoder text-to-text transformer");
        fam("mt5", "mT5", "multilingual T5");
        fam("bart", "BART", "Meta's denoising encoder-decoder");
        fam("palm", "PaLM", "Google's Pathways Language Model (decoder-only)");
        fam("bloomz", "BLOOMZ", "BLOOM fine-tuned on multitask prompts");
        fam("bloom", "BLOOM", "BigScience's multilingual decoder");
        fam("opt", "OPT", "Meta's Open Pre-trained Transformers");
        fam("pythia", "Pythia", "EleutherAI's suite for interpretability research");
        fam("starcoder", "StarCoder", "BigCode's code model");
        fam("stablelm", "StableLM", "Stability AI's decoder family");
        fam("olmo", "OLMo", "AI2's fully open language model");
        fam("mpt", "MPT", "MosaicML's decoder family");
        fam("vicuna", "Vicuna", "LLaMA fine-tuned on shared chat conversations");
        fam("zephyr", "Zephyr", "Mistral fine-tuned with distilled DPO");
        fam("clip", "CLIP", "OpenAI's contrastive image-text encoder pair");
        fam("siglip", "SigLIP", "Google's sigmoid-loss image-text encoder");
        fam("vit", "ViT", "Vision Transformer (image encoder)");
        fam("whisper", "Whisper", "OpenAI's speech recognition encoder-decoder");
        fam("bge", "BGE", "BAAI's text embedding models");
        fam("e5", "E5", "Microsoft's text embedding models");
        fam("internlm", "InternLM", "Shanghai AI Lab's decoder family");
        fam("baichuan", "Baichuan", "Baichuan Inc.'s decoder family");
        fam("chatglm", "ChatGLM", "Zhipu's GLM chat model");
        fam("glm", "GLM", "Zhipu's General Language Model");
        fam("granite", "Granite", "IBM's decoder family");
        fam("nemotron", "Nemotron", "NVIDIA's decoder family");
        fam("dbrx", "DBRX", "Databricks' mixture-of-experts decoder");
        fam("jamba", "Jamba", "AI21's hybrid Mamba-transformer MoE");
        fam("mamba", "Mamba", "state-space sequence model (no attention)");
    }

    private static final Map<String, String> PUBLISHERS = Map.of("meta", "Meta", "microsoft", "Microsoft", "google", "Google",
            "mistralai", "Mistral AI", "openai", "OpenAI", "nvidia", "NVIDIA", "ibm", "IBM", "thebloke", "TheBloke (quantized re-uploads)",
            "bigscience", "BigScience", "eleutherai", "EleutherAI");

    private static final Map<String, String> PURPOSE = new LinkedHashMap<>();
    private static final Map<String, String> TRAINING = new LinkedHashMap<>();
    private static final Map<String, String> MODALITY = new LinkedHashMap<>();
    private static final Map<String, String> SCALE = new LinkedHashMap<>();
    private static final Map<String, String> ENCODING = new LinkedHashMap<>();

    static {
        PURPOSE.put("instruct", "instruction-tuned: follows single-turn instructions");
        PURPOSE.put("it", "instruction-tuned (Google's suffix)");
        PURPOSE.put("chat", "tuned for multi-turn dialogue");
        PURPOSE.put("code", "specialised for source code");
        PURPOSE.put("coder", "specialised for source code");
        PURPOSE.put("math", "specialised for mathematics");
        PURPOSE.put("med", "specialised for medicine");
        PURPOSE.put("medical", "specialised for medicine");
        PURPOSE.put("meditron", "specialised for medicine");
        PURPOSE.put("bio", "specialised for biomedicine");
        PURPOSE.put("legal", "specialised for law");
        PURPOSE.put("law", "specialised for law");
        PURPOSE.put("finance", "specialised for finance");
        PURPOSE.put("fin", "specialised for finance");
        PURPOSE.put("embed", "produces embeddings (vectors for search), not text");
        PURPOSE.put("embedding", "produces embeddings (vectors for search), not text");
        PURPOSE.put("reward", "reward model: scores responses for RLHF");
        PURPOSE.put("guard", "safety classifier for prompts and responses");
        PURPOSE.put("reasoning", "tuned for long chain-of-thought reasoning");
        PURPOSE.put("nemo", "NVIDIA NeMo collaboration / framework name");
        TRAINING.put("base", "pre-trained only (no instruction or chat tuning)");
        TRAINING.put("pretrained", "pre-trained only");
        TRAINING.put("pt", "pre-trained only (Google's suffix)");
        TRAINING.put("sft", "supervised fine-tuning on instruction data");
        TRAINING.put("rlhf", "reinforcement learning from human feedback");
        TRAINING.put("dpo", "direct preference optimisation (Rafailov et al. 2023)");
        TRAINING.put("orpo", "odds-ratio preference optimisation");
        TRAINING.put("kto", "Kahneman-Tversky optimisation (preference tuning)");
        TRAINING.put("lora", "low-rank adapter weights (Hu et al. 2021), applied on top of a base model");
        TRAINING.put("qlora", "LoRA trained on a 4-bit quantised base (Dettmers et al. 2023)");
        TRAINING.put("adapter", "adapter weights, applied on top of a base model");
        TRAINING.put("peft", "parameter-efficient fine-tuning weights");
        TRAINING.put("distill", "distilled from a larger teacher model");
        TRAINING.put("distilled", "distilled from a larger teacher model");
        TRAINING.put("merged", "weights merged from several models or an adapter");
        TRAINING.put("ft", "fine-tuned");
        TRAINING.put("finetuned", "fine-tuned");
        TRAINING.put("uncensored", "fine-tuned to remove refusals");
        MODALITY.put("vl", "vision-language: takes images and text");
        MODALITY.put("vision", "takes images as input");
        MODALITY.put("visual", "takes images as input");
        MODALITY.put("audio", "takes audio as input");
        MODALITY.put("omni", "takes text, images, audio (and video)");
        MODALITY.put("mm", "multimodal");
        MODALITY.put("multimodal", "multimodal");
        MODALITY.put("video", "takes video as input");
        MODALITY.put("speech", "speech input or output");
        SCALE.put("nano", "the family's smallest size");
        SCALE.put("tiny", "a very small size of the family");
        SCALE.put("mini", "a small size of the family");
        SCALE.put("small", "the family's small size");
        SCALE.put("medium", "the family's medium size");
        SCALE.put("base", "the family's base size (BERT-base: 12 layers, hidden 768)");
        SCALE.put("large", "the family's large size");
        SCALE.put("xl", "extra large size");
        SCALE.put("xxl", "extra-extra large size");
        SCALE.put("lite", "a lighter (smaller/faster) variant");
        SCALE.put("turbo", "a faster variant");
        SCALE.put("flash", "a faster variant");
        SCALE.put("pro", "a larger/stronger tier");
        SCALE.put("max", "the largest tier");
        SCALE.put("plus", "a stronger tier");
        ENCODING.put("f32", "weights as 32-bit floats (4 bytes each)");
        ENCODING.put("fp32", "weights as 32-bit floats (4 bytes each)");
        ENCODING.put("f16", "weights as IEEE half floats (2 bytes each)");
        ENCODING.put("fp16", "weights as IEEE half floats (2 bytes each)");
        ENCODING.put("bf16", "weights as bfloat16 (2 bytes each)");
        ENCODING.put("fp8", "weights as 8-bit floats (1 byte each)");
        ENCODING.put("int8", "weights as 8-bit integers with scales");
        ENCODING.put("int4", "weights as 4-bit integers with scales");
        ENCODING.put("8bit", "weights as 8-bit integers (bitsandbytes)");
        ENCODING.put("4bit", "weights as 4-bit values (bitsandbytes NF4/FP4)");
        ENCODING.put("nf4", "4-bit NormalFloat (QLoRA)");
        ENCODING.put("gptq", "GPTQ post-training quantisation, usually 4-bit (Frantar et al. 2022)");
        ENCODING.put("awq", "activation-aware weight quantisation, 4-bit (Lin et al. 2023)");
        ENCODING.put("exl2", "ExLlamaV2 mixed-bit quantisation");
        ENCODING.put("mlx", "converted for Apple's MLX framework");
    }

    private static final Map<String, String> OTHER = Map.of(
            "multilingual", "trained on many languages",
            "open", "an openly licensed reproduction (e.g. OpenLLaMA)",
            "neo", "\"new\": EleutherAI's open GPT-style models (GPT-Neo)",
            "neox", "EleutherAI's GPT-NeoX architecture",
            "j", "GPT-J (EleutherAI's 6B model)",
            "zero", "zero-shot (used without task examples)",
            "few", "few-shot (a few task examples in the prompt)",
            "mt", "multitask fine-tuned with multilingual prompts (BLOOMZ's xP3mt)",
            "x", "\"extended\" or \"cross\": a general-purpose or scaled variant");

    private static final Pattern QUANT = Pattern.compile("(?i)^(i?q\\d)(_k)?(_[a-z0-9]+)?$");
    private static final Pattern SIZE = Pattern.compile("(?i)^(\\d+(?:\\.\\d+)?)([mbt])$");
    private static final Pattern SIZE_INFIX = Pattern.compile("(?i)^(\\d+)([mb])(\\d+)$");
    private static final Pattern MOE = Pattern.compile("(?i)^(\\d+)x(\\d+(?:\\.\\d+)?)([mbt])$");
    private static final Pattern ACTIVE = Pattern.compile("(?i)^a(\\d+(?:\\.\\d+)?)([mb])$");
    private static final Pattern CONTEXT = Pattern.compile("(?i)^(\\d+)k$");
    private static final Pattern VERSION = Pattern.compile("(?i)^v(\\d+(?:\\.\\d+)*)$");
    private static final Pattern NUMBER = Pattern.compile("^\\d+(?:\\.\\d+)*$");
    private static final Pattern SHARD = Pattern.compile("(?i)(\\d{5})-of-(\\d{5})");

    private ModelName() {}

    public static Decoded decode(String input) {
        if (input == null || input.isBlank()) throw new UserError("give a model name, e.g. %model Mixtral-8x7B-Instruct-v0.1");
        String s = input.trim();
        List<Token> out = new ArrayList<>();
        // Publisher prefix "org/".
        int slash = s.lastIndexOf('/');
        if (slash >= 0) {
            String org = s.substring(0, slash);
            out.add(new Token(org, Kind.PUBLISHER, "publisher / Hub organisation" + pub(org), ""));
            s = s.substring(slash + 1);
        }
        // File extension.
        String format = null;
        Matcher ext = Pattern.compile("(?i)\\.(gguf|ggml|safetensors|bin|pt|pth|onnx)$").matcher(s);
        if (ext.find()) {
            format = ext.group(1).toLowerCase(Locale.ROOT);
            s = s.substring(0, ext.start());
        }
        boolean gguf = "gguf".equals(format);
        // Shards "00001-of-00009" before splitting on '-'.
        String shard = null;
        Matcher sh = SHARD.matcher(s);
        if (sh.find()) {
            shard = sh.group();
            s = s.substring(0, sh.start()) + "\u0001" + s.substring(sh.end());
        }
        // Protect underscores inside quantisation labels (Q4_K_M, IQ2_XXS, q4_0), then split.
        Matcher q = Pattern.compile("(?i)(?<![a-z])(i?q\\d(?:_k)?(?:_[a-z0-9]{1,3})?)(?![a-z0-9])").matcher(s);
        StringBuilder prot = new StringBuilder();
        while (q.find()) q.appendReplacement(prot, Matcher.quoteReplacement(q.group(1).replace('_', '\u0002')));
        q.appendTail(prot);
        List<String> words = new ArrayList<>();
        for (String w : prot.toString().split("[-_ ]+")) {
            for (String v : w.split("(?<!\\d)\\.|\\.(?!\\d)")) if (!v.isEmpty()) words.add(v.replace('\u0002', '_'));
        }

        String family = null, version = null, encoding = null;
        Double params = null, active = null;
        Integer experts = null, context = null;
        List<String> purposes = new ArrayList<>();
        boolean afterSize = false;
        String lastFamily = null;
        for (int i = 0; i < words.size(); i++) {
            String w = words.get(i);
            String lw = w.toLowerCase(Locale.ROOT);
            Matcher m;
            if (w.equals("\u0001")) {
                Matcher g = SHARD.matcher(shard);
                g.find();
                out.add(new Token(shard, Kind.SHARD, "shard " + Integer.parseInt(g.group(1)) + " of " + Integer.parseInt(g.group(2))
                        + " (the weights are split across files)", "Shard"));
                continue;
            }
            if (family == null && PUBLISHERS.containsKey(lw) && i + 1 < words.size()) {
                out.add(new Token(w, Kind.PUBLISHER, "publisher: " + PUBLISHERS.get(lw), "BaseName"));
                continue;
            }
            String famKey = familyKey(lw);
            if (famKey != null && (family == null || family.equals("FLAN"))) {
                String[] f = FAMILIES.get(famKey);
                String rest = lw.substring(famKey.length());
                String meaning = "architecture family " + f[0] + ": " + f[1];
                if (famKey.equals("codellama")) purposes.add("code");
                family = family == null ? f[0] : family + "-" + f[0];
                if (!rest.isEmpty() && rest.matches("\\d+(\\.\\d+)*") && !famKey.equals("t5") && !famKey.equals("e5")) {
                    version = rest;
                    meaning += "; version " + rest;
                } else if (!rest.isEmpty()) {
                    meaning += "; '" + w.substring(famKey.length()) + "' variant";
                }
                out.add(new Token(w, Kind.FAMILY, meaning, "BaseName"));
                lastFamily = f[0];
                continue;
            }
            if (famKey != null) {
                String[] f = FAMILIES.get(famKey);
                String rest = lw.substring(famKey.length());
                out.add(new Token(w, Kind.FAMILY, "built on " + f[0] + (rest.matches("\\d+(\\.\\d+)*") ? " " + rest : "")
                        + " (" + f[1] + "): this model is derived from it", "BaseName"));
                lastFamily = f[0];
                continue;
            }
            if ((m = MOE.matcher(w)).matches()) {
                experts = Integer.parseInt(m.group(1));
                params = number(m.group(2), m.group(3));
                afterSize = true;
                out.add(new Token(w, Kind.EXPERTS, "mixture of experts: " + experts + " experts of about " + m.group(2)
                        + m.group(3).toUpperCase() + " each; attention and embeddings are shared, so the total is less than "
                        + experts + " x " + m.group(2) + m.group(3).toUpperCase() + ", and each token uses only its top-k experts", "SizeLabel"));
                continue;
            }
            if (afterSize && (m = ACTIVE.matcher(w)).matches()) {
                active = number(m.group(1), m.group(2));
                out.add(new Token(w, Kind.ACTIVE, "mixture of experts: about " + m.group(1) + m.group(2).toUpperCase()
                        + " parameters active per token (of the total size before it)", "SizeLabel"));
                continue;
            }
            if ((m = SIZE_INFIX.matcher(w)).matches() && params == null) {
                params = number(m.group(1) + "." + m.group(3), m.group(2));
                afterSize = true;
                out.add(new Token(w, Kind.SIZE, "size label: about " + m.group(1) + "." + m.group(3) + m.group(2).toUpperCase()
                        + " parameters (BLOOM writes the decimal point as the unit letter)", "SizeLabel"));
                continue;
            }
            if ((m = SIZE.matcher(w)).matches() && params == null) {
                params = number(m.group(1), m.group(2));
                afterSize = true;
                out.add(new Token(w, Kind.SIZE, String.format("size label: about %s parameters", words(params)), "SizeLabel"));
                continue;
            }
            if ((m = CONTEXT.matcher(w)).matches()) {
                context = Integer.parseInt(m.group(1)) * 1024;
                out.add(new Token(w, Kind.CONTEXT, "context length: " + m.group(1) + "K tokens (" + String.format("%,d", context) + ")", "FineTune"));
                continue;
            }
            if ((m = VERSION.matcher(w)).matches()) {
                version = version == null ? m.group(1) : version;
                out.add(new Token(w, Kind.VERSION, "version " + m.group(1) + " of this model", "Version"));
                continue;
            }
            if (NUMBER.matcher(w).matches()) {
                Token prev = out.isEmpty() ? null : out.get(out.size() - 1);
                if (prev != null && prev.kind() == Kind.FAMILY) {
                    if (version == null) version = w;
                    out.add(new Token(w, Kind.VERSION, "generation " + w + " of " + lastFamily, "BaseName"));
                } else if (w.length() == 4 && w.matches("2\\d[01]\\d")) {
                    out.add(new Token(w, Kind.VERSION, "release date 20" + w.substring(0, 2) + "-" + w.substring(2) + " (YYMM)", "Version"));
                } else if (prev != null && prev.kind() == Kind.VERSION && w.matches("\\d+")) {
                    out.add(new Token(w, Kind.VERSION, "minor version ." + w, "Version"));
                } else {
                    out.add(new Token(w, Kind.UNKNOWN, "a number we cannot place", ""));
                }
                continue;
            }
            if (QUANT.matcher(w).matches() || ENCODING.containsKey(lw)) {
                encoding = w.toUpperCase(Locale.ROOT);
                out.add(new Token(w, Kind.ENCODING, encodingMeaning(w), "Encoding"));
                continue;
            }
            if (lw.equals("gguf") || lw.equals("ggml") || lw.startsWith("ggmlv")) {
                out.add(new Token(w, Kind.FORMAT, lw.equals("gguf") ? "a repository of GGUF files (llama.cpp's format)"
                        : "the older GGML file format of llama.cpp (replaced by GGUF in 2023)", ""));
                continue;
            }
            if (lw.equals("hf")) {
                out.add(new Token(w, Kind.FORMAT, "converted to Hugging Face transformers layout", ""));
                continue;
            }
            if (lw.equals("uncased") || lw.equals("cased")) {
                out.add(new Token(w, Kind.CASING, lw.equals("uncased") ? "text lower-cased before tokenising" : "keeps upper/lower case", ""));
                continue;
            }
            boolean encoderFamily = family != null && family.matches(".*(BERT|T5|RoBERTa|DeBERTa|ALBERT|ViT|CLIP|BART|Whisper).*");
            if (SCALE.containsKey(lw) && (!lw.equals("base") || encoderFamily || params == null && isLast(words, i) && encoderFamily)) {
                out.add(new Token(w, Kind.SCALE, "scale: " + SCALE.get(lw), "SizeLabel"));
                continue;
            }
            if (PURPOSE.containsKey(lw)) {
                purposes.add(lw);
                out.add(new Token(w, Kind.PURPOSE, "purpose: " + PURPOSE.get(lw), "FineTune"));
                continue;
            }
            if (TRAINING.containsKey(lw)) {
                out.add(new Token(w, Kind.TRAINING, "training: " + TRAINING.get(lw),
                        gguf && (lw.equals("lora") || lw.equals("adapter")) ? "Type" : "FineTune"));
                continue;
            }
            if (MODALITY.containsKey(lw)) {
                out.add(new Token(w, Kind.MODALITY, "modality: " + MODALITY.get(lw), "FineTune"));
                continue;
            }
            if (lw.equals("vocab")) {
                out.add(new Token(w, Kind.TYPE, "GGUF type: a vocabulary-only file (tokenizer, no weights)", "Type"));
                continue;
            }
            if (OTHER.containsKey(lw)) {
                out.add(new Token(w, Kind.OTHER, OTHER.get(lw), "FineTune"));
                continue;
            }
            if (lw.equals("moe")) {
                out.add(new Token(w, Kind.OTHER, "mixture of experts architecture", "SizeLabel"));
                continue;
            }
            if (lw.equals("long") || lw.equals("longctx")) {
                out.add(new Token(w, Kind.CONTEXT, "extended context length", "FineTune"));
                continue;
            }
            if (family == null) {
                out.add(new Token(w, Kind.FAMILY, "a name we do not know: read as the model's base name", "BaseName"));
                family = w;
                lastFamily = w;
                continue;
            }
            out.add(new Token(w, Kind.UNKNOWN, "not a convention we know (a project or dataset name?)", gguf ? "FineTune" : ""));
        }
        if (format != null) {
            out.add(new Token("." + format, Kind.FORMAT, switch (format) {
                case "gguf" -> "GGUF file: llama.cpp's single-file format, metadata + tensors (ggml docs/gguf.md)";
                case "safetensors" -> "safetensors file: JSON header + raw tensors (huggingface/safetensors)";
                case "bin", "pt", "pth" -> "PyTorch pickle checkpoint (loading runs pickle: trust the source)";
                case "onnx" -> "ONNX graph with weights";
                default -> "GGML file (pre-GGUF llama.cpp)";
            }, ""));
        }
        Optional<ModelSpec> cat = catalog(family, version, params, experts, out);
        Optional<ModelSpec> nearest = cat.isPresent() || params == null ? Optional.empty() : nearest(params, experts, active != null);
        return new Decoded(input, out, family, version, params, experts, active, context, encoding, format, shard, purposes, cat, nearest);
    }

    private static boolean isLast(List<String> words, int i) { return i == words.size() - 1; }

    private static String pub(String org) {
        String p = PUBLISHERS.get(org.toLowerCase(Locale.ROOT));
        return p == null ? "" : " (" + p + ")";
    }

    private static String familyKey(String lw) {
        for (String k : FAMILIES.keySet()) {
            if (lw.equals(k)) return k;
            if (lw.startsWith(k)) {
                String rest = lw.substring(k.length());
                if (rest.matches("\\d+(\\.\\d+)*") || rest.matches("[a-z]{1,3}") && !k.equals("phi") && !k.equals("yi") && !k.equals("opt")
                        && !k.equals("gpt") && !k.equals("vit") && !k.equals("glm")) return k;
            }
        }
        return null;
    }

    static double number(String digits, String unit) {
        double v = Double.parseDouble(digits);
        return v * switch (unit.toLowerCase(Locale.ROOT)) {
            case "m" -> 1e6;
            case "b" -> 1e9;
            case "t" -> 1e12;
            default -> 1;
        };
    }

    static String words(double n) {
        if (n >= 1e12) return trim(n / 1e12) + " trillion";
        if (n >= 1e9) return trim(n / 1e9) + " billion";
        return trim(n / 1e6) + " million";
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    static String encodingMeaning(String w) {
        String lw = w.toLowerCase(Locale.ROOT);
        if (ENCODING.containsKey(lw)) return "encoding: " + ENCODING.get(lw);
        Matcher m = QUANT.matcher(w);
        m.matches();
        String bits = m.group(1).replaceAll("(?i)i?q", "");
        StringBuilder sb = new StringBuilder("encoding: llama.cpp quantisation, about " + bits + " bits per weight");
        if (lw.startsWith("iq")) sb.append(", i-quant (importance-weighted codebooks)");
        if (m.group(2) != null) sb.append(", k-quant (super-blocks of 256 with per-block scales)");
        else if (lw.endsWith("_0")) sb.append(", legacy blocks of 32 with one fp16 scale");
        else if (lw.endsWith("_1")) sb.append(", legacy blocks of 32 with a scale and a minimum");
        String suf = m.group(3) == null ? "" : m.group(3).substring(1).toLowerCase(Locale.ROOT);
        switch (suf) {
            case "s" -> sb.append("; S = small mix (fewer tensors get more bits)");
            case "m" -> sb.append("; M = medium mix (some tensors, e.g. attn_v and ffn_down, get more bits)");
            case "l" -> sb.append("; L = large mix");
            case "xs", "xxs" -> sb.append("; " + suf.toUpperCase() + " = extra small");
            default -> { }
        }
        return sb.toString();
    }

    /** The catalog entry this name's family, version and size point at, if any. */
    static Optional<ModelSpec> catalog(String family, String version, Double params, Integer experts, List<Token> tokens) {
        if (family == null) return Optional.empty();
        String f = family.toLowerCase(Locale.ROOT);
        String size = tokens.stream().filter(t -> t.kind() == Kind.SIZE || t.kind() == Kind.EXPERTS).map(t -> t.text().toLowerCase())
                .findFirst().orElse(null);
        String scale = tokens.stream().filter(t -> t.kind() == Kind.SCALE).map(t -> t.text().toLowerCase()).findFirst().orElse(null);
        List<String> keys = new ArrayList<>();
        if (f.equals("llama") && version != null && size != null) keys.add("llama-" + version + "-" + size);
        if ((f.equals("mistral") || f.equals("mixtral")) && size != null) keys.add(f + "-" + size);
        if (f.equals("qwen") && version != null && size != null) keys.add("qwen" + version + "-" + size);
        if (f.equals("gpt") && "2".equals(version)) keys.add(scale == null || scale.equals("small") ? "gpt2" : "gpt2-" + scale);
        if (f.equals("bert") && "base".equals(scale)) keys.add("bert-base");
        for (String k : keys) {
            Optional<ModelSpec> m = ModelCatalog.find(k);
            if (m.isPresent()) return m;
        }
        return Optional.empty();
    }

    /** The catalog model closest in parameter count (within a factor 1.5), for a size-only suggestion. */
    static Optional<ModelSpec> nearest(double params, Integer experts, boolean activeGiven) {
        boolean moe = experts != null || activeGiven;
        ModelSpec best = null;
        double bestRatio = 1.5;
        for (ModelSpec m : ModelCatalog.all()) {
            if (moe != m.moe()) continue;
            double nominal = experts != null ? params * experts : params;   // 8x7B: 56B nominal, 46.7B real
            double r = Math.max(nominal / m.parameters(), m.parameters() / nominal);
            if (r < bestRatio) { bestRatio = r; best = m; }
        }
        return Optional.ofNullable(best);
    }
}
