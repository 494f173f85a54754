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
}
