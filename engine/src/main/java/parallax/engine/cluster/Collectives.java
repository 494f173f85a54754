package parallax.engine.cluster;

import java.util.Arrays;
import java.util.function.Supplier;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllToAllOptions;
import org.bytedeco.pytorch.AllgatherOptions;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.BarrierOptions;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.ReduceScatterOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;

/**
 * The collectives of one process group (the world, or a DP/TP/PP group of the {@link Mesh}),
 * called by every member of the group, like {@code torch.distributed} with a {@code group=}.
 *
 * <p>Ranks passed to {@link #send}, {@link #recv} and {@link #broadcast} are ranks
 * <em>inside this group</em> (0..size-1); {@link #globalRank(int)} maps them to world ranks.
 * Every call blocks until the operation is complete on this rank, counts its bytes and
 * wall time into {@link #stats()}, and fails after the group's timeout with a
 * {@link ClusterError} naming the group and the operation instead of hanging.
 *
 * <p>Tensors must be contiguous CPU tensors for Gloo (CUDA tensors for NCCL); results are
 * written in place, as in PyTorch.
 */
public final class Collectives {

    /** Part of every timeout message, so the coordinator can tell a timeout from other errors. */
    static final String TIMEOUT_MARK = "timed out after";

    private final String name;
    private final Backend group;
    private final int rank;
    private final int[] members;
    private final long timeoutMs;
    private final CommStats stats;
    /**
     * Shared memory when every member is on this machine, shared memory plus the backend
     * across nodes when the group spans nodes with several members on each; null: the
     * backend (Gloo/NCCL) for everything.
     */
    private volatile GroupTransport transport;

    /**
     * @param name     group name for messages, such as "world" or "tp[0,1]"
     * @param group    the c10d backend (ProcessGroupGloo, or ProcessGroupNCCL under -Pcuda)
     * @param rank     this process's rank inside the group
     * @param members  world rank of each group rank, in group order
     * @param timeoutMs how long a collective may wait for the other members
     * @param stats    where bytes and time are counted (shared by all groups of a rank)
     */
    Collectives(String name, Backend group, int rank, int[] members, long timeoutMs, CommStats stats) {
        this.name = name;
        this.group = group;
        this.rank = rank;
        this.members = members.clone();
        this.timeoutMs = timeoutMs;
        this.stats = stats;
    }

    /** This process's rank inside the group. */
    public int rank() { return rank; }

    /** Number of ranks in the group. */
    public int size() { return members.length; }

    public String name() { return name; }

    /** World rank of group rank {@code groupRank}. */
    public int globalRank(int groupRank) { return members[groupRank]; }

    /** World ranks of the members, in group order. */
    public int[] members() { return members.clone(); }

    public CommStats stats() { return stats; }

    /**
     * How {@link #allReduce}, {@link #allGather} and {@link #reduceScatter} move data: "shm"
     * (shared memory, all members on this machine), "shm+gloo" (hierarchical: shared memory
     * inside each node, Gloo across nodes) or the backend's name ("gloo", "nccl").
     */
    public String transport() {
        GroupTransport t = transport;
        return t != null ? t.name() : group.getBackendName().getString();
    }

    void use(GroupTransport t) { this.transport = t; }

    /**
     * Runs {@code op} through the group's own transport when it has one and every tensor
     * is a contiguous CPU tensor; false when the backend must do it instead.
     */
    private boolean viaTransport(CommStats.Op op, long bytes, java.util.function.BiConsumer<GroupTransport, String> call,
                                 Tensor... tensors) {
        GroupTransport local = transport;
        if (local == null) return false;
        for (Tensor t : tensors) if (!t.is_cpu() || !t.is_contiguous()) return false;
        long t0 = System.nanoTime();
        call.accept(local, describe(op));
        stats.record(op, bytes, System.nanoTime() - t0);
        return true;
    }


    /** Sums {@code t} over the group, in place: afterwards every rank holds the sum. */
    public void allReduce(Tensor t) {
        if (viaTransport(CommStats.Op.ALL_REDUCE, t.nbytes(), (m, what) -> m.allReduce(t, timeoutMs, what), t)) return;
        run(CommStats.Op.ALL_REDUCE, t.nbytes(), () -> {
            AllreduceOptions o = new AllreduceOptions();
            o.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
            o.timeout(new Milliseconds(timeoutMs));
            return group.allreduce(new TensorVector(t), o);
        });
    }

    /**
     * Gathers every rank's {@code in} into {@code out}, concatenated along dim 0 in rank
     * order; {@code out} has size() times the elements of {@code in}.
     */
    public void allGather(Tensor out, Tensor in) {
        requireRatio("allGather", out, in);
        if (viaTransport(CommStats.Op.ALL_GATHER, in.nbytes(), (m, what) -> m.allGather(out, in, timeoutMs, what), out, in)) return;
        run(CommStats.Op.ALL_GATHER, in.nbytes(), () -> {
            AllgatherOptions o = new AllgatherOptions();
            o.timeout(new Milliseconds(timeoutMs));
            return group._allgather_base(out, in, o);
        });
    }

    /**
     * Sums {@code in} over the group and leaves on each rank its slice of the sum:
     * rank r gets elements [r*n, (r+1)*n) of the flattened sum, n = out.numel().
     */
    public void reduceScatter(Tensor out, Tensor in) {
        requireRatio("reduceScatter", in, out);
        if (viaTransport(CommStats.Op.REDUCE_SCATTER, in.nbytes(), (m, what) -> m.reduceScatter(out, in, timeoutMs, what), out, in)) return;
        run(CommStats.Op.REDUCE_SCATTER, in.nbytes(), () -> {
            ReduceScatterOptions o = new ReduceScatterOptions();
            o.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
            o.timeout(new Milliseconds(timeoutMs));
            return group._reduce_scatter_base(out, in, o);
        });
    }

    /**
     * Equal-split all-to-all ({@code torch.distributed.all_to_all_single} without split
     * sizes): {@code in} is cut along dim 0 into size() equal blocks, block j goes to group
     * rank j, and {@code out} receives, in rank order, the block each rank addressed to this
     * one. Always through the backend (the shared-memory transport has no all-to-all).
     */
    public void allToAll(Tensor out, Tensor in) {
        if (out.numel() != in.numel() || in.numel() % members.length != 0)
            throw new IllegalArgumentException("allToAll on group " + name + ": in and out must have the same number of elements, "
                    + "a multiple of " + members.length + " (" + in.numel() + " and " + out.numel() + ")");
        run(CommStats.Op.ALL_TO_ALL, in.nbytes(), () -> {
            AllToAllOptions o = new AllToAllOptions();
            o.timeout(new Milliseconds(timeoutMs));
            return group.alltoall_base(out, in, new LongVector(), new LongVector(), o);
        });
    }

    /**
     * Starts a sum all-reduce of {@code t} on the backend and returns at once; {@code await()}
     * blocks until it is done, failing like {@link #allReduce} after the timeout. For the
     * hierarchical path, which overlaps the cross-node step with the next piece's work.
     * The native objects belong to the caller's PointerScope, which must outlive the wait.
     */
    SharedMemoryGroup.Pending allReduceAsync(Tensor t) {
        long t0 = System.nanoTime();
        AllreduceOptions o = new AllreduceOptions();
        o.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
        o.timeout(new Milliseconds(timeoutMs));
        TensorVector v = new TensorVector(t);
        Work work;
        try {
            work = group.allreduce(v, o);
        } catch (RuntimeException e) {
            throw failure(CommStats.Op.ALL_REDUCE, e);
        }
        return () -> {
            try {
                if (!work._wait(new Milliseconds(timeoutMs))) {
                    throw new ClusterError(describe(CommStats.Op.ALL_REDUCE) + " " + TIMEOUT_MARK + " " + timeoutMs / 1000.0
                            + " s: a member of the group did not arrive");
                }
            } catch (ClusterError e) {
                throw e;
            } catch (RuntimeException e) {
                throw failure(CommStats.Op.ALL_REDUCE, e);
            }
            stats.record(CommStats.Op.ALL_REDUCE, t.nbytes(), System.nanoTime() - t0);
        };
    }

    /** Copies {@code t} from group rank {@code root} to every other rank, in place. */
    public void broadcast(Tensor t, int root) {
        checkPeer("broadcast root", root);
        run(CommStats.Op.BROADCAST, t.nbytes(), () -> {
            BroadcastOptions o = new BroadcastOptions();
            o.rootRank(root);
            o.rootTensor(0);
            o.timeout(new Milliseconds(timeoutMs));
            return group.broadcast(new TensorVector(t), o);
        });
    }

    /** Sends {@code t} to group rank {@code dst}; the peer must call {@link #recv}. */
    public void send(Tensor t, int dst) {
        send(t, dst, 0);
    }

    /** Receives into {@code t} (of the sent shape) from group rank {@code src}. */
    public void recv(Tensor t, int src) {
        recv(t, src, 0);
    }

    /** Sends {@code t} to group rank {@code dst}, matched on the peer by {@code tag}. */
    public void send(Tensor t, int dst, int tag) {
        checkPeer("send destination", dst);
        run(CommStats.Op.SEND, t.nbytes(), () -> group.send(new TensorVector(t), dst, tag));
    }

    /** Receives into {@code t} the message sent from group rank {@code src} with {@code tag}. */
    public void recv(Tensor t, int src, int tag) {
        checkPeer("recv source", src);
        run(CommStats.Op.RECV, t.nbytes(), () -> group.recv(new TensorVector(t), src, tag));
    }

    /**
     * Sends {@code out} to {@code dst} and receives {@code in} from {@code src} at the same
     * time (like MPI_Sendrecv), so a ring of ranks can shift data without deadlock.
     */
    public void sendRecv(Tensor out, int dst, Tensor in, int src) {
        checkPeer("send destination", dst);
        checkPeer("recv source", src);
        long t0 = System.nanoTime();
        try (PointerScope scope = new PointerScope()) {
            Work s = group.send(new TensorVector(out), dst, 0);
            Work r = group.recv(new TensorVector(in), src, 0);
            boolean ok = r._wait(new Milliseconds(timeoutMs)) && s._wait(new Milliseconds(timeoutMs));
            if (!ok) throw new ClusterError(describe(CommStats.Op.SEND) + " " + TIMEOUT_MARK + " " + timeoutMs / 1000.0 + " s");
        } catch (ClusterError e) {
            throw e;
        } catch (RuntimeException e) {
            throw new ClusterError(describe(CommStats.Op.SEND) + " failed: " + nativeMessage(e), e);
        }
        long dt = System.nanoTime() - t0;
        stats.record(CommStats.Op.SEND, out.nbytes(), dt);
        stats.record(CommStats.Op.RECV, in.nbytes(), 0);
    }

    /** A message on its way (see {@link #isend}). */
    public interface Pending {
        /** Returns once the message has left this rank; fails after the group's timeout. */
        void await();
    }

    /**
     * Starts sending {@code t} to group rank {@code dst}, matched by {@code tag}, and returns
     * at once, as {@code torch.distributed.isend} does: the backend keeps the tensor until
     * the send is done, and {@link Pending#await} waits for it. A stage that sends this way
     * never blocks on a neighbour that is itself sending.
     */
    public Pending isend(Tensor t, int dst, int tag) {
        checkPeer("send destination", dst);
        long bytes = t.nbytes(), t0 = System.nanoTime();
        Work work;
        try (PointerScope scope = new PointerScope()) {
            work = group.send(new TensorVector(t), dst, tag);
            work.retainReference(); // outlives this scope until await
        } catch (RuntimeException e) {
            throw new ClusterError(describe(CommStats.Op.SEND) + " failed: " + nativeMessage(e), e);
        }
        return () -> {
            try {
                if (!work._wait(new Milliseconds(timeoutMs)))
                    throw new ClusterError(describe(CommStats.Op.SEND) + " " + TIMEOUT_MARK + " " + timeoutMs / 1000.0
                            + " s: the receiver did not take the message");
            } catch (ClusterError e) {
                throw e;
            } catch (RuntimeException e) {
                throw new ClusterError(describe(CommStats.Op.SEND) + " failed: " + nativeMessage(e), e);
            } finally {
                work.releaseReference();
            }
            stats.record(CommStats.Op.SEND, bytes, System.nanoTime() - t0);
        };
    }

    /** The c10d backend itself, for the raw-baseline benchmark. */
    Backend backend() { return group; }

    /** Returns once every rank of the group has called barrier. */
    public void barrier() {
        run(CommStats.Op.BARRIER, 0, () -> {
            BarrierOptions o = new BarrierOptions();
            o.timeout(new Milliseconds(timeoutMs));
            return group.barrier(o);
        });
    }

    private void run(CommStats.Op op, long bytes, Supplier<Work> start) {
        long t0 = System.nanoTime();
        try (PointerScope scope = new PointerScope()) {
            Work work = start.get();
            if (!work._wait(new Milliseconds(timeoutMs))) {
                throw new ClusterError(describe(op) + " " + TIMEOUT_MARK + " " + timeoutMs / 1000.0
                        + " s: a member of the group did not arrive");
            }
        } catch (ClusterError e) {
            throw e;
        } catch (RuntimeException e) {
            throw failure(op, e);
        }
        stats.record(op, bytes, System.nanoTime() - t0);
    }

    /** A backend exception as one line; a timeout carries {@link #TIMEOUT_MARK}. */
    private ClusterError failure(CommStats.Op op, RuntimeException e) {
        String msg = nativeMessage(e);
        boolean timeout = msg.toLowerCase().contains("timed out") || msg.toLowerCase().contains("timeout");
        return new ClusterError(describe(op) + (timeout
                ? " " + TIMEOUT_MARK + " " + timeoutMs / 1000.0 + " s (a member of the group did not arrive or died): "
                : " failed: ") + msg, e);
    }

    /** First line of a c10d/Gloo error without its "[/path/to/file.cc:78] " source prefix. */
    static String nativeMessage(RuntimeException e) {
        String first = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
        return first.replaceFirst("^\\[[^\\]]*\\.(cc|cpp|h):\\d+\\]\\s*", "");
    }

    private String describe(CommStats.Op op) {
        return op.name().toLowerCase() + " on group " + name + " (world rank " + members[rank]
                + ", group ranks " + Arrays.toString(members) + ")";
    }

    private void checkPeer(String what, int peer) {
        if (peer < 0 || peer >= members.length) {
            throw new IllegalArgumentException(what + " " + peer + " is not a rank of group " + name
                    + " (size " + members.length + ")");
        }
    }

    private void requireRatio(String op, Tensor big, Tensor small) {
        if (big.numel() != small.numel() * members.length) {
            throw new IllegalArgumentException(op + " on group " + name + ": the larger tensor must have "
                    + members.length + " x " + small.numel() + " elements, has " + big.numel());
        }
    }
}
