package parallax.engine.cluster;

import java.util.ArrayList;
import java.util.List;

/**
 * The device mesh of one rank, in the manner of Megatron-core's {@code parallel_state}:
 * this is the one place that builds the data-, context-, tensor- and pipeline-parallel
 * groups; a strategy asks it for "my TP group" and never builds groups itself.
 *
 * <p>Rank order (Megatron's "tp-cp-ep-dp-pp"; ep is carved out of dp x cp, see {@link #epGroup}): tensor-parallel ranks are
 * adjacent, then context-parallel, then data-parallel, then pipeline stages.
 * <pre>
 *   rank = ((ppRank * dp + dpRank) * cp + cpRank) * tp + tpRank
 * </pre>
 * so a TP group is a run of consecutive ranks (on one node when tp <= slots, where its
 * frequent all-reduces are cheapest), a CP ring is next closest, and a pipeline stage is a
 * contiguous block. Example dp=2 tp=2 pp=2 (world 8): TP groups [0,1] [2,3] [4,5] [6,7];
 * DP groups [0,2] [1,3] [4,6] [5,7]; PP groups [0,4] [1,5] [2,6] [3,7].
 *
 * <p>Context parallelism splits each sequence over the cp ranks, which therefore see
 * different tokens of the same sequences: gradients are averaged, and ZeRO shards, over
 * the data-and-context-parallel group (Megatron's "dp-cp" group).
 */
public final class Mesh {

    /** Where a rank sits in the mesh. */
    public record Coords(int dpRank, int tpRank, int ppRank, int cpRank) {
        public Coords(int dpRank, int tpRank, int ppRank) {
            this(dpRank, tpRank, ppRank, 0);
        }
    }

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
    private final Collectives cp;
    private final Collectives dpCp;
    private final GroupFactory groups;
    /** Expert-parallel and expert-data-parallel groups by ep, made the first time a run asks. */
    private final java.util.Map<Integer, Collectives[]> expertGroups = new java.util.HashMap<>();

    Mesh(MeshShape shape, int rank, Collectives world, GroupFactory groups) {
        this.shape = shape.requireWorld(world.size());
        this.rank = rank;
        this.coords = coords(shape, rank);
        this.world = world;
        this.groups = groups;
        // Every rank creates its groups in the same order (tp, cp, dp, dp-cp, pp), so the
        // blocking group set-ups pair up without deadlock.
        this.tp = groups.create("tp" + java.util.Arrays.toString(tpGroup(shape, rank)), tpGroup(shape, rank));
        this.cp = shape.cp() == 1 ? null : groups.create("cp" + java.util.Arrays.toString(cpGroup(shape, rank)), cpGroup(shape, rank));
        this.dp = groups.create("dp" + java.util.Arrays.toString(dpGroup(shape, rank)), dpGroup(shape, rank));
        this.dpCp = shape.cp() == 1 ? dp
                : groups.create("dpcp" + java.util.Arrays.toString(dpCpGroup(shape, rank)), dpCpGroup(shape, rank));
        this.pp = groups.create("pp" + java.util.Arrays.toString(ppGroup(shape, rank)), ppGroup(shape, rank));
    }

    // ---- pure layout: which ranks form which group (also used by tests and the planner) ----

    public static Coords coords(MeshShape s, int rank) {
        int tpRank = rank % s.tp();
        int cpRank = (rank / s.tp()) % s.cp();
        int dpRank = (rank / (s.tp() * s.cp())) % s.dp();
        int ppRank = rank / (s.tp() * s.cp() * s.dp());
        return new Coords(dpRank, tpRank, ppRank, cpRank);
    }

    public static int rankOf(MeshShape s, int dpRank, int tpRank, int ppRank, int cpRank) {
        return ((ppRank * s.dp() + dpRank) * s.cp() + cpRank) * s.tp() + tpRank;
    }

    public static int rankOf(MeshShape s, int dpRank, int tpRank, int ppRank) {
        return rankOf(s, dpRank, tpRank, ppRank, 0);
    }

    private static int rankOf(MeshShape s, Coords c) {
        return rankOf(s, c.dpRank(), c.tpRank(), c.ppRank(), c.cpRank());
    }

    /** World ranks of the TP group containing {@code rank}, in TP-rank order. */
    public static int[] tpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.tp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, c.dpRank(), i, c.ppRank(), c.cpRank());
        return g;
    }

    /** World ranks of the CP group (the ring a sequence is cut over) containing {@code rank}. */
    public static int[] cpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.cp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, c.dpRank(), c.tpRank(), c.ppRank(), i);
        return g;
    }

    /** World ranks of the DP group containing {@code rank}, in DP-rank order. */
    public static int[] dpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.dp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, i, c.tpRank(), c.ppRank(), c.cpRank());
        return g;
    }

    /** World ranks of the data-and-context-parallel group (same tp and pp) containing {@code rank}. */
    public static int[] dpCpGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.dp() * s.cp()];
        for (int d = 0; d < s.dp(); d++)
            for (int k = 0; k < s.cp(); k++) g[d * s.cp() + k] = rankOf(s, d, c.tpRank(), c.ppRank(), k);
        return g;
    }

    /** World ranks of the PP group (one rank per stage) containing {@code rank}. */
    public static int[] ppGroup(MeshShape s, int rank) {
        Coords c = coords(s, rank);
        int[] g = new int[s.pp()];
        for (int i = 0; i < g.length; i++) g[i] = rankOf(s, c.dpRank(), c.tpRank(), i, c.cpRank());
        return g;
    }

    /**
     * World ranks of the expert-parallel group of {@code rank} for {@code ep} (Megatron's
     * "tp-cp-ep-dp-pp": ep is carved out of the data-and-context-parallel ranks, so the
     * world stays dp x cp x tp x pp). Within a dp-cp group, in its order (cp fastest), ranks
     * are cut into runs of ep adjacent ones: each run shares the experts (E/ep each) and
     * trades tokens by all-to-all.
     */
    public static int[] epGroup(MeshShape s, int ep, int rank) {
        int[] dpCp = dpCpGroup(s, rank);
        requireEp(s, ep);
        int at = indexOf(dpCp, rank), base = at / ep * ep;
        return java.util.Arrays.copyOfRange(dpCp, base, base + ep);
    }

    /**
     * World ranks of the expert-data-parallel group of {@code rank} for {@code ep}: the ranks
     * of its dp-cp group holding the same experts (one per ep run, dp x cp / ep of them),
     * over which those experts' gradients are reduced and their ZeRO state sharded.
     */
    public static int[] expertDpGroup(MeshShape s, int ep, int rank) {
        int[] dpCp = dpCpGroup(s, rank);
        requireEp(s, ep);
        int at = indexOf(dpCp, rank);
        int[] g = new int[dpCp.length / ep];
        for (int i = 0; i < g.length; i++) g[i] = dpCp[i * ep + at % ep];
        return g;
    }

    private static void requireEp(MeshShape s, int ep) {
        if (ep < 1 || (s.dp() * s.cp()) % ep != 0)
            throw new parallax.engine.UserError("--ep " + ep + " must divide dp x cp = " + s.dp() * s.cp()
                    + " (expert parallelism is carved out of the data-parallel ranks)");
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        throw new IllegalStateException(v + " not in its own group");
    }

    /** Every group of each kind: the full picture parallel_state builds. */
    public static List<int[]> allGroups(MeshShape s, String kind) {
        List<int[]> out = new ArrayList<>();
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int r = 0; r < s.world(); r++) {
            int[] g = switch (kind) {
                case "tp" -> tpGroup(s, r);
                case "cp" -> cpGroup(s, r);
                case "dp" -> dpGroup(s, r);
                case "dpcp" -> dpCpGroup(s, r);
                case "pp" -> ppGroup(s, r);
                default -> throw new IllegalArgumentException("kind is tp, cp, dp, dpcp or pp: " + kind);
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

    /** The context-parallel group; null when cp = 1. */
    public Collectives cpGroup() { return cp; }

    /** The group gradients are averaged over: data- and context-parallel ranks with this rank's tp and pp. */
    public Collectives dpCpGroup() { return dpCp; }

    /**
     * The expert-parallel group of this rank for {@code ep} ({@link #epGroup}); made on the
     * first call for that ep, with its expert-data-parallel group. Every rank of the world
     * must ask for the same ep at the same point (a run's start), as the set-ups block.
     */
    public synchronized Collectives expertParallelGroup(int ep) { return expertGroups(ep)[0]; }

    /** The expert-data-parallel group of this rank for {@code ep} ({@link #expertDpGroup}). */
    public synchronized Collectives expertDataParallelGroup(int ep) { return expertGroups(ep)[1]; }

    private Collectives[] expertGroups(int ep) {
        return expertGroups.computeIfAbsent(ep, e -> {
            int[] epMembers = epGroup(shape, e, rank), edpMembers = expertDpGroup(shape, e, rank);
            Collectives epGroup = groups.create("ep" + java.util.Arrays.toString(epMembers), epMembers);
            Collectives edpGroup = groups.create("edp" + java.util.Arrays.toString(edpMembers), edpMembers);
            return new Collectives[] {epGroup, edpGroup};
        });
    }

    public int cpRank() { return coords.cpRank(); }

    public boolean isFirstStage() { return coords.ppRank() == 0; }

    public boolean isLastStage() { return coords.ppRank() == shape.pp() - 1; }

    /** World rank of the previous pipeline stage (same dp, tp, cp), or -1 on the first stage. */
    public int prevStageRank() {
        return isFirstStage() ? -1 : rankOf(shape, coords.dpRank(), coords.tpRank(), coords.ppRank() - 1, coords.cpRank());
    }

    /** World rank of the next pipeline stage (same dp, tp, cp), or -1 on the last stage. */
    public int nextStageRank() {
        return isLastStage() ? -1 : rankOf(shape, coords.dpRank(), coords.tpRank(), coords.ppRank() + 1, coords.cpRank());
    }

    @Override
    public String toString() {
        return "rank " + rank + " of " + shape + ": dp " + dpRank() + (shape.cp() > 1 ? ", cp " + cpRank() : "")
                + ", tp " + tpRank() + ", pp " + ppRank();
    }
}
