package parallax.engine.plan;

import java.lang.management.ManagementFactory;
import java.util.*;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.DType;

class ScratchSearchTest {
    @Test
    void time() {
        var mx = ManagementFactory.getThreadMXBean();
        for (String[] c : new String[][] {{"llama-2-70b", "4096"}, {"llama-3-70b", "131072"}}) {
            ModelSpec m = ModelCatalog.get(c[0]);
            int seq = Integer.parseInt(c[1]);
            GpuCluster cl = GpuCluster.ofGpus(GpuProfile.get("h100"), 1024);
            LayoutSearch.Request r = new LayoutSearch.Request(1024, seq, DType.BF16, Layout.Optimizer.ADAMW, null);
            StringBuilder sb = new StringBuilder();
            LayoutSearch.Result res = null;
            for (int i = 0; i < 10; i++) {
                long c0 = mx.getCurrentThreadCpuTime(), t0 = System.nanoTime();
                res = LayoutSearch.search(m, cl, r, Conventions.defaults());
                sb.append(String.format(" %d/%d", (mx.getCurrentThreadCpuTime() - c0) / 1_000_000, (System.nanoTime() - t0) / 1_000_000));
            }
            System.out.printf("CPU/wall ms %s seq %s (evaluated %d pruned %d):%s%n", c[0], c[1], res.evaluated(), res.pruned(), sb);
        }
    }
}
