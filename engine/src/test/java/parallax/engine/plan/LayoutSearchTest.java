package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import parallax.engine.numerics.DType;

class LayoutSearchTest {

    @Test
    void seventyBOnOneThousandTwentyFourGpus() {
        ModelSpec m = ModelCatalog.get("llama-2-70b");
        GpuCluster cl = GpuCluster.ofGpus(GpuProfile.get("h100"), 1024);
        LayoutSearch.Result r = LayoutSearch.search(m, cl, new LayoutSearch.Request(1024, 4096, DType.BF16, Layout.Optimizer.ADAMW, null),
                Conventions.defaults());
        assertTrue(r.evaluated() > 100);
        assertTrue(r.fitting() > 0);
        assertNotNull(r.best());
        boolean seenNonFitting = false;
        double last = Double.MAX_VALUE;
        for (TrainingPlan p : r.ranked()) {
            Layout l = p.layout();
            assertEquals(1024, l.gpus());
            assertEquals(1024, l.globalBatch());
            assertTrue(8 % l.tp() == 0 && m.heads() % l.tp() == 0);
            assertTrue(l.pp() <= m.layers());
            if (l.pp() > 1) assertTrue(l.zero() <= 1);
            if (!p.fits()) seenNonFitting = true;
            else {
                assertTrue(!seenNonFitting, "fitting layouts come first");
                assertTrue(p.tokensPerSecond() <= last + 1e-9, "ranked by tokens/s");
                last = p.tokensPerSecond();
            }
        }
        // The Pareto front: no fitting layout has less memory and more tokens/s than a front member.
        for (TrainingPlan f : r.pareto()) {
            for (TrainingPlan p : r.ranked()) {
                if (!p.fits()) continue;
                assertTrue(!(p.totalBytes() < f.totalBytes() && p.tokensPerSecond() > f.tokensPerSecond()), f.layout().label());
            }
        }
        // The fastest fitting layout is on the front.
        assertTrue(r.pareto().stream().anyMatch(p -> p.tokensPerSecond() == r.best().tokensPerSecond()));
    }

    @Test
    void nothingFitsIsReportedNotHidden() {
        ModelSpec m = ModelCatalog.get("llama-2-70b");
        LayoutSearch.Result r = LayoutSearch.search(m, GpuCluster.ofGpus(GpuProfile.get("a100-40gb"), 8),
                new LayoutSearch.Request(64, 4096, DType.BF16, Layout.Optimizer.ADAMW, null), Conventions.defaults());
        assertEquals(0, r.fitting());
        assertEquals(null, r.best());
        assertTrue(r.pareto().isEmpty());
    }

    /**
     * 128k tokens on Llama-3-70B over 1,024 H100s: only context parallelism makes the
     * activations fit, so the best layout has cp > 1; every ranked layout is one the planner
     * accepts (no impossible cp, schedule or chunking), and the pruning bound never exceeds
     * a costed layout's memory.
     */
    @Test
    void longContextSearchFindsContextParallelismAndOnlyValidLayouts() {
        ModelSpec m = ModelCatalog.get("llama-3-70b");
        GpuCluster cl = GpuCluster.ofGpus(GpuProfile.get("h100"), 1024);
        int seq = 131072;
        Conventions c = Conventions.defaults();
        LayoutSearch.Result r = LayoutSearch.search(m, cl, new LayoutSearch.Request(64, seq, DType.BF16, Layout.Optimizer.ADAMW, null), c);
        assertNotNull(r.best(), "something fits");
        assertTrue(r.best().layout().cp() > 1, r.best().layout().label());
        assertTrue(r.pruned() > 0);
        java.util.Set<Layout.Schedule> schedules = java.util.EnumSet.noneOf(Layout.Schedule.class);
        for (TrainingPlan p : r.ranked()) {
            Layout l = p.layout();
            Planner.check(m, cl, l);   // throws on an impossible layout
            assertEquals(1024, l.gpus());
            assertEquals(0, seq % (2 * l.cp()), l.label());
            assertEquals(l.tp() > 1, l.sequenceParallel(), l.label());
            if (l.schedule() == Layout.Schedule.INTERLEAVED) {
                assertEquals(0, m.layers() % (l.pp() * l.virtualStages()), l.label());
                assertEquals(0, l.microBatches() % l.pp(), l.label());
            }
            if (l.schedule() == Layout.Schedule.ZB_H1) assertTrue(l.pp() > 1 && l.zero() < 3, l.label());
            schedules.add(l.schedule());
            assertTrue(LayoutSearch.lowerBound(m, l, c, Planner.shards(m, l.tp())) <= p.totalBytes() * (1 + 1e-12), l.label());
            if (p.fits()) assertTrue(p.totalBytes() <= cl.gpu().memoryBytes() * (1 - c.headroom()), l.label());
        }
        assertEquals(java.util.EnumSet.of(Layout.Schedule.ONE_F_ONE_B, Layout.Schedule.ZB_H1, Layout.Schedule.INTERLEAVED), schedules);
    }
}
