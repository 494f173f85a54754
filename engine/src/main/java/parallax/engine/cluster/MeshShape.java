package parallax.engine.cluster;

import parallax.engine.UserError;

/**
 * The sizes of the parallel dimensions: data-parallel, tensor-parallel, pipeline-parallel
 * and context-parallel (the sequence cut across ranks). Their product is the world size.
 */
public record MeshShape(int dp, int tp, int pp, int cp) {

    public MeshShape {
        if (dp < 1 || tp < 1 || pp < 1 || cp < 1) {
            throw new UserError("dp, tp, pp and cp must be at least 1 (got dp=" + dp + " tp=" + tp + " pp=" + pp + " cp=" + cp + ")");
        }
    }

    /** dp x tp x pp without context parallelism. */
    public MeshShape(int dp, int tp, int pp) {
        this(dp, tp, pp, 1);
    }

    /** The same mesh with {@code cp} context-parallel ranks. */
    public MeshShape withCp(int c) { return new MeshShape(dp, tp, pp, c); }

    /** Pure data parallelism over {@code world} ranks. */
    public static MeshShape dataParallel(int world) {
        return new MeshShape(world, 1, 1);
    }

    /**
     * The mesh a command's flags ask for: dp x cp x tp x pp, with dp filled in from
     * {@code ranks} when it is not given; null when no flag names one.
     */
    public static MeshShape of(Integer ranks, Integer dp, Integer tp, Integer pp) {
        return of(ranks, dp, tp, pp, null);
    }

    public static MeshShape of(Integer ranks, Integer dp, Integer tp, Integer pp, Integer cp) {
        if (dp == null && tp == null && pp == null && cp == null) return ranks == null ? null : dataParallel(ranks);
        int t = tp == null ? 1 : tp;
        int p = pp == null ? 1 : pp;
        int c = cp == null ? 1 : cp;
        if (t < 1 || p < 1 || c < 1 || (dp != null && dp < 1))
            throw new UserError("--dp, --cp, --tp and --pp must be at least 1 (got dp=" + dp + " cp=" + c + " tp=" + t + " pp=" + p + ")");
        int d;
        if (dp != null) d = dp;
        else if (ranks != null) {
            if (ranks < 1 || ranks % (t * p * c) != 0)
                throw new UserError("world size " + ranks + " is not divisible by " + (c > 1 ? "cp x " : "") + "tp x pp = " + t * p * c);
            d = ranks / (t * p * c);
        } else d = 1;
        MeshShape s = new MeshShape(d, t, p, c);
        if (ranks != null) s.requireWorld(ranks);
        return s;
    }

    public int world() {
        return dp * tp * pp * cp;
    }

    /** Fails with one line when {@code world} is not dp x tp x pp. */
    public MeshShape requireWorld(int world) {
        if (world() != world) {
            String dims = cp > 1 ? "dp x cp x tp x pp = " + dp + " x " + cp + " x " + tp + " x " + pp
                    : "dp x tp x pp = " + dp + " x " + tp + " x " + pp;
            throw new UserError("world size " + world + " is not " + dims + " = " + world()
                    + (world % (tp * pp * cp) == 0 ? "; try dp=" + world / (tp * pp * cp) : ""));
        }
        return this;
    }

    @Override
    public String toString() {
        return "dp=" + dp + (cp > 1 ? " cp=" + cp : "") + " tp=" + tp + " pp=" + pp;
    }
}
