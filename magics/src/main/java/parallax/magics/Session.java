package parallax.magics;

import java.util.List;
import parallax.engine.parallel.TrainingRun;

/**
 * What one kernel session (one JVM: the kernel, or one CLI invocation) remembers between
 * magics: the runs of its last {@code %parallel} training command, for cells
 * ({@code lastRun()}, {@code lastRuns()}) and for {@code %precision cast --from model}. The
 * engine keeps no such state: the magics pass runs to it explicitly.
 */
public final class Session {

    private static volatile List<TrainingRun> lastRuns = List.of();

    private Session() {}

    /** The runs of the last %parallel training command (several for --compare), oldest first. */
    public static List<TrainingRun> lastRuns() { return lastRuns; }

    /** The last run (of a --compare, the last layout), or null before any. */
    public static TrainingRun lastRun() {
        List<TrainingRun> r = lastRuns;
        return r.isEmpty() ? null : r.get(r.size() - 1);
    }

    static void remember(List<TrainingRun> runs) { lastRuns = List.copyOf(runs); }
}
