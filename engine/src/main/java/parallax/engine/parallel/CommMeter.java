package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;

/**
 * A {@link Comm} wrapper that counts, per collective type, what each call was handed and
 * how long it took: the communication part of a step's time split and of the per-rank
 * traffic table. Shared by all the groups of one rank.
 *
 * <ul>
 *   <li><b>Bytes handed</b>: the size of the collective's buffer as the call received it
 *       (all-reduce: the tensor; all-gather: the gathered output; reduce-scatter: the
 *       unscattered input; all-to-all: the send buffer; send/recv: the message). Counted, not derived.</li>
 *   <li><b>Ring traffic</b>: bytes handed times the ring algorithm's per-rank traffic
 *       factor, the nccl-tests "bus" convention (docs/reference.md#bus-bandwidth):
 *       all-reduce 2(n-1)/n, all-gather, reduce-scatter and all-to-all (n-1)/n (an
 *       all-to-all keeps its own block), send/recv 1. So plain
 *       DP moves 2Ψ(n-1)/n per step and ZeRO-3 1.5 times that, as in the ZeRO paper. It
 *       is an estimate of what the algorithm puts on the wire, and is labelled so.</li>
 *   <li><b>Exposed time</b>: time spent in calls made on the training thread (the one
 *       that created this meter), measured directly; calls on other threads (the DP
 *       bucket thread) overlap with compute and are not exposed, and of a send started
 *       with {@code isend} (the pipeline's) only the wait for it to leave is.</li>
 * </ul>
 */
public final class CommMeter {

    /** Totals of one collective type since the last {@link #take()}. */
    public static final class Totals {
        public long calls, bytesHanded, nanos, exposedNanos;
        public double ringBytes;
    }

    /** The ring algorithm's per-rank traffic as a multiple of the bytes handed, for a group of {@code n}. */
    public static double ringFactor(String op, int n) {
        return switch (op) {
            case "allReduce" -> 2.0 * (n - 1) / n;
            case "allGather", "reduceScatter", "allToAll" -> (n - 1.0) / n;
            default -> 1.0;
        };
    }

    /** The factor above, written out for captions. */
    public static final String FACTORS = "all-reduce 2(n−1)/n, all-gather, reduce-scatter and all-to-all (n−1)/n, send/recv 1";

    private final Map<String, Totals> totals = new TreeMap<>();
    private final Thread trainingThread = Thread.currentThread();
    private final Device device;

    /** A meter for the groups of a rank on {@code device} (on a GPU, calls are timed to completion). */
    public CommMeter(Device device) {
        this.device = device;
    }

    public CommMeter() {
        this(Device.cpu());
    }

    /** Records one call of {@code op} over a group of {@code n} that was handed {@code bytes}. */
    synchronized void add(String op, int n, long bytes, long nanos) {
        Totals t = totals.computeIfAbsent(op, k -> new Totals());
        t.calls++;
        t.bytesHanded += bytes;
        t.ringBytes += bytes * ringFactor(op, n);
        t.nanos += nanos;
        if (Thread.currentThread() == trainingThread) t.exposedNanos += nanos;
    }

    /**
     * The clock at a call's start. On a GPU the work queued before the call is waited for
     * first (so it is not charged to the collective) and the collective itself after
     * ({@link #end}): NCCL returns once the work is queued on the stream.
     */
    private long start() {
        device.synchronize();
        return System.nanoTime();
    }

    private long end(long t0) {
        device.synchronize();
        return System.nanoTime() - t0;
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
            final int n = c.size();
            @Override public int rank() { return c.rank(); }
            @Override public int size() { return n; }
            @Override public void allReduce(Tensor t) { long t0 = start(); c.allReduce(t); add("allReduce", n, t.nbytes(), end(t0)); }
            @Override public void allGather(Tensor out, Tensor in) { long t0 = start(); c.allGather(out, in); add("allGather", n, out.nbytes(), end(t0)); }
            @Override public void reduceScatter(Tensor out, Tensor in) { long t0 = start(); c.reduceScatter(out, in); add("reduceScatter", n, in.nbytes(), end(t0)); }
            @Override public void allToAll(Tensor out, Tensor in) { long t0 = start(); c.allToAll(out, in); add("allToAll", n, in.nbytes(), end(t0)); }
            @Override public void send(Tensor t, int dst, int tag) { long t0 = start(); c.send(t, dst, tag); add("send", n, t.nbytes(), end(t0)); }
            @Override public void recv(Tensor t, int src, int tag) { long t0 = start(); c.recv(t, src, tag); add("recv", n, t.nbytes(), end(t0)); }
            @Override public Pending isend(Tensor t, int dst, int tag) {
                // Issuing is not waiting: only the wait for the message to leave is timed.
                long bytes = t.nbytes();
                Pending p = c.isend(t, dst, tag);
                return () -> { long t0 = start(); p.await(); add("send", n, bytes, end(t0)); };
            }
            @Override public void sendRecv(Tensor out, int dst, Tensor in, int src) {
                long t0 = start();
                c.sendRecv(out, dst, in, src);
                add("sendRecv", n, out.nbytes(), end(t0));
            }
        };
    }
}
