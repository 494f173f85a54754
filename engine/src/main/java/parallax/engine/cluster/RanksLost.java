package parallax.engine.cluster;

import java.util.List;

/**
 * A run ended because ranks were lost rather than because the task failed: a rank's
 * process died (kill -9, the OOM killer, a crash), its connection or node went away, or a
 * collective timed out. The pool has stopped every rank. What an elastic restart needs to
 * know comes with it: which ranks are gone for good (empty after a timeout, where no one
 * rank is to blame), the last step any rank reported, and when the loss was noticed.
 */
public final class RanksLost extends ClusterError {

    private final List<Integer> lost;
    private final long lastStep;
    private final long detectedNanos;

    RanksLost(String message, List<Integer> lost, long lastStep) {
        super(message);
        this.lost = List.copyOf(lost);
        this.lastStep = lastStep;
        this.detectedNanos = System.nanoTime();
    }

    /** World ranks whose processes are gone (empty when the cause was a timeout). */
    public List<Integer> lost() { return lost; }

    /** The last step any rank reported before the loss (-1 before the first). */
    public long lastStep() { return lastStep; }

    /** {@link System#nanoTime()} when the coordinator noticed. */
    public long detectedNanos() { return detectedNanos; }
}
