package parallax.engine.cluster;

/** The door through which a {@code %%parallel} cell's JShell reaches its rank's {@link Dist}. */
public final class SpmdAccess {

    private SpmdAccess() {}

    /** The Dist of the rank whose cell is running. */
    public static Dist dist() {
        return SpmdShell.dist();
    }
}
