package parallax.engine.plan;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.plan.Layout.Recompute;

/**
 * Every valid (dp, tp, pp, ZeRO, recompute, micro-batch) layout of a cluster, each planned,
 * ranked by estimated tokens/s among those that fit.
 *
 * <p>Rules, following Megatron-LM practice: tp divides the GPUs of a node (TP stays on
 * NVLink) and the heads; pp ≤ layers; dp·tp·pp = GPUs; the global batch divides into
 * dp x micro-batch x accumulation steps; with pp > 1 only ZeRO 0-1 (DeepSpeed refuses
 * ZeRO-2/3 with its pipeline engine, Megatron's distributed optimizer is stage 1);
 * sequence parallelism whenever tp > 1. For a mixture of experts every ep that divides both dp
 * and the experts is tried too (ep = 1 included).
 */
public final class LayoutSearch {

    /** The fixed part of every candidate: batch, sequence, precision, optimizer. */
    public record Request(long globalBatch, int seq, DType dtype, Layout.Optimizer optimizer, int[] microBatchSizes) {
        public Request {
            ModelSpec.positive("global batch", globalBatch);
            ModelSpec.positive("sequence length", seq);
            if (microBatchSizes == null || microBatchSizes.length == 0) microBatchSizes = new int[] {1, 2, 4, 8};
        }
    }

    public record Result(List<TrainingPlan> ranked, int fitting, int evaluated, List<TrainingPlan> pareto) {
        public TrainingPlan best() { return ranked.isEmpty() || !ranked.get(0).fits() ? null : ranked.get(0); }
    }

    private LayoutSearch() {}

    public static Result search(ModelSpec m, GpuCluster cl, Request r, Conventions c) {
        int n = cl.gpus(), gpn = cl.gpu().gpusPerNode();
        cl.gpu().flopsFor(r.dtype());
        List<TrainingPlan> plans = new ArrayList<>();
        for (int tp = 1; tp <= Math.min(gpn, n); tp++) {
            if (gpn % tp != 0 || n % tp != 0 || !tpFits(m, tp)) continue;
            Planner.Counts counts = Planner.Counts.of(m, tp);
            for (int pp = 1; pp <= Math.min(m.layers(), n / tp); pp++) {
                if ((n / tp) % pp != 0) continue;
                int dp = n / tp / pp;
                for (int mb : r.microBatchSizes()) {
                    if (r.globalBatch() % ((long) dp * mb) != 0) continue;
                    long acc = r.globalBatch() / ((long) dp * mb);
                    if (acc > Integer.MAX_VALUE) continue;
                    for (int ep = 1; ep <= dp; ep++) {
                        if (dp % ep != 0 || (ep > 1 && (!m.moe() || m.experts() % ep != 0))) continue;
                        for (int zero = 0; zero <= (pp > 1 ? 1 : 3); zero++) {
                            if (dp == 1 && zero > 0) continue; // nothing to partition
                            for (Recompute rc : Recompute.values()) {
                                Layout l = new Layout(dp, tp, pp, 1, zero, mb, (int) acc, r.seq(), rc, tp > 1,
                                        r.optimizer(), r.dtype(), false, false, null, ep);
                                plans.add(Planner.plan(m, cl, l, c, false, counts));
                            }
                        }
                    }
                }
            }
        }
        if (plans.isEmpty())
            throw new UserError("no layout of " + n + " GPUs divides global batch " + r.globalBatch()
                    + " and " + m.name() + "'s heads; try a global batch that is a multiple of the GPU count");
        Comparator<TrainingPlan> order = Comparator.comparing((TrainingPlan p) -> !p.fits())
                .thenComparing(Comparator.comparingDouble(TrainingPlan::tokensPerSecond).reversed())
                .thenComparingDouble(TrainingPlan::totalBytes);
        plans.sort(order);
        int fitting = (int) plans.stream().filter(TrainingPlan::fits).count();
        return new Result(plans, fitting, plans.size(), pareto(plans));
    }

    static boolean tpFits(ModelSpec m, int tp) {
        return m.heads() % tp == 0 && m.ffn() % tp == 0 && m.detail().denseFfn() % tp == 0
                && (m.kvHeads() % tp == 0 || tp % m.kvHeads() == 0);
    }

    /** Fitting layouts no other fitting layout beats on both memory (less) and tokens/s (more). */
    static List<TrainingPlan> pareto(List<TrainingPlan> plans) {
        List<TrainingPlan> fit = new ArrayList<>(plans.stream().filter(TrainingPlan::fits).toList());
        fit.sort(Comparator.comparingDouble(TrainingPlan::totalBytes)
                .thenComparing(Comparator.comparingDouble(TrainingPlan::tokensPerSecond).reversed()));
        List<TrainingPlan> front = new ArrayList<>();
        double best = -1;
        for (TrainingPlan p : fit) {
            if (p.tokensPerSecond() > best) { front.add(p); best = p.tokensPerSecond(); }
        }
        return front;
    }
}
