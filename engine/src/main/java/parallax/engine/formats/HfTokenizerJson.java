package parallax.engine.formats;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import parallax.engine.UserError;

/**
 * Reads a Hugging Face {@code tokenizer.json} (the "tokenizers" library's file) of model
 * type BPE, and {@code tokenizer_config.json} beside it for the special tokens, whether to
 * add BOS/EOS, and the chat template. Two shapes are accepted (docs/formats.md#tokenizers):
 * <ul>
 * <li>BPE with {@code byte_fallback} (Llama 2, Mistral: converted from SentencePiece):
 *     normalizer Prepend("▁") + Replace(" ", "▁"), or pre-tokenizer Metaspace; becomes GGUF
 *     model "llama" with score −rank for each token a merge makes.</li>
 * <li>byte-level BPE (GPT-2, Llama 3, Qwen 2): pre-tokenizer ByteLevel, alone (GPT-2's
 *     regex) or after a Split regex; becomes GGUF model "gpt2" with the merges and the
 *     regex's llama.cpp name.</li>
 * </ul>
 * Anything else (Unigram, WordPiece, WordLevel models; normalizers or pre-tokenizers llama.cpp
 * does not reproduce; merges naming tokens that are not in the vocabulary) is refused in one
 * line naming the file and what is wrong.
 */
final class HfTokenizerJson {

    private HfTokenizerJson() {}

    /** GPT-2's pre-tokenizer regex (the ByteLevel pre-tokenizer's own, use_regex true). */
    static final String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    /** Split regexes of published byte-level tokenizers, by llama.cpp's name for them (tokenizer.ggml.pre). */
    static final Map<String, String> KNOWN_SPLITS = Map.of(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2",
            GPT2_REGEX, "gpt-2");

    static Tokenizer read(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        String name = file.getFileName().toString();
        JsonObject root = parse(file);
        JsonObject model = root.has("model") && root.get("model").isJsonObject() ? root.getAsJsonObject("model") : null;
        if (model == null) throw new UserError(name + ": no \"model\" object");
        String type = model.has("type") ? model.get("type").getAsString() : "BPE";
        if (!type.equals("BPE")) throw new UserError(name + ": model type " + type + " is not supported (BPE only: Llama, Mistral, Qwen, GPT-2 vocabularies)");
        if (!model.has("vocab") || !model.get("vocab").isJsonObject()) throw new UserError(name + ": the BPE model has no vocab object");
        boolean byteFallback = model.has("byte_fallback") && model.get("byte_fallback").getAsBoolean();
        boolean byteLevel = mentions(root.get("pre_tokenizer"), "ByteLevel");
        if (!byteFallback && !byteLevel)
            throw new UserError(name + ": a BPE vocabulary without byte_fallback or a ByteLevel pre-tokenizer is not one llama.cpp reads");

        // the vocabulary by id, added tokens included
        Map<Integer, String> byId = new HashMap<>();
        for (Map.Entry<String, JsonElement> e : model.getAsJsonObject("vocab").entrySet()) put(byId, e.getValue().getAsInt(), e.getKey(), name);
        Map<Integer, Boolean> added = new HashMap<>();
        if (root.has("added_tokens") && root.get("added_tokens").isJsonArray()) {
            for (JsonElement a : root.getAsJsonArray("added_tokens")) {
                JsonObject o = a.getAsJsonObject();
                int id = o.get("id").getAsInt();
                String content = o.get("content").getAsString();
                if (byId.containsKey(id) && !byId.get(id).equals(content))
                    throw new UserError(name + ": added token " + Tokenizer.quote(content) + " reuses id " + id + " of " + Tokenizer.quote(byId.get(id)));
                byId.put(id, content);
                added.put(id, o.has("special") && o.get("special").getAsBoolean());
            }
        }
        int n = byId.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        List<String> tokens = new ArrayList<>(n);
        Tokenizer.TokenType[] types = new Tokenizer.TokenType[n];
        for (int i = 0; i < n; i++) {
            String t = byId.get(i);
            if (t == null) {
                tokens.add("[PAD" + i + "]"); // a gap in the ids: llama.cpp needs one token per id
                types[i] = Tokenizer.TokenType.UNUSED;
                continue;
            }
            tokens.add(t);
            if (added.containsKey(i)) types[i] = added.get(i) ? Tokenizer.TokenType.CONTROL : Tokenizer.TokenType.USER_DEFINED;
            else if (byteFallback && t.matches("<0x[0-9A-Fa-f]{2}>")) types[i] = Tokenizer.TokenType.BYTE;
            else types[i] = Tokenizer.TokenType.NORMAL;
        }
        Map<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < n; i++) ids.putIfAbsent(tokens.get(i), i);
        String unkToken = model.has("unk_token") && !model.get("unk_token").isJsonNull() ? model.get("unk_token").getAsString() : null;
        if (unkToken != null && ids.containsKey(unkToken)) types[ids.get(unkToken)] = Tokenizer.TokenType.UNKNOWN;

        List<String> merges = merges(model, name, ids);
        float[] scores = new float[n];
        if (byteFallback) {
            // llama.cpp joins SentencePiece pieces by score: the earliest merge making a token gives it score -rank
            java.util.Arrays.fill(scores, Float.NaN);
            for (int r = 0; r < merges.size(); r++) {
                String m = merges.get(r);
                int id = ids.get(m.replace(" ", ""));
                if (Float.isNaN(scores[id])) scores[id] = -r;
            }
            for (int i = 0; i < n; i++) {
                if (!Float.isNaN(scores[i])) continue;
                // no merge makes it: a character, a byte or a special token (0), or a longer piece that
                // BPE never reaches, which should lose to every merge
                scores[i] = types[i] == Tokenizer.TokenType.NORMAL && tokens.get(i).codePointCount(0, tokens.get(i).length()) > 1 ? -merges.size() : 0f;
            }
        }
        Tokenizer.Specials sp = specials(dir, ids, unkToken);
        if (byteFallback) {
            boolean prefix = mentions(root.get("normalizer"), "Prepend") || metaspacePrefix(root.get("pre_tokenizer"));
            checkSentencePieceShape(root, name);
            return new Tokenizer(Tokenizer.Kind.SENTENCEPIECE, name, tokens, scores, types, merges, sp, prefix, null, null,
                    model.has("ignore_merges") && model.get("ignore_merges").getAsBoolean(), true);
        }
        String regex = splitRegex(root.get("pre_tokenizer"), name);
        String pre = KNOWN_SPLITS.get(regex);
        if (pre == null) throw new UserError(name + ": the pre-tokenizer regex is not one llama.cpp knows by name (GPT-2, Llama 3, Qwen 2): " + Tokenizer.quote(regex));
        Pattern p;
        try {
            p = Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException e) {
            throw new UserError(name + ": the pre-tokenizer regex does not compile: " + e.getDescription());
        }
        return new Tokenizer(Tokenizer.Kind.BYTE_LEVEL, name, tokens, scores, types, merges, sp, false, pre, p,
                model.has("ignore_merges") && model.get("ignore_merges").getAsBoolean(), true);
    }

    private static JsonObject parse(Path file) {
        try {
            JsonElement e = JsonParser.parseString(Files.readString(file));
            if (!e.isJsonObject()) throw new UserError(file.getFileName() + ": not a JSON object");
            return e.getAsJsonObject();
        } catch (IOException e) {
            throw new UserError(file + ": cannot read: " + e.getMessage());
        } catch (RuntimeException e) {
            if (e instanceof UserError ue) throw ue;
            throw new UserError(file.getFileName() + ": not valid JSON: " + Safetensors.firstLine(e.getMessage()));
        }
    }

    private static void put(Map<Integer, String> byId, int id, String token, String name) {
        if (id < 0) throw new UserError(name + ": token " + Tokenizer.quote(token) + " has a negative id " + id);
        String before = byId.put(id, token);
        if (before != null) throw new UserError(name + ": id " + id + " is given to both " + Tokenizer.quote(before) + " and " + Tokenizer.quote(token));
    }

    /** The merges as "a b" strings (both of tokenizer.json's spellings), each checked against the vocabulary. */
    private static List<String> merges(JsonObject model, String name, Map<String, Integer> ids) {
        List<String> out = new ArrayList<>();
        if (!model.has("merges")) return out;
        JsonArray a = model.getAsJsonArray("merges");
        for (int r = 0; r < a.size(); r++) {
            JsonElement m = a.get(r);
            String left, right;
            if (m.isJsonArray() && m.getAsJsonArray().size() == 2) {
                left = m.getAsJsonArray().get(0).getAsString();
                right = m.getAsJsonArray().get(1).getAsString();
            } else if (m.isJsonPrimitive()) {
                String s = m.getAsString();
                int sp = s.indexOf(' ', 1);
                if (sp < 0) throw new UserError(name + ": merge " + r + " " + Tokenizer.quote(s) + " is not two tokens separated by a space");
                left = s.substring(0, sp);
                right = s.substring(sp + 1);
            } else {
                throw new UserError(name + ": merge " + r + " is neither \"a b\" nor [a, b]");
            }
            for (String t : new String[] {left, right, left + right}) {
                if (!ids.containsKey(t))
                    throw new UserError(name + ": merge " + r + " (" + Tokenizer.quote(left + " " + right) + ") does not match the vocabulary: "
                            + Tokenizer.quote(t) + " is not a token");
            }
            if (left.contains(" ") || right.contains(" "))
                throw new UserError(name + ": merge " + r + " joins tokens containing a space, which GGUF's \"a b\" merges cannot hold");
            out.add(left + " " + right);
        }
        return out;
    }

    /** Whether a normalizer/pre-tokenizer tree contains a step of type {@code type}. */
    private static boolean mentions(JsonElement e, String type) {
        if (e == null || e.isJsonNull()) return false;
        if (e.isJsonArray()) {
            for (JsonElement x : e.getAsJsonArray()) if (mentions(x, type)) return true;
            return false;
        }
        if (!e.isJsonObject()) return false;
        JsonObject o = e.getAsJsonObject();
        if (o.has("type") && type.equals(o.get("type").getAsString())) return true;
        for (String k : new String[] {"normalizers", "pretokenizers"}) if (mentions(o.get(k), type)) return true;
        return false;
    }

    private static boolean metaspacePrefix(JsonElement pre) {
        if (!mentions(pre, "Metaspace")) return false;
        JsonObject m = find(pre, "Metaspace");
        if (m.has("prepend_scheme")) return !m.get("prepend_scheme").getAsString().equals("never");
        return !m.has("add_prefix_space") || m.get("add_prefix_space").getAsBoolean();
    }

    private static JsonObject find(JsonElement e, String type) {
        if (e.isJsonObject()) {
            JsonObject o = e.getAsJsonObject();
            if (o.has("type") && type.equals(o.get("type").getAsString())) return o;
            for (String k : new String[] {"normalizers", "pretokenizers"}) {
                if (o.has(k)) for (JsonElement x : o.getAsJsonArray(k)) {
                    JsonObject f = find(x, type);
                    if (f != null) return f;
                }
            }
        }
        return null;
    }

    /** A SentencePiece-style tokenizer.json must only escape spaces (llama.cpp does nothing else to the text). */
    private static void checkSentencePieceShape(JsonObject root, String name) {
        for (String part : new String[] {"normalizer", "pre_tokenizer"}) {
            for (String t : types(root.get(part))) {
                if (!t.equals("Sequence") && !t.equals("Prepend") && !t.equals("Replace") && !t.equals("Metaspace"))
                    throw new UserError(name + ": " + part + " " + t + " is not supported for a SentencePiece-style vocabulary (llama.cpp only escapes spaces as ▁)");
            }
        }
    }

    private static List<String> types(JsonElement e) {
        List<String> out = new ArrayList<>();
        if (e == null || e.isJsonNull() || !e.isJsonObject()) return out;
        JsonObject o = e.getAsJsonObject();
        if (o.has("type")) out.add(o.get("type").getAsString());
        for (String k : new String[] {"normalizers", "pretokenizers"}) {
            if (o.has(k)) for (JsonElement x : o.getAsJsonArray(k)) out.addAll(types(x));
        }
        return out;
    }

    /** The regex a byte-level pre-tokenizer splits with: a Split step's, or GPT-2's when ByteLevel splits itself. */
    private static String splitRegex(JsonElement pre, String name) {
        JsonObject split = find(pre, "Split");
        if (split != null) {
            JsonObject pattern = split.getAsJsonObject("pattern");
            if (pattern == null || !pattern.has("Regex")) throw new UserError(name + ": the Split pre-tokenizer has no Regex pattern");
            return pattern.get("Regex").getAsString();
        }
        JsonObject bl = find(pre, "ByteLevel");
        if (bl != null && bl.has("add_prefix_space") && bl.get("add_prefix_space").getAsBoolean())
            throw new UserError(name + ": ByteLevel with add_prefix_space is not supported (llama.cpp adds no space)");
        if (bl != null && bl.has("use_regex") && !bl.get("use_regex").getAsBoolean())
            throw new UserError(name + ": a ByteLevel pre-tokenizer without a regex to split by");
        for (String t : types(pre)) {
            if (!t.equals("Sequence") && !t.equals("ByteLevel") && !t.equals("Split"))
                throw new UserError(name + ": pre-tokenizer " + t + " is not supported for a byte-level vocabulary");
        }
        return GPT2_REGEX;
    }

    /** Special tokens and flags from tokenizer_config.json (and config.json's ids), as llama.cpp's converter reads them. */
    private static Tokenizer.Specials specials(Path dir, Map<String, Integer> ids, String unkToken) {
        Path cfgFile = dir.resolve("tokenizer_config.json");
        JsonObject cfg = Files.isRegularFile(cfgFile) ? parse(cfgFile) : new JsonObject();
        Path modelCfg = dir.resolve("config.json");
        JsonObject mc = Files.isRegularFile(modelCfg) ? parse(modelCfg) : new JsonObject();
        int bos = special(cfg, "bos_token", ids, mc, "bos_token_id");
        int eos = special(cfg, "eos_token", ids, mc, "eos_token_id");
        int unk = special(cfg, "unk_token", ids, mc, "unk_token_id");
        if (unk < 0 && unkToken != null) unk = ids.getOrDefault(unkToken, -1);
        int pad = special(cfg, "pad_token", ids, mc, "pad_token_id");
        Boolean addBos = cfg.has("add_bos_token") && cfg.get("add_bos_token").isJsonPrimitive() ? cfg.get("add_bos_token").getAsBoolean() : null;
        Boolean addEos = cfg.has("add_eos_token") && cfg.get("add_eos_token").isJsonPrimitive() ? cfg.get("add_eos_token").getAsBoolean() : null;
        String template = null;
        JsonElement ct = cfg.get("chat_template");
        if (ct != null && ct.isJsonPrimitive()) template = ct.getAsString();
        else if (ct != null && ct.isJsonArray()) {
            // named templates: llama.cpp's default is the one called "default"
            for (JsonElement t : ct.getAsJsonArray()) {
                JsonObject o = t.getAsJsonObject();
                if (o.has("name") && o.get("name").getAsString().equals("default")) template = o.get("template").getAsString();
            }
        }
        return new Tokenizer.Specials(bos, eos, unk, pad, addBos, addEos, template);
    }

    private static int special(JsonObject cfg, String key, Map<String, Integer> ids, JsonObject modelCfg, String idKey) {
        JsonElement e = cfg.get(key);
        String content = e == null || e.isJsonNull() ? null : e.isJsonPrimitive() ? e.getAsString()
                : e.isJsonObject() && e.getAsJsonObject().has("content") ? e.getAsJsonObject().get("content").getAsString() : null;
        if (content != null && ids.containsKey(content)) return ids.get(content);
        JsonElement id = modelCfg.get(idKey);
        if (id != null && id.isJsonPrimitive() && id.getAsJsonPrimitive().isNumber() && id.getAsInt() >= 0 && id.getAsInt() < ids.size()) return id.getAsInt();
        return -1;
    }
}
