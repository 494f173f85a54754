package parallax.engine.parallel;

import org.bytedeco.pytorch.Tensor;

/**
 * What a strategy needs from one process group: the runtime's collectives (the cluster
 * package's {@code Collectives}, counted in its CommStats) seen through the few calls
 * the strategies make. A group of one does nothing, so the same strategy code runs in a
 * single process.
 */
public interface Comm {

    int rank();

    int size();

    /** In-place sum over the group. */
    void allReduce(Tensor t);

    /** {@code out} = every rank's {@code in} concatenated along dim 0 in rank order. */
    void allGather(Tensor out, Tensor in);

    /** Rank r gets elements [r*n, (r+1)*n) of the sum of {@code in}, n = out.numel(). */
    void reduceScatter(Tensor out, Tensor in);

    /**
     * Equal-split all-to-all: {@code in} cut along dim 0 into size() equal blocks, block j to
     * rank j; {@code out} (as many elements) gets in rank order the block each rank sent here.
     */
    void allToAll(Tensor out, Tensor in);

    default void send(Tensor t, int dst) { send(t, dst, 0); }

    default void recv(Tensor t, int src) { recv(t, src, 0); }

    /** Point-to-point, matched by {@code tag}: messages with other tags may be in flight between the same ranks. */
    void send(Tensor t, int dst, int tag);

    void recv(Tensor t, int src, int tag);

    /** A send on its way: {@link #await} returns once the message has left this rank. */
    interface Pending {
        void await();

        Pending DONE = () -> {};
    }

    /**
     * Starts a send and returns at once (torch.distributed.isend); {@code t} must stay
     * untouched until {@link Pending#await}. Groups without asynchronous sends send now.
     */
    default Pending isend(Tensor t, int dst, int tag) {
        send(t, dst, tag);
        return Pending.DONE;
    }

    /** Sends {@code out} to {@code dst} while receiving {@code in} from {@code src}: a ring shift without deadlock. */
    void sendRecv(Tensor out, int dst, Tensor in, int src);

    /** A group with one member: every collective is the identity. */
    static Comm single() {
        return new Comm() {
            @Override public int rank() { return 0; }
            @Override public int size() { return 1; }
            @Override public void allReduce(Tensor t) {}
            @Override public void allGather(Tensor out, Tensor in) { out.copy_(in); }
            @Override public void reduceScatter(Tensor out, Tensor in) { out.copy_(in); }
            @Override public void allToAll(Tensor out, Tensor in) { out.copy_(in); }
            @Override public void send(Tensor t, int dst, int tag) { throw new IllegalStateException("send in a group of one"); }
            @Override public void recv(Tensor t, int src, int tag) { throw new IllegalStateException("recv in a group of one"); }
            @Override public void sendRecv(Tensor out, int dst, Tensor in, int src) { in.copy_(out); }
        };
    }
}
