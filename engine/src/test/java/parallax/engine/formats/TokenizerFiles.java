package parallax.engine.formats;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Real tokenizer files made in the tests: a BPE vocabulary trained here on a text (pair
 * counts, the most frequent pair merged first, ties to the smaller pair), written as a
 * Hugging Face tokenizer.json in the two shapes published models use:
 * <ul>
 * <li>SentencePiece style (Llama 2): words with ▁ in front, byte fallback, vocabulary
 *     {@code <unk> <s> </s>}, the 256 byte tokens, the characters, then the merged pieces;
 *     the merges listed as Hugging Face's converter lists a SentencePiece model's: every way to
 *     split each merged piece into two tokens, in piece order;</li>
 * <li>byte-level (GPT-2): GPT-2's regex, bytes as printable stand-ins, the learned merges.</li>
 * </ul>
 */
public final class TokenizerFiles {

    private TokenizerFiles() {}

    /** Learns {@code count} merges over words given as symbol lists (weighted by frequency); returns the merged pieces in order. */
    static List<String[]> learn(Map<List<String>, Integer> words, int count) {
        List<List<String>> ws = new ArrayList<>();
        List<Integer> freq = new ArrayList<>();
        words.forEach((w, f) -> {
            ws.add(new ArrayList<>(w));
            freq.add(f);
        });
        List<String[]> merges = new ArrayList<>();
        for (int m = 0; m < count; m++) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int k = 0; k < ws.size(); k++) {
                List<String> w = ws.get(k);
                for (int i = 0; i + 1 < w.size(); i++) pairs.merge(w.get(i) + "\u0000" + w.get(i + 1), freq.get(k), Integer::sum);
            }
            String best = null;
            for (var e : pairs.entrySet()) {
                if (best == null || e.getValue() > pairs.get(best) || e.getValue().equals(pairs.get(best)) && e.getKey().compareTo(best) < 0) best = e.getKey();
            }
            if (best == null || pairs.get(best) < 2) break;
            String[] ab = best.split("\u0000", -1);
            merges.add(ab);
            for (List<String> w : ws) {
                for (int i = 0; i + 1 < w.size(); i++) {
                    if (w.get(i).equals(ab[0]) && w.get(i + 1).equals(ab[1])) {
                        w.set(i, ab[0] + ab[1]);
                        w.remove(i + 1);
                    }
                }
            }
        }
        return merges;
    }

    private static List<String> chars(String s) {
        List<String> out = new ArrayList<>();
        s.codePoints().forEach(c -> out.add(new String(Character.toChars(c))));
        return out;
    }

    /** A Llama-2-style tokenizer.json (and tokenizer_config.json) trained on {@code corpus}; returns the vocabulary size. */
    public static int writeSentencePieceStyle(Path dir, String corpus, int merges, String chatTemplate) throws IOException {
        Map<List<String>, Integer> words = new LinkedHashMap<>();
        for (String w : corpus.split(" ")) if (!w.isEmpty()) words.merge(chars("\u2581" + w), 1, Integer::sum);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String s : List.of("<unk>", "<s>", "</s>")) vocab.put(s, vocab.size());
        for (int b = 0; b < 256; b++) vocab.put(String.format("<0x%02X>", b), vocab.size());
        TreeSet<String> alphabet = new TreeSet<>();
        for (List<String> w : words.keySet()) alphabet.addAll(w);
        for (String c : alphabet) vocab.putIfAbsent(c, vocab.size());
        List<String> pieces = new ArrayList<>();
        for (String[] m : learn(words, merges)) {
            String p = m[0] + m[1];
            if (vocab.putIfAbsent(p, vocab.size()) == null) pieces.add(p);
        }
        // every split of every piece into two tokens, pieces in order, splits by the ids of their halves
        JsonArray mergeList = new JsonArray();
        for (String p : pieces) {
            List<int[]> splits = new ArrayList<>();
            for (int i = p.offsetByCodePoints(0, 1); i < p.length(); i = p.offsetByCodePoints(i, 1)) {
                Integer a = vocab.get(p.substring(0, i)), b = vocab.get(p.substring(i));
                if (a != null && b != null) splits.add(new int[] {a, b, i});
            }
            splits.sort(Comparator.<int[]>comparingInt(x -> x[0]).thenComparingInt(x -> x[1]));
            for (int[] s : splits) {
                JsonArray pair = new JsonArray();
                pair.add(p.substring(0, s[2]));
                pair.add(p.substring(s[2]));
                mergeList.add(pair);
            }
        }
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", null);
        model.addProperty("unk_token", "<unk>");
        model.addProperty("fuse_unk", true);
        model.addProperty("byte_fallback", true);
        model.add("vocab", vocabJson(vocab));
        model.add("merges", mergeList);
        JsonObject root = new JsonObject();
        root.addProperty("version", "1.0");
        JsonArray added = new JsonArray();
        for (String s : List.of("<unk>", "<s>", "</s>")) added.add(addedToken(vocab.get(s), s));
        root.add("added_tokens", added);
        JsonObject normalizer = new JsonObject();
        normalizer.addProperty("type", "Sequence");
        JsonArray steps = new JsonArray();
        JsonObject prepend = new JsonObject();
        prepend.addProperty("type", "Prepend");
        prepend.addProperty("prepend", "\u2581");
        JsonObject replace = new JsonObject();
        replace.addProperty("type", "Replace");
        JsonObject pattern = new JsonObject();
        pattern.addProperty("String", " ");
        replace.add("pattern", pattern);
        replace.addProperty("content", "\u2581");
        steps.add(prepend);
        steps.add(replace);
        normalizer.add("normalizers", steps);
        root.add("normalizer", normalizer);
        root.add("pre_tokenizer", null);
        JsonObject decoder = new JsonObject();
        decoder.addProperty("type", "Sequence");
        decoder.add("decoders", new JsonArray());
        root.add("decoder", decoder);
        root.add("model", model);
        Files.writeString(dir.resolve("tokenizer.json"), root.toString());
        JsonObject cfg = new JsonObject();
        cfg.addProperty("add_bos_token", true);
        cfg.addProperty("add_eos_token", false);
        cfg.addProperty("bos_token", "<s>");
        cfg.addProperty("eos_token", "</s>");
        cfg.addProperty("unk_token", "<unk>");
        if (chatTemplate != null) cfg.addProperty("chat_template", chatTemplate);
        Files.writeString(dir.resolve("tokenizer_config.json"), cfg.toString());
        return vocab.size();
    }

    /** A GPT-2-style byte-level tokenizer.json trained on {@code corpus}, with {@code <|endoftext|>} last; returns the vocabulary size. */
    public static int writeByteLevel(Path dir, String corpus, int merges) throws IOException {
        Pattern split = Pattern.compile(HfTokenizerJson.GPT2_REGEX, Pattern.UNICODE_CHARACTER_CLASS);
        Map<List<String>, Integer> words = new LinkedHashMap<>();
        Matcher m = split.matcher(corpus);
        while (m.find()) words.merge(chars(Tokenizer.byteLevel(m.group())), 1, Integer::sum);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String c : Tokenizer.byteChars()) vocab.put(c, vocab.size());
        JsonArray mergeList = new JsonArray();
        for (String[] ab : learn(words, merges)) {
            if (vocab.putIfAbsent(ab[0] + ab[1], vocab.size()) != null) continue;
            mergeList.add(ab[0] + " " + ab[1]);
        }
        int eot = vocab.size();
        vocab.put("<|endoftext|>", eot);
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.addProperty("byte_fallback", false);
        model.add("vocab", vocabJson(vocab));
        model.add("merges", mergeList);
        JsonObject root = new JsonObject();
        JsonArray added = new JsonArray();
        added.add(addedToken(eot, "<|endoftext|>"));
        root.add("added_tokens", added);
        root.add("normalizer", null);
        JsonObject pre = new JsonObject();
        pre.addProperty("type", "ByteLevel");
        pre.addProperty("add_prefix_space", false);
        pre.addProperty("trim_offsets", true);
        pre.addProperty("use_regex", true);
        root.add("pre_tokenizer", pre);
        JsonObject dec = new JsonObject();
        dec.addProperty("type", "ByteLevel");
        root.add("decoder", dec);
        root.add("model", model);
        Files.writeString(dir.resolve("tokenizer.json"), root.toString());
        JsonObject cfg = new JsonObject();
        cfg.addProperty("bos_token", "<|endoftext|>");
        cfg.addProperty("eos_token", "<|endoftext|>");
        cfg.addProperty("add_bos_token", false);
        Files.writeString(dir.resolve("tokenizer_config.json"), cfg.toString());
        return vocab.size();
    }

    private static JsonObject vocabJson(Map<String, Integer> vocab) {
        JsonObject v = new JsonObject();
        vocab.forEach(v::addProperty);
        return v;
    }

    private static JsonObject addedToken(int id, String content) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("content", content);
        o.addProperty("single_word", false);
        o.addProperty("lstrip", false);
        o.addProperty("rstrip", false);
        o.addProperty("normalized", false);
        o.addProperty("special", true);
        return o;
    }
}
