package parallax.engine.precision;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;

/** A comma-separated list of training modes (`fp32,bf16,...`) read into enum constants. */
final class ModeList {

    private ModeList() {}

    /**
     * The modes named in {@code csv}, in the order given, each once.
     *
     * @param values  every mode there is
     * @param label   the name a user types for a mode
     * @param context words after the unknown name in the error ("" or " for the GPT")
     */
    static <E extends Enum<E>> List<E> parse(String csv, E[] values, Function<E, String> label, String context) {
        List<String> known = new ArrayList<>();
        for (E m : values) known.add(label.apply(m));
        List<E> out = new ArrayList<>();
        for (String part : csv.split(",")) {
            String n = part.trim().toLowerCase(Locale.ROOT);
            if (n.isEmpty()) continue;
            E found = null;
            for (E m : values) if (label.apply(m).equals(n)) found = m;
            if (found == null) {
                throw new UserError("unknown training dtype '" + part.trim() + "'" + context + "." + DidYouMean.hint(n, known)
                        + " Known: " + String.join(", ", known) + ".");
            }
            if (!out.contains(found)) out.add(found);
        }
        if (out.isEmpty()) throw new UserError("no training dtype given. Known: " + String.join(", ", known) + ".");
        return out;
    }
}
