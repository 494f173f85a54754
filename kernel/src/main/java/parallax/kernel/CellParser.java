package parallax.kernel;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a cell into what runs: a cell magic ({@code %%name args} on the first line, the
 * rest is its body), or a sequence of Java runs and line magics ({@code %name args} on a
 * line of its own), in order.
 */
final class CellParser {

    sealed interface Segment permits JavaCode, LineMagic, CellMagic {}

    /** Java source starting at 1-based line {@code firstLine} of the cell. */
    record JavaCode(String code, int firstLine) implements Segment {}

    record LineMagic(String name, String args, int line) implements Segment {}

    record CellMagic(String name, String args, String body) implements Segment {}

    private CellParser() {}

    static List<Segment> parse(String cell) throws CellException {
        List<Segment> segments = new ArrayList<>();
        String[] lines = cell.split("\n", -1);
        int first = 0;
        while (first < lines.length && lines[first].isBlank()) first++;
        if (first < lines.length && lines[first].stripLeading().startsWith("%%")) {
            String head = lines[first].stripLeading().substring(2);
            String[] nameArgs = splitNameArgs(head);
            checkName(nameArgs[0], "%%", first + 1);
            StringBuilder body = new StringBuilder();
            for (int i = first + 1; i < lines.length; i++) {
                body.append(lines[i]);
                if (i < lines.length - 1) body.append('\n');
            }
            segments.add(new CellMagic(nameArgs[0], nameArgs[1], body.toString()));
            return segments;
        }
        StringBuilder java = new StringBuilder();
        int javaStart = -1;
        for (int i = 0; i < lines.length; i++) {
            String stripped = lines[i].stripLeading();
            if (stripped.startsWith("%") && !stripped.startsWith("%=")) {
                if (stripped.startsWith("%%")) {
                    throw new CellException("MagicError", "cell magic " + stripped.split("\\s")[0]
                            + " must be on the first line of the cell (line " + (i + 1) + ")", List.of());
                }
                if (javaStart >= 0 && !java.toString().isBlank()) segments.add(new JavaCode(java.toString(), javaStart));
                java.setLength(0);
                javaStart = -1;
                String[] nameArgs = splitNameArgs(stripped.substring(1));
                checkName(nameArgs[0], "%", i + 1);
                segments.add(new LineMagic(nameArgs[0], nameArgs[1], i + 1));
            } else {
                if (javaStart < 0) javaStart = i + 1;
                java.append(lines[i]).append('\n');
            }
        }
        if (javaStart >= 0 && !java.toString().isBlank()) segments.add(new JavaCode(java.toString(), javaStart));
        return segments;
    }

    private static String[] splitNameArgs(String s) {
        int i = 0;
        while (i < s.length() && !Character.isWhitespace(s.charAt(i))) i++;
        return new String[] {s.substring(0, i), s.substring(i).strip()};
    }

    private static void checkName(String name, String prefix, int line) throws CellException {
        if (name.isEmpty() || !name.matches("[A-Za-z][A-Za-z0-9_-]*")) {
            throw new CellException("MagicError", "malformed magic on line " + line + ": expected " + prefix
                    + "name followed by arguments, e.g. " + prefix + "lsmagic", List.of());
        }
    }
}
