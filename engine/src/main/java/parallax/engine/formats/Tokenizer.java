package parallax.engine.formats;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parallax.engine.UserError;

/**
 * A model's vocabulary as llama.cpp keeps it in GGUF ({@code tokenizer.ggml.*}), read from a
 * Hugging Face {@code tokenizer.json} ({@link HfTokenizerJson}) or a SentencePiece
 * {@code tokenizer.model} ({@link SentencePieceModel}), and able to tokenize text the way
 * the file it came from says (docs/reference.md#tokenizers-in-gguf). Two families:
 * <ul>
 * <li>{@link Kind#SENTENCEPIECE} (GGUF model "llama": Llama 1/2, Mistral, TinyLlama): text
 *     with spaces written as ▁ (and one in front), pieces joined pair by pair, characters no
 *     piece covers spelled as byte tokens {@code <0xXX>}. Pieces are joined by merge rank
 *     (tokenizer.json) or by score (tokenizer.model); the GGUF carries scores, so a
 *     tokenizer.json's ranks become scores −rank.</li>
 * <li>{@link Kind#BYTE_LEVEL} (GGUF model "gpt2": GPT-2, Llama 3, Qwen): text split by a
 *     pre-tokenizer regex, every byte written as GPT-2's printable stand-in, pieces joined by
 *     merge rank; the GGUF carries the merges and names the regex ({@code tokenizer.ggml.pre}).</li>
 * </ul>
 */
public final class Tokenizer {

    /** Which of llama.cpp's tokenizers runs the vocabulary. */
    public enum Kind {
        SENTENCEPIECE("llama"), BYTE_LEVEL("gpt2");

        final String ggml;

        Kind(String ggml) { this.ggml = ggml; }

        public String ggml() { return ggml; }
    }

    /** llama.cpp's token types (the same numbers as SentencePiece's piece types). */
    public enum TokenType {
        NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

        final int id;

        TokenType(int id) { this.id = id; }

        static TokenType of(int id) {
            for (TokenType t : values()) if (t.id == id) return t;
            return NORMAL;
        }
    }

    /** The special tokens and flags llama.cpp reads beside the vocabulary; ids are -1 when absent. */
    public record Specials(int bos, int eos, int unk, int pad, Boolean addBos, Boolean addEos, String chatTemplate) {
        static final Specials NONE = new Specials(-1, -1, -1, -1, null, null, null);
    }

    final Kind kind;
    final String source;
    final List<String> tokens;
    final float[] scores;
    final TokenType[] types;
    /** BYTE_LEVEL: the merges in rank order ("a b"); SENTENCEPIECE from tokenizer.json: the ranks the scores came from. */
    final List<String> merges;
    final Specials specials;
    /** SENTENCEPIECE: whether a ▁ goes in front of the text. */
    final boolean addSpacePrefix;
    /** BYTE_LEVEL: llama.cpp's name for the pre-tokenizer regex, and the regex itself. */
    final String pre;
    final Pattern split;
    /** Tokenizer.json's ignore_merges: a whole piece found in the vocabulary is one token. */
    final boolean ignoreMerges;
    /** Join by merge rank (tokenizer.json) rather than by score (tokenizer.model). */
    final boolean byRank;

    private final Map<String, Integer> ids = new HashMap<>();
    private final Map<String, Integer> ranks = new HashMap<>();

    Tokenizer(Kind kind, String source, List<String> tokens, float[] scores, TokenType[] types, List<String> merges,
              Specials specials, boolean addSpacePrefix, String pre, Pattern split, boolean ignoreMerges, boolean byRank) {
        this.kind = kind;
        this.source = source;
        this.tokens = List.copyOf(tokens);
        this.scores = scores;
        this.types = types;
        this.merges = List.copyOf(merges);
        this.specials = specials;
        this.addSpacePrefix = addSpacePrefix;
        this.pre = pre;
        this.split = split;
        this.ignoreMerges = ignoreMerges;
        this.byRank = byRank;
        for (int i = 0; i < tokens.size(); i++) {
            if (ids.putIfAbsent(tokens.get(i), i) != null) throw new UserError(source + ": token " + quote(tokens.get(i)) + " appears twice (ids " + ids.get(tokens.get(i)) + " and " + i + ")");
        }
        for (int r = 0; r < merges.size(); r++) ranks.putIfAbsent(merges.get(r), r);
    }

    /**
     * The tokenizer beside a Hugging Face checkpoint: tokenizer.json if there is one (with
     * tokenizer_config.json), else tokenizer.model; null when there is neither.
     */
    public static Tokenizer beside(Path weights) {
        Path dir = weights.toAbsolutePath().getParent();
        if (Files.isRegularFile(dir.resolve("tokenizer.json"))) return HfTokenizerJson.read(dir);
        if (Files.isRegularFile(dir.resolve("tokenizer.model"))) return SentencePieceModel.read(dir);
        return null;
    }

    public Kind kind() { return kind; }

    public String source() { return source; }

    public int size() { return tokens.size(); }

    public List<String> tokens() { return tokens; }

    public Specials specials() { return specials; }

    /** The id of a token's text, or -1. */
    public int id(String token) { return ids.getOrDefault(token, -1); }

    /**
     * The {@code tokenizer.*} keys of a GGUF whose token embedding has {@code rows} rows: a
     * vocabulary shorter than that is padded with unused [PAD<i>] tokens, as llama.cpp's
     * converter does; a longer one cannot be embedded.
     */
    public Map<String, GgufValue> ggufKv(long rows) {
        if (tokens.size() > rows) throw new UserError(source + " has " + tokens.size() + " tokens but the token embedding has only " + rows + " rows");
        List<String> t = new ArrayList<>(tokens);
        List<Float> s = new ArrayList<>();
        List<Integer> ty = new ArrayList<>();
        for (int i = 0; i < tokens.size(); i++) {
            s.add(scores[i]);
            ty.add(types[i].id);
        }
        for (int i = tokens.size(); i < rows; i++) {
            String pad = "[PAD" + i + "]";
            if (ids.containsKey(pad)) throw new UserError(source + ": cannot pad the vocabulary, " + pad + " is already a token");
            t.add(pad);
            s.add(-1000f);
            ty.add(TokenType.UNUSED.id);
        }
        Map<String, GgufValue> kv = new LinkedHashMap<>();
        kv.put("tokenizer.ggml.model", GgufValue.string(kind.ggml));
        kv.put("tokenizer.ggml.pre", GgufValue.string(kind == Kind.BYTE_LEVEL ? pre : "default"));
        kv.put("tokenizer.ggml.tokens", GgufValue.arrayOf(GgufValue.Type.STRING, t));
        kv.put("tokenizer.ggml.scores", GgufValue.arrayOf(GgufValue.Type.FLOAT32, s));
        kv.put("tokenizer.ggml.token_type", GgufValue.arrayOf(GgufValue.Type.INT32, ty));
        if (kind == Kind.BYTE_LEVEL) kv.put("tokenizer.ggml.merges", GgufValue.arrayOf(GgufValue.Type.STRING, merges));
        if (specials.bos() >= 0) kv.put("tokenizer.ggml.bos_token_id", GgufValue.u32(specials.bos()));
        if (specials.eos() >= 0) kv.put("tokenizer.ggml.eos_token_id", GgufValue.u32(specials.eos()));
        if (specials.unk() >= 0) kv.put("tokenizer.ggml.unknown_token_id", GgufValue.u32(specials.unk()));
        if (specials.pad() >= 0) kv.put("tokenizer.ggml.padding_token_id", GgufValue.u32(specials.pad()));
        if (specials.addBos() != null) kv.put("tokenizer.ggml.add_bos_token", GgufValue.of(GgufValue.Type.BOOL, specials.addBos()));
        if (specials.addEos() != null) kv.put("tokenizer.ggml.add_eos_token", GgufValue.of(GgufValue.Type.BOOL, specials.addEos()));
        if (kind == Kind.SENTENCEPIECE) kv.put("tokenizer.ggml.add_space_prefix", GgufValue.of(GgufValue.Type.BOOL, addSpacePrefix));
        if (specials.chatTemplate() != null) kv.put("tokenizer.chat_template", GgufValue.string(specials.chatTemplate()));
        return kv;
    }

    /** The token ids of {@code text}, without BOS/EOS and with special tokens' text read as text. */
    public long[] encode(String text) {
        List<Integer> out = new ArrayList<>();
        if (kind == Kind.SENTENCEPIECE) {
            String s = (addSpacePrefix ? " " : "") + text;
            if (!s.isEmpty()) emit(join(codePoints(s.replace(" ", "\u2581"))), out);
        } else {
            Matcher m = split.matcher(text);
            while (m.find()) {
                String word = byteLevel(m.group());
                if (ignoreMerges && ids.containsKey(word)) {
                    out.add(ids.get(word));
                    continue;
                }
                emit(join(codePoints(word)), out);
            }
        }
        long[] r = new long[out.size()];
        for (int i = 0; i < r.length; i++) r[i] = out.get(i);
        return r;
    }

    /** Each final piece as its id; a piece the vocabulary lacks as its UTF-8 bytes (byte tokens), else the unknown token. */
    private void emit(List<String> pieces, List<Integer> out) {
        for (String p : pieces) {
            Integer id = ids.get(p);
            if (id != null) {
                out.add(id);
                continue;
            }
            if (kind == Kind.SENTENCEPIECE) {
                boolean bytes = true;
                List<Integer> b = new ArrayList<>();
                for (byte x : p.getBytes(StandardCharsets.UTF_8)) {
                    Integer bt = ids.get(String.format("<0x%02X>", x & 0xff));
                    if (bt == null) bytes = false;
                    b.add(bt);
                }
                if (bytes) {
                    out.addAll(b);
                    continue;
                }
            }
            if (specials.unk() < 0) throw new UserError(source + ": no token for " + quote(p) + " and no unknown token");
            out.add(specials.unk());
        }
    }

    /**
     * Joins adjacent pieces until no pair can be joined: always the best pair first (lowest
     * merge rank, or highest score of the joined piece), the leftmost of equals.
     */
    private List<String> join(List<String> symbols) {
        if (symbols.size() < 2) return symbols;
        // a linked list of symbols and a queue of candidate pairs, as llama.cpp's SPM tokenizer does
        int n = symbols.size();
        String[] text = symbols.toArray(new String[0]);
        int[] prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<double[]> queue = new PriorityQueue<>((a, b) -> a[0] != b[0] ? Double.compare(a[0], b[0]) : Double.compare(a[1], b[1]));
        for (int i = 0; i + 1 < n; i++) offer(queue, text, i, i + 1);
        while (!queue.isEmpty()) {
            double[] q = queue.poll();
            int l = (int) q[1], r = (int) q[2];
            // stale: one side was joined since, or the pair is no longer adjacent
            if (text[l] == null || text[r] == null || next[l] != r || (text[l] + text[r]).length() != (int) q[3]) continue;
            text[l] = text[l] + text[r];
            text[r] = null;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) offer(queue, text, prev[l], l);
            if (next[l] >= 0) offer(queue, text, l, next[l]);
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i >= 0; i = next[i]) out.add(text[i]);
        return out;
    }

    /** Queues the pair (l, r) if it may be joined; its priority is the merge rank or minus the joined piece's score. */
    private void offer(PriorityQueue<double[]> queue, String[] text, int l, int r) {
        String joined = text[l] + text[r];
        double priority;
        if (byRank) {
            Integer rank = ranks.get(text[l] + " " + text[r]);
            if (rank == null) return;
            priority = rank;
        } else {
            Integer id = ids.get(joined);
            if (id == null) return;
            priority = -scores[id];
        }
        queue.add(new double[] {priority, l, r, joined.length()});
    }

    private static List<String> codePoints(String s) {
        List<String> out = new ArrayList<>();
        s.codePoints().forEach(c -> out.add(new String(Character.toChars(c))));
        return out;
    }

    /** GPT-2's byte-to-character map (bytes_to_unicode): printable Latin-1 bytes stand for themselves, the rest for U+0100 on. */
    static String[] byteChars() {
        String[] out = new String[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
            out[b] = new String(Character.toChars(printable ? b : next++));
        }
        return out;
    }

    private static final String[] BYTE_CHARS = byteChars();

    /** A piece of text as byte-level characters: each UTF-8 byte its stand-in. */
    static String byteLevel(String s) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) b.append(BYTE_CHARS[x & 0xff]);
        return b.toString();
    }

    static String quote(String s) {
        return "\"" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"";
    }
}
