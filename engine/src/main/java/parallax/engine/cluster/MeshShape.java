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
