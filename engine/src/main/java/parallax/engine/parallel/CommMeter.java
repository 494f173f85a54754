package parallax.engine.parallel;

import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;

/**
 * A {@link Comm} that counts, per collective type, the calls, the bytes this rank puts
 * on the wire and the wall time spent in the call: the communication part of a step's
 * time split. Bytes follow the ring algorithm's traffic per rank, the nccl-tests "bus"
 * convention (REFERENCE.md): all-reduce 2(n-1)/n of the buffer, all-gather and
 * reduce-scatter (n-1)/n of the full (gathered / unscattered) buffer, send its size. So
 * plain DP moves 2Ψ(n-1)/n per step and ZeRO-3 1.5 times that, as in the ZeRO paper.
 * Shared by all the groups of one rank.
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
            final int n = c.size();
            @Override public void allReduce(Tensor t) { long t0 = System.nanoTime(); c.allReduce(t); add("allReduce", 2 * t.nbytes() * (n - 1) / n, System.nanoTime() - t0); }
            @Override public void allGather(Tensor out, Tensor in) { long t0 = System.nanoTime(); c.allGather(out, in); add("allGather", out.nbytes() * (n - 1) / n, System.nanoTime() - t0); }
            @Override public void reduceScatter(Tensor out, Tensor in) { long t0 = System.nanoTime(); c.reduceScatter(out, in); add("reduceScatter", in.nbytes() * (n - 1) / n, System.nanoTime() - t0); }
            @Override public void send(Tensor t, int dst) { long t0 = System.nanoTime(); c.send(t, dst); add("send", t.nbytes(), System.nanoTime() - t0); }
            @Override public void recv(Tensor t, int src) { long t0 = System.nanoTime(); c.recv(t, src); add("recv", t.nbytes(), System.nanoTime() - t0); }
        };
    }
}
