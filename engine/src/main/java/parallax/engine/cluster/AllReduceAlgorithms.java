package parallax.engine.cluster;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * All-reduce (sum) written out with send/recv, three ways, to compare with the library's.
 * All three move 2(n-1) x S bytes in total for a tensor of S bytes over n ranks; they differ
 * in who carries the traffic and in how many message latencies lie one after the other.
 *
 * <p><b>Ring</b> (Patarasuk and Yuan, "Bandwidth optimal all-reduce algorithms for clusters
 * of workstations", JPDC 2009; the scheme Baidu brought to deep learning and NCCL uses):
 * the tensor is cut into n chunks. In n-1 reduce-scatter steps each rank passes one chunk
 * to its right neighbour and adds the chunk arriving from its left, so that afterwards
 * rank r owns the full sum of chunk r+1. In n-1 all-gather steps the finished chunks travel
 * once more around the ring. Each rank sends 2(n-1)/n of the tensor, whatever n is, which
 * is why bus bandwidth, not the number of ranks, bounds it; but its 2(n-1) steps each cost
 * one message latency.
 *
 * <p><b>Binary tree</b> (reduce then broadcast over a binary tree, as in Thakur, Rabenseifner
 * and Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 2005):
 * ranks form a heap-ordered binary tree (parent of r is (r-1)/2). Partial sums flow up to
 * rank 0, which then sends the total back down the same tree: 2 floor(log2 n) levels
 * instead of the ring's 2(n-1) steps, so small messages, where latency dominates, finish
 * sooner. The tensor goes up and down in chunks, so that while a parent forwards chunk k
 * its children already send chunk k+1: the levels work at once, as in a pipeline. A rank
 * with two children still sends up to 3 x S, where the ring sends under 2 x S. NCCL 2.4's
 * double binary tree (Sanders, Speck and Träff, "Two-tree algorithms for full bandwidth
 * broadcast, reduction and scan", Parallel Computing 2009) removes that imbalance by
 * running two such trees on half the data each, every rank a leaf in one of them; this
 * class keeps the single tree, the idea in its plainest form.
 *
 * <p><b>Parameter server</b>: every rank sends its tensor to rank 0, which adds them up and
 * sends the sum back. Rank 0 moves 2(n-1) whole tensors, so it becomes the bottleneck as
 * n grows.
 */
public final class AllReduceAlgorithms {

    /**
     * Elements per chunk of the tree's pipeline (1 MiB of float32). Pipelining k chunks over
     * d levels takes about (k + d - 1) chunk times instead of d whole-message times, but every
     * chunk is one more message and pays one more latency; with the few levels of a small
     * world, a handful of large chunks gets most of the overlap for few extra messages.
     */
    static final long TREE_CHUNK_ELEMENTS = 1L << 18;

    private AllReduceAlgorithms() {}

    /** Ring all-reduce (sum) of a contiguous 1-D tensor over {@code g}, in place. */
    public static void ring(Collectives g, Tensor t) {
        int n = g.size();
        int r = g.rank();
        if (n == 1) return;
        int right = (r + 1) % n;
        int left = (r - 1 + n) % n;
        long len = t.numel();
        try (PointerScope s = new PointerScope()) {
            Tensor[] chunk = new Tensor[n];
            for (int i = 0; i < n; i++) {
                long from = len * i / n;
                long to = len * (i + 1) / n;
                chunk[i] = t.narrow(0, from, to - from);
            }
            Tensor incoming = t.new_empty(len / n + 1);
            // Reduce-scatter: at step k send chunk (r - k), receive and accumulate chunk (r - k - 1).
            for (int k = 0; k < n - 1; k++) {
                int sendIdx = Math.floorMod(r - k, n);
                int recvIdx = Math.floorMod(r - k - 1, n);
                Tensor buf = incoming.narrow(0, 0, chunk[recvIdx].numel());
                shift(g, chunk[sendIdx], right, buf, left);
                chunk[recvIdx].add_(buf);
            }
            // All-gather: rank r now owns the sum of chunk (r + 1); pass the finished chunks on.
            for (int k = 0; k < n - 1; k++) {
                int sendIdx = Math.floorMod(r + 1 - k, n);
                int recvIdx = Math.floorMod(r - k, n);
                Tensor buf = incoming.narrow(0, 0, chunk[recvIdx].numel());
                shift(g, chunk[sendIdx], right, buf, left);
                chunk[recvIdx].copy_(buf);
            }
        }
    }

    /**
     * One ring step: send {@code out} right while receiving {@code in} from the left. With
     * fewer elements than ranks some chunks are empty; every rank knows which, so an empty
     * side is skipped on both ends alike and no zero-length message is ever sent.
     */
    private static void shift(Collectives g, Tensor out, int right, Tensor in, int left) {
        boolean sending = out.numel() > 0;
        boolean receiving = in.numel() > 0;
        if (sending && receiving) g.sendRecv(out, right, in, left);
        else if (sending) g.send(out, right);
        else if (receiving) g.recv(in, left);
    }

    /** Binary-tree all-reduce (sum) of a contiguous 1-D tensor over {@code g}, in place. */
    public static void tree(Collectives g, Tensor t) {
        tree(g, t, TREE_CHUNK_ELEMENTS);
    }

    static void tree(Collectives g, Tensor t, long chunkElements) {
        int n = g.size();
        int r = g.rank();
        long len = t.numel();
        if (n == 1 || len == 0) return;
        int parent = (r - 1) / 2;
        int[] children = treeChildren(r, n);
        try (PointerScope s = new PointerScope()) {
            Tensor incoming = t.new_empty(Math.min(chunkElements, len));
            // Reduce: add each child's partial sum of the chunk to ours and pass it up.
            for (long from = 0; from < len; from += chunkElements) {
                Tensor c = t.narrow(0, from, Math.min(chunkElements, len - from));
                for (int child : children) {
                    Tensor buf = incoming.narrow(0, 0, c.numel());
                    g.recv(buf, child);
                    c.add_(buf);
                }
                if (r != 0) g.send(c, parent);
            }
            // Broadcast: rank 0 holds the total; it travels down the same tree.
            for (long from = 0; from < len; from += chunkElements) {
                Tensor c = t.narrow(0, from, Math.min(chunkElements, len - from));
                if (r != 0) g.recv(c, parent);
                for (int child : children) g.send(c, child);
            }
        }
    }

    /** Children of rank {@code r} in the heap-ordered binary tree over {@code n} ranks. */
    static int[] treeChildren(int r, int n) {
        int first = 2 * r + 1;
        if (first >= n) return new int[0];
        return first + 1 < n ? new int[] {first, first + 1} : new int[] {first};
    }

    /** Levels of the heap-ordered binary tree below rank 0: floor(log2 n). */
    static int treeDepth(int n) {
        return 31 - Integer.numberOfLeadingZeros(n);
    }

    /** Parameter-server all-reduce (sum): reduce to rank 0 with recv, then send the sum back. */
    public static void parameterServer(Collectives g, Tensor t) {
        int n = g.size();
        if (n == 1 || t.numel() == 0) return;
        try (PointerScope s = new PointerScope()) {
            if (g.rank() == 0) {
                Tensor buf = torch.empty_like(t);
                for (int q = 1; q < n; q++) {
                    g.recv(buf, q);
                    t.add_(buf);
                }
                for (int q = 1; q < n; q++) g.send(t, q);
            } else {
                g.send(t, 0);
                g.recv(t, 0);
            }
        }
    }
}
