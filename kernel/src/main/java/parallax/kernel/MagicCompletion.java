package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.ReplacementOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import parallax.magics.Magics;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine;

/** Completion and inspection for magic lines: magic names, then their flags and subcommands. */
final class MagicCompletion {

    private MagicCompletion() {}

    /** The magic line the cursor is on, as {start of line, cursor}, or empty if not a magic line. */
    private static Optional<int[]> magicLine(String code, int at) {
        at = Math.max(0, Math.min(at, code.length()));
        int start = code.lastIndexOf('\n', at - 1) + 1;
        int lead = start;
        while (lead < at && (code.charAt(lead) == ' ' || code.charAt(lead) == '\t')) lead++;
        if (lead < code.length() && code.charAt(lead) == '%') return Optional.of(new int[] {lead, at});
        return Optional.empty();
    }

    static Optional<ReplacementOptions> complete(List<Magics.Entry> magics, String code, int at) {
        Optional<int[]> line = magicLine(code, at);
        if (line.isEmpty()) return Optional.empty();
        int lead = line.get()[0];
        int cursor = line.get()[1];
        String typed = code.substring(lead, cursor);
        String prefix = typed.startsWith("%%") ? "%%" : "%";
        int space = indexOfWhitespace(typed);
        if (space < 0) {
            String partial = typed.substring(prefix.length());
            List<String> names = new ArrayList<>();
            for (Magics.Entry e : magics) {
                boolean fits = prefix.equals("%%") ? e.cell() : e.line();
                if (fits && e.name().startsWith(partial)) names.add(prefix + e.name());
            }
            return Optional.of(new ReplacementOptions(names, lead, cursor));
        }
        String name = typed.substring(prefix.length(), space);
        Optional<Magics.Entry> entry = find(magics, name);
        if (entry.isEmpty()) return Optional.of(new ReplacementOptions(List.of(), cursor, cursor));
        int wordStart = cursor;
        while (wordStart > lead && !Character.isWhitespace(code.charAt(wordStart - 1))) wordStart--;
        String word = code.substring(wordStart, cursor);
        CommandSpec spec = new CommandLine(entry.get().factory().get()).getCommandSpec();
        // Descend into a subcommand already typed (e.g. "%precision explain --a").
        for (String w : typed.substring(space).trim().split("\\s+")) {
            CommandLine sub = spec.subcommands().get(w);
            if (sub != null) spec = sub.getCommandSpec();
        }
        List<String> options = new ArrayList<>();
        if (word.startsWith("-")) {
            for (OptionSpec o : spec.options()) {
                for (String n : o.names()) if (n.startsWith(word) && !options.contains(n)) options.add(n);
            }
        } else {
            for (String sub : spec.subcommands().keySet()) if (sub.startsWith(word)) options.add(sub);
        }
        return Optional.of(new ReplacementOptions(options, wordStart, cursor));
    }

    static Optional<String> usageAt(List<Magics.Entry> magics, String code, int at) {
        Optional<int[]> line = magicLine(code, at);
        if (line.isEmpty()) return Optional.empty();
        int lead = line.get()[0];
        int end = code.indexOf('\n', lead);
        String text = code.substring(lead, end < 0 ? code.length() : end);
        String prefix = text.startsWith("%%") ? "%%" : "%";
        int space = indexOfWhitespace(text);
        String name = text.substring(prefix.length(), space < 0 ? text.length() : space);
        return find(magics, name).map(e -> {
            CommandLine cl = new CommandLine(e.factory().get());
            cl.setCommandName(prefix + name);
            StringWriter sw = new StringWriter();
            cl.usage(new PrintWriter(sw), CommandLine.Help.Ansi.OFF);
            return sw.toString();
        });
    }

    private static Optional<Magics.Entry> find(List<Magics.Entry> magics, String name) {
        return magics.stream().filter(e -> e.name().equals(name)).findFirst();
    }

    private static int indexOfWhitespace(String s) {
        for (int i = 0; i < s.length(); i++) if (Character.isWhitespace(s.charAt(i))) return i;
        return -1;
    }
}
