package parallax.engine.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.plan.Layout.Recompute;
import parallax.engine.plan.Layout.Schedule;

/**
 * Every valid (dp, cp, tp, pp, schedule, ZeRO, recompute, micro-batch) layout of a cluster,
 * each planned, ranked by estimated tokens/s among those that fit.
 *
 * <p>Rules, following Megatron-LM practice: tp divides the GPUs of a node (TP stays on
 * NVLink) and the heads; cp divides the GPUs left and the sequence into 2·cp chunks;
 * pp ≤ layers; dp·cp·tp·pp = GPUs; the global batch divides into dp x micro-batch x
 * accumulation steps; with pp > 1 only ZeRO 0-1 (DeepSpeed refuses ZeRO-2/3 with its
 * pipeline engine, Megatron's distributed optimizer is stage 1) and the schedules 1F1B,
 * ZB-H1 and interleaved 1F1B with v ∈ {2, 4} chunks where the layers divide into p·v and
 * the micro-batches into groups of p; sequence parallelism whenever tp > 1. For a mixture
 * of experts every ep that divides both dp and the experts is tried too (ep = 1 included).
 *
 * <p>A layout whose memory cannot fit is not costed: its model states and first-stage
 * activations (a lower bound of the busiest stage's total) are summed first, and since
 * that bound grows with the micro-batch size, the larger micro-batches of the same layout
 * are skipped too. Only when nothing fits are the skipped layouts planned in full, so the
 * report can show how far the best one is from fitting.
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

    /**
     * {@code evaluated} layouts were costed, {@code pruned} more were valid but skipped by
     * the memory bound (0 when nothing fitted: then every one was costed).
     */
    public record Result(List<TrainingPlan> ranked, int fitting, int evaluated, List<TrainingPlan> pareto, int pruned) {
        public TrainingPlan best() { return ranked.isEmpty() || !ranked.get(0).fits() ? null : ranked.get(0); }
    }

    /** Virtual stages tried for the interleaved schedule. */
    static final int[] VIRTUAL_STAGES = {2, 4};

    private LayoutSearch() {}

    public static Result search(ModelSpec m, GpuCluster cl, Request r, Conventions c) {
        int n = cl.gpus(), gpn = cl.gpu().gpusPerNode();
        cl.gpu().flopsFor(r.dtype());
        double usable = cl.gpu().memoryBytes() * (1 - c.headroom());
        int[] sizes = r.microBatchSizes().clone();
        Arrays.sort(sizes);
        // The (tp, cp, pp) triples in loop order; each is planned on its own (on the common
        // fork-join pool's threads as well as this one) and the parts joined in that same
        // order, so the list, and the stable sort below, are those of a single loop.
        List<int[]> triples = new ArrayList<>();
        Map<Integer, Planner.Counts> counts = new HashMap<>();
        for (int tp = 1; tp <= Math.min(gpn, n); tp++) {
            if (gpn % tp != 0 || n % tp != 0 || !tpFits(m, tp)) continue;
            counts.put(tp, Planner.Counts.of(m, tp));
            for (int cp = 1; cp <= n / tp; cp++) {
                if ((n / tp) % cp != 0 || (cp > 1 && r.seq() % (2 * cp) != 0)) continue;
                if (tp > 1 && (r.seq() / cp) % tp != 0) continue;   // sequence parallelism cuts each rank's tokens by tp
                for (int pp = 1; pp <= Math.min(m.layers(), n / tp / cp); pp++) {
                    if ((n / tp / cp) % pp != 0) continue;
                    triples.add(new int[] {tp, cp, pp});
                }
            }
        }
        List<Part> parts = triples.parallelStream()
                .map(x -> part(m, cl, r, c, sizes, usable, x[0], x[1], x[2], counts.get(x[0]))).toList();
        List<TrainingPlan> plans = new ArrayList<>();
        List<Layout> skipped = new ArrayList<>();
        for (Part p : parts) {
            plans.addAll(p.plans());
            skipped.addAll(p.skipped());
        }
        int pruned = skipped.size();
        if (plans.stream().noneMatch(TrainingPlan::fits)) {
            for (Layout l : skipped) plans.add(Planner.plan(m, cl, l, c, false));
            pruned = 0;
        }
        if (plans.isEmpty())
            throw new UserError("no layout of " + n + " GPUs divides global batch " + r.globalBatch()
                    + " and " + m.name() + "'s heads; try a global batch that is a multiple of the GPU count");
        plans.sort(RANKING);
        int fitting = (int) plans.stream().filter(TrainingPlan::fits).count();
        return new Result(plans, fitting, plans.size(), pareto(plans), pruned);
    }

    /** Fitting first, then by tokens/s (most first), then by memory (least first). */
    static final Comparator<TrainingPlan> RANKING = (a, b) -> {
        if (a.fits() != b.fits()) return a.fits() ? -1 : 1;
        int byTokens = Double.compare(b.tokensPerSecond(), a.tokensPerSecond());
        return byTokens != 0 ? byTokens : Double.compare(a.totalBytes(), b.totalBytes());
    };

    /** The layouts of one (tp, cp, pp) costed, and those the memory bound skipped, in loop order. */
    private record Part(List<TrainingPlan> plans, List<Layout> skipped) {}

    private static Part part(ModelSpec m, GpuCluster cl, Request r, Conventions c, int[] sizes, double usable,
                             int tp, int cp, int pp, Planner.Counts counts) {
        List<TrainingPlan> plans = new ArrayList<>();
        List<Layout> skipped = new ArrayList<>();
        int dp = cl.gpus() / tp / cp / pp;
        for (int[] sched : schedules(m, pp)) {
            Schedule schedule = Schedule.values()[sched[0]];
            int v = sched[1];
            for (int ep = 1; ep <= dp; ep++) {
                if (dp % ep != 0 || (ep > 1 && (!m.moe() || m.experts() % ep != 0))) continue;
                for (int zero = 0; zero <= (pp > 1 ? 1 : 3); zero++) {
                    if (dp * cp == 1 && zero > 0) continue; // nothing to partition
                    for (Recompute rc : Recompute.values()) {
                        boolean over = false;
                        for (int mb : sizes) {
                            if (r.globalBatch() % ((long) dp * mb) != 0) continue;
                            long acc = r.globalBatch() / ((long) dp * mb);
                            if (acc > Integer.MAX_VALUE) continue;
                            if (schedule == Schedule.INTERLEAVED && acc % pp != 0) continue;
                            Layout l = new Layout(dp, tp, pp, v, zero, mb, (int) acc, r.seq(), rc, tp > 1,
                                    r.optimizer(), r.dtype(), false, false, schedule, cp, ep);
                            // The bound grows with the micro-batch: once over, every larger one is too.
                            if (over || lowerBound(m, l, c, counts.shards()) > usable) {
                                over = true;
                                skipped.add(l);
                                continue;
                            }
                            plans.add(Planner.plan(m, cl, l, c, false, counts));
                        }
                    }
                }
            }
        }
        return new Part(plans, skipped);
    }

    /** {schedule ordinal, virtual stages} pairs tried for {@code pp} stages. */
    static List<int[]> schedules(ModelSpec m, int pp) {
        List<int[]> out = new ArrayList<>();
        out.add(new int[] {Schedule.ONE_F_ONE_B.ordinal(), 1});
        if (pp == 1) return out;
        out.add(new int[] {Schedule.ZB_H1.ordinal(), 1});
        for (int v : VIRTUAL_STAGES)
            if (m.layers() % (pp * v) == 0) out.add(new int[] {Schedule.INTERLEAVED.ordinal(), v});
        return out;
    }

    /**
     * Bytes the busiest stage needs at least: the first stage's model states (ZeRO
     * partitioned as the layout says) plus its layers' activations for the micro-batches
     * every schedule but GPipe keeps there, min(p, m). Buffers, the embedding and output
     * layers and the interleaved schedule's extra are left out, so the bound never exceeds
     * the plan's total.
     */
    static double lowerBound(ModelSpec m, Layout l, Conventions c, Planner.Shards shards) {
        Planner.StateBytes sb = Planner.stateBytes(l, c);
        long n = shards.stageShared(m.layers(), l.pp(), 0) + shards.stageExperts(m.layers(), l.pp(), 0, l.ep());
        long part = ExpertParallel.owned(shards, m, l, 0);
        double states = (l.zero() == 3 ? part : n) * (double) sb.param() + (l.zero() >= 2 ? part : n) * (double) sb.grad()
                + (l.zero() >= 1 ? part : n) * (double) sb.optimizer();
        double act = Planner.layersOfStage(m.layers(), l.pp(), 0) * Math.min(l.pp(), l.microBatches())
                * Activations.perLayer(m, l.seq(), l.microBatch(), l.tp(), l.cp(), l.sequenceParallel(), l.recompute(),
                l.activationBytes(), c.dropout());
        return states + act;
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
