package parallax.engine.report;

import java.util.Map;

/**
 * Progress of a long-running piece of work: step i of N plus named fields such as the
 * last loss. The engine reports through this interface; the kernel draws a live bar
 * (update_display_data), the CLI a line on stderr. Implementations derive rate and ETA.
 */
public interface Progress extends AutoCloseable {

    /** Reports that {@code done} of the total steps are complete. */
    void update(long done, Map<String, String> fields);

    default void update(long done) { update(done, Map.of()); }

    /** Marks the work finished (or abandoned); the display keeps its last state. */
    @Override
    void close();

    /** A progress sink that shows nothing. */
    Progress NONE = new Progress() {
        @Override public void update(long done, Map<String, String> fields) {}
        @Override public void close() {}
    };
}
