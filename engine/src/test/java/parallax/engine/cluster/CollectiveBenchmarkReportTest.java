package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.report.Report;

/** The bandwidth report's text and data, from rows made by hand. */
class CollectiveBenchmarkReportTest {

    private static CollectiveBenchmark.Row row(String impl, long bytes, double seconds) {
        double alg = bytes / seconds / 1e9;
        return new CollectiveBenchmark.Row("allreduce", impl, 2, bytes, seconds, alg, alg * CollectiveBenchmark.busFactor("allreduce", 2));
    }

    private static String text(Report r) {
        StringBuilder b = new StringBuilder();
        for (Report.Part p : r.parts()) if (p instanceof Report.Text t) b.append(t.markdown()).append('\n');
        return b.toString();
    }

    @Test
    void runtimeAgainstRawIsTheMedianRatioAndAMissingPeerIsSaid() {
        long mb4 = 4L << 20, mb16 = 16L << 20;
        List<CollectiveBenchmark.Row> rows = List.of(row("runtime", mb4, 0.001), row("runtime", mb16, 0.004),
                row("raw", mb4, 0.003), row("raw", mb16, 0.010));
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put(CollectiveBenchmark.TORCH_PEER_SKIPPED, "the PyTorch peer failed (needs Debian python3-torch at /usr/bin/python3): No module named 'torch'");
        Report r = CollectiveBenchmark.report("allreduce", 2, "gloo", rows, extra);
        String t = text(r);
        // busbw ratios 3.0 (4 MiB) and 2.5 (16 MiB): the upper median of two is 3.0
        assertEquals(3.0, (Double) ((Map<?, ?>) r.data()).get("runtimeOverRawBusbw4to64MB"), 1e-9);
        assertTrue(t.contains("Runtime / raw ProcessGroup busbw, median 4-64 MiB: 3.00."), t);
        assertTrue(t.contains("No PyTorch rows: the PyTorch peer failed (needs Debian python3-torch"), t);
        assertFalse(t.contains("Runtime / PyTorch"), t);
        assertTrue(t.contains("shared memory when every rank of the group is on one machine"), t);
    }

    private static CollectiveBenchmark.Row timed(String impl, int world, long bytes, double seconds) {
        double alg = bytes / seconds / 1e9;
        return new CollectiveBenchmark.Row("allreduce", impl, world, bytes, seconds, alg, alg * CollectiveBenchmark.busFactor("allreduce", world));
    }

    @Test
    void algorithmsReportStatesTheToleranceTheWorstDifferenceAndTheRatios() {
        var ok = new AllReduceCheck.Deviation("tree", 4, 1001, 3.0e-7, 1.2e-6, 0.25, 5, 1.0, 1.0, 1.2e-6);
        var worse = new AllReduceCheck.Deviation("ring", 4, 7, 5.0e-7, 2.0e-6, 0.5, 2, 1.0, 1.0, 1.0e-6);
        var traffic = new AllReduceCheck.Traffic("ring", 4, 3L << 20, (3L << 20) * 3 / 2, (3L << 20) * 6);
        Map<Integer, AllReduceCheck.Outcome> checks = Map.of(4, new AllReduceCheck.Outcome(List.of(ok, worse), List.of(traffic)));
        long kb = 1024, mb4 = 4L << 20;
        List<CollectiveBenchmark.Row> rows = List.of(
                timed("runtime", 4, kb, 0.001), timed("ring", 4, kb, 0.010), timed("tree", 4, kb, 0.004), timed("ps", 4, kb, 0.005),
                timed("runtime", 4, mb4, 0.002), timed("ring", 4, mb4, 0.020), timed("tree", 4, mb4, 0.030), timed("ps", 4, mb4, 0.010));
        Report r = CollectiveBenchmark.algorithmsReport(checks, rows);
        String t = text(r);
        assertTrue(t.contains("Tolerance per element: (n-1) u sum|x_i| with u = 2^-24"), t);
        assertTrue(t.contains("Largest difference 5.00e-07 (ring, 4 ranks, 7 elements; tolerance there 2.00e-06)"), t);
        assertTrue(t.contains("worst element at 0.5 of its tolerance (ring, 4 ranks"), t);
        assertFalse(t.contains("checked equal"), t);
        Map<?, ?> data = (Map<?, ?>) r.data();
        assertEquals(5.0e-7, (Double) data.get("maxAbsDiff"));
        assertEquals(0.5, (Double) data.get("worstFractionOfTolerance"));

        tech.tablesaw.api.Table ratios = null, traffics = null;
        for (Report.Part p : r.parts()) {
            if (p instanceof Report.TablePart tp && tp.table().name().equals("allreduce ratios")) ratios = tp.table();
            if (p instanceof Report.TablePart tp && tp.table().name().equals("allreduce traffic")) traffics = tp.table();
        }
        assertEquals(2, ratios.rowCount());
        assertEquals(0.4, ratios.doubleColumn("tree_over_ring").get(0), 1e-12);   // 1 KiB: 4 ms / 10 ms
        assertEquals(1.5, ratios.doubleColumn("tree_over_ring").get(1), 1e-12);   // 4 MiB: 30 ms / 20 ms
        assertEquals(0.5, ratios.doubleColumn("ps_over_ring").get(1), 1e-12);
        assertEquals(0.1, ratios.doubleColumn("builtin_over_ring").get(0), 1e-12);
        assertEquals(1.5, traffics.doubleColumn("busiest_rank_sent_xS").get(0), 1e-12);
        assertEquals(1.5, traffics.doubleColumn("formula_busiest_xS").get(0), 1e-12);
        assertEquals(6, traffics.intColumn("steps").get(0));
    }
}
