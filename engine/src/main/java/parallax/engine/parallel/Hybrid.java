package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.torch.DType;
import parallax.engine.torch.Flops;
import parallax.engine.torch.Memory;
import parallax.engine.torch.Torch;

/**
 * One rank's training loop for any dp x tp x pp layout (3D parallelism, Narayanan et al.
 * 2021), composed from the strategies: the rank builds its TP shard ({@link
 * TensorParallel}) of its pipeline stage's units ({@link PipelineParallel}), keeps them
 * in ZeRO storage over its DP group ({@link Zero}, stage 0 = {@link DataParallel}), and
 * per step: takes its DP slice of the global batch, runs the micro-batch schedule,
 * checks fp16 overflow ({@link MixedPrecision}), steps the optimizer and reports.
 * The groups come from the runtime's mesh (Megatron's parallel_state); this class never
 * builds one.
 */
public final class Hybrid {

    /** Where this rank sits in the dp x tp x pp mesh. */
    public record Coords(int dpRank, int tpRank, int ppRank) {}

    /** Receives each completed step's metrics (the worker forwards them to the coordinator). */
    public interface StepListener {
        void step(int step, Map<String, Object> metrics);

        StepListener NONE = (s, m) -> {};
    }

    /** Least time between two step reports sent to the coordinator (first and last always go). */
    static final long REPORT_EVERY_NANOS = 100_000_000L;

    private Hybrid() {}

    /** Units [from, to) of pipeline stage {@code ppRank}: embedding on the first, head on the last. */
    public static int[] stageUnits(GptConfig cfg, int pp, int ppRank) {
        int per = cfg.layers() / pp;
        int from = ppRank == 0 ? 0 : 1 + ppRank * per;
        int to = ppRank == pp - 1 ? cfg.layers() + 2 : 1 + (ppRank + 1) * per;
        return new int[] {from, to};
    }

    public static RankResult train(TrainSpec spec, int rank, Coords at, Comm dpGroup, Comm tpGroup, Comm ppGroup,
                                   StepListener listener) {
        Torch.init();
        GptConfig cfg = spec.model();
        CommMeter meter = new CommMeter();
        Comm dp = meter.wrap(dpGroup), tp = meter.wrap(tpGroup), pp = meter.wrap(ppGroup);

        Gpt model = new Gpt(cfg, at.tpRank(), spec.tp(), new TensorParallel(tp));
        int[] units = stageUnits(cfg, spec.pp(), at.ppRank());
        Zero params = new Zero(model, units[0], units[1], spec.seed(), spec.zero(), spec.precision(), dp,
                spec.optimizer(), spec.lr());
        params.localSgd(spec.localSgdEvery() > 0);
        Stage stage = new Stage(model, params, units[0], units[1], spec.checkpointEvery());
        PipelineParallel pipe = new PipelineParallel(stage, pp, spec.precision(), cfg.hidden(), cfg.sequence());
        MixedPrecision.LossScaler scaler = MixedPrecision.scalerFor(spec.precision());
        TextData data = new TextData(spec.data(), cfg, spec.seed());

        int n = spec.steps();
        double[] rssMiB = new double[n];
        double[] loss = new double[n], stepMs = new double[n], computeMs = new double[n], commMs = new double[n], idleMs = new double[n];
        Map<String, Long> bytes = new LinkedHashMap<>(), calls = new LinkedHashMap<>();
        Map<String, Double> opMs = new LinkedHashMap<>();
        Map<String, double[]> opMsPerStep = new LinkedHashMap<>();
        long gradBytes = 0;
        int skipped = 0;
        long tokens = (long) spec.batch() * cfg.sequence();
        // Training FLOPs ~ 6 * params * tokens, 8 with full recompute (Narayanan et al. 2021;
        // REFERENCE.md "Pipelines, communication, FLOPs"); counted for the whole model.
        double flops = (stage.recomputes() ? 8.0 : 6.0) * cfg.parameterCount() * tokens;
        double matmul = Flops.measureMatmul(256, 5);

        long lastReport = 0;
        try {
            for (int s = 0; s < n; s++) {
                try (PointerScope scope = new PointerScope()) {
                    long t0 = System.nanoTime();
                    TextData.Batch mine = data.batch(s, spec.batch()).slice(at.dpRank(), spec.dp());
                    List<TextData.Batch> micro = new ArrayList<>();
                    for (int i = 0; i < spec.microBatches(); i++) micro.add(mine.slice(i, spec.microBatches()));

                    double lossSum = pipe.step(micro, spec.schedule(), scaler.scale());
                    gradBytes = Math.max(gradBytes, params.gradientBytes());

                    boolean overflow = scaler.dynamic() && MixedPrecision.anyRankOverflowed(params.gradientsOverflow(), dp, tp, pp);
                    if (overflow) skipped++;
                    else params.step(1.0 / scaler.scale());
                    scaler.update(overflow);
                    params.zeroGrad();
                    if (spec.localSgdEvery() > 0 && (s + 1) % spec.localSgdEvery() == 0) params.averageParameters();

                    long wall = System.nanoTime() - t0;
                    long idle = pipe.takeIdleNanos();
                    // DP buckets are all-reduced on their own thread: only the optimizer's wait
                    // for them is time the compute thread spent on communication.
                    long[] dpNanos = params.dataParallel().takeNanos();
                    long comm = dpNanos[1] - dpNanos[0];
                    for (Map.Entry<String, CommMeter.Totals> e : meter.take().entrySet()) {
                        CommMeter.Totals t = e.getValue();
                        bytes.merge(e.getKey(), t.bytes, Long::sum);
                        calls.merge(e.getKey(), t.calls, Long::sum);
                        opMs.merge(e.getKey(), t.nanos / 1e6, Double::sum);
                        opMsPerStep.computeIfAbsent(e.getKey(), k -> new double[n])[s] = t.nanos / 1e6;
                        // send runs on the sender thread (overlapped); recv is idle time.
                        if (!e.getKey().equals("send") && !e.getKey().equals("recv")) comm += t.nanos;
                    }
                    loss[s] = stage.isLast() ? lossSum / spec.microBatches() : Double.NaN;
                    stepMs[s] = wall / 1e6;
                    idleMs[s] = idle / 1e6;
                    commMs[s] = comm / 1e6;
                    comm = Math.max(0, comm);
                    computeMs[s] = Math.max(0, wall - comm - idle) / 1e6;
                    rssMiB[s] = Memory.rssBytes() / (1024.0 * 1024.0);
                    if (stage.isLast() && !Double.isFinite(loss[s]) && !scaler.dynamic())
                        throw new IllegalStateException("loss is " + loss[s] + " at step " + (s + 1) + "; training stopped");
                    // A live view needs a few updates a second, not one per step: every report is
                    // a message the coordinator parses on the cores the ranks compute on.
                    long now = System.nanoTime();
                    if (s > 0 && s < n - 1 && now - lastReport < REPORT_EVERY_NANOS) continue;
                    lastReport = now;
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("loss", loss[s]);
                    m.put("stepMs", stepMs[s]);
                    m.put("computeMs", computeMs[s]);
                    m.put("commMs", commMs[s]);
                    m.put("idleMs", idleMs[s]);
                    m.put("lossScale", scaler.scale());
                    listener.step(s + 1, m);
                }
            }
            RankResult.RankMemory memory = new RankResult.RankMemory(params.parameterBytes(), gradBytes,
                    params.optimizerBytes(), stage.peakActivationBytes(), Memory.peakRssBytes());
            List<RankResult.ParamInfo> info = new ArrayList<>();
            for (Gpt.ParamSpec p : params.specs()) info.add(new RankResult.ParamInfo(p.name(), p.fullShape(), p.shardDim()));
            Map<String, float[]> exported = spec.exportParameters() ? params.exportParameters() : null;
            return new RankResult(rank, at.dpRank(), at.tpRank(), at.ppRank(), loss, stepMs, computeMs, commMs, idleMs, rssMiB,
                    bytes, calls, opMs, opMsPerStep, memory, tokens, flops, matmul, skipped, scaler.scale(), info, exported);
        } finally {
            pipe.close();
            params.close();
        }
    }

    /** The global loss per step: mean over the last-stage ranks of the DP group (tp rank 0). */
    public static double[] globalLoss(List<RankResult> ranks, int steps) {
        double[] out = new double[steps];
        int count = 0;
        for (RankResult r : ranks) {
            // Only last-stage ranks report a loss (others hold NaN); TP ranks repeat it.
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

    /** Reassembles full parameters from every rank's exported shards (dp rank 0 copies). */
    public static Map<String, float[]> gatherParameters(List<RankResult> ranks) {
        Map<String, List<RankResult>> holders = new LinkedHashMap<>();
        Map<String, RankResult.ParamInfo> infos = new LinkedHashMap<>();
        for (RankResult r : ranks) {
            if (r.dpRank() != 0 || r.parameters() == null) continue;
            for (RankResult.ParamInfo p : r.paramInfo()) {
                infos.put(p.name(), p);
                holders.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(r);
            }
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, RankResult.ParamInfo> e : infos.entrySet()) {
            RankResult.ParamInfo p = e.getValue();
            List<RankResult> hs = holders.get(e.getKey());
            hs.sort(java.util.Comparator.comparingInt(RankResult::tpRank));
            if (p.shardDim() < 0) {
                out.put(p.name(), hs.get(0).parameters().get(p.name()));
                continue;
            }
            int parts = hs.size();
            long total = 1;
            for (long d : p.fullShape()) total *= d;
            float[] full = new float[(int) total];
            for (int i = 0; i < parts; i++) place(full, hs.get(i).parameters().get(p.name()), p.fullShape(), p.shardDim(), i, parts);
            out.put(p.name(), full);
        }
        return out;
    }

    private static void place(float[] full, float[] part, long[] shape, int dim, int i, int parts) {
        if (shape.length == 1 || dim == 0) {
            System.arraycopy(part, 0, full, i * part.length, part.length);
            return;
        }
        int rows = (int) shape[0], cols = (int) shape[1], c = cols / parts;
        for (int r = 0; r < rows; r++) System.arraycopy(part, r * c, full, r * cols + i * c, c);
    }
}
