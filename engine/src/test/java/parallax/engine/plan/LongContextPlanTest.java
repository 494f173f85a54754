package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.PipelineSchedule;
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;
import parallax.engine.plan.Layout.Schedule;

/** The planner's sequence dimension (cp, sp) and its modern pipeline schedules (interleaved, ZB-H1). */
class LongContextPlanTest {

    static final GpuProfile H100 = GpuProfile.get("h100-80gb");
    static final Conventions C = Conventions.defaults();

    static Layout layout(int dp, int cp, int tp, int pp, int zero, int acc, int seq, Recompute r) {
        return new Layout(dp, tp, pp, 1, zero, 1, acc, seq, r, tp > 1, Optimizer.ADAMW, DType.BF16, false, false, null, cp);
    }

    /** Each rank holds s/cp tokens: with the scores out of the picture (selective, full) every term divides by cp exactly. */
    @Test
    void contextParallelismDividesActivationsExactly() {
        ModelSpec m = ModelCatalog.get("llama-3-70b");
        for (Recompute r : new Recompute[] {Recompute.SELECTIVE, Recompute.FULL})
            for (int t : new int[] {1, 8})
                for (boolean sp : new boolean[] {false, true})
                    for (int cp : new int[] {2, 4, 16}) {
                        if (sp && t == 1) continue;
                        double whole = Activations.perLayer(m, 131072, 1, t, 1, sp, r, 2, true);
                        assertEquals(whole / cp, Activations.perLayer(m, 131072, 1, t, cp, sp, r, 2, true), whole * 1e-15,
                                r + " t=" + t + " sp=" + sp + " cp=" + cp);
                    }
        // Without recomputation the ring keeps no s x s scores, only the fp32 log-sum-exp per query and head.
        // By hand, s' = 131072/16 = 8192, t = 8 with SP, Llama-3-70B (split coefficient 25.5, 64 heads):
        // s'bh/t (10 + 25.5) + 4·(64/8)·s'·b = 8192 x 8192 / 8 x 35.5 + 32 x 8192.
        assertEquals(8192.0 * 8192 / 8 * 35.5 + 32 * 8192, Activations.perLayer(m, 131072, 1, 8, 16, true, Recompute.NONE, 2, true), 1e-3);

        // The whole plan's activation line too (layers, embedding and output layer of the busiest stage), at equal dp.
        TrainingPlan one = Planner.plan(m, GpuCluster.ofGpus(H100, 32), layout(1, 1, 8, 4, 1, 8, 131072, Recompute.SELECTIVE), C);
        TrainingPlan four = Planner.plan(m, GpuCluster.ofGpus(H100, 128), layout(1, 4, 8, 4, 1, 8, 131072, Recompute.SELECTIVE), C);
        assertEquals(one.bytesOf("activations") / 4, four.bytesOf("activations"), one.bytesOf("activations") * 1e-15);
        // Model states do not shrink with cp, except what ZeRO shards over the dp-cp group (here the optimizer, ZeRO-1).
        assertEquals(one.bytesOf("parameters"), four.bytesOf("parameters"));
        assertEquals(one.bytesOf("optimizer states") / 4, four.bytesOf("optimizer states"), 12 * 4);
    }

    /** K/V ring traffic and its exposure, worked by hand from the formula in docs/reference.md#context-parallel-traffic. */
    @Test
    void ringTrafficByHand() {
        ModelSpec m = ModelCatalog.get("llama-3-8b");   // h 4096, 32 heads, 8 KV heads of 128, 32 layers
        double peak = H100.flopsFor(DType.BF16) * C.computeEfficiency();
        // cp 8 in one node, 131072 tokens: each hop moves K and V of 16384 tokens x 1024 wide, 2 B each.
        TrainingPlan p = Planner.plan(m, GpuCluster.ofGpus(H100, 8), layout(1, 8, 1, 1, 0, 1, 131072, Recompute.SELECTIVE), C);
        TrainingPlan.Comm ring = comm(p, "context parallel (ring)");
        double block = 2.0 * 16384 * 1024 * 2;
        assertEquals(3 * 7 * block * 32, ring.bytes(), 1.0);   // forward once, backward twice, 7 hops, 32 layers, 1 micro-batch
        assertEquals(8, ring.groupSize());
        assertTrue(ring.link().startsWith("NVLink"));
        double hop = block / (450e9 * 0.8), compute = 2.0 * 16384 * 16384 * 4096 / peak;
        assertTrue(hop < compute);
        assertEquals(0.0, ring.exposedSeconds());              // every hop hides behind a block of attention

        // tp 8 x cp 2 spans two nodes, 8192 tokens: short blocks, the network; the ring shows.
        TrainingPlan q = Planner.plan(m, GpuCluster.ofGpus(H100, 16), layout(1, 2, 8, 1, 0, 1, 8192, Recompute.SELECTIVE), C);
        TrainingPlan.Comm r2 = comm(q, "context parallel (ring)");
        assertTrue(r2.link().startsWith("network"));
        double block2 = 2.0 * 4096 * 128 * 2;                  // one KV head per TP rank
        double hop2 = block2 / (50e9 * 0.8), compute2 = 2.0 * 4096 * 4096 * 4096 / 8 / peak;
        assertTrue(hop2 > compute2);
        assertEquals(32 * ((hop2 - compute2) + (2 * hop2 - 2 * compute2)), r2.exposedSeconds(), 1e-12);
        assertEquals(3 * block2 * 32, r2.bytes(), 1.0);
        // Full recomputation runs the forward ring again.
        TrainingPlan full = Planner.plan(m, GpuCluster.ofGpus(H100, 16), layout(1, 2, 8, 1, 0, 1, 8192, Recompute.FULL), C);
        assertEquals(4 * block2 * 32, comm(full, "context parallel (ring)").bytes(), 1.0);
    }

    /** cp ranks hold the same weights: gradients are averaged and ZeRO shards over dp x cp. */
    @Test
    void dataParallelGroupIsDpTimesCp() {
        ModelSpec m = ModelCatalog.get("llama-3-8b");
        long psi = m.parameters();
        TrainingPlan p = Planner.plan(m, GpuCluster.ofGpus(H100, 8), layout(2, 4, 1, 1, 1, 1, 32768, Recompute.SELECTIVE), C);
        TrainingPlan.Comm dp = comm(p, "data parallel (ZeRO-1)");
        assertEquals(8, dp.groupSize());
        assertEquals(2.0 * 7 / 8 * psi * 2, dp.bytes(), 1.0);
        assertEquals((psi + 7) / 8 * 12.0, p.bytesOf("optimizer states"), 0.0);
    }

    /**
     * ZB-H1 (Qi et al.): (p−1)/(3m) with t_F = t_B = t_W, below 1F1B's (p−1)/m at equal m.
     * Memory: without recomputation the first stage peaks as under 1F1B (its W follows B at
     * once, and one micro-batch's weight-gradient inputs are less than its activations); with
     * full recomputation they are more, and the peak is just after a B: p − 1 micro-batches
     * from F to B plus one from B to W. The last stage keeps p − 1 micro-batches' W inputs.
     */
    @Test
    void zeroBubbleBeatsOneFOneBAtEqualMicroBatches() {
        ModelSpec m = ModelCatalog.get("llama-2-13b");   // 40 layers: 10 per stage
        GpuCluster cl = GpuCluster.ofGpus(H100, 32);
        Layout oneF = layout(1, 1, 8, 4, 0, 8, 4096, Recompute.FULL);
        Layout zb = oneF.withSchedule(Schedule.ZB_H1, 1);
        TrainingPlan a = Planner.plan(m, cl, oneF, C), b = Planner.plan(m, cl, zb, C);
        assertEquals(3.0 / 8, a.bubbleFraction(), 1e-12);
        assertEquals(3.0 / 24, b.bubbleFraction(), 1e-12);
        assertTrue(b.stepSeconds() < a.stepSeconds());

        Layout oneFNone = oneF.withRecompute(Recompute.NONE), zbNone = zb.withRecompute(Recompute.NONE);
        double perLayer = Activations.perLayer(m, 4096, 1, 8, 1, true, Recompute.NONE, 2, true);
        double perLayerW = Activations.weightGradientInputs(m, 4096, 1, 8, 1, 2);
        assertTrue(perLayerW < perLayer);
        assertEquals(Planner.stageActivations(m, oneFNone, 0, perLayer, 0, 7, 0, 0),
                Planner.stageActivations(m, zbNone, 0, perLayer, perLayerW, 7, 0, 0), 1e-6);
        assertEquals(Planner.stageActivations(m, oneFNone, 3, perLayer, 0, 0, 0, 0) + 3 * 10 * perLayerW,
                Planner.stageActivations(m, zbNone, 3, perLayer, perLayerW, 0, 0, 0), 1e-6);

        double full = Activations.perLayer(m, 4096, 1, 8, 1, true, Recompute.FULL, 2, true);
        assertTrue(perLayerW > full);
        assertEquals(4 * (10 * full + 7), Planner.stageActivations(m, oneF, 0, full, 0, 7, 0, 0), 1e-6);
        assertEquals(3 * (10 * full + 7) + 10 * perLayerW, Planner.stageActivations(m, zb, 0, full, perLayerW, 7, 0, 0), 1e-6);
        assertEquals(4 * 10 * perLayerW, Planner.stageActivations(m, zb, 3, full, perLayerW, 0, 0, 0), 1e-6);
    }

    /** The planner's bubble is the engine's simulated one, for every schedule (one truth for both). */
    @Test
    void bubbleIsTheEnginesSimulatedBubble() {
        for (Schedule s : Schedule.values())
            for (int p : new int[] {2, 4, 8})
                for (int v : s == Schedule.INTERLEAVED ? new int[] {2, 4} : new int[] {1})
                    for (int m : new int[] {p, 4 * p}) {
                        double f = PipelineSchedule.simulate(s.engine(), p, v, m, 1, 1, 1, 0).bubbleFraction();
                        assertEquals(f / (1 - f), Planner.bubble(s, p, v, m), 1e-12, s + " p=" + p + " v=" + v + " m=" + m);
                    }
        assertEquals(3.0 / (2 * 8), Planner.bubble(Schedule.INTERLEAVED, 4, 2, 8), 1e-12);
        assertEquals(3.0 / 8, Planner.bubble(Schedule.ONE_F_ONE_B, 4, 1, 8), 1e-12);
    }

    /**
     * Micro-batches in flight: the closed forms against the engine's own pass orders, walked
     * op by op for every stage, and against the simulated timeline's peak (chunk units / v);
     * interleaved on the first stage p(1 + (p−1)/(pv)) (Narayanan et al. 2021, Korthikanti §4.2.3).
     */
    @Test
    void inFlightIsTheEnginesPassOrder() {
        for (Schedule s : Schedule.values())
            for (int p : new int[] {2, 3, 4, 8})
                for (int v : s == Schedule.INTERLEAVED ? new int[] {2, 3, 4} : new int[] {1})
                    for (int m : new int[] {p, 2 * p, 5 * p, 8 * p}) {
                        double[] chunk = new double[v], none = new double[v];
                        java.util.Arrays.fill(chunk, 1.0 / v);
                        for (int st = 0; st < p; st++)
                            assertEquals(fullWalk(s, p, v, m, st, chunk, none), Activations.inFlight(s, p, v, m, st), 1e-12,
                                    s + " p=" + p + " v=" + v + " m=" + m + " stage " + st);
                        double peak = PipelineSchedule.simulate(s.engine(), p, v, m, 1, 1, 1, 0).peakInFlight() / (double) v;
                        assertEquals(peak, Activations.inFlight(s, p, v, m, 0), 1e-12);
                        if (s == Schedule.INTERLEAVED && m > p)
                            assertEquals(p * (1 + (p - 1.0) / (p * v)), Activations.inFlight(s, p, v, m, 0), 1e-12);
                    }
    }

    /** The shortened walk (3p micro-batches for interleaving) and ZB-H1's closed form give the full walk's peak for uneven chunks. */
    @Test
    void peakShortcutsEqualTheFullWalk() {
        Random rnd = new Random(13);
        for (int p : new int[] {2, 3, 4, 6})
            for (int v : new int[] {2, 3, 4})
                for (int m : new int[] {3 * p, 4 * p, 7 * p, 12 * p})
                    for (int st = 0; st < p; st++) {
                        double[] full = new double[v];
                        for (int c = 0; c < v; c++) full[c] = 1 + rnd.nextDouble() * 3;
                        assertEquals(fullWalk(Schedule.INTERLEAVED, p, v, m, st, full, new double[v]),
                                Activations.walkPeak(Schedule.INTERLEAVED, p, v, m, st, full, new double[v]), 1e-9);
                    }
        ModelSpec model = ModelCatalog.get("llama-2-7b");
        for (int p : new int[] {2, 4, 8})
            for (int m : new int[] {p, 2 * p, 9 * p})
                for (int st = 0; st < p; st++)
                    for (double w : new double[] {0.3, 1.0, 2.5}) {   // W-held bytes below, at and above the F-to-B bytes
                        Layout l = layout(1, 1, 1, p, 0, m, 4096, Recompute.NONE).withSchedule(Schedule.ZB_H1, 1);
                        int layers = Planner.layersOfStage(32, p, st);
                        assertEquals(fullWalk(Schedule.ZB_H1, p, 1, m, st, new double[] {layers}, new double[] {layers * w}),
                                Planner.stageActivations(model, l, st, 1, w, 0, 0, 0), 1e-9, "p=" + p + " m=" + m + " st=" + st + " w=" + w);
                    }
    }

    /** Korthikanti et al. Table 2: with tp and sp the whole layer divides by t (any recompute mode, dropout counted). */
    @Test
    void sequenceParallelismDividesTheWholeLayer() {
        ModelSpec m = ModelCatalog.get("llama-2-70b");
        for (Recompute r : Recompute.values())
            for (int t : new int[] {2, 4, 8}) {
                double one = Activations.perLayer(m, 4096, 1, 1, false, r, 2, true);
                assertEquals(one / t, Activations.perLayer(m, 4096, 1, t, true, r, 2, true), one * 1e-15, r + " t=" + t);
            }
        // The engine's GPT keeps its all-gathered QKV and MLP inputs whole: (2/t + 2) of the 4 unsplit elements stay.
        ModelSpec tiny = ModelCatalog.get("tiny-gpt");
        double sbh = 32.0 * 8 * 32;
        assertEquals(4 * (sbh * (2.0 / 2 + 2) + 12 * sbh / 2 + 4.0 * 32 * 32 * 8 / 2),
                Activations.perLayer(tiny, 32, 8, 2, true, Recompute.NONE, 4, false), 1e-6);
    }

    /** A 128k-token context on Llama-3-70B: cp makes it fit, and the report says why activations decide. */
    @Test
    void longContextOnSeventyB() {
        ModelSpec m = ModelCatalog.get("llama-3-70b");
        Layout noCp = layout(16, 1, 8, 4, 1, 8, 131072, Recompute.SELECTIVE);
        TrainingPlan without = Planner.plan(m, GpuCluster.ofGpus(H100, 512), noCp, C);
        TrainingPlan with = Planner.plan(m, GpuCluster.ofGpus(H100, 512), layout(1, 16, 8, 4, 1, 8, 131072, Recompute.SELECTIVE), C);
        assertTrue(!without.fits() && with.fits(), without.totalBytes() + " / " + with.totalBytes());
        assertTrue(without.bytesOf("activations") > 10 * (without.bytesOf("parameters") + without.bytesOf("optimizer states")));
        String text = PlanReports.training(without, 0, List.of()).toText();
        assertTrue(text.contains("Activations dominate") && text.contains("--cp 2"), text);
        String ring = PlanReports.training(with, 0, List.of()).toText();
        assertTrue(ring.contains("context parallel (ring)") && ring.contains("s' = s/cp = 8192"), ring);
    }

    private static TrainingPlan.Comm comm(TrainingPlan p, String dimension) {
        return p.comms().stream().filter(c -> c.dimension().equals(dimension)).findFirst().orElseThrow(() -> new AssertionError(dimension));
    }

    /** The peak of live bytes walking all of the engine's ops for stage {@code st}: F adds, B moves to W-held, W frees. */
    static double fullWalk(Schedule s, int p, int v, int m, int st, double[] full, double[] weights) {
        PipelineParallel.Schedule e = p == 1 && s == Schedule.GPIPE ? PipelineParallel.Schedule.ONE_F_ONE_B : s.engine();
        double live = 0, peak = 0;
        for (PipelineSchedule.Op op : PipelineSchedule.ops(e, p, v, m, st)) {
            switch (op.kind()) {
                case F -> live += full[op.chunk()];
                case B -> live += (s == Schedule.ZB_H1 ? weights[op.chunk()] : 0) - full[op.chunk()];
                case W -> live -= weights[op.chunk()];
            }
            peak = Math.max(peak, live);
        }
        return peak;
    }
}
