package parallax.engine.plan;

import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/**
 * How one training step is laid out: the parallel degrees, ZeRO stage, batch split,
 * recomputation and precision. {@code microBatches} is the number of micro-batches each
 * pipeline runs per optimizer step (gradient accumulation), so the global batch is
 * {@code dp x microBatch x microBatches} sequences of {@code seq} tokens. {@code ep}
 * expert-parallel ranks share each MoE layer's routed experts (experts/ep each); ep divides
 * dp, as in Megatron's rank order tp-cp-ep-dp-pp, so the ep group is carved out of the data-
 * parallel ranks and the experts' own data-parallel group is dp/ep.
 */
public record Layout(int dp, int tp, int pp, int virtualStages, int zero, int microBatch, int microBatches, int seq,
                     Recompute recompute, boolean sequenceParallel, Optimizer optimizer, DType dtype,
                     boolean offloadOptimizer, boolean offloadParams, Schedule schedule, int ep) {

    /** Activation recomputation (Korthikanti et al. 2022). */
    public enum Recompute { NONE, SELECTIVE, FULL }

    public enum Optimizer { ADAMW, ADAM_8BIT, SGD }

    /** Pipeline schedule; INTERLEAVED needs virtualStages > 1 (Narayanan et al. 2021). */
    public enum Schedule { GPIPE, ONE_F_ONE_B, INTERLEAVED }

    /** The compute types a plan can assume: fp32, bf16, fp16 and fp8 (E4M3) training. */
    public static final java.util.List<DType> DTYPES = java.util.List.of(DType.F32, DType.BF16, DType.F16, DType.F8_E4M3);

    /** Without expert parallelism. */
    public Layout(int dp, int tp, int pp, int virtualStages, int zero, int microBatch, int microBatches, int seq,
                  Recompute recompute, boolean sequenceParallel, Optimizer optimizer, DType dtype,
                  boolean offloadOptimizer, boolean offloadParams, Schedule schedule) {
        this(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, recompute, sequenceParallel, optimizer, dtype,
                offloadOptimizer, offloadParams, schedule, 1);
    }

    public Layout {
        if (!DTYPES.contains(dtype)) throw new UserError("a plan computes in fp32, bf16, fp16 or fp8, not " + dtype.label());
        ModelSpec.positive("dp", dp);
        ModelSpec.positive("tp", tp);
        ModelSpec.positive("pp", pp);
        ModelSpec.positive("ep", ep);
        if (dp % ep != 0) throw new UserError("ep=" + ep + " must divide dp=" + dp + " (the expert-parallel group is carved out of the data-parallel ranks)");
        ModelSpec.positive("virtual stages", virtualStages);
        ModelSpec.positive("micro-batch", microBatch);
        ModelSpec.positive("micro-batches per step (gradient accumulation)", microBatches);
        ModelSpec.positive("sequence length", seq);
        if (zero < 0 || zero > 3) throw new UserError("ZeRO stage must be 0, 1, 2 or 3, got " + zero);
        if (offloadParams && zero != 3) throw new UserError("offloading parameters to CPU needs ZeRO stage 3 (ZeRO-Infinity)");
        if (sequenceParallel && tp == 1) sequenceParallel = false;
        if (virtualStages > 1 && pp == 1) throw new UserError("virtual pipeline stages need pp > 1");
        if (schedule == null) schedule = virtualStages > 1 ? Schedule.INTERLEAVED : Schedule.ONE_F_ONE_B;
        if (schedule == Schedule.INTERLEAVED && virtualStages == 1) schedule = Schedule.ONE_F_ONE_B;
        if (virtualStages > 1) schedule = Schedule.INTERLEAVED;
    }

    /** Bytes of one stored activation element: 4 in fp32, else 2 (fp8 recipes keep activations in bf16). */
    public int activationBytes() { return dtype == DType.F32 ? 4 : 2; }

    public int gpus() { return dp * tp * pp; }

    public long globalBatch() { return (long) dp * microBatch * microBatches; }

    public long tokensPerStep() { return globalBatch() * seq; }

    /** A short label: dp4·tp8·pp2 z1 mb1 sel. */
    public String label() {
        return String.format("dp%d·tp%d·pp%d%s%s z%d mb%d %s", dp, tp, pp, virtualStages > 1 ? "v" + virtualStages : "",
                ep > 1 ? "·ep" + ep : "",
                zero, microBatch, recompute.name().toLowerCase().substring(0, recompute == Recompute.SELECTIVE ? 3 : 4));
    }

    public Layout withZero(int z) {
        return new Layout(dp, tp, pp, virtualStages, z, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams && z == 3, schedule, ep);
    }

    public Layout withRecompute(Recompute r) {
        return new Layout(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, r, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams, schedule, ep);
    }

    public Layout withOffload(boolean optimizerToCpu, boolean paramsToCpu) {
        return new Layout(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, optimizerToCpu, paramsToCpu, schedule, ep);
    }
}
