package parallax.engine.parallel;

import com.google.gson.JsonElement;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import parallax.engine.cluster.ClusterError;
import parallax.engine.cluster.Mesh;
import parallax.engine.cluster.MeshShape;
import parallax.engine.cluster.RankEvent;
import parallax.engine.cluster.RanksLost;
import parallax.engine.cluster.WorkerPool;

/**
 * The coordinator's side of a run that survives lost ranks, as PyTorch Elastic's agent
 * does it: run the generation; when ranks are lost ({@link RanksLost}: a rank killed, its
 * node gone, a collective timed out) and restarts are left, the pool has already stopped
 * the survivors; start the next generation (a fresh rendezvous under a new key prefix),
 * point it at the last complete checkpoint, and train on. A job with {@code --min-ranks}
 * does not refill a lost rank's slot: the next generation shrinks its data-parallel size
 * (DP first, as the other dimensions cut the model itself) and keeps the global batch by
 * accumulating more micro-batches. After {@code maxRestarts} restarts the next loss ends
 * the run with its one line (docs/reference.md#elastic-restarts).
 */
final class ElasticRun {

    private TrainSpec spec;
    private final Training.Progress progress;
    private final List<RunHistory.Restart> restarts = new ArrayList<>();
    private final List<Integer> checkpoints = new ArrayList<>();
    private String lastCheckpoint;
    private int restartCount;
    /** Where the current generation starts, and the loss before it (read before pruning can remove that checkpoint). */
    private int firstStep;
    private double[] lossBefore = new double[0];

    // per generation
    private WorkerPool pool;
    private int reporter;
    private long killNanos;
    private long awaitingFirstStepSince = -1;
    private Restarting restarting;
    private final List<RunHistory.SaveCost> saves = new ArrayList<>();
    private final Set<Integer> overlapped = new LinkedHashSet<>();

    /** A restart whose next generation has not trained a step yet. */
    private record Restarting(int generation, String cause, long lastStep, int resumedFrom, double detectSeconds,
                              String before, String after, int ranksAfter) {}

    ElasticRun(TrainSpec spec, Training.Progress progress) {
        this.spec = spec;
        this.progress = progress == null ? Training.Progress.NONE : progress;
        startingFrom(spec.faultTolerance().resumeFrom());
    }

    /** Reads where a generation resuming from {@code dir} (null: from the start) begins. */
    private void startingFrom(String dir) {
        firstStep = 0;
        lossBefore = new double[0];
        if (dir == null) return;
        DistributedCheckpoint.Metadata md = DistributedCheckpoint.read(Path.of(dir));
        firstStep = md.step();
        if (md.loss() != null) lossBefore = md.loss();
    }

    TrainingRun run(WorkerPool first) {
        pool = first;
        while (true) {
            MeshShape shape = spec.mesh();
            reporter = Mesh.rankOf(shape, 0, 0, shape.pp() - 1);
            saves.clear();
            overlapped.clear();
            try {
                List<JsonElement> out = pool.run(TrainTask.class.getName(), Training.GSON.toJson(spec), shape, this::onEvent);
                List<RankResult> ranks = new ArrayList<>();
                for (JsonElement e : out) ranks.add(Training.GSON.fromJson(e, RankResult.class));
                return finish(ranks);
            } catch (RanksLost e) {
                restartAfter(e);
            }
        }
    }

    private TrainingRun finish(List<RankResult> ranks) {
        FaultTolerance ft = spec.faultTolerance();
        if (restarting != null) recordRestart(Double.NaN);
        RunHistory h = new RunHistory(firstStep, ft.resumeFrom(), List.copyOf(restarts), List.copyOf(checkpoints), lastCheckpoint,
                List.copyOf(saves), List.copyOf(overlapped));
        return TrainingRun.of(spec, ranks, lossBefore, h);
    }

    /** Lost ranks: give up, or start the next generation from the last complete checkpoint. */
    private void restartAfter(RanksLost e) {
        FaultTolerance ft = spec.faultTolerance();
        if (restartCount >= ft.maxRestarts()) {
            if (ft.maxRestarts() == 0) throw e;
            throw new ClusterError(e.getMessage() + "; no restarts left after " + restartCount + " (--max-restarts " + ft.maxRestarts() + ")");
        }
        restartCount++;
        if (restarting != null) recordRestart(Double.NaN); // lost again before training a step
        double detect = killNanos > 0 ? (e.detectedNanos() - killNanos) / 1e9 : Double.NaN;
        Path latest = ft.checkpointDir() == null ? null : DistributedCheckpoint.latest(Path.of(ft.checkpointDir()));
        // Without a checkpoint of its own yet, the run starts again where it started (its --resume, or step 0).
        String resume = latest != null ? latest.toString() : ft.resumeFrom();
        startingFrom(resume);
        int resumedFrom = firstStep;
        boolean elastic = ft.minRanks() > 0 && !e.lost().isEmpty();
        List<Integer> dropped = elastic ? e.lost() : List.of();
        TrainSpec next = elastic ? shrink(spec, spec.world() - dropped.size(), ft.minRanks(), e.getMessage()) : spec;
        next = next.withFaultTolerance(next.faultTolerance().withResume(resume).withGeneration(ft.generation() + 1).withKill(-1, 0));
        String before = spec.label(), after = next.label();
        int world = next.world();
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("lastStep", e.lastStep());
        f.put("resumeFrom", resumedFrom);
        f.put("layoutBefore", before);
        f.put("layoutAfter", after);
        pool.events().write("warn", "recovering", String.format(Locale.ROOT,
                "lost %s after step %d; resuming from %s on %d ranks (%s)", e.lost().isEmpty() ? "a collective" : "rank(s) " + e.lost(),
                e.lastStep(), resume == null ? "the start (no checkpoint yet)" : "step " + resumedFrom, world, after), f);
        restarting = new Restarting(ft.generation() + 1, e.getMessage(), e.lastStep(), resumedFrom, detect, before, after, world);
        awaitingFirstStepSince = e.detectedNanos();
        killNanos = 0;
        pool = pool.nextGeneration(world, dropped, e.getMessage());
        spec = next;
    }

    /**
     * The layout after losing ranks, down to {@code survivors}: the same TP and PP, the
     * largest DP that fits, divides the old one and keeps at least {@code minRanks} ranks;
     * micro-batches multiplied by the DP it lost, so each optimizer step still sees the
     * whole global batch.
     */
    static TrainSpec shrink(TrainSpec spec, int survivors, int minRanks, String cause) {
        int unit = spec.tp() * spec.pp();
        for (int d = Math.min(spec.dp() - 1, survivors / unit); d >= 1; d--) {
            if (spec.dp() % d != 0 || d * unit < minRanks) continue;
            int k = spec.dp() / d;
            return spec.withLayout(d, spec.tp(), spec.pp()).withMicroBatches(spec.microBatches() * k, spec.schedule());
        }
        throw new ClusterError(cause + "; the " + survivors + " ranks left cannot hold the run with at least --min-ranks " + minRanks
                + " ranks (tp x pp = " + unit + ", dp must divide " + spec.dp() + ")");
    }

    private void recordRestart(double recoverySeconds) {
        Restarting r = restarting;
        restarts.add(new RunHistory.Restart(r.generation(), r.cause(), r.lastStep(), r.resumedFrom(),
                (int) Math.max(0, r.lastStep() - r.resumedFrom()), r.detectSeconds(), recoverySeconds, r.before(), r.after(), r.ranksAfter()));
        restarting = null;
        awaitingFirstStepSince = -1;
    }

    private void onEvent(RankEvent ev) {
        switch (ev.kind()) {
            case "step" -> {
                if (restarting != null && ev.step() > restarting.resumedFrom()) {
                    double seconds = (System.nanoTime() - awaitingFirstStepSince) / 1e9;
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("step", ev.step());
                    f.put("recoverySeconds", seconds);
                    pool.events().write("info", "recovered", String.format(Locale.ROOT,
                            "generation %d trained step %d, %.2f s after the failure was detected", restarting.generation(), ev.step(), seconds), f);
                    recordRestart(seconds);
                }
                if (ev.rank() == reporter && ev.fields() != null && ev.fields().get("loss") instanceof Number loss)
                    progress.step((int) ev.step(), loss.doubleValue());
                drill(ev);
            }
            case "checkpoint" -> {
                checkpoints.add((int) ev.number("step"));
                lastCheckpoint = String.valueOf(ev.fields().get("dir"));
                pool.events().write("info", "checkpoint", "checkpoint of step " + (int) ev.number("step") + " complete in " + lastCheckpoint,
                        ev.fields());
            }
            case "restored" -> {
                if (ev.rank() == 0) pool.events().write("info", "resumed", "rank 0 loaded " + ev.fields().get("dir"), ev.fields());
            }
            case "checkpoint-costs" -> costs(ev);
            default -> { }
        }
    }

    /** The drill: kill the named rank with SIGKILL once a rank reports the named step. */
    private void drill(RankEvent ev) {
        FaultTolerance ft = spec.faultTolerance();
        if (ft.killRank() < 0 || killNanos > 0 || ev.step() < ft.killAtStep()) return;
        killNanos = System.nanoTime();
        pool.events().write("warn", "drill", "killing rank " + ft.killRank() + " (SIGKILL) at step " + ev.step() + ": --kill-rank drill",
                Map.of("rank", ft.killRank(), "step", ev.step()));
        pool.kill(ft.killRank());
    }

    @SuppressWarnings("unchecked")
    private void costs(RankEvent ev) {
        Object s = ev.fields().get("saves");
        if (s instanceof List<?> list) {
            for (Object o : list) {
                Map<String, Object> m = (Map<String, Object>) o;
                saves.add(new RunHistory.SaveCost(ev.rank(), num(m, "step").intValue(), num(m, "stateBytes").longValue(),
                        num(m, "fileBytes").longValue(), num(m, "snapshotMs").doubleValue(), num(m, "waitMs").doubleValue(),
                        num(m, "writeMs").doubleValue()));
            }
        }
        if (ev.fields().get("overlappedSteps") instanceof List<?> o) for (Object x : o) overlapped.add(((Number) x).intValue());
    }

    private static Number num(Map<String, Object> m, String k) {
        return m.get(k) instanceof Number n ? n : Double.NaN;
    }
}
