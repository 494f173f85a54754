package parallax.engine.plan;

import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.PipelineParallel;

/**
 * How one training step is laid out: the parallel degrees, ZeRO stage, batch split,
 * recomputation and precision. {@code microBatches} is the number of micro-batches each
 * pipeline runs per optimizer step (gradient accumulation), so the global batch is
 * {@code dp x microBatch x microBatches} sequences of {@code seq} tokens. {@code cp}
 * context-parallel ranks share each sequence (seq/cp tokens each), so the GPUs are
 * dp x cp x tp x pp, laid out in Megatron's order tp-cp-dp-pp (tp fastest).
 */
public record Layout(int dp, int tp, int pp, int virtualStages, int zero, int microBatch, int microBatches, int seq,
                     Recompute recompute, boolean sequenceParallel, Optimizer optimizer, DType dtype,
                     boolean offloadOptimizer, boolean offloadParams, Schedule schedule, int cp) {

    /** Activation recomputation (Korthikanti et al. 2022). */
    public enum Recompute { NONE, SELECTIVE, FULL }

    public enum Optimizer { ADAMW, ADAM_8BIT, SGD }

    /**
     * Pipeline schedule: GPipe, 1F1B, interleaved 1F1B (virtualStages > 1; Narayanan et al.
     * 2021) and ZB-H1 (Qi et al. 2023: the backward split into input and weight gradients).
     */
    public enum Schedule {
        GPIPE("gpipe"), ONE_F_ONE_B("1f1b"), INTERLEAVED("interleaved"), ZB_H1("zb-h1");

        private final String label;

        Schedule(String label) { this.label = label; }

        public String label() { return label; }

        /** The engine's name for the same schedule (the planner simulates the engine's pass orders). */
        public PipelineParallel.Schedule engine() {
            return switch (this) {
                case GPIPE -> PipelineParallel.Schedule.GPIPE;
                case ONE_F_ONE_B -> PipelineParallel.Schedule.ONE_F_ONE_B;
                case INTERLEAVED -> PipelineParallel.Schedule.INTERLEAVED;
                case ZB_H1 -> PipelineParallel.Schedule.ZB_H1;
            };
        }

        /** By its label (1f1b, gpipe, interleaved, zb-h1), as flags and measurement records spell it. */
        public static Schedule of(String word) {
            String w = word.toLowerCase(java.util.Locale.ROOT).replace('_', '-');
            for (Schedule s : values()) if (s.label.equals(w)) return s;
            throw new UserError("unknown schedule '" + word + "' (1f1b, gpipe, interleaved, zb-h1)");
        }
    }

    /** The compute types a plan can assume: fp32, bf16, fp16 and fp8 (E4M3) training. */
    public static final java.util.List<DType> DTYPES = java.util.List.of(DType.F32, DType.BF16, DType.F16, DType.F8_E4M3);

    /** Without context parallelism. */
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
        ModelSpec.positive("cp", cp);
        ModelSpec.positive("virtual stages", virtualStages);
        ModelSpec.positive("micro-batch", microBatch);
        ModelSpec.positive("micro-batches per step (gradient accumulation)", microBatches);
        ModelSpec.positive("sequence length", seq);
        if (zero < 0 || zero > 3) throw new UserError("ZeRO stage must be 0, 1, 2 or 3, got " + zero);
        if (offloadParams && zero != 3) throw new UserError("offloading parameters to CPU needs ZeRO stage 3 (ZeRO-Infinity)");
        if (cp > 1 && seq % (2 * cp) != 0)
            throw new UserError("sequence " + seq + " is not divisible by 2 x cp = " + 2 * cp
                    + " (each context-parallel rank holds two chunks, for causal load balance)");
        if (sequenceParallel && tp == 1) sequenceParallel = false;
        if (virtualStages > 1 && pp == 1) throw new UserError("virtual pipeline stages need pp > 1");
        if (schedule == null) schedule = virtualStages > 1 ? Schedule.INTERLEAVED : Schedule.ONE_F_ONE_B;
        if (virtualStages > 1 && schedule != Schedule.INTERLEAVED)
            throw new UserError("schedule " + schedule.label() + " runs one model chunk per stage: drop the virtual stages (--vpp "
                    + virtualStages + ") or use the interleaved schedule");
        if (schedule == Schedule.INTERLEAVED && virtualStages == 1)
            throw new UserError("the interleaved schedule needs 2 or more virtual stages per pipeline rank (--vpp)");
        if (schedule == Schedule.INTERLEAVED && microBatches % pp != 0)
            throw new UserError("the interleaved schedule runs micro-batches in groups of pp = " + pp + ": " + microBatches
                    + " micro-batches per step is not a multiple of it");
        if (schedule == Schedule.ZB_H1 && pp == 1)
            throw new UserError("the zb-h1 schedule fills a pipeline's bubble: it needs pp 2 or more");
        if (schedule == Schedule.ZB_H1 && zero == 3)
            throw new UserError("the zb-h1 schedule keeps weight gradients for later passes while ZeRO-3 frees each gathered layer "
                    + "after its backward: use ZeRO 0, 1 or 2 with it");
    }

    /** Bytes of one stored activation element: 4 in fp32, else 2 (fp8 recipes keep activations in bf16). */
    public int activationBytes() { return dtype == DType.F32 ? 4 : 2; }

    public int gpus() { return dp * cp * tp * pp; }

    /** Ranks that hold the same weights and average their gradients: dp x cp (Megatron's dp-cp group). */
    public int dataShards() { return dp * cp; }

    /** Tokens of each sequence one rank holds: seq / cp. */
    public long localSeq() { return seq / cp; }

    public long globalBatch() { return (long) dp * microBatch * microBatches; }

    public long tokensPerStep() { return globalBatch() * seq; }

    /** A short label: dp4·cp2·tp8·pp2v2 z1 mb1 sel, with zb for the zero-bubble schedule. */
    public String label() {
        return "dp" + dp + (cp > 1 ? "·cp" + cp : "") + "·tp" + tp + "·pp" + pp + (virtualStages > 1 ? "v" + virtualStages : "")
                + (schedule == Schedule.ZB_H1 ? " zb" : schedule == Schedule.GPIPE && pp > 1 ? " gpipe" : "")
                + " z" + zero + " mb" + microBatch + " "
                + recompute.name().toLowerCase().substring(0, recompute == Recompute.SELECTIVE ? 3 : 4);
    }

    public Layout withZero(int z) {
        return new Layout(dp, tp, pp, virtualStages, z, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams && z == 3, schedule, cp);
    }

    public Layout withRecompute(Recompute r) {
        return new Layout(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, r, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams, schedule, cp);
    }

    public Layout withOffload(boolean optimizerToCpu, boolean paramsToCpu) {
        return new Layout(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, optimizerToCpu, paramsToCpu, schedule, cp);
    }

    /** The same layout with {@code c} context-parallel ranks in place of {@code cp} (dp unchanged: more GPUs). */
    public Layout withCp(int c) {
        return new Layout(dp, tp, pp, virtualStages, zero, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams, schedule, c);
    }

    public Layout withSchedule(Schedule s, int v) {
        return new Layout(dp, tp, pp, v, zero, microBatch, microBatches, seq, recompute, sequenceParallel,
                optimizer, dtype, offloadOptimizer, offloadParams, s, cp);
    }
}
