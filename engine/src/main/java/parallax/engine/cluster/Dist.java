package parallax.engine.cluster;

import org.bytedeco.pytorch.Tensor;

/**
 * What code running on a rank sees of the job: its rank, the world, its node, the
 * device mesh with its DP/TP/PP groups, and the world collectives. In a {@code %%parallel}
 * cell this object is bound to the variable {@code dist}; a {@link RankTask} receives it.
 *
 * <p>The collective shortcuts here act on the whole world; for a subgroup use
 * {@code dist.mesh().tpGroup().allReduce(t)} and so on.
 */
public final class Dist {

    private final int rank;
    private final int localRank;
    private final String host;
    private final String device;
    private final String backend;
    private final Collectives world;
    private final Mesh mesh;
    private final CommStats stats;

    Dist(int rank, int localRank, String host, String device, String backend, Collectives world, Mesh mesh,
         CommStats stats) {
        this.rank = rank;
        this.localRank = localRank;
        this.host = host;
        this.device = device;
        this.backend = backend;
        this.world = world;
        this.mesh = mesh;
        this.stats = stats;
    }

    /** World rank. */
    public int rank() { return rank; }

    /** Number of ranks. */
    public int world() { return world.size(); }

    /** Index of this rank among the ranks on its node. */
    public int localRank() { return localRank; }

    /** The node this rank runs on, as the nodes file names it. */
    public String host() { return host; }

    /** "cpu" or "cuda:N". */
    public String device() { return device; }

    /** "gloo" or "nccl". */
    public String backend() { return backend; }

    public Mesh mesh() { return mesh; }

    public Collectives worldGroup() { return world; }

    public Collectives dpGroup() { return mesh.dpGroup(); }

    public Collectives tpGroup() { return mesh.tpGroup(); }

    public Collectives ppGroup() { return mesh.ppGroup(); }

    /** The context-parallel ring (null when cp = 1). */
    public Collectives cpGroup() { return mesh.cpGroup(); }

    /** Data- and context-parallel ranks together: where gradients are averaged. */
    public Collectives dpCpGroup() { return mesh.dpCpGroup(); }

    /** Bytes and time spent in collectives by this rank, over all groups. */
    public CommStats stats() { return stats; }

    public void allReduce(Tensor t) { world.allReduce(t); }

    public void allGather(Tensor out, Tensor in) { world.allGather(out, in); }

    public void reduceScatter(Tensor out, Tensor in) { world.reduceScatter(out, in); }

    public void broadcast(Tensor t, int root) { world.broadcast(t, root); }

    public void send(Tensor t, int dst) { world.send(t, dst); }

    public void recv(Tensor t, int src) { world.recv(t, src); }

    public void barrier() { world.barrier(); }

    /**
     * The values of a float tensor in host memory, for printing in a cell:
     * {@code Arrays.toString(Dist.floats(t))} (a copy from the device on a GPU rank).
     */
    public static float[] floats(Tensor t) {
        try (org.bytedeco.javacpp.PointerScope s = new org.bytedeco.javacpp.PointerScope()) {
            return parallax.engine.torch.Device.hostFloats(t);
        }
    }

    @Override
    public String toString() {
        return "rank " + rank + "/" + world() + " on " + host + " (" + device + ", " + backend + "), " + mesh.shape()
                + " coords dp=" + mesh.dpRank() + (mesh.shape().cp() > 1 ? " cp=" + mesh.cpRank() : "")
                + " tp=" + mesh.tpRank() + " pp=" + mesh.ppRank();
    }
}
