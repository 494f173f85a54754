package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;

/**
 * The order in which one pipeline stage runs its forwards (F), backwards (B) and, for the
 * zero-bubble schedule, deferred weight-gradient passes (W), as a plain list: the engine
 * executes it ({@link PipelineParallel}), the planner and the lessons simulate it
 * ({@link #simulate}) to draw the timeline and measure the bubble.
 *
 * <p>p stages, m micro-batches, v model chunks per stage (virtual stages). Chunk c of
 * stage s is virtual stage k = c*p + s of the K = p*v the model is cut into, so a
 * micro-batch visits stage 0..p-1 with chunk 0, then again with chunk 1, and so on.
 * <ul>
 *   <li>GPipe (Huang et al. 2019): every F, then every B.</li>
 *   <li>1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s runs p-s-1 warm-up forwards,
 *       then pairs (F x, B x-(p-1-s)), then the remaining backwards.</li>
 *   <li>Interleaved 1F1B (Narayanan et al., SC21): forwards go through the chunks in groups
 *       of p micro-batches (F index k: chunk (k mod pv)/p, micro-batch (k div pv)p + k mod p);
 *       backwards the same with the chunks reversed; warm-up (p-s-1)*2 + (v-1)*p, all of
 *       them when m = p. The bubble shrinks by v: (p-1)/(vm) of the ideal time.</li>
 *   <li>ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024): the backward is
 *       split into B (input gradients, on the critical path) and W (weight gradients,
 *       needed only by the optimizer); stage s runs triples (F x, B x-(p-1-s), W x-(p-1)),
 *       so later stages hold W back and fill their cool-down with it. Same activation
 *       memory as 1F1B; bubble (p-1)(t_F + t_B - t_W) instead of (p-1)(t_F + t_B + t_W).</li>
 * </ul>
 */
public final class PipelineSchedule {

    private PipelineSchedule() {}

    public enum Kind { F, B, W }

    /** One pass of one micro-batch through one of this stage's model chunks. */
    public record Op(Kind kind, int chunk, int microBatch) {
        @Override public String toString() { return kind + "" + microBatch + (chunk > 0 ? "." + chunk : ""); }
    }

    /** Whether the schedule runs W apart from B (only the zero-bubble one). */
    public static boolean splitsBackward(PipelineParallel.Schedule schedule) {
        return schedule == PipelineParallel.Schedule.ZB_H1;
    }

    /** The ops stage {@code s} of {@code p} runs, in order, for {@code m} micro-batches and {@code v} chunks. */
    public static List<Op> ops(PipelineParallel.Schedule schedule, int p, int v, int m, int s) {
        if (p < 1 || v < 1 || m < 1 || s < 0 || s >= p) throw new IllegalArgumentException("p=" + p + " v=" + v + " m=" + m + " s=" + s);
        List<Op> ops = new ArrayList<>();
        switch (schedule) {
            case GPIPE -> {
                requireOneChunk(schedule, v);
                for (int i = 0; i < m; i++) ops.add(new Op(Kind.F, 0, i));
                for (int i = 0; i < m; i++) ops.add(new Op(Kind.B, 0, i));
            }
            case ONE_F_ONE_B, ZB_H1 -> {
                requireOneChunk(schedule, v);
                boolean split = schedule == PipelineParallel.Schedule.ZB_H1;
                int lagB = p - 1 - s, lagW = p - 1;
                for (int x = 0; x < m + (split ? lagW : lagB); x++) {
                    if (x < m) ops.add(new Op(Kind.F, 0, x));
                    int b = x - lagB;
                    if (b >= 0 && b < m) ops.add(new Op(Kind.B, 0, b));
                    int w = x - lagW;
                    if (split && w >= 0 && w < m) ops.add(new Op(Kind.W, 0, w));
                }
            }
            case INTERLEAVED -> {
                if (m % p != 0)
                    throw new UserError("the interleaved schedule runs micro-batches in groups of --pp: " + m + " is not a multiple of " + p);
                int total = m * v;
                int warmup = m == p ? total : Math.min(total, (p - s - 1) * 2 + (v - 1) * p);
                for (int k = 0; k < warmup; k++) ops.add(interleaved(Kind.F, k, p, v));
                for (int k = 0; k < total - warmup; k++) {
                    ops.add(interleaved(Kind.F, k + warmup, p, v));
                    ops.add(interleaved(Kind.B, k, p, v));
                }
                for (int k = total - warmup; k < total; k++) ops.add(interleaved(Kind.B, k, p, v));
            }
        }
        return ops;
    }

    private static void requireOneChunk(PipelineParallel.Schedule schedule, int v) {
        if (v != 1) throw new UserError("--schedule " + schedule.label() + " runs one model chunk per stage (drop --vpp)");
    }

    /** The k-th forward or backward of the interleaved schedule (Megatron's model-chunk and micro-batch order). */
    private static Op interleaved(Kind kind, int k, int p, int v) {
        int inGroup = k % (p * v);
        int chunk = inGroup / p;
        if (kind == Kind.B) chunk = v - 1 - chunk;
        return new Op(kind, chunk, k / (p * v) * p + k % p);
    }

    /** Virtual stage index of chunk {@code c} on stage {@code s}. */
    public static int virtualStage(int c, int s, int p) { return c * p + s; }

    // ---- simulation ----

    /** One op placed in time on one stage. */
    public record Slot(int stage, Op op, double start, double end) {}

    /**
     * The schedule run with fixed op times (per chunk: F {@code tF}, B {@code tB}, W
     * {@code tW}; schedules that do not split run B and W as one op of tB + tW) and
     * point-to-point transfers of {@code tComm}. Each stage runs its ops in order, an op
     * waits for the ops it needs (the previous virtual stage's F, the next one's B, its own
     * B for a W).
     */
    public record Timeline(PipelineParallel.Schedule schedule, int p, int v, int m, List<Slot> slots, double makespan,
                           double busyPerStage) {
        /** Idle share of the stages' time: 1 - busy / (stages x makespan). */
        public double bubbleFraction() { return 1 - busyPerStage / makespan; }

        /** The largest number of micro-batch chunks any stage holds activations for at once. */
        public int peakInFlight() {
            int peak = 0;
            for (int s = 0; s < p; s++) {
                int live = 0;
                for (Slot slot : slots) {
                    if (slot.stage() != s) continue;
                    if (slot.op().kind() == Kind.F) peak = Math.max(peak, ++live);
                    else if (slot.op().kind() == Kind.B) live--;
                }
            }
            return peak;
        }

        /** The slots of stage {@code s} in time order. */
        public List<Slot> stage(int s) {
            List<Slot> out = new ArrayList<>();
            for (Slot slot : slots) if (slot.stage() == s) out.add(slot);
            out.sort((a, b) -> Double.compare(a.start(), b.start()));
            return out;
        }
    }

    /** Simulates the schedule; throws if the stages' orders deadlock (an op waits on one that never runs). */
    public static Timeline simulate(PipelineParallel.Schedule schedule, int p, int v, int m, double tF, double tB, double tW,
                                    double tComm) {
        boolean split = splitsBackward(schedule);
        Timeline t = simulate(schedule, p, v, m, (stage, op) -> switch (op.kind()) {
            case F -> tF;
            case B -> split ? tB : tB + tW;
            case W -> tW;
        }, tComm);
        return new Timeline(schedule, p, v, m, t.slots(), t.makespan(), (double) m * v * (tF + tB + tW));
    }

    /** How long one pass takes on one stage (for a simulation with measured times). */
    public interface Durations {
        double of(int stage, Op op);
    }

    /**
     * The schedule run with each pass taking {@code duration.of(stage, op)}; busy time per
     * stage is the mean of the stages' summed pass times.
     */
    public static Timeline simulate(PipelineParallel.Schedule schedule, int p, int v, int m, Durations duration, double tComm) {
        List<List<Op>> orders = new ArrayList<>();
        for (int s = 0; s < p; s++) orders.add(ops(schedule, p, v, m, s));
        int k = p * v;
        Map<String, Double> done = new HashMap<>();
        int[] next = new int[p];
        double[] free = new double[p];
        double busy = 0;
        List<Slot> slots = new ArrayList<>();
        int remaining = orders.stream().mapToInt(List::size).sum();
        while (remaining > 0) {
            boolean progress = false;
            for (int s = 0; s < p; s++) {
                while (next[s] < orders.get(s).size()) {
                    Op op = orders.get(s).get(next[s]);
                    int vs = virtualStage(op.chunk(), s, p);
                    Double ready = switch (op.kind()) {
                        case F -> vs == 0 ? Double.valueOf(0) : plus(done.get(key(Kind.F, vs - 1, op.microBatch())), tComm);
                        case B -> vs == k - 1 ? done.get(key(Kind.F, vs, op.microBatch()))
                                : plus(done.get(key(Kind.B, vs + 1, op.microBatch())), tComm);
                        case W -> done.get(key(Kind.B, vs, op.microBatch()));
                    };
                    if (ready == null) break;
                    double dur = duration.of(s, op);
                    busy += dur;
                    double start = Math.max(free[s], ready);
                    free[s] = start + dur;
                    done.put(key(op.kind(), vs, op.microBatch()), free[s]);
                    slots.add(new Slot(s, op, start, free[s]));
                    next[s]++;
                    remaining--;
                    progress = true;
                }
            }
            if (!progress) {
                StringBuilder waiting = new StringBuilder();
                for (int s = 0; s < p; s++)
                    if (next[s] < orders.get(s).size()) waiting.append(" stage ").append(s).append(" at ").append(orders.get(s).get(next[s]));
                throw new IllegalStateException(schedule.label() + " deadlocks for p=" + p + " v=" + v + " m=" + m + ":" + waiting);
            }
        }
        double makespan = Arrays.stream(free).max().orElse(0);
        return new Timeline(schedule, p, v, m, slots, makespan, busy / p);
    }

    /**
     * A run's pipeline as measured against the model: the median pass times of its last
     * step (F, B, and W where the schedule splits the backward; ms), the bubble it measured
     * (mean over stages of 1 - busy / the longest stage's span, each stage on its own clock
     * from its step's start), the bubble {@link #simulate} gives when every pass takes the
     * time it took on its stage (so only transfers and the ranks' start offsets differ),
     * and the closed form ({@link #bubbleFraction}) for the median times.
     */
    public record Measurement(PipelineParallel.Schedule schedule, int p, int v, int m, double fMs, double bMs, double wMs,
                              double measuredBubble, double simulatedBubble, double closedFormBubble) {}

    /** The {@link Measurement} of a pipelined run (the ranks of one pipeline: data, context and tensor rank 0). */
    public static Measurement measure(TrainSpec spec, List<RankResult> ranks) {
        if (spec.pp() < 2) throw new UserError("a pipeline measurement needs --pp 2 or more");
        Map<Kind, List<Double>> times = new HashMap<>();
        Map<String, Double> each = new HashMap<>();
        double span = 0, busy = 0;
        int stages = 0;
        for (RankResult r : ranks) {
            if (r.coords().dpRank() != 0 || r.coords().tpRank() != 0 || r.coords().cpRank() != 0) continue;
            stages++;
            double end = 0;
            for (RankResult.OpTime t : r.lastStepOps()) {
                double d = t.endMs() - t.startMs();
                times.computeIfAbsent(Kind.valueOf(t.op().substring(0, 1)), k -> new ArrayList<>()).add(d);
                each.put(r.ppRank() + ":" + t.op(), d);
                busy += d;
                end = Math.max(end, t.endMs());
            }
            span = Math.max(span, end);
        }
        double f = median(times.get(Kind.F)), b = median(times.get(Kind.B)), w = times.containsKey(Kind.W) ? median(times.get(Kind.W)) : 0;
        int p = spec.pp(), v = spec.virtualStages(), m = spec.microBatches();
        double measured = 1 - busy / stages / span;
        // Every pass with the time it took on its stage (a B that is not split carries its W).
        double simulated = simulate(spec.schedule(), p, v, m, (stage, op) -> {
            Double d = each.get(stage + ":" + op);
            if (d == null) throw new IllegalStateException("stage " + stage + " recorded no " + op);
            return d;
        }, 0).bubbleFraction();
        return new Measurement(spec.schedule(), p, v, m, f, b, w, measured, simulated, bubbleFraction(spec.schedule(), p, v, m, f, b, w));
    }

    private static double median(List<Double> xs) {
        if (xs == null || xs.isEmpty()) throw new IllegalStateException("the run recorded no pipeline passes");
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    private static Double plus(Double t, double d) { return t == null ? null : t + d; }

    private static String key(Kind kind, int virtualStage, int mb) { return kind + ":" + virtualStage + ":" + mb; }

    /**
     * The bubble of the schedule in closed form, as a share of the stage's time, with
     * transfers free: GPipe and 1F1B (p-1)/(m+p-1); interleaved (p-1)/(vm+p-1); ZB-H1
     * (p-1)(tF+tB-tW) over that plus the work m(tF+tB+tW) (the paper's estimate, reached
     * when tW is no more than tF and tB).
     */
    public static double bubbleFraction(PipelineParallel.Schedule schedule, int p, int v, int m, double tF, double tB, double tW) {
        double work = m * v * (tF + tB + tW);
        double idle = switch (schedule) {
            case GPIPE, ONE_F_ONE_B -> (p - 1) * (tF + tB + tW);
            case INTERLEAVED -> (p - 1) * (tF + tB + tW);
            case ZB_H1 -> (p - 1) * Math.max(0, tF + tB - tW);
        };
        return idle / (idle + work);
    }
}
