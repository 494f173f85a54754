package parallax.engine.parallel;

import java.util.List;

/**
 * What happened to a run besides its steps: where it started ({@code firstStep} &gt; 0 when
 * it continued from a checkpoint), each restart after lost ranks, the checkpoints written,
 * what each save cost each rank, and which steps ran while a background write did (for the
 * slowdown a save causes).
 */
public record RunHistory(int firstStep, String resumedFrom, List<Restart> restarts, List<Integer> checkpoints,
                         String lastCheckpoint, List<SaveCost> saves, List<Integer> overlappedSteps) {

    public static final RunHistory NONE = new RunHistory(0, null, List.of(), List.of(), null, List.of(), List.of());

    /**
     * One restart: the failure (its one line), the last step any rank reported before it,
     * the checkpoint step the next generation resumed from, the steps lost in between, the
     * seconds from a drill's kill to its detection (NaN when the kill came from outside),
     * from detection to the next generation's first step, and the layouts before and after.
     */
    public record Restart(int generation, String cause, long lastReportedStep, int resumedFromStep, int lostSteps,
                          double detectSeconds, double recoverySeconds, String layoutBefore, String layoutAfter, int ranksAfter) {

        /** Seconds from the kill (or, without a drill, its detection) to the next generation's first step. */
        public double killToFirstStepSeconds() {
            return (Double.isNaN(detectSeconds) ? 0 : detectSeconds) + recoverySeconds;
        }
    }

    /** What one save cost one rank: state and file bytes, the copy to memory, the wait for the previous save, the background write. */
    public record SaveCost(int rank, int step, long stateBytes, long fileBytes, double snapshotMs, double waitMs, double writeMs) {}

    public boolean eventful() {
        return firstStep > 0 || !restarts.isEmpty() || !checkpoints.isEmpty();
    }
}
