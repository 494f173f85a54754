package parallax.engine.cluster;

import java.util.ArrayList;
import java.util.List;

/**
 * The device mesh of one rank, in the manner of Megatron-core's {@code parallel_state}:
 * this is the one place that builds the data-, tensor- and pipeline-parallel groups; a
 * strategy asks it for "my TP group" and never builds groups itself.
 *
 * <p>Rank order (Megatron's default, "tp-dp-pp"): tensor-parallel ranks are adjacent,
 * then data-parallel, then pipeline stages.
 * <pre>
 *   rank = ppRank * (dp * tp) + dpRank * tp + tpRank
 * </pre>
 * so a TP group is a run of consecutive ranks (on one node when tp <= slots, where its
 * frequent all-reduces are cheapest) and a pipeline stage is a contiguous block.
 * Example dp=2 tp=2 pp=2 (world 8): TP groups [0,1] [2,3] [4,5] [6,7]; DP groups [0,2]
 * [1,3] [4,6] [5,7]; PP groups [0,4] [1,5] [2,6] [3,7].
 */
public final class Mesh {

    /** Where a rank sits in the mesh. */
    public record Coords(int dpRank, int tpRank, int ppRank) {}

    /** Makes the process group for a list of world ranks this rank belongs to. */
    @FunctionalInterface
    interface GroupFactory {
        Collectives create(String name, int[] members);
    }

    private final MeshShape shape;
    private final int rank;
    private final Coords coords;
    private final Collectives world;
    private final Collectives dp;
    private final Collectives tp;
    private final Collectives pp;

    Mesh(MeshShape shape, int rank, Collectives world, GroupFactory groups) {
        this.shape = shape.requireWorld(world.size());
        this.rank = rank;
        this.coords = coords(shape, rank);
        this.world = world;
        // Every rank creates its groups in the same order (tp, dp, pp), so the blocking
        // group set-ups pair up without deadlock.
        this.tp = groups.create("tp" + java.util.Arrays.toString(tpGroup(shape, rank)), tpGroup(shape, rank));
        this.dp = groups.create("dp" + java.util.Arrays.toString(dpGroup(shape, rank)), dpGroup(shape, rank));
        this.pp = groups.create("pp" + java.util.Arrays.toString(ppGroup(shape, rank)), ppGroup(shape, rank));
    }

    // ---- pure layout: which ranks form which group (also used by tests and the planner) ----

    public static Coords coords(MeshShape s, int rank) {
        return new Coords((rank / s.tp()) % s.dp(), rank % s.tp(), rank / (s.tp() * s.dp()));
    }

    public static int rankOf(MeshShape s, int dpRank, int tpRank, int ppRank) {
        return ppRank * (s.dp() * s.tp()) + dpRank * s.tp() + tpRank;
    }

    /** World ranks of the TP group containing {@code rank}, in TP-rank order. */
    public static int[] tpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.tp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, c.dpRank(), i, c.ppRank());
        return g;
    }

    /** World ranks of the DP group containing {@code rank}, in DP-rank order. */
    public static int[] dpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.dp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, i, c.tpRank(), c.ppRank());
        return g;
    }

    /** World ranks of the PP group (one rank per stage) containing {@code rank}. */
    public static int[] ppGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.pp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, c.dpRank(), c.tpRank(), i);
        return g;
    }

    /** Every group of each kind: the full picture parallel_state builds. */
    public static List<int[]> allGroups(MeshShape s, String kind) {
        List<int[]> out = new ArrayList<>();
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int r = 0; r < s.world(); r++) {
            int[] g = switch (kind) {
                case "tp" -> tpGroup(s, r);
                case "dp" -> dpGroup(s, r);
                case "pp" -> ppGroup(s, r);
                default -> throw new IllegalArgumentException("kind is tp, dp or pp: " + kind);
            };
            if (seen.add(g[0])) out.add(g);
        }
        return out;
    }

    // ---- this rank's view ----

    public MeshShape shape() { return shape; }

    public int rank() { return rank; }

    public Coords coords() { return coords; }

    public int dpRank() { return coords.dpRank(); }

    public int tpRank() { return coords.tpRank(); }

    public int ppRank() { return coords.ppRank(); }

    public Collectives world() { return world; }

    public Collectives dpGroup() { return dp; }

    public Collectives tpGroup() { return tp; }

    public Collectives ppGroup() { return pp; }

    public boolean isFirstStage() { return coords.ppRank() == 0; }

    public boolean isLastStage() { return coords.ppRank() == shape.pp() - 1; }

    /** World rank of the previous pipeline stage (same dp, tp), or -1 on the first stage. */
    public int prevStageRank() {
        return isFirstStage() ? -1 : rankOf(shape, coords.dpRank(), coords.tpRank(), coords.ppRank() - 1);
    }

    /** World rank of the next pipeline stage (same dp, tp), or -1 on the last stage. */
    public int nextStageRank() {
        return isLastStage() ? -1 : rankOf(shape, coords.dpRank(), coords.tpRank(), coords.ppRank() + 1);
    }

    @Override
    public String toString() {
        return "rank " + rank + " of " + shape + ": dp " + dpRank() + ", tp " + tpRank() + ", pp " + ppRank();
    }
}
