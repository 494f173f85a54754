package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A model name cut into the pieces {@link ModelNameReader} reads one by one: the Hub
 * organisation before the last '/', the file extension, a shard label
 * ("00001-of-00009", left in the words as {@link #SHARD_MARK}) and the words between
 * '-', '_', ' ' and '.' (a dot between digits stays: 3.1, 0.5B). Underscores inside
 * llama.cpp quantisation labels (Q4_K_M, IQ2_XXS, q4_0) do not split.
 *
 * @param organisation the part before the last '/', or null
 * @param format       the file extension in lower case (gguf, bin...), or null
 * @param shard        the shard label, or null
 */
record ModelNameParts(String organisation, String format, String shard, List<String> words) {

    /** Stands in the words where the shard label was. */
    static final String SHARD_MARK = "\u0001";
    static final Pattern SHARD = Pattern.compile("(?i)(\\d{5})-of-(\\d{5})");

    private static final Pattern EXTENSION = Pattern.compile("(?i)\\.(gguf|ggml|safetensors|bin|pt|pth|onnx)$");
    private static final Pattern QUANT_LABEL = Pattern.compile("(?i)(?<![a-z])(i?q\\d(?:_k)?(?:_[a-z0-9]{1,3})?)(?![a-z0-9])");
    /** Stands for '_' inside a quantisation label while the name is split. */
    private static final char KEPT_UNDERSCORE = '\u0002';

    static ModelNameParts split(String name) {
        String s = name;
        String organisation = null;
        int slash = s.lastIndexOf('/');
        if (slash >= 0) {
            organisation = s.substring(0, slash);
            s = s.substring(slash + 1);
        }
        String format = null;
        Matcher ext = EXTENSION.matcher(s);
        if (ext.find()) {
            format = ext.group(1).toLowerCase(Locale.ROOT);
            s = s.substring(0, ext.start());
        }
        // The shard label comes out before splitting on '-'.
        String shard = null;
        Matcher sh = SHARD.matcher(s);
        if (sh.find()) {
            shard = sh.group();
            s = s.substring(0, sh.start()) + SHARD_MARK + s.substring(sh.end());
        }
        return new ModelNameParts(organisation, format, shard, words(s));
    }

    private static List<String> words(String s) {
        Matcher q = QUANT_LABEL.matcher(s);
        StringBuilder kept = new StringBuilder();
        while (q.find()) q.appendReplacement(kept, Matcher.quoteReplacement(q.group(1).replace('_', KEPT_UNDERSCORE)));
        q.appendTail(kept);
        List<String> words = new ArrayList<>();
        for (String w : kept.toString().split("[-_ ]+")) {
            for (String v : w.split("(?<!\\d)\\.|\\.(?!\\d)")) if (!v.isEmpty()) words.add(v.replace(KEPT_UNDERSCORE, '_'));
        }
        return words;
    }
}
