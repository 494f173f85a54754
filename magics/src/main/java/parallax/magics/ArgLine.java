package parallax.magics;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a magic's argument line into words the way a POSIX shell would for the cases
 * that matter in a notebook: blanks separate, single and double quotes group, a
 * backslash escapes the next character outside single quotes. No globbing, no variables.
 */
public final class ArgLine {

    private ArgLine() {}

    public static List<String> split(String line) throws MagicError {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        boolean inWord = false;
        char quote = 0;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quote == '\'') {
                if (c == '\'') quote = 0; else word.append(c);
            } else if (quote == '"') {
                if (c == '"') {
                    quote = 0;
                } else if (c == '\\' && i + 1 < line.length() && "\"\\$`".indexOf(line.charAt(i + 1)) >= 0) {
                    word.append(line.charAt(++i));
                } else {
                    word.append(c);
                }
            } else if (Character.isWhitespace(c)) {
                if (inWord) {
                    words.add(word.toString());
                    word.setLength(0);
                    inWord = false;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
                inWord = true;
            } else if (c == '\\' && i + 1 < line.length()) {
                word.append(line.charAt(++i));
                inWord = true;
            } else {
                word.append(c);
                inWord = true;
            }
        }
        if (quote != 0) throw new MagicError("unterminated " + (quote == '"' ? "double" : "single") + " quote in: " + line, null);
        if (inWord) words.add(word.toString());
        return words;
    }
}
