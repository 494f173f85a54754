package parallax.engine.cluster;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Collective benchmarks in the manner of nccl-tests: time per message size, algorithm
 * bandwidth algbw = bytes / time and bus bandwidth busbw = algbw x factor, where the factor
 * makes the number comparable with the link speed whatever the rank count: 2(n-1)/n for
 * all-reduce, (n-1)/n for all-gather and reduce-scatter, 1 for broadcast (nccl-tests
 * doc/PERFORMANCE.md; docs/reference.md#bus-bandwidth).
 */
public final class CollectiveBenchmark {

    public static final List<String> OPS = List.of("allreduce", "allgather", "reduce_scatter", "broadcast", "alltoall");

    /** One measured point. Bytes are the nccl-tests message size; bandwidths in GB/s (10^9). */
    public record Row(String op, String impl, int world, long bytes, double seconds, double algbwGBps, double busbwGBps) {}

    private CollectiveBenchmark() {}

    public static String checkOp(String op) {
        String o = op.toLowerCase(Locale.ROOT).replace("-", "_").replace("all_reduce", "allreduce")
                .replace("all_gather", "allgather").replace("all_to_all", "alltoall");
        if (!OPS.contains(o)) throw new UserError("unknown collective '" + op + "'" + DidYouMean.hint(op, OPS));
        return o;
    }

    /** nccl-tests bus-bandwidth factor for {@code op} over {@code n} ranks. */
    public static double busFactor(String op, int n) {
        return switch (op) {
            case "allreduce" -> 2.0 * (n - 1) / n;
            case "allgather", "reduce_scatter", "alltoall" -> (n - 1.0) / n;
            case "broadcast" -> 1.0;
            default -> throw new IllegalArgumentException(op);
        };
    }

    /**
     * Parses "1KB..64MB" (every power of two from 1 KiB to 64 MiB; KB/MB/GB here are
     * binary, as in nccl-tests) or a list "4MB,16MB". Sizes below 4 bytes are refused.
     */
    public static List<Long> parseSizes(String spec) {
        List<Long> out = new ArrayList<>();
        String s = spec.replace(" ", "");
        if (s.contains("..")) {
            String[] p = s.split("\\.\\.");
            if (p.length != 2) throw new UserError("sizes are FROM..TO (such as 1KB..64MB) or a list such as 4MB,16MB: '" + spec + "'");
            long from = bytes(p[0]);
            long to = bytes(p[1]);
            if (from > to) throw new UserError("sizes " + spec + ": the first is larger than the last");
            for (long b = from; b <= to; b *= 2) out.add(b);
        } else {
            for (String p : s.split(",")) out.add(bytes(p));
        }
        return out;
    }

    static long bytes(String s) {
        String u = s.toUpperCase(Locale.ROOT).replace("IB", "B");
        long mult = 1;
        if (u.endsWith("KB")) mult = 1L << 10;
        else if (u.endsWith("MB")) mult = 1L << 20;
        else if (u.endsWith("GB")) mult = 1L << 30;
        String num = u.replaceAll("[KMG]?B$", "");
        long v;
        try {
            v = Math.round(Double.parseDouble(num) * mult);
        } catch (NumberFormatException e) {
            throw new UserError("'" + s + "' is not a size such as 64KB, 4MB or 1GB");
        }
        if (v < 4) throw new UserError("size '" + s + "' is below one float (4 bytes)");
        if (v > (1L << 30)) throw new UserError("size '" + s + "' is above 1 GB; this benchmark keeps buffers small");
        return v;
    }

    /**
     * Times {@code op} on every rank of {@code pool} with each implementation in
     * {@code impls} ("runtime", "raw", "ring", "ps"), taking turns call by call.
     */
    public static List<Row> measure(WorkerPool pool, String op, List<Long> sizes, List<String> impls, int iters,
                                    Consumer<RankEvent> events) {
        return measure(pool, op, sizes, impls, iters, CollectiveBenchTask.JIT_WARMUP_CALLS, events);
    }

    /** As above, with {@code jitWarmup} untimed calls before the first size (fewer where each call is long, as on a slow link). */
    public static List<Row> measure(WorkerPool pool, String op, List<Long> sizes, List<String> impls, int iters, int jitWarmup,
                                    Consumer<RankEvent> events) {
        JsonObject a = new JsonObject();
        a.addProperty("jitWarmup", jitWarmup);
        a.addProperty("op", op);
        a.add("impls", Wire.GSON.toJsonTree(impls));
        a.addProperty("iters", iters);
        a.add("sizes", Wire.GSON.toJsonTree(sizes));
        List<JsonElement> res = pool.run(CollectiveBenchTask.class.getName(), a.toString(), null, events);
        List<Row> rows = new ArrayList<>();
        for (String impl : impls) rows.addAll(rows(op, impl, pool.size(), sizes, slowest(res, impl)));
        return rows;
    }

    /** The slowest rank's median per size: a collective is done when its last rank is. */
    private static double[] slowest(List<JsonElement> res, String impl) {
        double[] t = null;
        for (JsonElement e : res) {
            var arr = e.getAsJsonObject().getAsJsonObject("seconds").getAsJsonArray(impl);
            if (t == null) t = new double[arr.size()];
            for (int i = 0; i < t.length; i++) t[i] = Math.max(t[i], arr.get(i).getAsDouble());
        }
        return t;
    }

    private static List<Row> rows(String op, String impl, int n, List<Long> sizes, double[] seconds) {
        List<Row> out = new ArrayList<>();
        for (int i = 0; i < sizes.size(); i++) {
            double alg = sizes.get(i) / seconds[i] / 1e9;
            out.add(new Row(op, impl, n, sizes.get(i), seconds[i], alg, alg * busFactor(op, n)));
        }
        return out;
    }

    /**
     * Checks the built-in, ring, tree and parameter-server all-reduce of {@code pool} against
     * the exact sum ({@link AllReduceCheck}) and counts their traffic; throws a
     * {@link ClusterError} naming the implementation, world size, size and difference when
     * a result is outside the float32 tolerance.
     */
    public static AllReduceCheck.Outcome checkAllReduce(WorkerPool pool) {
        return AllReduceCheck.run(pool).requireWithinTolerance();
    }

    /** Implementations timed by {@code --bench algorithms}: the ones the check verifies. */
    public static final List<String> ALGORITHMS = AllReduceCheck.IMPLS;

    /**
     * Builds the report of {@code --bench algorithms}: the check of every implementation
     * against the exact sum, the bytes each send/recv algorithm sent against its formula,
     * and the measured times per world size.
     */
    public static Report algorithmsReport(Map<Integer, AllReduceCheck.Outcome> checks, List<Row> rows) {
        List<Integer> worlds = new ArrayList<>(checks.keySet());
        List<AllReduceCheck.Deviation> devs = new ArrayList<>();
        List<AllReduceCheck.Traffic> traffic = new ArrayList<>();
        for (AllReduceCheck.Outcome o : checks.values()) {
            devs.addAll(o.deviations());
            traffic.addAll(o.traffic());
        }
        AllReduceCheck.Deviation worstDiff = devs.stream().max(Comparator.comparingDouble(AllReduceCheck.Deviation::maxAbsDiff)).orElseThrow();
        AllReduceCheck.Deviation worstFraction = devs.stream().max(Comparator.comparingDouble(AllReduceCheck.Deviation::worstFraction)).orElseThrow();
        StringBuilder text = new StringBuilder(String.format(Locale.ROOT,
                "Ring, binary-tree and parameter-server all-reduce written with send/recv in Java (AllReduceAlgorithms) against "
                        + "the built-in all-reduce (parallax's Collectives: shared memory when every rank is on one machine), "
                        + "world sizes %s, on this machine (%d cores) over loopback.%n%n", worlds, Runtime.getRuntime().availableProcessors()));
        text.append(String.format(Locale.ROOT,
                "Checked against the exact sum, worked out in double from the same float32 inputs, of 1, n-1, 7, 1001 and %d "
                        + "elements (fewer than the ranks, counts the ranks do not divide, several tree chunks). Tolerance per element: "
                        + "(n-1) u sum|x_i| with u = 2^-24 (exactly gamma(n-1) = (n-1)u / (1 - (n-1)u); the most n-1 float32 "
                        + "roundings can add, in any order). Largest difference %.3g (%s, %d ranks, %d elements; tolerance there %.3g); "
                        + "worst element at %s of its tolerance (%s, %d ranks%s).",
                3 * AllReduceAlgorithms.TREE_CHUNK_ELEMENTS + 1, worstDiff.maxAbsDiff(), AllReduceCheck.label(worstDiff.impl()), worstDiff.world(),
                worstDiff.elements(), worstDiff.toleranceAtMaxDiff(), fraction(worstFraction.worstFraction()),
                AllReduceCheck.label(worstFraction.impl()), worstFraction.world(),
                worstFraction.world() == 2 ? "; a two-rank sum is one rounding, which may use all of it" : ""));
        long counted = traffic.isEmpty() ? 0 : traffic.get(0).bytes();
        String trafficText = String.format(Locale.ROOT, "Bytes sent per call for a tensor of S = %s, counted by every rank's "
                + "CommStats: all three move 2(n-1) S in total; the ring spreads it evenly (2(n-1)/n S per rank), the parameter "
                + "server sends (n-1) S from rank 0, the tree at most 3 S from any rank (one copy up, one per child). steps: "
                + "message latencies one after another in each algorithm's model (ring 2(n-1), tree 2 floor(log2 n), parameter "
                + "server 2(n-1) through rank 0), not measured.", human(counted));
        List<Row> labelled = rows.stream().map(r -> new Row(r.op(), AllReduceCheck.label(r.impl()), r.world(), r.bytes(),
                r.seconds(), r.algbwGBps(), r.busbwGBps())).toList();
        Report.Builder b = Report.builder("All-reduce: built-in vs ring vs tree vs parameter server")
                .text(text.toString())
                .table(checkTable(devs), "Largest difference from the exact sum per implementation and world size, over all checked sizes")
                .text(trafficText)
                .table(trafficTable(traffic), "Bytes sent, measured vs formula, in multiples of S")
                .table(table(labelled), "Median time per call of the slowest rank")
                .table(ratioTable(rows), "Time per call over the ring's, smallest and largest size (below 1: faster than the ring)");
        for (int w : worlds) {
            List<Row> one = labelled.stream().filter(r -> r.world() == w).toList();
            b.chart(chart("all-reduce time, " + w + " ranks", one, "time"),
                    "Measured time per call vs message size, " + w + " ranks, on this machine");
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("worlds", worlds);
        data.put("tolerance", "per element (n-1) u sum|x_i|, u = 2^-24");
        data.put("maxAbsDiff", worstDiff.maxAbsDiff());
        data.put("worstFractionOfTolerance", worstFraction.worstFraction());
        data.put("checks", checks);
        data.put("rows", rows);
        return b.data(data).build();
    }

    /** Time of each implementation over the ring's, per world, at the smallest and the largest size. */
    static Table ratioTable(List<Row> rows) {
        Table t = Table.create("allreduce ratios", IntColumn.create("ranks"), StringColumn.create("size"), LongColumn.create("bytes"),
                DoubleColumn.create("tree_over_ring"), DoubleColumn.create("ps_over_ring"), DoubleColumn.create("builtin_over_ring"));
        for (int w : rows.stream().map(Row::world).distinct().toList()) {
            List<Long> sizes = rows.stream().filter(r -> r.world() == w).map(Row::bytes).distinct().sorted().toList();
            for (long b : sizes.size() > 1 ? List.of(sizes.get(0), sizes.get(sizes.size() - 1)) : sizes) {
                double ring = seconds(rows, "ring", w, b);
                t.intColumn("ranks").append(w);
                t.stringColumn("size").append(human(b));
                t.longColumn("bytes").append(b);
                t.doubleColumn("tree_over_ring").append(Math.round(seconds(rows, "tree", w, b) / ring * 1000) / 1000.0);
                t.doubleColumn("ps_over_ring").append(Math.round(seconds(rows, "ps", w, b) / ring * 1000) / 1000.0);
                t.doubleColumn("builtin_over_ring").append(Math.round(seconds(rows, "runtime", w, b) / ring * 1000) / 1000.0);
            }
        }
        return t;
    }

    private static double seconds(List<Row> rows, String impl, int world, long bytes) {
        return rows.stream().filter(r -> r.impl().equals(impl) && r.world() == world && r.bytes() == bytes)
                .mapToDouble(Row::seconds).findFirst().orElse(Double.NaN);
    }

    static Table checkTable(List<AllReduceCheck.Deviation> devs) {
        Map<String, AllReduceCheck.Deviation> worst = new LinkedHashMap<>();
        for (AllReduceCheck.Deviation d : devs) worst.merge(d.impl() + "/" + d.world(), d, AllReduceCheck.Deviation::worse);
        Table t = Table.create("allreduce check", StringColumn.create("algorithm"), IntColumn.create("ranks"),
                DoubleColumn.create("max_abs_diff"), DoubleColumn.create("tolerance_there"),
                DoubleColumn.create("worst_fraction_of_tolerance"));
        for (AllReduceCheck.Deviation d : worst.values()) {
            t.stringColumn("algorithm").append(AllReduceCheck.label(d.impl()));
            t.intColumn("ranks").append(d.world());
            t.doubleColumn("max_abs_diff").append(sig(d.maxAbsDiff()));
            t.doubleColumn("tolerance_there").append(sig(d.toleranceAtMaxDiff()));
            t.doubleColumn("worst_fraction_of_tolerance").append(fraction(d.worstFraction()));
        }
        return t;
    }

    static Table trafficTable(List<AllReduceCheck.Traffic> traffic) {
        Table t = Table.create("allreduce traffic", StringColumn.create("algorithm"), IntColumn.create("ranks"),
                DoubleColumn.create("busiest_rank_sent_xS"), DoubleColumn.create("formula_busiest_xS"),
                DoubleColumn.create("all_ranks_sent_xS"), DoubleColumn.create("formula_all_xS"), IntColumn.create("steps"));
        for (AllReduceCheck.Traffic x : traffic) {
            t.stringColumn("algorithm").append(AllReduceCheck.label(x.impl()));
            t.intColumn("ranks").append(x.world());
            t.doubleColumn("busiest_rank_sent_xS").append(Math.round(x.busiestOverSize() * 1e4) / 1e4);
            t.doubleColumn("formula_busiest_xS").append(Math.round(x.busiestFormula() * 1e4) / 1e4);
            t.doubleColumn("all_ranks_sent_xS").append(Math.round(x.allOverSize() * 1e4) / 1e4);
            t.doubleColumn("formula_all_xS").append(Math.round(x.allFormula() * 1e4) / 1e4);
            t.intColumn("steps").append(x.steps());
        }
        return t;
    }

    /**
     * A fraction of the tolerance to 6 decimals, rounded away from 1, so that a correctly
     * rounded two-rank sum (which can come within 1e-7 of the bound) never shows as 1.
     */
    private static double fraction(double f) {
        return f <= 1 ? Math.floor(f * 1e6) / 1e6 : Math.ceil(f * 1e6) / 1e6;
    }

    /** Three significant digits, for differences of order 1e-7. */
    private static double sig(double v) {
        return v == 0 || !Double.isFinite(v) ? v : Double.parseDouble(String.format(Locale.ROOT, "%.3g", v));
    }

    /**
     * The same sizes through PyTorch's torch.distributed (Gloo) with {@code world} processes
     * placed on {@code nodes} as the ranks are ({@link PeerJob}; /usr/bin/python3, Debian
     * python3-torch). PyTorch 1.13's Gloo lacks reduce_scatter, so that op is timed as its
     * all-reduce, and said so in the report.
     */
    public static List<Row> torchPeer(String op, Nodes nodes, int world, List<Long> sizes, int iters) {
        StringBuilder sz = new StringBuilder();
        for (long b : sizes) sz.append(sz.length() == 0 ? "" : ",").append(b);
        List<String> lines = PeerJob.run(CollectiveBenchmark.class, "torch_collectives.py", "PyTorch peer", nodes, world, 600,
                List.of("--op", op, "--sizes", sz.toString(), "--iters", String.valueOf(iters)));
        String json = lines.stream().filter(l -> l.contains("\"seconds\"")).reduce((x, y) -> y)
                .orElseThrow(() -> new UserError("the PyTorch peer printed no result"));
        var arr = JsonParser.parseString(json).getAsJsonObject().getAsJsonArray("seconds");
        double[] t = new double[arr.size()];
        for (int i = 0; i < t.length; i++) t[i] = arr.get(i).getAsDouble();
        return rows(op, "torch.distributed", world, sizes, t);
    }

    public static String human(long bytes) {
        if (bytes >= (1L << 30) && bytes % (1L << 30) == 0) return (bytes >> 30) + " GiB";
        if (bytes >= (1L << 20) && bytes % (1L << 20) == 0) return (bytes >> 20) + " MiB";
        if (bytes >= (1L << 10) && bytes % (1L << 10) == 0) return (bytes >> 10) + " KiB";
        return bytes + " B";
    }

    public static Table table(List<Row> rows) {
        Table t = Table.create("collectives",
                StringColumn.create("op"), StringColumn.create("impl"), IntColumn.create("ranks"),
                StringColumn.create("size"), LongColumn.create("bytes"), DoubleColumn.create("time_us"),
                DoubleColumn.create("algbw_GB/s"), DoubleColumn.create("busbw_GB/s"));
        for (Row r : rows) {
            t.stringColumn("op").append(r.op());
            t.stringColumn("impl").append(r.impl());
            t.intColumn("ranks").append(r.world());
            t.stringColumn("size").append(human(r.bytes()));
            t.longColumn("bytes").append(r.bytes());
            t.doubleColumn("time_us").append(Math.round(r.seconds() * 1e7) / 10.0);
            t.doubleColumn("algbw_GB/s").append(Math.round(r.algbwGBps() * 1000) / 1000.0);
            t.doubleColumn("busbw_GB/s").append(Math.round(r.busbwGBps() * 1000) / 1000.0);
        }
        return t;
    }

    /** Chart of {@code y} ("busbw" or "time") against size, one series per impl (and world). */
    public static XYChart chart(String title, List<Row> rows, String y) {
        XYChart c = new XYChartBuilder().width(720).height(420).title(title)
                .xAxisTitle("message size (bytes, log scale)")
                .yAxisTitle(y.equals("busbw") ? "bus bandwidth (GB/s)" : "time (ms, log scale)").build();
        c.getStyler().setXAxisLogarithmic(true);
        if (!y.equals("busbw")) c.getStyler().setYAxisLogarithmic(true);
        c.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        Map<String, List<Row>> bySeries = new LinkedHashMap<>();
        boolean manyWorlds = rows.stream().map(Row::world).distinct().count() > 1;
        for (Row r : rows) bySeries.computeIfAbsent(r.impl() + (manyWorlds ? " n=" + r.world() : ""), k -> new ArrayList<>()).add(r);
        for (Map.Entry<String, List<Row>> e : bySeries.entrySet()) {
            double[] x = e.getValue().stream().mapToDouble(Row::bytes).toArray();
            double[] v = e.getValue().stream().mapToDouble(r -> y.equals("busbw") ? r.busbwGBps() : r.seconds() * 1e3).toArray();
            c.addSeries(e.getKey(), x, v).setMarker(SeriesMarkers.CIRCLE);
        }
        return c;
    }

    /** Median over the rows with bytes in [lo, hi] of busbw(a) / busbw(b), matched by size. */
    public static double medianRatio(List<Row> rows, String implA, String implB, long lo, long hi) {
        List<Double> r = new ArrayList<>();
        for (Row a : rows) {
            if (!a.impl().equals(implA) || a.bytes() < lo || a.bytes() > hi) continue;
            for (Row b : rows) {
                if (b.impl().equals(implB) && b.bytes() == a.bytes() && b.world() == a.world()) r.add(a.busbwGBps() / b.busbwGBps());
            }
        }
        if (r.isEmpty()) return Double.NaN;
        r.sort(Double::compare);
        return r.get(r.size() / 2);
    }

    /** Key of {@code extra} in {@link #report}: why the PyTorch peer's rows are missing. */
    public static final String TORCH_PEER_SKIPPED = "torchPeerSkipped";

    /** Builds the report of a bandwidth benchmark (one op, one world). */
    public static Report report(String op, int world, String backend, List<Row> rows, Map<String, Object> extra) {
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("op", op);
        data.put("ranks", world);
        data.put("backend", backend);
        data.putAll(extra);
        data.put("rows", rows);
        StringBuilder text = new StringBuilder();
        Object nodes = extra.getOrDefault("nodes", 1L);
        String where = ((Number) nodes).longValue() <= 1 ? "on this machine (" + Runtime.getRuntime().availableProcessors() + " cores)"
                : "on " + nodes + " nodes" + (extra.get("linkBitsPerSecond") != null
                        ? " whose links are shaped to " + new TestBed.Link(((Number) extra.get("linkBitsPerSecond")).longValue(), 0).describe() : "");
        text.append("Median time per call of the slowest rank; algbw = bytes / time, busbw = algbw x ")
                .append(String.format(Locale.ROOT, "%.3g", busFactor(op, world)))
                .append(" (nccl-tests). Sizes in KiB/MiB; bandwidth in GB/s (10^9 B/s). ")
                .append(world).append(" ranks, ").append(backend).append(", ").append(where).append(". runtime = parallax's Collectives")
                .append(" (shared memory when every rank of the group is on one machine; shared memory inside each node and ")
                .append(backend).append(" across when the group spans nodes with several ranks on each; else the backend")
                .append(extra.get("transport") != null ? "; here: " + extra.get("transport") : "").append(")");
        if (rows.stream().anyMatch(r -> r.impl().equals("raw"))) text.append("; raw = the ProcessGroup called directly (Gloo: TCP between every pair of ranks, also on one machine)");
        text.append(".");
        boolean hasRaw = rows.stream().anyMatch(r -> r.impl().equals("raw"));
        if (hasRaw) {
            double ratio = medianRatio(rows, "runtime", "raw", 4L << 20, 64L << 20);
            data.put("runtimeOverRawBusbw4to64MB", ratio);
            if (!Double.isNaN(ratio)) {
                text.append(String.format(Locale.ROOT, "%nRuntime / raw ProcessGroup busbw, median 4-64 MiB: %.2f.", ratio));
            }
            double large = medianRatio(rows, "runtime", "raw", 16L << 20, 64L << 20);
            if (((Number) nodes).longValue() > 1 && !Double.isNaN(large)) {
                data.put("runtimeOverRawBusbw16to64MB", large);
                text.append(String.format(Locale.ROOT, " Across nodes, 16-64 MiB: %.2f.", large));
            }
        }
        if (extra.get(TORCH_PEER_SKIPPED) != null) text.append("\nNo PyTorch rows: ").append(extra.get(TORCH_PEER_SKIPPED)).append('.');
        if (rows.stream().anyMatch(r -> r.impl().equals("torch.distributed"))) {
            double ratio = medianRatio(rows, "runtime", "torch.distributed", 0, Long.MAX_VALUE);
            data.put("runtimeOverTorchBusbw", ratio);
            text.append(String.format(Locale.ROOT, "%nRuntime / PyTorch torch.distributed (Gloo) busbw, median over sizes: %.2f.", ratio));
            if (op.equals("reduce_scatter")) text.append(" PyTorch 1.13's Gloo has no reduce_scatter: its row times an all-reduce.");
        }
        return Report.builder("%parallel --bench " + op + " (" + world + " ranks, " + backend + ")")
                .text(text.toString())
                .table(table(rows), "Measured " + op + " per message size")
                .chart(chart(op + " bus bandwidth, " + world + " ranks, " + backend, rows, "busbw"),
                        "Measured " + where + "; busbw per nccl-tests")
                .data(data)
                .build();
    }
}
