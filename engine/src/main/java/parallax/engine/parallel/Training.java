package parallax.engine.parallel;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import java.nio.file.Path;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.Gpt;

/**
 * The coordinator side of a training run: validates the {@link TrainSpec}, sends it to
 * every rank of the worker pool ({@link TrainTask} runs it there), relays the live view,
 * and collects the ranks' {@link RankResult}s into a {@link TrainingRun}.
 */
public final class Training {

    static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().create();

    private Training() {}

    /** The live view of a run: the global loss of each reported step. */
    @FunctionalInterface
    public interface Progress {
        void step(int step, double globalLoss);

        Progress NONE = (s, l) -> {};
    }

    /**
     * Worker heap taken per parameter value the fullest rank hands back: two float copies
     * (8 bytes), the value's base64 text (5.3 bytes) as a JSON tree string, in the message
     * string, in the writer's growing buffer (up to twice) and as output bytes; rounded up.
     */
    static final double HEAP_BYTES_PER_VALUE = 32;

    /** Share of the worker heap that handing back the parameters may take (the rest runs the rank). */
    static final double HEAP_SHARE = 0.75;

    /** Worker heap the fullest rank needs to hand back its parameters (the largest TP shard of a pipeline stage). */
    public static long exportHeapBytes(TrainSpec spec) {
        spec.validate(spec.world());
        Gpt model = new Gpt(spec.model(), 0, spec.tp(), null);
        long most = 0;
        for (int p = 0; p < spec.pp(); p++) {
            long n = 0;
            for (int c = 0; c < spec.virtualStages(); c++) {
                int[] units = PipelineParallel.chunkUnits(spec.model(), spec.pp(), spec.virtualStages(), c, p);
                for (int u = units[0]; u < units[1]; u++) for (Gpt.ParamSpec ps : model.params(u)) n += ps.numel();
            }
            most = Math.max(most, n);
        }
        return (long) (most * HEAP_BYTES_PER_VALUE);
    }

    /** Whether a worker with {@code heapBytes} of heap can hand back {@code spec}'s parameters. */
    public static boolean exportFits(TrainSpec spec, long heapBytes) {
        return heapBytes <= 0 || exportHeapBytes(spec) <= HEAP_SHARE * heapBytes;
    }

    /** Runs {@code spec} on {@code pool} (its size must be the spec's world size). */
    public static TrainingRun run(WorkerPool pool, TrainSpec spec, Progress progress) {
        spec.validate(pool.size());
        long heap = pool.options().heapBytes();
        if (spec.exportParameters() && !exportFits(spec, heap))
            throw new parallax.engine.UserError(String.format(java.util.Locale.ROOT,
                    "handing back %s's trained weights needs about %,d MiB of heap on the fullest rank, more than %.0f%% of the "
                            + "workers' %,d MiB: raise it (PARALLAX_WORKER_OPTS=-Xmx%dg in the kernel's environment) or split the model "
                            + "further with --tp/--pp", spec.model().name(), exportHeapBytes(spec) >> 20, 100 * HEAP_SHARE, heap >> 20,
                    Math.max(1, (long) Math.ceil(exportHeapBytes(spec) / HEAP_SHARE / (1L << 30)))));
        // The live loss comes from the last pipeline stage's dp 0, tp 0 rank (it averages the
        // loss over its DP group every step); checkpoints and restarts are ElasticRun's.
        return new ElasticRun(resolveCheckpoints(spec), progress).run(pool);
    }

    /**
     * Checks a run's checkpoint flags before any rank starts, each problem one line: the
     * checkpoint {@code --resume} names (or the newest complete one in that directory) is
     * complete, its files are whole and it fits this run; the checkpoint directory holds no
     * other run's checkpoints that a restart could mistake for this run's. Returns the spec
     * with absolute paths and the resolved checkpoint.
     */
    public static TrainSpec resolveCheckpoints(TrainSpec spec) {
        FaultTolerance ft = spec.faultTolerance();
        if (!ft.saves() && !ft.resumes()) return spec;
        Path dir = ft.checkpointDir() == null ? null : Path.of(ft.checkpointDir()).toAbsolutePath().normalize();
        Path from = null;
        if (ft.resumes()) {
            from = DistributedCheckpoint.resolve(Path.of(ft.resumeFrom()).toAbsolutePath().normalize());
            DistributedCheckpoint.Metadata md = DistributedCheckpoint.verify(from);
            DistributedCheckpoint.requireCompatible(md, spec, from);
        }
        if (dir != null) {
            Checkpointing.requireDirectory(dir.toString());
            Path newest = DistributedCheckpoint.latest(dir);
            int resumed = from == null ? -1 : DistributedCheckpoint.stepOf(from);
            if (newest != null && (from == null || DistributedCheckpoint.stepOf(newest) > resumed))
                throw new parallax.engine.UserError("--checkpoint-dir " + dir + " already holds " + (from == null ? "checkpoints" : "newer checkpoints")
                        + " (newest: " + newest.getFileName() + "); continue from them with --resume " + dir + ", or save into an empty directory");
        }
        FaultTolerance resolved = ft.withSaving(ft.saveEvery(), dir == null ? null : dir.toString(), ft.keep())
                .withResume(from == null ? null : from.toString()).withRunId(java.util.UUID.randomUUID().toString());
        return spec.withFaultTolerance(resolved);
    }
}
