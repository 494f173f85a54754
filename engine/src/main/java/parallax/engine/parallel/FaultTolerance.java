package parallax.engine.parallel;

import parallax.engine.UserError;

/**
 * How a run survives failures: distributed checkpoints every {@code saveEvery} steps into
 * {@code checkpointDir} (the newest {@code keep} complete ones kept), a start from the
 * checkpoint in {@code resumeFrom}, and elastic restarts (PyTorch Elastic's contract: a
 * lost rank stops every rank, a new generation of workers meets at a fresh rendezvous,
 * loads the last complete checkpoint and trains on).
 *
 * <ul>
 *   <li>{@code maxRestarts}: failures survived before the run ends with its one line.</li>
 *   <li>{@code minRanks}: 0 keeps the world size (a lost rank is replaced); a smaller
 *       number makes the job elastic as torchrun's {@code --nnodes=MIN:MAX}: a lost rank's
 *       slot is not refilled and the next generation shrinks its data-parallel size,
 *       keeping the global batch by gradient accumulation, down to this many ranks.</li>
 *   <li>{@code generation}: set by the coordinator for each new set of workers.</li>
 *   <li>{@code saveBytesPerSecond}: caps each rank's background writes (0: no cap), the
 *       fair share of a filesystem the ranks share.</li>
 *   <li>{@code killRank}/{@code killAtStep}: a drill (tests, lessons): the coordinator
 *       kills that rank with SIGKILL once it reports that step; -1 for none.</li>
 *   <li>{@code runId}: set by the coordinator, the same for every generation of one run.</li>
 * </ul>
 */
public record FaultTolerance(int saveEvery, String checkpointDir, int keep, String resumeFrom, int maxRestarts,
                             int minRanks, int generation, long saveBytesPerSecond, int killRank, int killAtStep, String runId) {

    /** Checkpoints kept by default: the newest complete one and the one before it. */
    public static final int DEFAULT_KEEP = 2;

    public static final FaultTolerance NONE = new FaultTolerance(0, null, DEFAULT_KEEP, null, 0, 0, 0, 0, -1, 0, null);

    public boolean saves() { return saveEvery > 0; }

    public boolean resumes() { return resumeFrom != null; }

    public FaultTolerance withSaving(int every, String dir, int keepN) {
        return new FaultTolerance(every, dir, keepN, resumeFrom, maxRestarts, minRanks, generation, saveBytesPerSecond, killRank, killAtStep, runId);
    }

    public FaultTolerance withResume(String from) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, from, maxRestarts, minRanks, generation, saveBytesPerSecond, killRank, killAtStep, runId);
    }

    public FaultTolerance withRestarts(int max, int min) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, resumeFrom, max, min, generation, saveBytesPerSecond, killRank, killAtStep, runId);
    }

    public FaultTolerance withGeneration(int g) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, resumeFrom, maxRestarts, minRanks, g, saveBytesPerSecond, killRank, killAtStep, runId);
    }

    public FaultTolerance withSaveBandwidth(long bytesPerSecond) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, resumeFrom, maxRestarts, minRanks, generation, bytesPerSecond, killRank, killAtStep, runId);
    }

    /** Marks this run's checkpoint files, so that a save never mistakes another run's file of the same step for one of its own. */
    public FaultTolerance withRunId(String id) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, resumeFrom, maxRestarts, minRanks, generation, saveBytesPerSecond, killRank, killAtStep, id);
    }

    public FaultTolerance withKill(int rank, int atStep) {
        return new FaultTolerance(saveEvery, checkpointDir, keep, resumeFrom, maxRestarts, minRanks, generation, saveBytesPerSecond, rank, atStep, runId);
    }

    /** Checks the numbers against the run; one line naming what is wrong. */
    void validate(TrainSpec spec) {
        if (saveEvery < 0) throw new UserError("--save-every must be a number of steps (or 0 for none), not " + saveEvery);
        if (saveEvery > 0 && checkpointDir == null) throw new UserError("--save-every needs --checkpoint-dir DIR (where the checkpoints go)");
        if (keep < 1) throw new UserError("--keep must keep at least 1 checkpoint, not " + keep);
        if (maxRestarts < 0) throw new UserError("--max-restarts must be 0 or more, not " + maxRestarts);
        if (minRanks < 0 || minRanks > spec.world())
            throw new UserError("--min-ranks " + minRanks + " must be between 1 and the run's " + spec.world() + " ranks");
        int unit = spec.tp() * spec.pp();
        if (minRanks > 0 && minRanks % unit != 0)
            throw new UserError("--min-ranks " + minRanks + " is not a multiple of tp x pp = " + unit
                    + " (a shrinking job drops whole data-parallel replicas)");
        if (saveBytesPerSecond < 0) throw new UserError("--save-bandwidth must be positive, or 0 for no cap");
        if ((saves() || resumes()) && spec.localSgdEvery() > 0)
            throw new UserError("checkpoints with --local-sgd are not supported: its replicas differ between averages; drop one of them");
        if (killRank >= spec.world()) throw new UserError("--kill-rank " + killRank + " is not a rank of this " + spec.world() + "-rank run");
        if (killRank >= 0 && (killAtStep < 1 || killAtStep > spec.steps()))
            throw new UserError("--kill-rank R@STEP: STEP must be a step of the run (1.." + spec.steps() + "), not " + killAtStep);
    }
}
