package parallax.engine.plan;

import java.util.List;

/**
 * Everything the planner estimated for one layout, in bytes, seconds and FLOP/s. The
 * memory lines are those of the pipeline stage that needs the most ({@code stage}).
 */
public record TrainingPlan(ModelSpec model, GpuCluster cluster, Layout layout, Conventions conventions,
                           long parameters, long activeParameters, int stage, List<Line> memory,
                           double totalBytes, double headroomBytes, double usableBytes, boolean fits,
                           double cpuBytesPerNode, List<Comm> comms, double bubbleFraction,
                           double computeSeconds, double stepSeconds, double tokensPerSecond, double mfu,
                           double peakFlops) {

    /** One memory component on one GPU: bytes, the formula in words and its source footnote. */
    public record Line(String component, double bytes, String formula, int source) {}

    /**
     * Communication of one parallel dimension per optimizer step and per GPU: bytes sent,
     * the link it crosses, the time on that link and the part not hidden behind compute.
     */
    public record Comm(String dimension, int groupSize, String link, double bytes, double seconds,
                       double exposedSeconds, String formula, int source) {}

    public double bytesOf(String component) {
        return memory.stream().filter(l -> l.component().equals(component)).mapToDouble(Line::bytes).sum();
    }

    /** Positive when it fits: usable memory left over; negative: how much is missing. */
    public double marginBytes() { return usableBytes - totalBytes; }

    /** Seconds to train on {@code tokens} tokens at this throughput. */
    public double trainingSeconds(double tokens) { return tokens / tokensPerSecond; }

    /** Training FLOPs for a token budget by the 6·Ψ·tokens rule (active parameters for MoE). */
    public double trainingFlops(double tokens) { return 6.0 * activeParameters * tokens; }
}
