package parallax.engine.parallel;

import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;

/**
 * A {@link Comm} that counts, per collective type, the calls, bytes handed to the
 * collective and wall time spent in it on this rank: the communication part of a step's
 * time split. Shared by all the groups of one rank.
 */
public final class CommMeter {

    /** Totals of one collective type. */
    public static final class Totals {
        public long calls, bytes, nanos;
    }

    private final Map<String, Totals> totals = new TreeMap<>();

    synchronized void add(String op, long bytes, long nanos) {
        Totals t = totals.computeIfAbsent(op, k -> new Totals());
        t.calls++;
        t.bytes += bytes;
        t.nanos += nanos;
    }

    /** A copy of the totals so far, then reset. */
    public synchronized Map<String, Totals> take() {
        Map<String, Totals> copy = new TreeMap<>(totals);
        totals.clear();
        return copy;
    }

    /** Wraps a group so that its calls are counted here. */
    public Comm wrap(Comm c) {
        if (c.size() == 1) return c;
        return new Comm() {
            @Override public int rank() { return c.rank(); }
            @Override public int size() { return c.size(); }
            @Override public void allReduce(Tensor t) { long t0 = System.nanoTime(); c.allReduce(t); add("allReduce", t.nbytes(), System.nanoTime() - t0); }
            @Override public void allGather(Tensor out, Tensor in) { long t0 = System.nanoTime(); c.allGather(out, in); add("allGather", in.nbytes(), System.nanoTime() - t0); }
            @Override public void reduceScatter(Tensor out, Tensor in) { long t0 = System.nanoTime(); c.reduceScatter(out, in); add("reduceScatter", in.nbytes(), System.nanoTime() - t0); }
            @Override public void send(Tensor t, int dst) { long t0 = System.nanoTime(); c.send(t, dst); add("send", t.nbytes(), System.nanoTime() - t0); }
            @Override public void recv(Tensor t, int src) { long t0 = System.nanoTime(); c.recv(t, src); add("recv", t.nbytes(), System.nanoTime() - t0); }
        };
    }
}
