package parallax.engine;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses a user's JSON file (a DeepSpeed config, a Hugging Face config.json, a measurement
 * record) and turns Gson's multi-line parser messages into one clause a user can act on.
 */
public final class JsonText {

    private static final Pattern WHERE = Pattern.compile("line (\\d+) column (\\d+)");

    private JsonText() {}

    /**
     * The parsed text; a {@link UserError} "{@code what} is not valid JSON (line L, column C)"
     * when it does not parse, and "{@code what} is empty" for an empty file.
     */
    public static JsonElement parse(String text, String what) {
        JsonElement e;
        try {
            e = JsonParser.parseString(text);
        } catch (JsonParseException ex) {
            throw new UserError(what + " is not valid JSON" + where(ex));
        }
        if (e.isJsonNull()) throw new UserError(what + " is empty: expected a JSON object {...}");
        return e;
    }

    /** " (line L, column C)" from a Gson message, or "" when it names no place. */
    public static String where(RuntimeException ex) {
        for (Throwable t = ex; t != null; t = t.getCause()) {
            Matcher m = WHERE.matcher(String.valueOf(t.getMessage()));
            if (m.find()) return " (line " + m.group(1) + ", column " + m.group(2) + ")";
        }
        return "";
    }
}
