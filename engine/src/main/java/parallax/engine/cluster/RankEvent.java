package parallax.engine.cluster;

import java.util.Map;

/**
 * Something a rank said while running: a completed step with metrics, a line of output,
 * or another event kind. {@code step} is -1 when the event is not a step.
 */
public record RankEvent(int rank, String kind, long step, Map<String, Object> fields, String text) {

    /** A numeric field, or NaN when absent. */
    public double number(String key) {
        Object v = fields == null ? null : fields.get(key);
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    public boolean isOutput() {
        return "out".equals(kind);
    }
}
