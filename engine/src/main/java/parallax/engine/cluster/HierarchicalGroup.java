package parallax.engine.cluster;

import java.util.Arrays;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * Collectives of a group that spans nodes with several of its ranks on each: shared memory
 * inside a node, the backend (Gloo) across nodes, one peer per node per part. This is the
 * two-level scheme NCCL uses between NVLink inside a server and the network between servers
 * (and Horovod's hierarchical all-reduce): the slow link carries each node's data once,
 * not once per rank.
 *
 * <p>N nodes hold L ranks of the group each. Local rank l of a node (its position among the
 * node's members, in group order) is paired, through an "across" group of N ranks, with
 * local rank l of every other node.
 * <ul>
 *   <li><b>all-reduce</b>: reduce-scatter inside the node (local rank l sums part l of the
 *       node's tensors), all-reduce of part l across nodes, all-gather inside the node. Every
 *       node's link carries 2(N-1)/N of the tensor each way, against 2(n-1)/n for a flat ring
 *       over all n = N·L ranks: for 2 nodes of 2 ranks, S against 1.5 S.</li>
 *   <li><b>all-gather</b>: all-gather across nodes of each rank's input (local rank l gets the
 *       inputs of local rank l everywhere), then all-gather of those inside the node; each
 *       input crosses each link once.</li>
 *   <li><b>reduce-scatter</b>: reduce-scatter inside the node, where local rank l sums the
 *       parts meant for local rank l of every node, then reduce-scatter of those across nodes.</li>
 * </ul>
 * The node-local sums are made by one rank each in a fixed order and the cross-node result
 * is copied to every rank, so all ranks end an all-reduce with the same bits.
 */
final class HierarchicalGroup implements GroupTransport {

    private final SharedMemoryGroup node;
    private final Collectives across;
    /** Group ranks on each node: nodes[j][l] is local rank l of node j. */
    private final int[][] nodes;

    /**
     * @param node   this node's members' shared memory (local ranks, labelled with group ranks)
     * @param across this rank's group with the same local rank on every node, in node order
     * @param nodes  group ranks of every node, each node's in group order, all of one length
     */
    HierarchicalGroup(SharedMemoryGroup node, Collectives across, int[][] nodes) {
        this.node = node;
        this.across = across;
        this.nodes = nodes;
    }

    @Override
    public String name() { return "shm+" + across.transport(); }

    /** Group ranks of every node (for status and tests). */
    int[][] nodes() {
        int[][] copy = new int[nodes.length][];
        for (int j = 0; j < nodes.length; j++) copy[j] = nodes[j].clone();
        return copy;
    }

    @Override
    public void allReduce(Tensor t, long timeoutMs, String what) {
        node.allReduceAcross(t, timeoutMs, what, across::allReduceAsync);
    }

    @Override
    public void allGather(Tensor out, Tensor in, long timeoutMs, String what) {
        int n = nodes.length, l = nodes[0].length;
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            long e = in.numel();
            Tensor peers = empty(in, n * e);            // input of local rank l on each node, node order
            across.allGather(peers, in.view(-1));
            Tensor all = empty(in, (long) l * n * e);   // block k: what local rank k gathered
            node.allGather(all, peers, timeoutMs, what);
            Tensor dst = out.view(-1);
            for (int k = 0; k < l; k++)
                for (int j = 0; j < n; j++) dst.narrow(0, nodes[j][k] * e, e).copy_(all.narrow(0, ((long) k * n + j) * e, e));
        }
    }

    @Override
    public void reduceScatter(Tensor out, Tensor in, long timeoutMs, String what) {
        int n = nodes.length, l = nodes[0].length;
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            long e = out.numel();
            Tensor src = in.view(-1);
            // Regrouped so that block k holds, in node order, the parts meant for local rank k of each node.
            Tensor regrouped = empty(in, (long) l * n * e);
            for (int k = 0; k < l; k++)
                for (int j = 0; j < n; j++) regrouped.narrow(0, ((long) k * n + j) * e, e).copy_(src.narrow(0, nodes[j][k] * e, e));
            Tensor nodeSums = empty(in, n * e);
            node.reduceScatter(nodeSums, regrouped, timeoutMs, what);
            across.reduceScatter(out.view(-1), nodeSums);
        }
    }

    /** A flat buffer of {@code like}'s dtype and device (through the tensor, as the device layer wants). */
    private static Tensor empty(Tensor like, long elements) {
        return like.new_empty(elements);
    }

    @Override
    public void close() {
        node.close();
    }

    @Override
    public String toString() {
        return "nodes " + Arrays.deepToString(nodes);
    }
}
