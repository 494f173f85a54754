package parallax.engine;

import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/** "Did you mean ...?" hints for unknown names (formats, GPUs, models, magics). */
public final class DidYouMean {

    private DidYouMean() {}

    /** Levenshtein distance between two strings, case-insensitive. */
    public static int distance(String a, String b) {
        a = a.toLowerCase();
        b = b.toLowerCase();
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /** The known names closest to {@code name}, at most {@code limit}, within a sensible distance. */
    public static List<String> closest(String name, Collection<String> known, int limit) {
        int budget = Math.max(2, name.length() / 3);
        return known.stream()
                .filter(k -> distance(k, name) <= budget || k.toLowerCase().contains(name.toLowerCase()))
                .sorted(Comparator.comparingInt((String k) -> distance(k, name)).thenComparing(k -> k))
                .limit(limit)
                .toList();
    }

    /** " Did you mean X?" (or " Did you mean X or Y?"), or an empty string. */
    public static String hint(String name, Collection<String> known) {
        List<String> c = closest(name, known, 2);
        if (c.isEmpty()) return "";
        return " Did you mean " + String.join(" or ", c) + "?";
    }

    public static Optional<String> best(String name, Collection<String> known) {
        return closest(name, known, 1).stream().findFirst();
    }
}
