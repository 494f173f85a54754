package parallax.engine.parallel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.model.Checkpoint;
import parallax.engine.model.Shards;
import parallax.engine.report.Stats;

/**
 * A finished run: what was asked (the last generation's spec, after any restart), the
 * global loss per step from the first, what every rank of the last generation measured
 * (from {@code history.firstStep()} on), and its history of checkpoints and restarts.
 */
public record TrainingRun(TrainSpec spec, double[] loss, List<RankResult> ranks, RunHistory history) {

    public TrainingRun(TrainSpec spec, double[] loss, List<RankResult> ranks) {
        this(spec, loss, ranks, RunHistory.NONE);
    }

    /** A run from its ranks' results: the loss is the mean over the last stage's DP ranks. */
    public static TrainingRun of(TrainSpec spec, List<RankResult> ranks) {
        return of(spec, ranks, new double[0], RunHistory.NONE);
    }

    /**
     * A run whose ranks trained from step {@code history.firstStep()}: the loss of the steps
     * before comes from the checkpoint ({@code lossBefore}; NaN where it has none).
     */
    static TrainingRun of(TrainSpec spec, List<RankResult> ranks, double[] lossBefore, RunHistory history) {
        int first = history == null ? 0 : history.firstStep();
        double[] trained = globalLoss(ranks, spec.steps() - first);
        double[] loss = new double[spec.steps()];
        java.util.Arrays.fill(loss, 0, first, Double.NaN);
        System.arraycopy(lossBefore, 0, loss, 0, Math.min(first, lossBefore.length));
        System.arraycopy(trained, 0, loss, first, trained.length);
        return new TrainingRun(spec, loss, ranks, history);
    }

    /** Checkpoints, resume and restarts ({@link RunHistory#NONE} for a plain run). */
    @Override
    public RunHistory history() { return history == null ? RunHistory.NONE : history; }

    /** The layout in a few characters, e.g. "dp=2,tp=2,zero=1". */
    public String label() { return spec.label(); }

    /** Median over steps (the first excluded as warm-up) of the slowest rank's step time. */
    public double medianStepMs() {
        double[] worst = slowestStepMs();
        return Stats.median(worst, worst.length > 2 ? 1 : 0);
    }

    /** Per step the ranks trained (from {@code history.firstStep()}), the slowest rank's time. */
    public double[] slowestStepMs() {
        int n = Integer.MAX_VALUE;
        for (RankResult r : ranks) n = Math.min(n, r.stepMs().length);
        double[] worst = new double[ranks.isEmpty() ? 0 : n];
        for (RankResult r : ranks) for (int s = 0; s < worst.length; s++) worst[s] = Math.max(worst[s], r.stepMs()[s]);
        return worst;
    }

    /** Global tokens per second from the median step. */
    public double tokensPerSecond() {
        return spec.batch() * (double) spec.model().sequence() / (medianStepMs() / 1000.0);
    }

    /** The global loss per step: mean over the last-stage ranks of the DP group (tp rank 0). */
    static double[] globalLoss(List<RankResult> ranks, int steps) {
        double[] out = new double[steps];
        int count = 0;
        for (RankResult r : ranks) {
            // Only last-stage ranks have a loss (others hold NaN); TP ranks repeat it.
            if (r.tpRank() != 0 || r.loss() == null || allNaN(r.loss())) continue;
            for (int s = 0; s < steps; s++) out[s] += r.loss()[s];
            count++;
        }
        for (int s = 0; s < steps; s++) out[s] /= Math.max(1, count);
        return out;
    }

    private static boolean allNaN(double[] a) {
        for (double d : a) if (!Double.isNaN(d)) return false;
        return true;
    }

    /**
     * The FP8 trace of an fp8 run, every pipeline stage's slots in stage order (from the
     * ranks at dp 0, tp 0: the reduced amaxes and scales are the same on every rank of a
     * stage); null for other runs.
     */
    public Fp8Scaling.Trace fp8Trace() {
        List<RankResult> stages = new ArrayList<>();
        for (RankResult r : ranks) if (r.dpRank() == 0 && r.tpRank() == 0 && r.fp8() != null) stages.add(r);
        if (stages.isEmpty()) return null;
        stages.sort(Comparator.comparingInt(RankResult::ppRank));
        List<String> slots = new ArrayList<>(), roles = new ArrayList<>();
        List<double[]> amax = new ArrayList<>(), scale = new ArrayList<>(), sat = new ArrayList<>(), flush = new ArrayList<>();
        for (RankResult r : stages) {
            Fp8Scaling.Trace t = r.fp8();
            slots.addAll(t.slots());
            roles.addAll(t.roles());
            amax.addAll(List.of(t.amax()));
            scale.addAll(List.of(t.scale()));
            sat.addAll(List.of(t.saturatedShare()));
            flush.addAll(List.of(t.flushedShare()));
        }
        return new Fp8Scaling.Trace(slots, roles, amax.toArray(double[][]::new), scale.toArray(double[][]::new),
                sat.toArray(double[][]::new), flush.toArray(double[][]::new));
    }

    /** Whether the ranks handed back their parameters (the run exported them). */
    public boolean hasParameters() { return ranks.stream().anyMatch(r -> r.parameters() != null); }

    /** The full parameters reassembled from the ranks' exported shards (dp rank 0's, cp rank 0's copies). */
    public Map<String, float[]> parameters() {
        Map<String, List<RankResult>> holders = new LinkedHashMap<>();
        Map<String, RankResult.ParamInfo> infos = new LinkedHashMap<>();
        for (RankResult r : ranks) {
            if (r.parameters() == null) continue;
            // One copy of each weight: dp rank 0's (cp rank 0's); under expert parallelism each
            // of the first ep ranks of the dp-cp group holds its own experts.
            if (spec.ep() > 1 ? r.dpRank() * spec.cp() + r.coords().cpRank() >= spec.ep() : r.dpRank() != 0 || r.coords().cpRank() != 0)
                continue;
            for (RankResult.ParamInfo p : r.paramInfo()) {
                infos.put(p.name(), p);
                List<RankResult> hs = holders.computeIfAbsent(p.name(), k -> new ArrayList<>());
                // one holder per TP slice (expert parallelism hands back the other weights from each of ep ranks)
                if (hs.stream().noneMatch(h -> h.tpRank() == r.tpRank())) hs.add(r);
            }
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, RankResult.ParamInfo> e : infos.entrySet()) {
            RankResult.ParamInfo p = e.getValue();
            List<RankResult> hs = holders.get(e.getKey());
            hs.sort(Comparator.comparingInt(RankResult::tpRank));
            if (p.shardDim() < 0) {
                out.put(p.name(), hs.get(0).parameters().get(p.name()));
                continue;
            }
            long total = 1;
            for (long d : p.fullShape()) total *= d;
            float[] full = new float[(int) total];
            for (int i = 0; i < hs.size(); i++)
                Shards.place(full, hs.get(i).parameters().get(p.name()), p.fullShape(), p.shardDim(), i, hs.size());
            out.put(p.name(), full);
        }
        return out;
    }

    /** The run fields recorded in a checkpoint's metadata ({@code parallax.run.*}). */
    public Map<String, String> checkpointMetadata() {
        String prefix = Checkpoint.PREFIX + "run.";
        Map<String, String> m = new LinkedHashMap<>();
        m.put(prefix + "layout", "dp=" + spec.dp() + ",tp=" + spec.tp() + ",pp=" + spec.pp());
        m.put(prefix + "zero", Integer.toString(spec.zero()));
        m.put(prefix + "precision", spec.precision().label());
        m.put(prefix + "steps", Integer.toString(spec.steps()));
        m.put(prefix + "seed", Long.toString(spec.seed()));
        m.put(prefix + "batch", Integer.toString(spec.batch()));
        m.put(prefix + "optimizer", spec.optimizer());
        m.put(prefix + "lr", Double.toString(spec.lr()));
        m.put(prefix + "data", spec.data().toString().toLowerCase(Locale.ROOT));
        double last = Double.NaN;
        for (int i = loss.length - 1; i >= 0 && Double.isNaN(last); i--) last = loss[i];
        m.put(prefix + "final_loss", Double.toString(last));
        return m;
    }

    /** Writes the trained model as an engine checkpoint (the run must have exported its parameters). */
    public void saveCheckpoint(Path path) {
        if (!hasParameters())
            throw new UserError("this run did not export its parameters: train with --save FILE (or TrainSpec.withExport(true))");
        Checkpoint.save(spec.model(), parameters(), checkpointMetadata(), path);
    }

    /** The pipeline's measured pass times and bubble against the simulation and the closed form (pp 2 or more). */
    public PipelineSchedule.Measurement pipeline() { return PipelineSchedule.measure(spec, ranks); }
}
