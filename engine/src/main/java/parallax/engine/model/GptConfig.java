package parallax.engine.model;

import java.util.List;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;

/**
 * Shape of the decoder-only GPT: {@code layers} pre-LayerNorm blocks of width
 * {@code hidden} with {@code heads} attention heads, a byte-level vocabulary and a
 * context of {@code sequence} tokens. Dropout is off (0) so that runs are deterministic
 * and every parallel layout can be compared with the single-process one.
 */
public record GptConfig(String name, int layers, int hidden, int heads, int vocab, int sequence, double dropout, Moe moe) {

    /**
     * A mixture of experts in place of each block's MLP (Shazeer et al. 2017): {@code experts}
     * MLPs of the dense shape and a router that sends each token to its {@code topK} most
     * probable experts, their gates renormalised over the k (Mixtral, Jiang et al. 2024).
     * {@code capacityFactor}: each expert takes at most ceil(cf x tokens x k / E) tokens of a
     * micro-batch, the rest are dropped (Switch Transformer, Fedus et al. 2021); 0 drops
     * none. {@code sharedExpert}: one more MLP every token goes through (DeepSeek-V3).
     * {@code auxLossWeight}: alpha of Switch's load-balancing loss alpha x E x sum f_i P_i.
     */
    public record Moe(int experts, int topK, double capacityFactor, boolean sharedExpert, double auxLossWeight) {
        /** Switch Transformer's alpha (Fedus et al. 2021, section 2.2). */
        public static final double DEFAULT_AUX_WEIGHT = 0.01;

        public Moe {
            if (experts < 1) throw new UserError("--experts must be at least 1, not " + experts);
            if (topK < 1 || topK > experts)
                throw new UserError("--top-k must be between 1 and the number of experts (" + experts + "), not " + topK);
            if (!(capacityFactor >= 0) || Double.isInfinite(capacityFactor))
                throw new UserError("--capacity-factor must be 0 (no token dropped) or a positive number, not " + capacityFactor);
            if (!(auxLossWeight >= 0) || Double.isInfinite(auxLossWeight))
                throw new UserError("the auxiliary loss weight must be 0 or a positive number, not " + auxLossWeight);
        }

        /** Tokens an expert takes from {@code tokens} routed ones: ceil(cf x tokens x k / E); MAX_VALUE when cf is 0. */
        public long capacity(long tokens) {
            if (capacityFactor == 0) return Long.MAX_VALUE;
            return (long) Math.ceil(capacityFactor * tokens * topK / experts);
        }

        /** E8 k2 cf1.25 +shared */
        public String label() {
            return "E" + experts + " top" + topK + (capacityFactor == 0 ? "" : " cf" + capacityFactor) + (sharedExpert ? " +shared" : "");
        }
    }

    /** A dense model (no experts). */
    public GptConfig(String name, int layers, int hidden, int heads, int vocab, int sequence, double dropout) {
        this(name, layers, hidden, heads, vocab, sequence, dropout, null);
    }

    public GptConfig {
        if (layers < 1 || hidden < 1 || heads < 1 || vocab < 2 || sequence < 2)
            throw new UserError("model shape must be positive: layers " + layers + ", hidden " + hidden
                    + ", heads " + heads + ", vocab " + vocab + ", sequence " + sequence);
        if (hidden % heads != 0)
            throw new UserError("hidden " + hidden + " is not divisible by heads " + heads);
        if (dropout != 0) throw new UserError("dropout is not supported (runs must be deterministic); use 0");
    }

    /** For tests: 4 blocks so that pp 2 and 4 divide, 4 heads so that tp 2 and 4 divide. */
    public static GptConfig tiny() { return new GptConfig("tiny", 4, 32, 4, 256, 32, 0); }

    /** For benchmarks and lessons on a small CPU box. */
    public static GptConfig small() { return new GptConfig("small", 4, 128, 8, 256, 64, 0); }

    /** A bit larger, to make memory charts readable. */
    public static GptConfig medium() { return new GptConfig("medium", 8, 256, 8, 256, 128, 0); }

    /**
     * GPT-2 small's shape (Radford et al. 2019: 12 layers, 768 wide, 12 heads, 1024
     * positions) with the byte vocabulary: about 86 M parameters, a model worth a GPU.
     */
    public static GptConfig gpt2Small() { return new GptConfig("gpt2-124m", 12, 768, 12, 256, 1024, 0); }

    /**
     * Long context on a small model: 1,024 tokens through 4 narrow blocks, so activations
     * (the T x T attention scores above all) outweigh the weights many times over, as at
     * 128k tokens on a real model; the preset for sequence and context parallelism.
     */
    public static GptConfig longContext() { return new GptConfig("long", 4, 64, 4, 256, 1024, 0); }

    /**
     * tiny's shape with 4 experts per block, top-2 routing, capacity factor 1.25 (Switch's
     * training value) and no shared expert: the preset for mixtures of experts.
     */
    public static GptConfig moeTiny() {
        return new GptConfig("moe-tiny", 4, 32, 4, 256, 32, 0, new Moe(4, 2, 1.25, false, Moe.DEFAULT_AUX_WEIGHT));
    }

    public static List<String> presetNames() { return List.of("tiny", "moe-tiny", "small", "medium", "long", "gpt2-124m"); }

    public static GptConfig preset(String name) {
        switch (name) {
            case "tiny": return tiny();
            case "moe-tiny": return moeTiny();
            case "small": return small();
            case "medium": return medium();
            case "long": return longContext();
            case "gpt2-124m": return gpt2Small();
            default:
                throw new UserError("unknown model '" + name + "'" + DidYouMean.hint(name, presetNames())
                        + " (presets: " + String.join(", ", presetNames()) + ")");
        }
    }

    public int headDim() { return hidden / heads; }

    public int ffn() { return 4 * hidden; }

    /** Parameter count of this exact model (untied embeddings, biases, LayerNorms). */
    public long parameterCount() {
        long h = hidden;
        long mlp = (h * ffn() + ffn()) + (ffn() * h + h);
        long mlps = moe == null ? mlp : (moe.experts() + (moe.sharedExpert() ? 1 : 0)) * mlp + (long) moe.experts() * h;
        long block = 2 * (2 * h) + 4 * (h * h + h) + mlps;
        return (long) vocab * h + (long) sequence * h + layers * block + 2 * h + (long) vocab * h;
    }

    /**
     * Parameters one token goes through: every parameter but the experts it is not routed to
     * (all of them for a dense model). Training FLOPs follow these (6 x active x tokens).
     */
    public long activeParameterCount() {
        if (moe == null) return parameterCount();
        long h = hidden, mlp = (h * ffn() + ffn()) + (ffn() * h + h);
        return parameterCount() - (long) layers * (moe.experts() - moe.topK()) * mlp;
    }

    public boolean isMoe() { return moe != null; }

    /** This shape with a mixture of experts in each block (null: dense). */
    public GptConfig withMoe(Moe m) { return new GptConfig(name, layers, hidden, heads, vocab, sequence, dropout, m); }

    public GptConfig withLayers(int l) { return new GptConfig(name, l, hidden, heads, vocab, sequence, dropout, moe); }

    /** This shape with any of layers, hidden, heads, sequence replaced (null: keep); named "custom" when changed. */
    public GptConfig reshaped(Integer layers, Integer hidden, Integer heads, Integer sequence) {
        if (layers == null && hidden == null && heads == null && sequence == null) return this;
        return new GptConfig("custom", layers != null ? layers : this.layers, hidden != null ? hidden : this.hidden,
                heads != null ? heads : this.heads, vocab, sequence != null ? sequence : this.sequence, dropout, moe);
    }
}
