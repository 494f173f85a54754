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
}
