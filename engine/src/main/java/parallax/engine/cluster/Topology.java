package parallax.engine.cluster;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import parallax.engine.report.Report;
import parallax.engine.report.Stats;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Where the ranks are and what connects them, measured: the node/rank map and a
 * point-to-point bandwidth and latency matrix ({@link TopologyTask}), in the spirit of
 * {@code nvidia-smi topo -m} (which link joins each pair) and nccl-tests' pairwise numbers
 * (what that link delivers). Also the check the mesh needs: which of a layout's groups
 * cross from one node to another ({@link #crossNodeGroups}).
 */
public final class Topology {

    /** What joins two ranks: the same node (shared memory for collectives), or the network. */
    public enum LinkKind {
        SAME_NODE("SHM"), NETWORK("NET");

        private final String label;

        LinkKind(String label) { this.label = label; }

        public String label() { return label; }
    }

    /** One direction between two ranks: GB/s (10^9 B/s) and one-way latency in µs. */
    public record Pair(int from, int to, LinkKind kind, double gbps, double latencyUs) {}

    /** The map and the matrix; {@code nodeOfRank} names each rank's node as the nodes file does. */
    public record Result(List<String> nodeOfRank, List<Pair> pairs, long bytes, int iters) {

        public List<String> nodes() { return List.copyOf(new LinkedHashSet<>(nodeOfRank)); }

        /** Median GB/s of the pairs of one kind (NaN when there are none). */
        public double medianGbps(LinkKind k) {
            return median(pairs.stream().filter(p -> p.kind() == k).mapToDouble(Pair::gbps).toArray());
        }

        public double medianLatencyUs(LinkKind k) {
            return median(pairs.stream().filter(p -> p.kind() == k).mapToDouble(Pair::latencyUs).toArray());
        }

        private static double median(double[] v) {
            return v.length == 0 ? Double.NaN : Stats.median(v, 0);
        }
    }

    private Topology() {}

    /** Runs the pairwise measurement on every rank of {@code pool}. */
    public static Result measure(WorkerPool pool, long bytes, int iters, Consumer<RankEvent> events) {
        if (pool.size() < 2) throw new parallax.engine.UserError("a topology needs at least 2 ranks");
        JsonObject a = new JsonObject();
        a.addProperty("bytes", bytes);
        a.addProperty("iters", iters);
        a.addProperty("latencyIters", 20);
        List<JsonElement> res = pool.run(TopologyTask.class.getName(), a.toString(), null, events);
        List<String> nodeOfRank = pool.nodes().place(pool.size()).stream().map(p -> p.node().host()).toList();
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < res.size(); i++) {
            JsonArray g = res.get(i).getAsJsonObject().getAsJsonArray("gbps");
            JsonArray l = res.get(i).getAsJsonObject().getAsJsonArray("latencyUs");
            for (int j = 0; j < res.size(); j++) {
                if (i == j) continue;
                pairs.add(new Pair(i, j, kind(nodeOfRank, i, j), g.get(j).getAsDouble(), l.get(j).getAsDouble()));
            }
        }
        return new Result(nodeOfRank, pairs, bytes, iters);
    }

    static LinkKind kind(List<String> nodeOfRank, int i, int j) {
        return nodeOfRank.get(i).equals(nodeOfRank.get(j)) ? LinkKind.SAME_NODE : LinkKind.NETWORK;
    }

    /**
     * The groups of {@code shape} whose ranks are on more than one node, one line each, tensor
     * parallel first; empty when every TP group stays inside a node and nothing else to say.
     * Data- and pipeline-parallel groups crossing nodes is what a cluster is for (DP's
     * all-reduce once per step, overlapped; PP's point-to-point per micro-batch); a TP group
     * crossing is the case to avoid: it all-reduces activations in every layer, on the
     * critical path, so it rides the slowest link.
     */
    public static List<String> crossNodeGroups(MeshShape shape, List<String> nodeOfRank) {
        List<String> out = new ArrayList<>();
        for (int[] g : Mesh.allGroups(shape, "tp")) {
            LinkedHashSet<String> on = new LinkedHashSet<>();
            for (int r : g) on.add(nodeOfRank.get(r));
            if (on.size() > 1) {
                out.add("tp group " + Arrays.toString(g) + " spans nodes " + String.join(" and ", on)
                        + ": its all-reduces (four per layer per micro-batch) cross the link between nodes");
            }
        }
        return out;
    }

    /**
     * The layout note a run prints when {@link #crossNodeGroups} found some, or null: the
     * groups, and how placement works (ranks fill each node's slots in order and TP ranks are
     * consecutive, so TP stays inside a node when tp divides every node's slots).
     */
    public static String placementNote(MeshShape shape, Nodes nodes) {
        List<String> hosts = nodes.place(shape.world()).stream().map(p -> p.node().host()).toList();
        List<String> cross = crossNodeGroups(shape, hosts);
        if (cross.isEmpty()) return null;
        int minSlots = nodes.nodes().stream().mapToInt(Nodes.Node::slots).min().orElse(1);
        return String.join("; ", cross) + ". Ranks fill each node's slots in order and TP ranks are consecutive, so TP stays "
                + "inside a node when tp (" + shape.tp() + ") divides every node's slots (smallest here: " + minSlots + ")";
    }

    /** The report of {@code %cluster topology}; {@code configuredBitsPerS} > 0 is the shaped rate to compare with. */
    public static Report report(Result r, long configuredBitsPerS) {
        int n = r.nodeOfRank().size();
        List<String> nodes = r.nodes();
        double net = r.medianGbps(LinkKind.NETWORK), same = r.medianGbps(LinkKind.SAME_NODE);
        StringBuilder text = new StringBuilder(String.format(Locale.ROOT,
                "%d ranks on %d node%s. Point to point over Gloo (TCP between the pair's addresses; loopback inside a node), "
                        + "one pair and one direction at a time while the others wait: bandwidth = %d messages of %s sent back "
                        + "to back, until the receiver's 4-byte receipt; latency = half the median round trip of 4 bytes (20 round trips). "
                        + "GB/s = 10^9 B/s. SHM: same node (collectives go through shared memory there); NET: across nodes.",
                n, nodes.size(), nodes.size() == 1 ? "" : "s", r.iters(), CollectiveBenchmark.human(r.bytes())));
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("nodeOfRank", r.nodeOfRank());
        data.put("bytes", r.bytes());
        data.put("iters", r.iters());
        data.put("pairs", r.pairs());
        if (!Double.isNaN(net)) {
            data.put("networkMedianGBps", net);
            data.put("networkMedianLatencyUs", r.medianLatencyUs(LinkKind.NETWORK));
            text.append(String.format(Locale.ROOT, "%n%nAcross nodes: median %.3f GB/s (%.2f Gbit/s), %.0f µs one way.",
                    net, net * 8, r.medianLatencyUs(LinkKind.NETWORK)));
            if (configuredBitsPerS > 0) {
                double fraction = net * 8e9 / configuredBitsPerS;
                data.put("configuredBitsPerSecond", configuredBitsPerS);
                data.put("networkFractionOfConfigured", fraction);
                text.append(String.format(Locale.ROOT, " The links are shaped to %s: the pairs read %.2f of it.",
                        new TestBed.Link(configuredBitsPerS, 0).describe(), fraction));
            }
        }
        if (!Double.isNaN(same)) {
            data.put("sameNodeMedianGBps", same);
            data.put("sameNodeMedianLatencyUs", r.medianLatencyUs(LinkKind.SAME_NODE));
            text.append(String.format(Locale.ROOT, "%nInside a node: median %.3f GB/s, %.0f µs.", same, r.medianLatencyUs(LinkKind.SAME_NODE)));
        }
        Report.Builder b = Report.builder("Topology: " + n + " ranks on " + nodes.size() + " node" + (nodes.size() == 1 ? "" : "s"))
                .text(text.toString())
                .table(rankMap(r), "Ranks and nodes")
                .table(matrix(r, "links", p -> p.kind().label(), "X"), "Link between each pair (rows: from, columns: to)")
                .table(matrix(r, "p2p bandwidth", p -> String.format(Locale.ROOT, "%.3f", p.gbps()), "-"),
                        "Point-to-point bandwidth, GB/s (rows: sender, columns: receiver)")
                .table(matrix(r, "p2p latency", p -> String.format(Locale.ROOT, "%.0f", p.latencyUs()), "-"),
                        "Point-to-point latency, µs one way")
                .table(summary(r), "By link kind")
                .chart(heatMap(r), "Measured point-to-point bandwidth between every pair of ranks, GB/s");
        return b.data(data).build();
    }

    static Table rankMap(Result r) {
        Table t = Table.create("ranks", IntColumn.create("rank"), StringColumn.create("node"), IntColumn.create("local_rank"));
        Map<String, Integer> seen = new LinkedHashMap<>();
        for (int i = 0; i < r.nodeOfRank().size(); i++) {
            String node = r.nodeOfRank().get(i);
            int local = seen.merge(node, 1, Integer::sum) - 1;
            t.intColumn("rank").append(i);
            t.stringColumn("node").append(node);
            t.intColumn("local_rank").append(local);
        }
        return t;
    }

    static Table matrix(Result r, String name, java.util.function.Function<Pair, String> cell, String diagonal) {
        int n = r.nodeOfRank().size();
        Table t = Table.create(name, StringColumn.create("from"));
        for (int j = 0; j < n; j++) t.addColumns(StringColumn.create("r" + j));
        for (int i = 0; i < n; i++) {
            t.stringColumn("from").append("r" + i);
            for (int j = 0; j < n; j++) {
                int from = i, to = j;
                t.stringColumn("r" + j).append(i == j ? diagonal
                        : r.pairs().stream().filter(p -> p.from() == from && p.to() == to).map(cell).findFirst().orElse(""));
            }
        }
        return t;
    }

    static Table summary(Result r) {
        Table t = Table.create("by link", StringColumn.create("link"), IntColumn.create("pairs"),
                DoubleColumn.create("median_GB/s"), DoubleColumn.create("min_GB/s"), DoubleColumn.create("max_GB/s"),
                DoubleColumn.create("median_Gbit/s"), DoubleColumn.create("median_latency_us"));
        for (LinkKind k : LinkKind.values()) {
            double[] g = r.pairs().stream().filter(p -> p.kind() == k).mapToDouble(Pair::gbps).toArray();
            if (g.length == 0) continue;
            t.stringColumn("link").append(k.label());
            t.intColumn("pairs").append(g.length);
            t.doubleColumn("median_GB/s").append(round(r.medianGbps(k), 3));
            t.doubleColumn("min_GB/s").append(round(Arrays.stream(g).min().orElse(Double.NaN), 3));
            t.doubleColumn("max_GB/s").append(round(Arrays.stream(g).max().orElse(Double.NaN), 3));
            t.doubleColumn("median_Gbit/s").append(round(r.medianGbps(k) * 8, 3));
            t.doubleColumn("median_latency_us").append(round(r.medianLatencyUs(k), 1));
        }
        return t;
    }

    static HeatMapChart heatMap(Result r) {
        int n = r.nodeOfRank().size();
        HeatMapChart c = new HeatMapChartBuilder().width(560).height(480).title("p2p bandwidth (GB/s), rows send").build();
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < n; i++) labels.add("r" + i + " " + r.nodeOfRank().get(i));
        List<Number[]> cells = new ArrayList<>();
        for (Pair p : r.pairs()) cells.add(new Number[] {p.to(), n - 1 - p.from(), round(p.gbps(), 3)});
        List<String> rows = new ArrayList<>(labels);
        java.util.Collections.reverse(rows);
        c.getStyler().setShowValue(true);
        c.getStyler().setLegendVisible(true);
        c.addSeries("GB/s", labels, rows, cells);
        return c;
    }

    private static double round(double v, int digits) {
        double f = Math.pow(10, digits);
        return Double.isNaN(v) ? v : Math.round(v * f) / f;
    }
}
