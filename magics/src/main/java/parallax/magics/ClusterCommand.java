package parallax.magics;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.WorkerPool;
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
        "Actions: show (default), start, stop, status, restart, nodes, gpus (what this machine offers CUDA ranks).",
        "%%%%cluster nodes with a cell body writes the body as the nodes file (hostfile: 'host slots=N [devices=cuda:0,..]')."})
public final class ClusterCommand extends MagicCommand {

    static final List<String> ACTIONS = List.of("show", "start", "stop", "status", "restart", "nodes", "gpus");

    @Parameters(index = "0", arity = "0..1", defaultValue = "show", description = "show | start | stop | status | restart | nodes | gpus")
    String action;

    @Option(names = "--ranks", description = "Ranks to start (default: every slot of the nodes file, or 2 locally).")
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
            default -> {
                return show(c);
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
