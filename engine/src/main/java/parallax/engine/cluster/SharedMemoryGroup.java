package parallax.engine.cluster;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Sum all-reduce (and all-gather, reduce-scatter) for a group whose ranks share one
 * machine, through a shared-memory segment instead of TCP over loopback: the intra-node path that NCCL takes with its SHM
 * transport and that DeepSpeed uses for CPU ranks on one node. Over Gloo a local
 * all-reduce pays for kernel copies and socket wake-ups on the cores the ranks compute
 * on; here it is three memory passes (measured in docs/cluster.md).
 *
 * <p>The segment is a file in /dev/shm mapped by every member (libtorch's
 * {@code from_file}, MAP_SHARED) and unlinked as soon as all have mapped it, so nothing
 * is left behind when the ranks exit. Layout: one 64-byte line per rank holding that
 * rank's progress counter, a line with the creator's magic number, then one slot per
 * rank. A tensor larger than a slot goes through in pieces. For piece {@code c}
 * (counting from 1 over the group's lifetime) every rank:
 * <ol>
 *   <li>waits until every counter is at least {@code 3(c-1)} (nobody still reads its slot),
 *       copies its piece into its own slot and publishes {@code 3c-2};</li>
 *   <li>waits for {@code 3c-2} everywhere, adds the other slots' part {@code r} into its own
 *       slot's part {@code r} (reduce-scatter: part r is summed once, by rank r) and
 *       publishes {@code 3c-1};</li>
 *   <li>waits for {@code 3c-1} everywhere, copies each part j from slot j (all-gather)
 *       and publishes {@code 3c}.</li>
 * </ol>
 * Every rank thus ends with bit-identical sums. A small piece (see {@link #SMALL_BYTES})
 * skips the middle phase: after step 1 every rank sums all slots in rank order. Counters are written with release and
 * read with acquire semantics; a waiting rank spins briefly, yields, then parks in 20 µs
 * steps, and gives up with a {@link ClusterError} after the group's timeout. The counts
 * above are relative to where the counters stood when the call began (every member ends
 * each call on the same value), so calls of different kinds follow each other freely.
 *
 * <p>When the members are one node's share of a group that spans nodes,
 * {@link #allReduceAcross} puts a step between the reduce-scatter and the all-gather:
 * each rank all-reduces its summed part with its peers on the other nodes (see
 * {@link HierarchicalGroup}).
 */
final class SharedMemoryGroup implements GroupTransport {

    /**
     * Up to this many bytes read per rank (piece x ranks), an all-reduce piece is summed by
     * every rank from all slots after one hand-off, not reduce-scattered and gathered after
     * two: each hand-off to a rank that is parked costs a wake-up (tens of µs), which is
     * most of a small all-reduce (Megatron's activation all-reduces, the fp16 overflow flag).
     */
    static final long SMALL_BYTES = 1L << 20;

    /** Default slot size per rank; {@code PARALLAX_SHM_SLOT_MB} overrides it. */
    static final long DEFAULT_SLOT_BYTES = 4L << 20;
    private static final long LINE = 64;
    private static final long PAGE = 4096;
    private static final VarHandle LONG = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.nativeOrder());

    private final int rank, size;
    private final long slotBytes, headerBytes;
    private final Tensor segment;
    private final ByteBuffer header;
    /** The value this rank last published; equal on every member between calls. */
    private long published;
    private long smallBytes = SMALL_BYTES;
    /** How members are named in messages: their rank in the group the caller knows. */
    private int[] labels;

    private SharedMemoryGroup(Path file, int rank, int size, long slotBytes, boolean create) {
        this.rank = rank;
        this.size = size;
        this.slotBytes = slotBytes;
        this.labels = new int[size];
        for (int j = 0; j < size; j++) labels[j] = j;
        this.headerBytes = ((size + 1) * LINE + PAGE - 1) / PAGE * PAGE;
        long total = headerBytes + size * slotBytes;
        if (create) {
            // Written out in full now: tmpfs allocates pages on write, and a mapping whose
            // pages cannot be had later (a small /dev/shm, as in containers) kills the
            // process with SIGBUS. A full disk fails here instead, and the group uses Gloo.
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                    java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
                ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(total, 1 << 20));
                for (long off = 0; off < total; ) {
                    zeros.clear().limit((int) Math.min(zeros.capacity(), total - off));
                    off += ch.write(zeros, off);
                }
            } catch (IOException e) {
                try {
                    Files.deleteIfExists(file);
                } catch (IOException ignored) {
                    // nothing more to do
                }
                throw new IllegalStateException("cannot make " + file + ": " + e.getMessage(), e);
            }
        } else {
            // from_file would create a missing file: a rank on another machine must fail here instead.
            try {
                if (!Files.isRegularFile(file) || Files.size(file) != total) throw new IllegalStateException("no segment " + file + " on this machine");
            } catch (IOException e) {
                throw new IllegalStateException("cannot read " + file + ": " + e.getMessage(), e);
            }
        }
        // Kept past any PointerScope the caller is in; close() unmaps it.
        this.segment = parallax.engine.torch.Torch.keep(parallax.engine.torch.Device.cpu().mapFile(file.toString(), total));
        this.header = new BytePointer(segment.data_ptr()).capacity(headerBytes).asByteBuffer().order(ByteOrder.nativeOrder());
    }

    /** Rank 0 of the group: makes the segment (zero-filled) and stamps {@code magic} into it. */
    static SharedMemoryGroup create(Path file, long magic, int size, long slotBytes) {
        SharedMemoryGroup s = new SharedMemoryGroup(file, 0, size, slotBytes, true);
        LONG.setRelease(s.header, (int) (size * LINE), magic);
        return s;
    }

    /** Another member: maps the segment rank 0 made; fails if it is not there or not the same one. */
    static SharedMemoryGroup open(Path file, long magic, int rank, int size, long slotBytes) {
        SharedMemoryGroup s = new SharedMemoryGroup(file, rank, size, slotBytes, false);
        if ((long) LONG.getAcquire(s.header, (int) (size * LINE)) != magic) {
            s.close();
            throw new IllegalStateException(file + " is not this group's segment");
        }
        return s;
    }

    /** The segment file name group rank 0 in process {@code pid} gives a group with {@code magic}. */
    static Path segmentFile(long pid, long magic) {
        return Path.of("/dev/shm", "parallax-" + pid + "-" + Long.toHexString(magic));
    }

    /** Deletes segments a process left in /dev/shm (it died before unlinking them). */
    static void removeLeftovers(long pid) {
        Path dir = Path.of("/dev/shm");
        if (!Files.isDirectory(dir)) return;
        try (var files = Files.newDirectoryStream(dir, "parallax-" + pid + "-*")) {
            for (Path f : files) Files.deleteIfExists(f);
        } catch (IOException ignored) {
            // best effort: tmpfs, gone at the next boot anyway
        }
    }

    /** Sets the small-piece limit (tests use it to take either path); every member must agree. */
    SharedMemoryGroup smallBytes(long bytes) {
        this.smallBytes = bytes;
        return this;
    }

    /**
     * Names member {@code j} as group rank {@code labels[j]} in messages (a node's share of a
     * larger group: the members are that group's ranks, not 0..size-1).
     */
    SharedMemoryGroup labels(int[] groupRanks) {
        this.labels = groupRanks.clone();
        return this;
    }

    @Override
    public String name() { return "shm"; }

    /** Slot size from {@code PARALLAX_SHM_SLOT_MB}, whole pages, at least one. */
    static long slotBytesFromEnv() {
        String v = System.getenv("PARALLAX_SHM_SLOT_MB");
        if (v == null || v.isBlank()) return DEFAULT_SLOT_BYTES;
        long b = (long) (Double.parseDouble(v.trim()) * (1 << 20));
        return Math.max(PAGE, b / PAGE * PAGE);
    }

    /**
     * Sums {@code t} (a contiguous CPU tensor of any dtype with an addition) over the group,
     * in place. Every member calls it with a tensor of the same size and dtype.
     */
    @Override
    public synchronized void allReduce(Tensor t, long timeoutMs, String what) {
        // Writes into the caller's tensor are raw data movement, as Gloo's are: never recorded by autograd.
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor flat = t.view(-1);
            long n = flat.numel(), per = slotBytes / t.element_size();
            torch.ScalarType type = t.scalar_type();
            long base = published;
            for (long off = 0, c = 1; off < n; off += per, c++) {
                long len = Math.min(per, n - off);
                piece(flat.narrow(0, off, len), len, type, base + 3 * c, System.nanoTime() + timeoutMs * 1_000_000L, timeoutMs, what);
            }
        }
    }

    /**
     * All-gather: {@code out} (size x the elements of {@code in}) receives every member's
     * {@code in}, in group-rank order. Same slots and counters as the all-reduce, one copy
     * in and one copy out per piece.
     */
    @Override
    public synchronized void allGather(Tensor out, Tensor in, long timeoutMs, String what) {
        // Writes into the caller's tensor are raw data movement, as Gloo's are: never recorded by autograd.
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor src = in.view(-1), dst = out.view(-1);
            long n = src.numel(), per = slotBytes / in.element_size();
            torch.ScalarType type = in.scalar_type();
            long base = published;
            for (long off = 0, c = 1; off < n; off += per, c++) {
                long len = Math.min(per, n - off), deadline = System.nanoTime() + timeoutMs * 1_000_000L;
                long end = base + 3 * c;
                awaitAll(end - 3, deadline, timeoutMs, what);
                slot(rank, len, type).copy_(src.narrow(0, off, len));
                publish(end - 2);
                awaitAll(end - 2, deadline, timeoutMs, what);
                for (int j = 0; j < size; j++) dst.narrow(0, j * n + off, len).copy_(slot(j, len, type));
                publish(end);
            }
        }
    }

    /**
     * Reduce-scatter: {@code out} receives part {@code rank} (of {@code size} equal parts of
     * {@code in}) summed over the group. Each piece carries a sub-range of every part; each
     * rank sums only its own part, in group-rank order.
     */
    @Override
    public synchronized void reduceScatter(Tensor out, Tensor in, long timeoutMs, String what) {
        // Writes into the caller's tensor are raw data movement, as Gloo's are: never recorded by autograd.
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor src = in.view(-1), dst = out.view(-1);
            long n = dst.numel(), per = slotBytes / in.element_size() / size;
            torch.ScalarType type = in.scalar_type();
            long base = published;
            for (long off = 0, c = 1; off < n; off += per, c++) {
                long len = Math.min(per, n - off), deadline = System.nanoTime() + timeoutMs * 1_000_000L;
                long end = base + 3 * c;
                awaitAll(end - 3, deadline, timeoutMs, what);
                Tensor mine = slot(rank, len * size, type);
                for (int j = 0; j < size; j++) mine.narrow(0, j * len, len).copy_(src.narrow(0, j * n + off, len));
                publish(end - 2);
                awaitAll(end - 2, deadline, timeoutMs, what);
                Tensor acc = dst.narrow(0, off, len);
                acc.copy_(slot(0, len * size, type).narrow(0, rank * len, len));
                for (int j = 1; j < size; j++) acc.add_(slot(j, len * size, type).narrow(0, rank * len, len));
                publish(end);
            }
        }
    }

    /** One piece of an all-reduce; the counters go from {@code end - 3} to {@code end}. */
    private void piece(Tensor part, long len, torch.ScalarType type, long end, long deadline, long timeoutMs, String what) {
        awaitAll(end - 3, deadline, timeoutMs, what);
        Tensor mine = slot(rank, len, type);
        mine.copy_(part);
        publish(end - 2);

        awaitAll(end - 2, deadline, timeoutMs, what);
        if (len * torch.elementSize(type) * size <= smallBytes) {
            // Small: one hand-off instead of two. Every rank adds up all slots itself, in
            // rank order, so all get the same bits; reading size x the piece is cheap here.
            part.copy_(slot(0, len, type));
            for (int j = 1; j < size; j++) part.add_(slot(j, len, type));
            publish(end);
            return;
        }
        sumOwnPart(mine, len, type, 0);
        publish(end - 1);

        awaitAll(end - 1, deadline, timeoutMs, what);
        gather(part, len, type, 0);
        publish(end);
    }

    /** Adds every other slot's part {@code rank} (of a piece of {@code len} at {@code offset} in each slot) into this rank's. */
    private Tensor sumOwnPart(Tensor mine, long len, torch.ScalarType type, long offset) {
        long lo = bound(rank, len), hi = bound(rank + 1, len);
        if (hi == lo) return null;
        Tensor acc = mine.narrow(0, lo, hi - lo);
        for (int j = 0; j < size; j++) if (j != rank) acc.add_(slot(j, offset + len, type).narrow(0, offset + lo, hi - lo));
        return acc;
    }

    /** Copies each part j of a piece from slot j (at {@code offset} in each slot) into {@code out}. */
    private void gather(Tensor out, long len, torch.ScalarType type, long offset) {
        for (int j = 0; j < size; j++) {
            long a = bound(j, len), b = bound(j + 1, len);
            if (b > a) out.narrow(0, a, b - a).copy_(slot(j, offset + len, type).narrow(0, offset + a, b - a));
        }
    }

    /** A cross-node all-reduce of one part, started and not yet waited for. */
    interface Pending {
        void await();
    }

    /** Starts the all-reduce of {@code part} (a rank's summed part, in its slot) with the same part on the other nodes. */
    interface Across {
        Pending start(Tensor part);
    }

    /**
     * The node's share of a hierarchical all-reduce: per piece, a reduce-scatter over the
     * slots (rank r sums part r), then {@code across} all-reduces part r with the ranks that
     * hold part r on the other nodes, then an all-gather from the slots. Each slot is two
     * buffers used by alternate pieces, so the cross-node all-reduce of piece c is on the
     * wire while piece c+1 is copied in and summed: the node's memory work hides behind
     * the network instead of adding to it.
     *
     * <p>Counter values, relative to the call's start, for pieces 1..P: piece c's copy-in
     * publishes E(c) and its sum F(c) (1 and 2 for the first piece, 4c-5 and 4c-4 after),
     * its cross-node result being in place publishes 4c+1 and its gather 4c+2. A rank
     * copies piece c into a buffer once every member gathered piece c-2 from it.
     */
    synchronized void allReduceAcross(Tensor t, long timeoutMs, String what, Across across) {
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor flat = t.view(-1);
            long half = slotBytes / 2 / t.element_size(), n = flat.numel();
            torch.ScalarType type = t.scalar_type();
            long pieces = (n + half - 1) / half, base = published;
            Pending[] inFlight = new Pending[2];
            for (long c = 1; c <= pieces + 1; c++) {
                long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
                if (c <= pieces) {
                    long off = (c - 1) * half, len = Math.min(half, n - off), buf = (c % 2) * half;
                    long copied = base + (c == 1 ? 1 : 4 * c - 5);
                    awaitAll(copied - 1, deadline, timeoutMs, what);      // piece c-2 gathered from this buffer
                    Tensor mine = slot(rank, buf + len, type).narrow(0, buf, len);
                    mine.copy_(flat.narrow(0, off, len));
                    publish(copied);
                    awaitAll(copied, deadline, timeoutMs, what);
                    Tensor acc = sumOwnPart(mine, len, type, buf);
                    publish(copied + 1);
                    inFlight[(int) (c % 2)] = acc == null ? null : across.start(acc);
                }
                if (c >= 2) {
                    long d = c - 1, off = (d - 1) * half, len = Math.min(half, n - off), buf = (d % 2) * half;
                    Pending p = inFlight[(int) (d % 2)];
                    if (p != null) p.await();
                    publish(base + 4 * d + 1);
                    awaitAll(base + 4 * d + 1, deadline, timeoutMs, what);
                    gather(flat.narrow(0, off, len), len, type, buf);
                    publish(base + 4 * d + 2);
                }
            }
        }
    }

    /** Start of part {@code j} of {@code len} elements (parts start on 16-element boundaries). */
    private long bound(int j, long len) {
        if (j >= size) return len;
        return Math.min(len, len * j / size / 16 * 16);
    }

    private Tensor slot(int j, long len, torch.ScalarType type) {
        long es = torch.elementSize(type);
        return segment.narrow(0, headerBytes + j * slotBytes, len * es).view(type);
    }

    private void publish(long value) {
        published = value;
        LONG.setRelease(header, (int) (rank * LINE), value);
    }

    /**
     * How a rank waits for the others: spin for 20 µs (a neighbour that is about to arrive
     * costs no wake-up), then yield the core for up to 100 µs more, then park in 20 µs steps
     * (Linux adds timer slack to each). Yielding before parking lets a rank that shares a
     * core with the one it waits for give that core away without paying for a wake-up;
     * the measurements that chose it are in docs/cluster.md.
     */
    private static final long SPIN_NANOS = 20_000, YIELD_NANOS = 100_000;

    private void awaitAll(long target, long deadline, long timeoutMs, String what) {
        for (int j = 0; j < size; j++) {
            long start = 0;
            while ((long) LONG.getAcquire(header, (int) (j * LINE)) < target) {
                long now = System.nanoTime();
                if (start == 0) start = now;
                long waited = now - start;
                if (waited < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else if (waited < SPIN_NANOS + YIELD_NANOS) {
                    Thread.yield();
                } else {
                    if (Thread.currentThread().isInterrupted()) throw new ClusterError(what + " interrupted");
                    if (now > deadline)
                        throw new ClusterError(what + " " + Collectives.TIMEOUT_MARK + " " + timeoutMs / 1000.0
                                + " s: group rank " + labels[j] + " did not arrive (shared memory)");
                    LockSupport.parkNanos(20_000);
                }
            }
        }
    }

    @Override
    public void close() {
        segment.close();
    }
}
