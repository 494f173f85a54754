package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
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

    private ModelName() {}

    /** Splits the name into its parts, then reads the words one by one (see {@link ModelNameReader}). */
    public static Decoded decode(String input) {
        if (input == null || input.isBlank()) throw new UserError("give a model name, e.g. %model Mixtral-8x7B-Instruct-v0.1");
        return new ModelNameReader(ModelNameParts.split(input.trim())).read(input);
    }

    /** The catalog entry this name's family, version and size point at, if any. */
    static Optional<ModelSpec> catalog(String family, String version, List<Token> tokens) {
        if (family == null) return Optional.empty();
        String f = family.toLowerCase(Locale.ROOT);
        String size = tokens.stream().filter(t -> t.kind() == Kind.SIZE || t.kind() == Kind.EXPERTS).map(t -> t.text().toLowerCase())
                .findFirst().orElse(null);
        String scale = tokens.stream().filter(t -> t.kind() == Kind.SCALE).map(t -> t.text().toLowerCase()).findFirst().orElse(null);
        List<String> keys = new ArrayList<>();
        if (f.equals("llama") && version != null && size != null) keys.add("llama-" + version + "-" + size);
        if ((f.equals("mistral") || f.equals("mixtral")) && size != null) keys.add(f + "-" + size);
        String active = tokens.stream().filter(t -> t.kind() == Kind.ACTIVE).map(t -> t.text().toLowerCase()).findFirst().orElse(null);
        if (f.equals("qwen") && version != null && size != null && active != null) keys.add("qwen" + version + "-" + size + "-" + active);
        if (f.equals("qwen") && version != null && size != null) keys.add("qwen" + version + "-" + size);
        if (f.equals("deepseek") && version != null) keys.add("deepseek-v" + version);
        boolean oss = tokens.stream().anyMatch(t -> t.text().equalsIgnoreCase("oss"));
        if (f.equals("gpt") && oss && size != null) keys.add("gpt-oss-" + size);
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
