package parallax.engine.parallel;

import java.util.List;
import java.util.Map;

/**
 * What one rank measured during a run: per-step loss (last pipeline stage only, else
 * NaN) and time split, communication by collective type (per step and in total), memory, and optionally its
 * final parameters (for comparing layouts).
 */
public record RankResult(
        int rank, int dpRank, int tpRank, int ppRank,
        double[] loss, double[] stepMs, double[] computeMs, double[] commMs, double[] idleMs, double[] rssMiB,
        Map<String, Long> commBytes, Map<String, Long> commCalls, Map<String, Double> commMsByOp,
        Map<String, double[]> commMsPerStep,
        RankMemory memory, long tokensPerStep, double flopsPerStep, double matmulFlops,
        int skippedSteps, double finalLossScale,
        List<ParamInfo> paramInfo, Map<String, float[]> parameters) {

    /** How a parameter this rank exported is cut: shardDim -1 means whole. */
    public record ParamInfo(String name, long[] fullShape, int shardDim) {}

    /**
     * Measured memory of one rank, in bytes. parameterBytes: the compute copy it keeps
     * (flat buffers with ZeRO padding; the owned slice under ZeRO-3); gradientBytes: the
     * gradients alive at the end of backward (full, or the owned fp32 slice under
     * ZeRO-2/3); optimizerBytes: optimizer state plus any separate fp32 master copy;
     * activationBytes: peak over steps of the tensors held for backward (autograd-saved
     * intermediates and segment inputs), counted from live tensors; peakRssBytes: the
     * process's peak resident set (VmHWM).
     */
    public record RankMemory(long parameterBytes, long gradientBytes, long optimizerBytes,
                             long activationBytes, long peakRssBytes) {
        public long modelStateBytes() { return parameterBytes + gradientBytes + optimizerBytes; }
    }
}
