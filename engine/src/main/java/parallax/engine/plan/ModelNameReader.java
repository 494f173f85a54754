package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parallax.engine.plan.ModelName.Decoded;
import parallax.engine.plan.ModelName.Kind;
import parallax.engine.plan.ModelName.Token;
import parallax.engine.plan.ModelNameWords.Family;

/**
 * Reads the words of one name left to right. Each word goes to the first step that knows
 * it, in this order: shard, publisher, family, size (experts, active, total), context and
 * version, bare numbers, encoding, file kind and casing, the descriptive words (scale,
 * purpose, training, modality, type, other), and last the words nobody knows. What a word
 * means can depend on what came before it (a number after a family is its generation,
 * "A14B" counts only after a size), so the reader keeps what it has found so far.
 * One reader per name.
 */
final class ModelNameReader {

    private static final Pattern QUANT = Pattern.compile("(?i)^(i?q\\d)(_k)?(_[a-z0-9]+)?$");
    private static final Pattern SIZE = Pattern.compile("(?i)^(\\d+(?:\\.\\d+)?)([mbt])$");
    private static final Pattern SIZE_INFIX = Pattern.compile("(?i)^(\\d+)([mb])(\\d+)$");
    private static final Pattern MOE = Pattern.compile("(?i)^(\\d+)x(\\d+(?:\\.\\d+)?)([mbt])$");
    private static final Pattern ACTIVE = Pattern.compile("(?i)^a(\\d+(?:\\.\\d+)?)([mb])$");
    private static final Pattern CONTEXT = Pattern.compile("(?i)^(\\d+)k$");
    private static final Pattern VERSION = Pattern.compile("(?i)^v(\\d+(?:\\.\\d+)*)$");
    private static final Pattern NUMBER = Pattern.compile("^\\d+(?:\\.\\d+)*$");
    private static final Pattern ENCODER_FAMILY = Pattern.compile(".*(BERT|T5|RoBERTa|DeBERTa|ALBERT|ViT|CLIP|BART|Whisper).*");

    private final ModelNameParts parts;
    private final boolean gguf;
    private final List<Token> tokens = new ArrayList<>();
    private final List<String> purposes = new ArrayList<>();
    private String family;
    private String version;
    private String encoding;
    private Double params;
    private Double active;
    private Integer experts;
    private Integer context;
    private boolean afterSize;
    /** The family a following bare number is a generation of. */
    private String lastFamily;

    ModelNameReader(ModelNameParts parts) {
        this.parts = parts;
        this.gguf = "gguf".equals(parts.format());
    }

    Decoded read(String input) {
        String org = parts.organisation();
        if (org != null) tokens.add(new Token(org, Kind.PUBLISHER, "publisher / Hub organisation" + publisherNote(org), ""));
        List<String> words = parts.words();
        for (int i = 0; i < words.size(); i++) readWord(words.get(i), i == words.size() - 1);
        if (parts.format() != null) tokens.add(fileFormat(parts.format()));
        Optional<ModelSpec> cat = ModelName.catalog(family, version, tokens);
        Optional<ModelSpec> nearest = cat.isPresent() || params == null ? Optional.empty() : ModelName.nearest(params, experts, active != null);
        return new Decoded(input, tokens, family, version, params, experts, active, context, encoding, parts.format(),
                parts.shard(), purposes, cat, nearest);
    }

    private void readWord(String w, boolean last) {
        String lw = w.toLowerCase(Locale.ROOT);
        boolean read = shard(w) || publisher(w, lw, last) || family(w, lw) || experts(w) || active(w) || size(w)
                || contextOrVersion(w) || number(w) || encoding(w, lw) || formatOrCasing(w, lw) || scale(w, lw)
                || tuning(w, lw) || otherWord(w, lw);
        if (!read) unknown(w);
    }

    private boolean shard(String w) {
        if (!w.equals(ModelNameParts.SHARD_MARK)) return false;
        Matcher g = ModelNameParts.SHARD.matcher(parts.shard());
        g.find();
        tokens.add(new Token(parts.shard(), Kind.SHARD, "shard " + Integer.parseInt(g.group(1)) + " of " + Integer.parseInt(g.group(2))
                + " (the weights are split across files)", "Shard"));
        return true;
    }

    /** "Meta-Llama-3": a publisher word before the family (never the whole name's last word). */
    private boolean publisher(String w, String lw, boolean last) {
        if (family != null || !ModelNameWords.PUBLISHERS.containsKey(lw) || last) return false;
        tokens.add(new Token(w, Kind.PUBLISHER, "publisher: " + ModelNameWords.PUBLISHERS.get(lw), "BaseName"));
        return true;
    }

    /** The first family word names the model (FLAN is followed by the model it tuned); a later one is what it is built on. */
    private boolean family(String w, String lw) {
        Family f = ModelNameWords.family(lw);
        if (f == null) return false;
        String rest = lw.substring(f.key().length());
        if (family == null || family.equals("FLAN")) {
            String meaning = "architecture family " + f.display() + ": " + f.what();
            if (f.key().equals("codellama")) purposes.add("code");
            family = family == null ? f.display() : family + "-" + f.display();
            if (!rest.isEmpty() && rest.matches("\\d+(\\.\\d+)*") && !f.key().equals("t5") && !f.key().equals("e5")) {
                version = rest;
                meaning += "; version " + rest;
            } else if (!rest.isEmpty()) {
                meaning += "; '" + w.substring(f.key().length()) + "' variant";
            }
            tokens.add(new Token(w, Kind.FAMILY, meaning, "BaseName"));
        } else {
            tokens.add(new Token(w, Kind.FAMILY, "built on " + f.display() + (rest.matches("\\d+(\\.\\d+)*") ? " " + rest : "")
                    + " (" + f.what() + "): this model is derived from it", "BaseName"));
        }
        lastFamily = f.display();
        return true;
    }

    /** "8x7B": a mixture of experts. */
    private boolean experts(String w) {
        Matcher m = MOE.matcher(w);
        if (!m.matches()) return false;
        experts = Integer.parseInt(m.group(1));
        params = number(m.group(2), m.group(3));
        afterSize = true;
        String each = m.group(2) + m.group(3).toUpperCase();
        tokens.add(new Token(w, Kind.EXPERTS, "mixture of experts: " + experts + " experts of about " + each
                + " each; attention and embeddings are shared, so the total is less than "
                + experts + " x " + each + ", and each token uses only its top-k experts", "SizeLabel"));
        return true;
    }

    /** "A14B" after a size: parameters active per token. */
    private boolean active(String w) {
        if (!afterSize) return false;
        Matcher m = ACTIVE.matcher(w);
        if (!m.matches()) return false;
        active = number(m.group(1), m.group(2));
        tokens.add(new Token(w, Kind.ACTIVE, "mixture of experts: about " + m.group(1) + m.group(2).toUpperCase()
                + " parameters active per token (of the total size before it)", "SizeLabel"));
        return true;
    }

    /** The first size label: "7B", "0.5B", or BLOOM's "7b1". */
    private boolean size(String w) {
        if (params != null) return false;
        Matcher m = SIZE_INFIX.matcher(w);
        if (m.matches()) {
            params = number(m.group(1) + "." + m.group(3), m.group(2));
            afterSize = true;
            tokens.add(new Token(w, Kind.SIZE, "size label: about " + m.group(1) + "." + m.group(3) + m.group(2).toUpperCase()
                    + " parameters (BLOOM writes the decimal point as the unit letter)", "SizeLabel"));
            return true;
        }
        m = SIZE.matcher(w);
        if (!m.matches()) return false;
        params = number(m.group(1), m.group(2));
        afterSize = true;
        tokens.add(new Token(w, Kind.SIZE, String.format("size label: about %s parameters", words(params)), "SizeLabel"));
        return true;
    }

    /** "32k" context, "v0.1" version. */
    private boolean contextOrVersion(String w) {
        Matcher m = CONTEXT.matcher(w);
        if (m.matches()) {
            context = Integer.parseInt(m.group(1)) * 1024;
            tokens.add(new Token(w, Kind.CONTEXT, "context length: " + m.group(1) + "K tokens (" + String.format("%,d", context) + ")", "FineTune"));
            return true;
        }
        m = VERSION.matcher(w);
        if (!m.matches()) return false;
        version = version == null ? m.group(1) : version;
        tokens.add(new Token(w, Kind.VERSION, "version " + m.group(1) + " of this model", "Version"));
        return true;
    }

    /** A bare number: a family's generation, a YYMM release date, a minor version, or unplaced. */
    private boolean number(String w) {
        if (!NUMBER.matcher(w).matches()) return false;
        Token prev = tokens.isEmpty() ? null : tokens.get(tokens.size() - 1);
        if (prev != null && prev.kind() == Kind.FAMILY) {
            if (version == null) version = w;
            tokens.add(new Token(w, Kind.VERSION, "generation " + w + " of " + lastFamily, "BaseName"));
        } else if (w.length() == 4 && w.matches("2\\d[01]\\d")) {
            tokens.add(new Token(w, Kind.VERSION, "release date 20" + w.substring(0, 2) + "-" + w.substring(2) + " (YYMM)", "Version"));
        } else if (prev != null && prev.kind() == Kind.VERSION && w.matches("\\d+")) {
            tokens.add(new Token(w, Kind.VERSION, "minor version ." + w, "Version"));
        } else {
            tokens.add(new Token(w, Kind.UNKNOWN, "a number we cannot place", ""));
        }
        return true;
    }

    private boolean encoding(String w, String lw) {
        if (!QUANT.matcher(w).matches() && !ModelNameWords.ENCODING.containsKey(lw)) return false;
        encoding = w.toUpperCase(Locale.ROOT);
        tokens.add(new Token(w, Kind.ENCODING, encodingMeaning(w), "Encoding"));
        return true;
    }

    /** "GGUF" / "ggmlv3" / "hf" in the name (not the extension), and "cased" / "uncased". */
    private boolean formatOrCasing(String w, String lw) {
        if (lw.equals("gguf") || lw.equals("ggml") || lw.startsWith("ggmlv")) {
            tokens.add(new Token(w, Kind.FORMAT, lw.equals("gguf") ? "a repository of GGUF files (llama.cpp's format)"
                    : "the older GGML file format of llama.cpp (replaced by GGUF in 2023)", ""));
        } else if (lw.equals("hf")) {
            tokens.add(new Token(w, Kind.FORMAT, "converted to Hugging Face transformers layout", ""));
        } else if (lw.equals("uncased") || lw.equals("cased")) {
            tokens.add(new Token(w, Kind.CASING, lw.equals("uncased") ? "text lower-cased before tokenising" : "keeps upper/lower case", ""));
        } else {
            return false;
        }
        return true;
    }

    /** "large", "mini"...; "base" is a size only for encoder families (BERT-base), elsewhere it is training. */
    private boolean scale(String w, String lw) {
        boolean encoderFamily = family != null && ENCODER_FAMILY.matcher(family).matches();
        if (!ModelNameWords.SCALE.containsKey(lw) || lw.equals("base") && !encoderFamily) return false;
        tokens.add(new Token(w, Kind.SCALE, "scale: " + ModelNameWords.SCALE.get(lw), "SizeLabel"));
        return true;
    }

    /** Purpose, training and modality words: the GGUF convention's FineTune field (an adapter is its Type). */
    private boolean tuning(String w, String lw) {
        if (ModelNameWords.PURPOSE.containsKey(lw)) {
            purposes.add(lw);
            tokens.add(new Token(w, Kind.PURPOSE, "purpose: " + ModelNameWords.PURPOSE.get(lw), "FineTune"));
        } else if (ModelNameWords.TRAINING.containsKey(lw)) {
            tokens.add(new Token(w, Kind.TRAINING, "training: " + ModelNameWords.TRAINING.get(lw),
                    gguf && (lw.equals("lora") || lw.equals("adapter")) ? "Type" : "FineTune"));
        } else if (ModelNameWords.MODALITY.containsKey(lw)) {
            tokens.add(new Token(w, Kind.MODALITY, "modality: " + ModelNameWords.MODALITY.get(lw), "FineTune"));
        } else {
            return false;
        }
        return true;
    }

    private boolean otherWord(String w, String lw) {
        if (lw.equals("vocab")) {
            tokens.add(new Token(w, Kind.TYPE, "GGUF type: a vocabulary-only file (tokenizer, no weights)", "Type"));
        } else if (ModelNameWords.OTHER.containsKey(lw)) {
            tokens.add(new Token(w, Kind.OTHER, ModelNameWords.OTHER.get(lw), "FineTune"));
        } else if (lw.equals("moe")) {
            tokens.add(new Token(w, Kind.OTHER, "mixture of experts architecture", "SizeLabel"));
        } else if (lw.equals("long") || lw.equals("longctx")) {
            tokens.add(new Token(w, Kind.CONTEXT, "extended context length", "FineTune"));
        } else {
            return false;
        }
        return true;
    }

    /** A word nobody knows: the base name if none was found yet, else reported as unknown (never guessed). */
    private void unknown(String w) {
        if (family == null) {
            tokens.add(new Token(w, Kind.FAMILY, "a name we do not know: read as the model's base name", "BaseName"));
            family = w;
            lastFamily = w;
            return;
        }
        tokens.add(new Token(w, Kind.UNKNOWN, "not a convention we know (a project or dataset name?)", gguf ? "FineTune" : ""));
    }

    private static Token fileFormat(String format) {
        return new Token("." + format, Kind.FORMAT, switch (format) {
            case "gguf" -> "GGUF file: llama.cpp's single-file format, metadata + tensors (ggml docs/gguf.md)";
            case "safetensors" -> "safetensors file: JSON header + raw tensors (huggingface/safetensors)";
            case "bin", "pt", "pth" -> "PyTorch pickle checkpoint (loading runs pickle: trust the source)";
            case "onnx" -> "ONNX graph with weights";
            default -> "GGML file (pre-GGUF llama.cpp)";
        }, "");
    }

    private static String publisherNote(String org) {
        String p = ModelNameWords.PUBLISHERS.get(org.toLowerCase(Locale.ROOT));
        return p == null ? "" : " (" + p + ")";
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

    /** A named encoding's meaning, or a llama.cpp quantisation label read part by part (IQ2_XXS, Q4_K_M, Q8_0). */
    static String encodingMeaning(String w) {
        String lw = w.toLowerCase(Locale.ROOT);
        if (ModelNameWords.ENCODING.containsKey(lw)) return "encoding: " + ModelNameWords.ENCODING.get(lw);
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
}
