package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;

/** The ep dimension of the planner (docs/plan.md#expert-parallelism): memory, all-to-all, gradients and the search. */
class ExpertParallelPlanTest {

    static final ModelSpec QWEN = ModelCatalog.get("qwen3-30b-a3b");   // 48 MoE layers, 128 experts, top-8, hidden 2048
    static final Conventions C = Conventions.defaults();

    static Layout layout(int dp, int ep, int zero, int accum, Recompute rc) {
        return new Layout(dp, 1, 1, 1, zero, 1, accum, 4096, rc, false, Optimizer.ADAMW, DType.BF16, false, false, null, 1, ep);
    }

    static TrainingPlan plan(ModelSpec m, int gpus, Layout l) {
        return Planner.plan(m, GpuCluster.ofGpus(GpuProfile.get("h100"), gpus), l, C);
    }

    /** Each rank keeps all shared weights and experts/ep of the routed ones: exactly. */
    @Test
    void expertWeightsDivideByEp() {
        long routed = QWEN.routedParameters(), shared = QWEN.parameters() - routed;
        assertEquals(48L * 128 * 3 * 2048 * 768, routed);
        for (int ep : new int[] {1, 2, 8}) {
            TrainingPlan p = plan(QWEN, 8, layout(8, ep, 0, 1, Recompute.NONE));
            assertEquals(2.0 * (shared + routed / ep), p.bytesOf("parameters"), "ep " + ep);
            assertEquals(12.0 * (shared + routed / ep), p.bytesOf("optimizer states"), "ep " + ep);
        }
    }

    /** ZeRO partitions the shared weights over dp and the rank's experts over their own dp/ep group. */
    @Test
    void zeroOverTheExpertDataParallelGroup() {
        long routed = QWEN.routedParameters(), shared = QWEN.parameters() - routed;
        TrainingPlan p = plan(QWEN, 16, layout(16, 4, 1, 1, Recompute.NONE));
        long owned = ModelSpec.ceilDiv(shared, 16) + ModelSpec.ceilDiv(routed / 4, 4);
        assertEquals(12.0 * owned, p.bytesOf("optimizer states"));
        assertEquals(2.0 * (shared + routed / 4), p.bytesOf("gradients"));   // ZeRO-1 keeps whole gradients
        TrainingPlan z3 = plan(QWEN, 16, layout(16, 4, 3, 1, Recompute.NONE));
        assertEquals(2.0 * owned, z3.bytesOf("parameters"));
        // Gradient all-reduce: shared over dp = 16, experts over dp/ep = 4.
        TrainingPlan.Comm dp = p.comms().stream().filter(x -> x.dimension().startsWith("data parallel")).findFirst().orElseThrow();
        assertEquals(2 * (15.0 / 16 * shared + 3.0 / 4 * (routed / 4)) * 2, dp.bytes(), 1e-3);
        // ep = dp: the experts have no data-parallel peers and no gradient traffic.
        TrainingPlan full = plan(QWEN, 8, layout(8, 8, 0, 1, Recompute.NONE));
        TrainingPlan.Comm dp8 = full.comms().stream().filter(x -> x.dimension().startsWith("data parallel")).findFirst().orElseThrow();
        assertEquals(2 * 7.0 / 8 * shared * 2, dp8.bytes(), 1e-3);
    }

    /** All-to-all bytes per step: 4 x (ep−1)/ep x b·s·h·k·2 B per MoE layer per micro-batch, by hand. */
    @Test
    void allToAllBytesByHand() {
        TrainingPlan p = plan(QWEN, 8, layout(8, 8, 1, 4, Recompute.NONE));
        TrainingPlan.Comm a2a = p.comms().stream().filter(x -> x.dimension().startsWith("expert parallel")).findFirst().orElseThrow();
        double hand = 4 * 7.0 / 8 * (1 * 4096.0 * 2048 * 8 * 2) * 48 * 4;
        assertEquals(hand, a2a.bytes(), 1e-6 * hand);
        assertEquals(8, a2a.groupSize());
        assertTrue(a2a.link().startsWith("NVLink"), a2a.link());
        assertEquals(hand / (450e9 * C.linkEfficiency()), a2a.seconds(), 1e-12);
        assertEquals(a2a.seconds(), a2a.exposedSeconds());   // the experts wait for their tokens
        // Full recomputation repeats the forward's dispatch and combine: 6 instead of 4.
        TrainingPlan rc = plan(QWEN, 8, layout(8, 8, 1, 4, Recompute.FULL));
        double rcBytes = rc.comms().stream().filter(x -> x.dimension().startsWith("expert parallel")).findFirst().orElseThrow().bytes();
        assertEquals(hand * 6 / 4, rcBytes, 1e-6 * hand);
        // An ep group of 16 spans two nodes: the network.
        TrainingPlan wide = plan(QWEN, 16, layout(16, 16, 1, 4, Recompute.NONE));
        assertTrue(wide.comms().stream().anyMatch(x -> x.dimension().startsWith("expert parallel") && x.link().startsWith("network")));
        // No all-to-all without ep.
        assertTrue(plan(QWEN, 8, layout(8, 1, 1, 4, Recompute.NONE)).comms().stream().noneMatch(x -> x.dimension().startsWith("expert")));
    }

    /** DeepSeek-V3's first three layers are dense: a pipeline stage holding only them has no experts to divide. */
    @Test
    void denseFirstLayersHoldNoExperts() {
        ModelSpec m = ModelCatalog.get("deepseek-v3");
        Planner.Shards sh = Planner.shards(m, 1);
        // 61 layers over 61 stages: stages 0-2 dense, 3-60 MoE.
        assertEquals(0, sh.stageExperts(61, 61, 2, 8));
        assertEquals(m.routedParameters() / 58 / 8, sh.stageExperts(61, 61, 3, 8));
        long total = 0;
        for (int st = 0; st < 61; st++) total += sh.stage(61, 61, st);
        assertEquals(m.parameters(), total);
    }

    /** The busiest stage of DeepSeek-V3 over 32 stages is one of two MoE layers, not the first (dense) or the last (one layer). */
    @Test
    void busiestStageSeesPastTheDenseLayers() {
        ModelSpec m = ModelCatalog.get("deepseek-v3");
        Layout l = new Layout(8, 8, 32, 1, 0, 1, 64, 4096, Recompute.SELECTIVE, true, Optimizer.ADAMW, DType.BF16, false, false, null, 1, 1);
        TrainingPlan p = Planner.plan(m, GpuCluster.ofGpus(GpuProfile.get("h100"), 2048), l, C);
        Planner.Shards sh = Planner.shards(m, 8);
        assertTrue(p.stage() >= 2 && p.stage() <= 28, "stage " + p.stage());
        assertEquals(2.0 * sh.stage(61, 32, 2), p.bytesOf("parameters"));
        assertTrue(sh.stage(61, 32, 2) > sh.stage(61, 32, 1) && sh.stage(61, 32, 2) > sh.stage(61, 32, 31));
    }

    @Test
    void impossibleLayoutsAreOneLine() {
        assertTrue(assertThrows(UserError.class, () -> plan(ModelCatalog.get("llama-2-7b"), 8, layout(8, 2, 0, 1, Recompute.NONE)))
                .getMessage().contains("dense"));
        assertTrue(assertThrows(UserError.class, () -> plan(ModelCatalog.get("mixtral-8x7b"), 16, layout(16, 16, 0, 1, Recompute.NONE)))
                .getMessage().contains("does not divide the 8 experts"));
        assertTrue(assertThrows(UserError.class, () -> layout(6, 4, 0, 1, Recompute.NONE)).getMessage().contains("must divide dp"));
    }

    /** Every layout the search proposes is one the planner accepts, ep included; a dense model gets ep = 1 only. */
    @Test
    void searchProposesOnlyPossibleLayouts() {
        GpuCluster cl = GpuCluster.ofGpus(GpuProfile.get("h100"), 64);
        LayoutSearch.Result r = LayoutSearch.search(QWEN, cl, new LayoutSearch.Request(256, 4096, DType.BF16, Optimizer.ADAMW, null), C);
        assertTrue(r.ranked().stream().anyMatch(p -> p.layout().ep() > 1));
        for (TrainingPlan p : r.ranked()) {
            Layout l = p.layout();
            assertEquals(0, l.dp() % l.ep(), l.label());
            assertEquals(0, QWEN.experts() % l.ep(), l.label());
            assertEquals(64, l.gpus());
            assertDoesNotThrow(() -> Planner.plan(QWEN, cl, l, C), l.label());
        }
        LayoutSearch.Result dense = LayoutSearch.search(ModelCatalog.get("llama-2-7b"), cl,
                new LayoutSearch.Request(256, 4096, DType.BF16, Optimizer.ADAMW, null), C);
        assertTrue(dense.ranked().stream().allMatch(p -> p.layout().ep() == 1));
    }
}
