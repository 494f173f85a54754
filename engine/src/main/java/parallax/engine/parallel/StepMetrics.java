package parallax.engine.parallel;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.cluster.Mesh;
import parallax.engine.torch.Memory;

/**
 * The metrics half of the training loop: one rank's per-step loss, time split, resident
 * memory and communication totals, and the {@link RankResult} they become.
 *
 * <p>The time split is measured, not derived: communication is the time the training
 * thread spent inside collectives ({@link CommMeter}'s exposed time, pipeline receives
 * excluded) plus its waits for the overlapped DP buckets; idle is the time blocked in
 * pipeline receives (bubble plus transfer); compute is the rest of the step's wall time.
 * The three are disjoint intervals of one thread, so compute cannot be negative.
 */
final class StepMetrics {

    /** Least time between two step reports to the coordinator (the first and last always go). */
    static final long REPORT_EVERY_NANOS = 100_000_000L;

    private final int steps;
    final double[] loss, stepMs, computeMs, commMs, idleMs, rssMiB;
    private final Map<String, long[]> counts = new LinkedHashMap<>();      // op -> {calls, bytesHanded}
    private final Map<String, double[]> ringBytes = new LinkedHashMap<>(); // op -> {bytes}
    private final Map<String, double[]> opMs = new LinkedHashMap<>();      // op -> {ms, exposedMs}
    private final Map<String, double[]> opMsPerStep = new LinkedHashMap<>();
    private long gradientBytes;
    private long lastReport;

    StepMetrics(int steps) {
        this.steps = steps;
        loss = new double[steps];
        stepMs = new double[steps];
        computeMs = new double[steps];
        commMs = new double[steps];
        idleMs = new double[steps];
        rssMiB = new double[steps];
    }

    /**
     * Records step {@code s}: its wall time, the pipeline's idle time, the DP thread's
     * timing and the meter's totals for the step.
     */
    void record(int s, double stepLoss, long wallNanos, long idleNanos, DataParallel.Timing dp,
                Map<String, CommMeter.Totals> comm) {
        long exposed = dp.exposedNanos();
        for (Map.Entry<String, CommMeter.Totals> e : comm.entrySet()) {
            String op = e.getKey();
            CommMeter.Totals t = e.getValue();
            long[] c = counts.computeIfAbsent(op, k -> new long[2]);
            c[0] += t.calls;
            c[1] += t.bytesHanded;
            ringBytes.computeIfAbsent(op, k -> new double[1])[0] += t.ringBytes;
            double[] ms = opMs.computeIfAbsent(op, k -> new double[2]);
            ms[0] += t.nanos / 1e6;
            ms[1] += t.exposedNanos / 1e6;
            opMsPerStep.computeIfAbsent(op, k -> new double[steps])[s] = t.nanos / 1e6;
            if (!op.equals("recv")) exposed += t.exposedNanos; // a receive's wait is pipeline idle time
        }
        loss[s] = stepLoss;
        stepMs[s] = wallNanos / 1e6;
        idleMs[s] = idleNanos / 1e6;
        commMs[s] = exposed / 1e6;
        computeMs[s] = Math.max(0, wallNanos - exposed - idleNanos) / 1e6;
        rssMiB[s] = Memory.rssBytes() / (1024.0 * 1024.0);
    }

    void gradientsHeld(long bytes) { gradientBytes = Math.max(gradientBytes, bytes); }

    long maxGradientBytes() { return gradientBytes; }

    /**
     * Whether step {@code s} is reported to the coordinator: a live view needs a few
     * updates a second, not one per step (every report is a message the coordinator
     * parses on the cores the ranks compute on).
     */
    boolean reportDue(int s) {
        long now = System.nanoTime();
        if (s > 0 && s < steps - 1 && now - lastReport < REPORT_EVERY_NANOS) return false;
        lastReport = now;
        return true;
    }

    /** The fields of one step report. */
    Map<String, Object> report(int s, double globalLoss, double lossScale) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss", globalLoss);
        m.put("stepMs", stepMs[s]);
        m.put("computeMs", computeMs[s]);
        m.put("commMs", commMs[s]);
        m.put("idleMs", idleMs[s]);
        m.put("lossScale", lossScale);
        return m;
    }

    Map<String, RankResult.CommTotals> commTotals() {
        Map<String, RankResult.CommTotals> out = new LinkedHashMap<>();
        for (String op : counts.keySet()) {
            long[] c = counts.get(op);
            double[] ms = opMs.get(op);
            out.put(op, new RankResult.CommTotals(c[0], c[1], ringBytes.get(op)[0], ms[0], ms[1], opMsPerStep.get(op)));
        }
        return out;
    }

    RankResult result(int rank, Mesh.Coords at, String device, RankResult.RankMemory memory, long tokens, double flops, double matmul,
                      int skipped, double lossScale, List<RankResult.ParamInfo> info, Map<String, float[]> exported,
                      List<RankResult.OpTime> lastStepOps, Fp8Scaling.Trace fp8, RankResult.Experts experts) {
        return new RankResult(rank, at, device, loss, stepMs, computeMs, commMs, idleMs, rssMiB, commTotals(), memory, tokens, flops,
                matmul, skipped, lossScale, info, exported, lastStepOps, fp8, experts);
    }
}
