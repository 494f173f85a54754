package parallax.engine.parallel;

import parallax.engine.numerics.DType;
import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.cluster.Mesh;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.torch.Flops;
import parallax.engine.torch.Memory;
import parallax.engine.torch.Torch;

/**
 * One rank's training loop, the only one: plain DP is the layout dp x 1 x 1, and any
 * dp x tp x pp layout (3D parallelism, Narayanan et al. 2021) is composed from the
 * strategies. The rank builds its TP shard ({@link TensorParallel}) of its pipeline
 * stage's units ({@link PipelineParallel}), keeps them in the {@link ParameterStore} of
 * its ZeRO stage over its DP group, and per step: takes its DP slice of the global batch,
 * runs the micro-batch schedule, checks fp16 overflow ({@link MixedPrecision}), steps the
 * optimizer, moves FP8 scales on ({@link Fp8Scaling}) and records the step ({@link StepMetrics}). The groups come from the
 * runtime's mesh (Megatron's parallel_state); this class never builds one.
 */
public final class TrainingLoop {

    /** Receives each reported step's metrics (the worker forwards them to the coordinator). */
    public interface StepListener {
        void step(int step, Map<String, Object> metrics);

        /** Any other event ("checkpoint", "restored", ...); may come from the checkpoint writer's thread. */
        default void event(String kind, Map<String, Object> fields) {}

        StepListener NONE = (s, m) -> {};
    }

    private TrainingLoop() {}

    /**
     * The process groups of one rank, from the runtime's mesh: data-parallel,
     * tensor-parallel, pipeline, context-parallel, and data-with-context-parallel (where
     * gradients are averaged and ZeRO shards: cp ranks see different tokens of the same
     * sequences); with expert parallelism, the expert-parallel group (tokens go to their
     * experts by all-to-all) and the expert-data-parallel group (the ranks holding the same
     * experts: their gradients are reduced and ZeRO shards there).
     */
    public record Groups(Comm dp, Comm tp, Comm pp, Comm cp, Comm dpCp, Comm ep, Comm expertDp) {
        /** dp, tp and pp without context parallelism. */
        public Groups(Comm dp, Comm tp, Comm pp) {
            this(dp, tp, pp, Comm.single(), dp);
        }

        /** Without expert parallelism: experts are replicated like every other weight. */
        public Groups(Comm dp, Comm tp, Comm pp, Comm cp, Comm dpCp) {
            this(dp, tp, pp, cp, dpCp, Comm.single(), dpCp);
        }
    }

    public static RankResult train(TrainSpec spec, int rank, Mesh.Coords at, Device device, Groups groups,
                                   StepListener listener) {
        Torch.init();
        device.bind();
        device.allowTf32(spec.tf32());
        GptConfig cfg = spec.model();
        CommMeter meter = new CommMeter(device);
        Comm dp = meter.wrap(groups.dpCp()), tp = meter.wrap(groups.tp()), pp = meter.wrap(groups.pp()), cp = meter.wrap(groups.cp());
        Comm ep = meter.wrap(groups.ep()), expertDp = meter.wrap(groups.expertDp());

        long[] positions = ContextParallel.positions(at.cpRank(), spec.cp(), cfg.sequence());
        // fp8: the blocks' matmuls through FP8 casts, with scales kept in step over the TP and DP groups
        Fp8Matmuls fp8 = spec.fp8Recipe() == null ? null : new Fp8Matmuls(new Fp8Scaling(spec.fp8Recipe(), device, tp, dp));
        Gpt model = new Gpt(cfg, at.tpRank(), spec.tp(), new TensorParallel(tp, spec.sequenceParallel()),
                new ContextParallel(cp), positions, fp8 == null ? Gpt.Matmuls.PLAIN : fp8);
        DType dtype = spec.computeDType();
        // v model chunks per stage (one unless the schedule is interleaved), one store over all of them.
        int v = spec.virtualStages();
        List<int[]> ranges = new ArrayList<>();
        for (int c = 0; c < v; c++) ranges.add(PipelineParallel.chunkUnits(cfg, spec.pp(), v, c, at.ppRank()));
        // Expert parallelism: this rank holds E/ep experts per block, in a store of their own over the expert-DP group.
        if (spec.ep() > 1) model.useExpertParallel(new ExpertParallel(ep));
        ParameterStore store = spec.ep() > 1
                ? ExpertShardedStore.create(spec.zero(), model, ranges, spec.seed(), dtype, dp, expertDp, spec.ep(), spec.optimizer(),
                        spec.lr(), device, spec.offloadOptimizer())
                : ParameterStore.create(spec.zero(), model, ranges, spec.seed(), dtype,
                        dp, spec.optimizer(), spec.lr(), device, spec.offloadOptimizer());
        boolean localSgd = spec.localSgdEvery() > 0;
        if (localSgd) ((FullReplica) store).localSgd(true);
        // Zero bubble: linear layers leave their weight gradients for the schedule's W passes.
        DeferredWeightGradients deferred = PipelineSchedule.splitsBackward(spec.schedule()) ? new DeferredWeightGradients() : null;
        if (deferred != null) model.useLinear(deferred);
        List<Stage> chunks = new ArrayList<>();
        for (int[] r : ranges) chunks.add(new Stage(model, store, r[0], r[1], spec.checkpointEvery(), deferred));
        ExpertLoad expertLoad = cfg.isMoe() ? new ExpertLoad(cfg.layers(), cfg.moe().experts(), spec.steps()) : null;
        for (Stage c : chunks) c.countRouting(expertLoad);
        // Between stages each rank sends its tokens (its part under cp), sliced again by tp under sp.
        long stageSequence = spec.localSequence() / (spec.sequenceParallel() ? spec.tp() : 1);
        PipelineParallel pipe = new PipelineParallel(chunks, pp, dtype, cfg.hidden(), stageSequence, device);
        MixedPrecision.LossScaler scaler = MixedPrecision.scalerFor(dtype);
        TextData data = new TextData(spec.data(), cfg, spec.seed(), spec.dataFile());
        Checkpointing checkpoints = new Checkpointing(spec, rank, at, store, scaler, pipe.holdsLoss() && at.tpRank() == 0, listener);

        int n = spec.steps();
        int first;
        try {
            first = checkpoints.restore(); // 0, or the step of the checkpoint --resume names
        } catch (RuntimeException e) {
            pipe.close();
            store.close();
            throw e;
        }
        StepMetrics metrics = new StepMetrics(n - first);
        int skipped = 0;
        long tokens = (long) spec.batch() * cfg.sequence();
        // Training FLOPs ~ 6 * params * tokens, 8 with full recompute (docs/reference.md#flops-and-mfu);
        // counted for the whole model; a mixture of experts counts the parameters a token goes through.
        double flops = (chunks.get(0).recomputes() ? 8.0 : 6.0) * cfg.activeParameterCount() * tokens;
        double matmul = Flops.measureMatmul(device, 256, 5);

        boolean finished = false;
        try {
            for (int s = first; s < n; s++) {
                try (PointerScope scope = new PointerScope()) {
                    long t0 = System.nanoTime();
                    TextData.Batch mine = data.batch(s, spec.batch()).slice(at.dpRank(), spec.dp()).columns(positions);
                    List<TextData.Batch> micro = new ArrayList<>();
                    for (int i = 0; i < spec.microBatches(); i++) micro.add(mine.slice(i, spec.microBatches()));

                    double lossSum = pipe.step(micro, spec.schedule(), scaler.scale());
                    if (deferred != null) deferred.endStep();
                    metrics.gradientsHeld(store.gradientBytes());

                    boolean overflow = scaler.dynamic() && MixedPrecision.anyRankOverflowed(store.gradientsOverflow(), device, dp, tp, pp);
                    if (overflow) skipped++;
                    else store.step(1.0 / scaler.scale());
                    scaler.update(overflow);
                    store.zeroGrad();
                    if (fp8 != null) fp8.scaling().endStep(); // delayed scaling: the next step's scales
                    if (localSgd && (s + 1) % spec.localSgdEvery() == 0) ((FullReplica) store).averageParameters();

                    if (expertLoad != null) expertLoad.endStep(s);
                    double loss = pipe.holdsLoss() ? lossSum / spec.microBatches() : Double.NaN;
                    device.synchronize(); // the step is over when its kernels are
                    metrics.record(s - first, loss, System.nanoTime() - t0, pipe.takeIdleNanos(), store.dataParallel().takeTiming(),
                            meter.take());
                    if (pipe.holdsLoss() && !Double.isFinite(loss) && !scaler.dynamic())
                        throw new IllegalStateException("loss is " + loss + " at step " + (s + 1) + "; training stopped");
                    // Every last-stage rank averages the loss over its DP group, as Megatron does for
                    // logging, so the live view shows the global batch's loss (outside the meter:
                    // it is not the training's traffic).
                    double global = pipe.holdsLoss() ? dpMean(groups.dpCp(), loss, device) : Double.NaN;
                    if (metrics.reportDue(s - first)) listener.step(s + 1, metrics.report(s - first, global, scaler.scale()));
                    checkpoints.afterStep(s, loss, t0);
                }
            }
            checkpoints.close(); // the last save is on disk before the rank reports its result
            Device.AllocatorStats gpu = device.allocatorStats();
            RankResult.RankMemory memory = new RankResult.RankMemory(store.parameterBytes(), metrics.maxGradientBytes(),
                    store.optimizerBytes(), pipe.peakActivationBytes(), Memory.peakRssBytes(),
                    gpu.peakAllocatedBytes(), gpu.reservedBytes(), store.optimizerDevice().label());
            List<RankResult.ParamInfo> info = new ArrayList<>();
            for (Gpt.ParamSpec p : store.specs()) info.add(new RankResult.ParamInfo(p.name(), p.fullShape(), p.shardDim()));
            Map<String, float[]> exported = null;
            if (spec.exportParameters()) {
                exported = store.exportParameters(); // collective under ZeRO-3: every DP rank takes part
                // DP replicas hold the same values, so one copy travels; local SGD's replicas
                // drift between averages, so each is handed back.
                // Under expert parallelism the first ep ranks of the dp-cp group hold the experts between them.
                if (spec.ep() > 1 ? at.dpRank() * spec.cp() + at.cpRank() >= spec.ep()
                        : (at.dpRank() != 0 && !localSgd) || at.cpRank() != 0) exported = null;
            }
            finished = true;
            return metrics.result(rank, at, device.label(), memory, tokens, flops, matmul, skipped, scaler.scale(), info, exported,
                    pipe.lastTrace(), fp8 == null ? null : fp8.scaling().trace(), expertLoad == null ? null : expertLoad.result());
        } finally {
            if (!finished) checkpoints.abandon();
            pipe.close();
            store.close();
        }
    }

    /** The mean of {@code value} over the group (the group of one returns it). */
    private static double dpMean(Comm group, double value, Device device) {
        if (group.size() == 1) return value;
        try (PointerScope s = new PointerScope()) {
            Tensor t = device.full(value, DType.F32, 1);
            group.allReduce(t);
            return Device.hostValue(t) / group.size();
        }
    }
}
