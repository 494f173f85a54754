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
public record GptConfig(String name, int layers, int hidden, int heads, int vocab, int sequence, double dropout) {

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

    public static List<String> presetNames() { return List.of("tiny", "small", "medium", "long", "gpt2-124m"); }

    public static GptConfig preset(String name) {
        switch (name) {
            case "tiny": return tiny();
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
        long block = 2 * (2 * h) + 4 * (h * h + h) + (h * ffn() + ffn()) + (ffn() * h + h);
        return (long) vocab * h + (long) sequence * h + layers * block + 2 * h + (long) vocab * h;
    }

    public GptConfig withLayers(int l) { return new GptConfig(name, l, hidden, heads, vocab, sequence, dropout); }

    /** This shape with any of layers, hidden, heads, sequence replaced (null: keep); named "custom" when changed. */
    public GptConfig reshaped(Integer layers, Integer hidden, Integer heads, Integer sequence) {
        if (layers == null && hidden == null && heads == null && sequence == null) return this;
        return new GptConfig("custom", layers != null ? layers : this.layers, hidden != null ? hidden : this.hidden,
                heads != null ? heads : this.heads, vocab, sequence != null ? sequence : this.sequence, dropout);
    }
}
