package parallax.engine.parallel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.cluster.Mesh;

/**
 * What a rank's training loop does for fault tolerance, in three calls: {@link #restore}
 * before the first step (load the checkpoint named by {@code --resume}, resharded to this
 * rank's layout, and say where to start), {@link #afterStep} after each step (every
 * {@code saveEvery} steps, copy the state to host memory and hand it to the background
 * {@link CheckpointWriter}), and {@link #close} at the end (wait for the last write, then
 * report what the saves cost and which steps ran beside a write).
 */
final class Checkpointing implements AutoCloseable {

    private final TrainSpec spec;
    private final int rank;
    private final Mesh.Coords at;
    private final ParameterStore store;
    private final MixedPrecision.LossScaler scaler;
    private final TrainingLoop.StepListener events;
    /**
     * This rank has a loss (last stage, tp 0): it keeps its own per step, and the
     * checkpoint's history is their mean over the DP ranks, as {@link TrainingRun} takes it.
     */
    private final boolean keepsLoss;
    private CheckpointWriter writer;
    private int firstStep;
    private double[] lossBefore = new double[0];
    private final List<Double> loss = new ArrayList<>();
    private final List<long[]> steps = new ArrayList<>();

    Checkpointing(TrainSpec spec, int rank, Mesh.Coords at, ParameterStore store, MixedPrecision.LossScaler scaler,
                  boolean keepsLoss, TrainingLoop.StepListener events) {
        this.spec = spec;
        this.rank = rank;
        this.at = at;
        this.store = store;
        this.scaler = scaler;
        this.keepsLoss = keepsLoss;
        this.events = events;
    }

    /**
     * Loads {@code --resume}'s checkpoint into the store and the loss scaler; returns the
     * first step to train (the checkpoint's step; 0 without one).
     */
    int restore() {
        FaultTolerance ft = spec.faultTolerance();
        if (ft.resumes()) {
            Path dir = Path.of(ft.resumeFrom());
            long t0 = System.nanoTime();
            DistributedCheckpoint.Metadata md = DistributedCheckpoint.read(dir);
            DistributedCheckpoint.requireCompatible(md, spec, dir);
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope();
                 CheckpointReader reader = new CheckpointReader(dir, md, at.tpRank())) {
                StoreState.restore(store, reader, md.optimizerSteps());
            }
            if (md.lossScaler() != null) scaler.restore(md.lossScaler().scale(), md.lossScaler().cleanSteps());
            firstStep = md.step();
            lossBefore = md.loss() == null ? new double[0] : Arrays.copyOf(md.loss(), Math.min(md.loss().length, firstStep));
            Map<String, Object> ev = new LinkedHashMap<>();
            ev.put("step", firstStep);
            ev.put("dir", dir.toString());
            ev.put("savedLayout", md.layout().label());
            ev.put("loadMs", (System.nanoTime() - t0) / 1e6);
            events.event("restored", ev);
        }
        if (ft.saves()) {
            DistributedCheckpoint.Layout layout = new DistributedCheckpoint.Layout(spec.dp(), spec.tp(), spec.pp(), spec.zero(),
                    spec.microBatches(), spec.precision().label(), spec.world());
            DistributedCheckpoint.Run run = new DistributedCheckpoint.Run(spec.seed(), spec.batch(), spec.optimizer(), spec.lr(),
                    spec.data().toString().toLowerCase(java.util.Locale.ROOT), spec.dataFile(), spec.steps());
            writer = new CheckpointWriter(Path.of(ft.checkpointDir()), spec, rank, at,
                    new CheckpointWriter.RunState(layout, run, lossBefore), events);
        }
        return firstStep;
    }

    /** The global loss of every step before the first one this run trains (from the checkpoint). */
    double[] lossBefore() { return lossBefore; }

    /** After step {@code s} (0-based) ended: keeps this rank's loss, and saves when a checkpoint is due. */
    void afterStep(int s, double rankLoss, long startNanos) {
        steps.add(new long[] {s, startNanos, System.nanoTime()});
        if (keepsLoss) loss.add(rankLoss);
        if (writer == null || (s + 1) % spec.faultTolerance().saveEvery() != 0) return;
        long t0 = System.nanoTime();
        List<StoreState.UnitSlice> slices = StoreState.snapshot(store);
        double snapshotMs = (System.nanoTime() - t0) / 1e6;
        Map<String, String> meta = new LinkedHashMap<>();
        String k = DistributedCheckpoint.KEY_PREFIX;
        meta.put(k + "optimizer_steps", Long.toString(StoreState.optimizerSteps(store)));
        meta.put(k + "loss_scale", Double.toString(scaler.scale()));
        meta.put(k + "clean_steps", Integer.toString(scaler.cleanSteps()));
        meta.put(k + "first_step", Integer.toString(firstStep));
        if (keepsLoss) meta.put(k + "loss", Training.GSON.toJson(loss.stream().mapToDouble(Double::doubleValue).toArray()));
        writer.save(s + 1, slices, meta, snapshotMs);
    }

    /** Waits for the last write; reports every save's cost and the steps that ran while a write did. */
    @Override
    public void close() {
        if (writer == null) return;
        writer.close();
        List<Integer> overlapped = new ArrayList<>();
        for (long[] st : steps) {
            for (long[] b : writer.busy) if (b[0] < st[2] && b[1] > st[1]) { overlapped.add((int) st[0]); break; }
        }
        Map<String, Object> ev = new LinkedHashMap<>();
        ev.put("saves", new ArrayList<>(writer.saves));
        ev.put("overlappedSteps", overlapped);
        ev.put("firstStep", firstStep);
        events.event("checkpoint-costs", ev);
    }

    /** The run failed: stop the writer without waiting (the files it has not committed stay incomplete). */
    void abandon() {
        if (writer != null) writer.abandon();
    }

    static void requireDirectory(String dir) {
        if (dir != null && java.nio.file.Files.exists(Path.of(dir)) && !java.nio.file.Files.isDirectory(Path.of(dir)))
            throw new UserError("--checkpoint-dir " + dir + " is a file, not a directory");
    }
}
