package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.history.HistoryEntry;
import io.github.spencerpark.jupyter.kernel.history.HistoryManager;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/** The cells run in this kernel session, for history_request (tail, range, search). */
final class CellHistory implements HistoryManager {

    static final int SESSION = 1;

    private record Cell(int number, String input, String output) {}

    private final List<Cell> cells = new ArrayList<>();

    synchronized void add(int number, String input, String output) {
        cells.add(new Cell(number, input, output));
    }

    @Override
    public synchronized List<HistoryEntry> lookupTail(int length, Set<ResultFlag> flags) {
        int from = Math.max(0, cells.size() - Math.max(0, length));
        return entries(cells.subList(from, cells.size()), flags);
    }

    @Override
    public synchronized List<HistoryEntry> lookupRange(int session, int start, int stop, Set<ResultFlag> flags) {
        List<Cell> picked = new ArrayList<>();
        if (session == SESSION || session == 0) {
            for (Cell c : cells) {
                if (c.number() >= start && (stop <= 0 || c.number() < stop)) picked.add(c);
            }
        }
        return entries(picked, flags);
    }

    @Override
    public synchronized List<HistoryEntry> search(String pattern, int length, Set<ResultFlag> flags) {
        Pattern glob = globToRegex(pattern == null || pattern.isEmpty() ? "*" : pattern);
        List<Cell> picked = new ArrayList<>();
        for (Cell c : cells) if (glob.matcher(c.input()).matches()) picked.add(c);
        if (length > 0 && picked.size() > length) picked = picked.subList(picked.size() - length, picked.size());
        return entries(picked, flags);
    }

    /** IPython's history search uses shell globs: * any run, ? one character. */
    static Pattern globToRegex(String glob) {
        StringBuilder re = new StringBuilder();
        for (char ch : glob.toCharArray()) {
            switch (ch) {
                case '*' -> re.append(".*");
                case '?' -> re.append('.');
                default -> re.append(Pattern.quote(String.valueOf(ch)));
            }
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL);
    }

    private static List<HistoryEntry> entries(List<Cell> cells, Set<ResultFlag> flags) {
        boolean withOutput = flags != null && flags.contains(ResultFlag.INCLUDE_OUTPUT);
        boolean unique = flags != null && flags.contains(ResultFlag.UNIQUE);
        List<HistoryEntry> out = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (Cell c : cells) {
            if (unique && !seen.add(c.input())) continue;
            out.add(withOutput ? new HistoryEntry(SESSION, c.number(), c.input(), c.output() == null ? "" : c.output())
                    : new HistoryEntry(SESSION, c.number(), c.input()));
        }
        return out;
    }
}
