package parallax.engine.cluster;

import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Communication counters of one rank: for each collective type, how many calls, how many
 * payload bytes this rank contributed, and the wall time spent waiting for them.
 * Training reports "communication time and bytes" from here. Thread-safe.
 *
 * <p>Bytes are the size of the tensor handed to the call (for all-gather the input shard,
 * for reduce-scatter the full input), so they do not depend on the algorithm Gloo picks.
 */
public final class CommStats {

    /** The collectives that are counted. */
    public enum Op { ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, ALL_TO_ALL, BROADCAST, SEND, RECV, BARRIER }

    /** Totals of one collective type. */
    public record Totals(long calls, long bytes, long nanos) {
        Totals plus(long b, long n) { return new Totals(calls + 1, bytes + b, nanos + n); }

        public double seconds() { return nanos / 1e9; }
    }

    private final EnumMap<Op, Totals> totals = new EnumMap<>(Op.class);

    public synchronized void record(Op op, long bytes, long nanos) {
        totals.merge(op, new Totals(1, bytes, nanos), (a, b) -> a.plus(b.bytes(), b.nanos()));
    }

    /** Adds another rank's or group's counters into this one. */
    public synchronized void add(CommStats other) {
        for (Map.Entry<Op, Totals> e : other.snapshot().entrySet()) {
            Totals t = e.getValue();
            totals.merge(e.getKey(), t, (a, b) -> new Totals(a.calls() + b.calls(), a.bytes() + b.bytes(), a.nanos() + b.nanos()));
        }
    }

    public synchronized Totals get(Op op) {
        return totals.getOrDefault(op, new Totals(0, 0, 0));
    }

    public synchronized long totalBytes() {
        return totals.values().stream().mapToLong(Totals::bytes).sum();
    }

    public synchronized long totalNanos() {
        return totals.values().stream().mapToLong(Totals::nanos).sum();
    }

    public synchronized Map<Op, Totals> snapshot() {
        return new EnumMap<>(totals);
    }

    public synchronized void reset() {
        totals.clear();
    }

    /** JSON-friendly view: {"all_reduce": {"calls":..,"bytes":..,"seconds":..}, ...}. */
    public synchronized Map<String, Map<String, Object>> toMap() {
        Map<String, Map<String, Object>> m = new LinkedHashMap<>();
        for (Map.Entry<Op, Totals> e : totals.entrySet()) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("calls", e.getValue().calls());
            v.put("bytes", e.getValue().bytes());
            v.put("seconds", e.getValue().seconds());
            m.put(e.getKey().name().toLowerCase(), v);
        }
        return m;
    }

    @Override
    public String toString() {
        return toMap().toString();
    }
}
