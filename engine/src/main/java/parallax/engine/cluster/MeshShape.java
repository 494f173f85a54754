package parallax.engine.cluster;

import parallax.engine.UserError;

/**
 * The sizes of the parallel dimensions: data-parallel, tensor-parallel, pipeline-parallel.
 * Their product is the world size.
 */
public record MeshShape(int dp, int tp, int pp) {

    public MeshShape {
        if (dp < 1 || tp < 1 || pp < 1) {
            throw new UserError("dp, tp and pp must be at least 1 (got dp=" + dp + " tp=" + tp + " pp=" + pp + ")");
        }
    }

    /** Pure data parallelism over {@code world} ranks. */
    public static MeshShape dataParallel(int world) {
        return new MeshShape(world, 1, 1);
    }

    /**
     * The mesh a command's flags ask for: dp x tp x pp, with dp filled in from
     * {@code ranks} when only tp and pp are given; null when no flag names one.
     */
    public static MeshShape of(Integer ranks, Integer dp, Integer tp, Integer pp) {
        if (dp == null && tp == null && pp == null) return ranks == null ? null : dataParallel(ranks);
        int t = tp == null ? 1 : tp;
        int p = pp == null ? 1 : pp;
        if (t < 1 || p < 1 || (dp != null && dp < 1))
            throw new UserError("--dp, --tp and --pp must be at least 1 (got dp=" + dp + " tp=" + t + " pp=" + p + ")");
        int d;
        if (dp != null) d = dp;
        else if (ranks != null) {
            if (ranks < 1 || ranks % (t * p) != 0) throw new UserError("world size " + ranks + " is not divisible by tp x pp = " + t * p);
            d = ranks / (t * p);
        } else d = 1;
        MeshShape s = new MeshShape(d, t, p);
        if (ranks != null) s.requireWorld(ranks);
        return s;
    }

    public int world() {
        return dp * tp * pp;
    }

    /** Fails with one line when {@code world} is not dp x tp x pp. */
    public MeshShape requireWorld(int world) {
        if (world() != world) {
            throw new UserError("world size " + world + " is not dp x tp x pp = " + dp + " x " + tp + " x " + pp
                    + " = " + world() + (world % (tp * pp) == 0 ? "; try dp=" + world / (tp * pp) : ""));
        }
        return this;
    }

    @Override
    public String toString() {
        return "dp=" + dp + " tp=" + tp + " pp=" + pp;
    }
}
