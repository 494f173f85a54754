package parallax.engine.cluster;

import java.util.Map;

/**
 * Streams events from a running rank to the coordinator, where they reach the listener
 * given to {@link WorkerPool#run} as {@link RankEvent}s while the task is still running.
 */
public interface RankReporter {

    /**
     * Reports a completed step with its metrics (loss, step time, bytes...). The step is
     * remembered as "last completed step" for failure reports.
     */
    void step(long step, Map<String, ?> metrics);

    /** Reports any other event; {@code kind} names it ("log", "memory", ...). */
    void event(String kind, Map<String, ?> fields);

    /** A line of text for the user, shown prefixed with the rank. */
    void log(String line);
}
