package parallax.engine.parallel;

import java.util.List;
import java.util.Map;
import parallax.engine.cluster.Mesh;

/**
 * What one rank measured during a run: per-step loss (last pipeline stage only, else NaN)
 * and time split, communication by collective type, memory, optionally its final
 * parameters (for comparing layouts and saving), the pipeline passes of its last step
 * with their times (the measured schedule), and in an fp8 run the trace of its FP8
 * scales (null otherwise).
 */
public record RankResult(
        int rank, Mesh.Coords coords, String device,
        double[] loss, double[] stepMs, double[] computeMs, double[] commMs, double[] idleMs, double[] rssMiB,
        Map<String, CommTotals> comm,
        RankMemory memory, long tokensPerStep, double flopsPerStep, double matmulFlops,
        int skippedSteps, double finalLossScale,
        List<ParamInfo> paramInfo, @com.google.gson.annotations.JsonAdapter(PackedFloats.class) Map<String, float[]> parameters,
        List<OpTime> lastStepOps, Fp8Scaling.Trace fp8, Experts experts) {

    /**
     * A mixture of experts' routing as this rank saw it (null for a dense model): tokens routed
     * to each expert of each block, {@code load[layer][expert]}, summed over the run (blocks of
     * other pipeline stages stay 0); (token, expert) assignments dropped over capacity per
     * step; assignments routed in the last step (all its blocks and micro-batches).
     */
    public record Experts(long[][] load, long[] droppedPerStep, long routedPerStep) {
        public long dropped() {
            long n = 0;
            for (long d : droppedPerStep) n += d;
            return n;
        }
    }

    public int dpRank() { return coords.dpRank(); }

    public int tpRank() { return coords.tpRank(); }

    public int ppRank() { return coords.ppRank(); }

    /**
     * One collective type over the run: calls, bytes handed to them (counted), the ring
     * algorithm's traffic for those bytes (an estimate, {@link CommMeter#FACTORS}), wall
     * time in the calls and its part on the training thread, and the time per step.
     */
    public record CommTotals(long calls, long bytesHanded, double ringBytes, double ms, double exposedMs, double[] msPerStep) {}

    /** Bytes handed to {@code op} over the run, 0 when it was never called. */
    public long bytesHanded(String op) {
        CommTotals t = comm.get(op);
        return t == null ? 0 : t.bytesHanded();
    }

    /**
     * One pipeline pass of the run's last step on this rank, as it ran: {@code op} is
     * F, B or W, then the micro-batch, then ".chunk" for chunks after the first (as in
     * {@link PipelineSchedule.Op}); times in ms from the step's start.
     */
    public record OpTime(String op, double startMs, double endMs) {}

    /** How a parameter this rank exported is cut: shardDim -1 means whole. */
    public record ParamInfo(String name, long[] fullShape, int shardDim) {}

    /**
     * Measured memory of one rank, in bytes. parameterBytes: the compute copy it keeps
     * (flat buffers with ZeRO padding; the owned slice under ZeRO-3); gradientBytes: the
     * gradients alive at the end of backward (full, or the owned fp32 slice under
     * ZeRO-2/3); optimizerBytes: optimizer state plus any separate fp32 master copy;
     * activationBytes: peak over steps of the tensors held for backward (autograd-saved
     * intermediates and segment inputs, and under the zero-bubble schedule the linear
     * layers' inputs and output gradients kept from B to W), counted from live tensors; peakRssBytes: the
     * process's peak resident set (VmHWM); on a GPU rank, the CUDA caching allocator's
     * peak allocated and current reserved bytes (-1 on CPU ranks); optimizerDevice: where
     * the optimizer state and master weights live ("cpu" when offloaded from a GPU).
     */
    public record RankMemory(long parameterBytes, long gradientBytes, long optimizerBytes,
                             long activationBytes, long peakRssBytes, long devicePeakAllocatedBytes,
                             long deviceReservedBytes, String optimizerDevice) {
        public long modelStateBytes() { return parameterBytes + gradientBytes + optimizerBytes; }

        /** Model states held on the rank's device: the optimizer's part leaves it when offloaded. */
        public long deviceModelStateBytes(String device) {
            return parameterBytes + gradientBytes + (device.equals(optimizerDevice) ? optimizerBytes : 0);
        }
    }
}
