package parallax.magics;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.TestBed;
import parallax.engine.cluster.Topology;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * {@code %cluster}: the nodes file and the worker pool that stays up between cells.
 * {@code %%cluster nodes} with a body replaces the nodes file with the body.
 */
@Command(name = "cluster", description = {
        "Show or edit the nodes, and start, stop, restart or inspect the worker ranks.",
        "Actions: show (default), start, stop, status, restart, nodes, topology, testbed, gpus (what this machine offers CUDA ranks).",
        "%%%%cluster nodes with a cell body writes the body as the nodes file (hostfile: 'host slots=N [devices=cuda:0,..]').",
        "%%cluster topology: the node/rank map and point-to-point bandwidth and latency between every pair of ranks.",
        "%%cluster testbed up --nodes 2 --slots 2 --rate 1gbit [--delay 0.2ms]: nodes as network namespaces of this",
        "  machine (root), with shaped links; testbed shape --rate R; testbed down."})
public final class ClusterCommand extends MagicCommand {

    static final List<String> ACTIONS = List.of("show", "start", "stop", "status", "restart", "nodes", "topology", "testbed", "gpus");
    static final List<String> TESTBED_VERBS = List.of("up", "shape", "down", "show");

    @Parameters(index = "0", arity = "0..1", defaultValue = "show", description = "show | start | stop | status | restart | nodes | topology | testbed | gpus")
    String action;

    @Parameters(index = "1", arity = "0..1", description = "With testbed: up | shape | down | show.")
    String verb;

    @Option(names = "--hierarchical", negatable = true, description = "With start/restart: collectives of groups that span nodes "
            + "go through shared memory inside each node and Gloo across (default); --no-hierarchical: flat Gloo, for comparison.")
    Boolean hierarchical;

    @Option(names = "--nodes", description = "With testbed up: how many nodes (default 2).")
    Integer bedNodes;

    @Option(names = "--slots", description = "With testbed up: ranks per node (default 2).")
    Integer bedSlots;

    @Option(names = "--rate", description = "With testbed up/shape: each node's link rate, both ways, such as 100mbit, 1gbit, 10gbit (default: unshaped).")
    String rate;

    @Option(names = "--delay", description = "With testbed up/shape: one-way delay added on each node's link, such as 0.2ms.")
    String delay;

    @Option(names = "--if-possible", description = "With testbed up: where no test bed can be built (not root), say why in one line and keep the current nodes instead of failing; with testbed shape: where none is up, say so.")
    boolean ifPossible;

    @Option(names = "--distribution", description = "With start/restart: how ranks are dealt to the nodes: block (fill each node first: "
            + "consecutive ranks, a TP group, share a node; the default) or cyclic (one rank per node in turn).")
    String distribution;

    @Option(names = "--size", description = "With topology: bytes per bandwidth message (default 4MB; KB/MB binary).")
    String size;

    @Option(names = "--iters", description = "With topology: messages per pair and direction (default 3).")
    Integer iters;

    @Option(names = "--ranks", description = "Ranks to start or measure (default: every slot of the nodes file, or 2 locally).")
    Integer ranks;

    @Option(names = "--file", description = "With 'nodes': use this nodes file.")
    Path file;

    @Option(names = "--default", description = "With 'nodes': forget the nodes file, use local CPU ranks.")
    boolean useDefault;

    @Option(names = "--metrics-port", description = "Also serve Prometheus metrics on this port of the master address (0: any free port).")
    Integer metricsPort;

    @Override
    protected Report execute() {
        Cluster c = Cluster.session();
        if (!ACTIONS.contains(action)) {
            throw new UserError("unknown action '" + action + "'" + DidYouMean.hint(action, ACTIONS) + " (actions: " + String.join(", ", ACTIONS) + ")");
        }
        if (verb != null && !action.equals("testbed")) throw new UserError("'" + verb + "' after " + action + ": only testbed takes a second word");
        if (hierarchical != null) c.hierarchical(hierarchical);
        if (distribution != null) c.distribution(Nodes.distribution("--distribution: ", distribution));
        if (metricsPort != null) {
            var m = c.metrics(metricsPort);
            output().out().println("Prometheus metrics: http://" + m.address() + "/metrics");
        }
        switch (action) {
            case "nodes" -> {
                if (!cellBody().isBlank()) c.writeNodes(cellBody());
                else if (file != null) c.useNodesFile(file);
                else if (useDefault) c.useDefault();
                return show(c);
            }
            case "start" -> {
                WorkerPool p = c.pool(ranks != null ? ranks : c.defaultRanks());
                if (!json) output().out().printf("%d ranks up in %.2f s (logs: %s)%n", p.size(), p.startSeconds(), p.logDir());
                return status(c, p);
            }
            case "restart" -> {
                int n = ranks != null ? ranks : c.defaultRanks();
                c.stop();
                WorkerPool p = c.pool(n);
                if (!json) output().out().printf("%d ranks restarted in %.2f s%n", p.size(), p.startSeconds());
                return status(c, p);
            }
            case "stop" -> {
                boolean was = c.current() != null;
                c.stop();
                output().out().println(was ? "all ranks stopped" : "no ranks were running");
                return null;
            }
            case "status" -> {
                return status(c, null);
            }
            case "gpus" -> {
                return gpus();
            }
            case "topology" -> {
                return topology(c);
            }
            case "testbed" -> {
                return testBed(c);
            }
            default -> {
                return show(c);
            }
        }
    }

    private Report topology(Cluster c) {
        long bytes = parallax.engine.cluster.CollectiveBenchmark.parseSizes(size == null ? "4MB" : size).get(0);
        int k = iters == null ? 3 : iters;
        if (k < 1 || k > 1000) throw new UserError("--iters takes 1 to 1000 messages per pair, not " + k);
        int n = ranks != null ? ranks : c.defaultRanks();
        if (n < 2) throw new UserError("a topology needs at least 2 ranks");
        try (Progress p = output().progress("%cluster topology", (long) n * (n - 1))) {
            WorkerPool pool = c.pool(n);
            Topology.Result r = Topology.measure(pool, bytes, k, ev -> {
                if ("step".equals(ev.kind()) && ev.rank() == 0) p.update(ev.step(), Map.of());
            });
            return Topology.report(r, c.shapedRate());
        }
    }

    private Report testBed(Cluster c) {
        String v = verb == null ? "show" : verb;
        if (!TESTBED_VERBS.contains(v)) {
            throw new UserError("unknown testbed action '" + v + "'" + DidYouMean.hint(v, TESTBED_VERBS) + " (up, shape, down, show)");
        }
        switch (v) {
            case "up" -> {
                int nodes = bedNodes == null ? 2 : bedNodes, slots = bedSlots == null ? 2 : bedSlots;
                if (nodes < 1 || nodes > 32) throw new UserError("--nodes takes 1 to 32 nodes, not " + nodes);
                if (slots < 1 || slots > 64) throw new UserError("--slots takes 1 to 64 ranks per node, not " + slots);
                TestBed.Link link = TestBed.Link.parse(rate, delay);
                String why = TestBed.unavailableReason();
                if (why != null) {
                    if (!ifPossible) throw new UserError("cannot build a multi-node test bed here: " + why);
                    output().out().println("no test bed here (" + why + "); the ranks stay on " + (c.usingDefault() ? "this machine" : c.nodesFile()));
                    return show(c);
                }
                TestBed bed;
                try (Progress p = output().progress("building " + nodes + " nodes", 1)) {
                    bed = c.buildTestBed(nodes, slots, link);
                    p.update(1, Map.of());
                }
                if (!json) output().out().println("test bed up: " + bed + "; nodes file " + bed.nodesFile());
                return show(c);
            }
            case "shape" -> {
                TestBed bed = c.testBed();
                TestBed.Link link = TestBed.Link.parse(rate, delay);
                if (bed == null && ifPossible) {
                    output().out().println("no test bed is up: nothing to shape");
                    return null;
                }
                if (bed == null) throw new UserError("no test bed is up: start one with %cluster testbed up");
                bed.shape(link);
                output().out().println("links now " + bed.link().describe());
                return null;
            }
            case "down" -> {
                output().out().println(c.removeTestBed() ? "test bed removed; back to " + (c.usingDefault() ? "the local default" : c.nodesFile())
                        : "no test bed was up");
                return null;
            }
            default -> {
                TestBed bed = c.testBed();
                output().out().println(bed == null ? "no test bed is up" : "test bed: " + bed);
                return null;
            }
        }
    }

    private Report show(Cluster c) {
        Nodes n = c.nodes(c.defaultRanks());
        String where = c.usingDefault() ? "embedded default (no nodes file at " + c.nodesFile() + ")" : c.nodesFile().toString();
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("source", where);
        data.put("nodes", n);
        WorkerPool p = c.current();
        data.put("running", p == null ? 0 : p.size());
        if (p != null) {
            data.put("generation", p.generation());
            data.put("restarts", p.restarts());
        }
        return Report.builder("Nodes: " + where)
                .text("```\n" + n.toText() + "```\n" + (p == null ? "No ranks running." : p.size() + " ranks running, generation "
                        + p.generation() + " (" + p.restarts() + " restart" + (p.restarts() == 1 ? "" : "s") + ")."))
                .data(data)
                .build();
    }

    /**
     * What this machine offers CUDA ranks, checked in the order a rank needs it: the GPU
     * build of libtorch, the NVIDIA driver, visible GPUs; and the first problem a rank on
     * cuda:0 would meet (docs/gpu.md says what each means).
     */
    private Report gpus() {
        parallax.engine.torch.CudaCheck.Machine m = parallax.engine.torch.CudaCheck.probe();
        String problem = parallax.engine.torch.CudaCheck.problem(0, m);
        String visible = System.getenv("CUDA_VISIBLE_DEVICES");
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("gpuNatives", m.gpuNatives());
        data.put("driver", m.driver());
        data.put("visibleDevices", m.visibleDevices());
        data.put("cudaVisibleDevices", visible);
        data.put("problem", problem);
        String text = String.format("GPU build of libtorch: **%s**. NVIDIA driver (libcuda.so.1): **%s**. Visible GPUs: **%d**%s.%n%n%s",
                m.gpuNatives() ? "yes" : "no (build with install/run.sh --cuda)", m.driver() ? "found" : "not found",
                m.visibleDevices(), visible == null ? "" : " (CUDA_VISIBLE_DEVICES=" + visible + ")",
                problem == null ? "Ranks can use cuda:0" + (m.visibleDevices() > 1 ? "..cuda:" + (m.visibleDevices() - 1) : "")
                        + " (nodes file: devices=cuda:0,...)." : "A rank on cuda:0 would stop with: " + problem);
        return Report.builder("GPUs for CUDA ranks").text(text).data(data).build();
    }

    /** Status of every rank; after a start also the start-up times. */
    private Report status(Cluster c, WorkerPool started) {
        List<WorkerPool.RankStatus> st = c.status();
        if (st.isEmpty()) {
            return Report.builder("Cluster status").text("No ranks running. Start them with %cluster start [--ranks N].")
                    .data(Map.of("ranks", List.of())).build();
        }
        Table t = Table.create("ranks", IntColumn.create("rank"), StringColumn.create("host"), LongColumn.create("pid"),
                StringColumn.create("device"), StringColumn.create("backend"), StringColumn.create("transport"),
                DoubleColumn.create("rss_MiB"),
                StringColumn.create("health"), LongColumn.create("last_step"));
        for (WorkerPool.RankStatus s : st) {
            t.intColumn("rank").append(s.rank());
            t.stringColumn("host").append(s.host());
            t.longColumn("pid").append(s.pid());
            t.stringColumn("device").append(s.device());
            t.stringColumn("backend").append(s.backend());
            t.stringColumn("transport").append(s.transport());
            t.doubleColumn("rss_MiB").append(s.rssBytes() < 0 ? Double.NaN : Math.round(s.rssBytes() / 1048576.0 * 10) / 10.0);
            t.stringColumn("health").append(s.health());
            t.longColumn("last_step").append(s.lastStep());
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("ranks", st);
        WorkerPool pool = c.current();
        String generation = "";
        if (pool != null) {
            data.put("generation", pool.generation());
            data.put("restarts", pool.restarts());
            generation = String.format("Generation %d of the worker pool (%d restart%s after lost ranks); coordinator log: %s.",
                    pool.generation(), pool.restarts(), pool.restarts() == 1 ? "" : "s", pool.events().file());
        }
        if (started != null) {
            data.put("startSeconds", started.startSeconds());
            data.put("rankReadyMillis", started.readyMillis());
            data.put("rankReadyPhases", started.readyPhases());
        }
        Report.Builder b = Report.builder("Cluster status").table(t, "Ranks of the worker pool (RSS read from /proc of each rank)");
        if (!generation.isEmpty()) b.text(generation);
        return b.data(data).build();
    }
}
