package parallax.engine.cluster;

import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.net.BindException;

/**
 * Live metrics of the ranks in Prometheus text format, served by the coordinator at
 * {@code http://<master_addr>:<port>/metrics} (only on the master address). Fed from the
 * step events ranks stream during runs; the conventional step fields are
 * {@code stepSeconds}, {@code tokensPerSecond}, and (added by the worker to every step)
 * {@code commSeconds}, {@code commBytes}, {@code rssBytes}.
 *
 * <p>Point Prometheus at it with a scrape config such as
 * {@code - job_name: parallax  static_configs: [{targets: ['127.0.0.1:9400']}]}.
 */
public final class MetricsServer implements AutoCloseable {

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final HTTPServer server;
    private final String address;
    private final Gauge stepSeconds = gauge("parallax_step_seconds", "Wall time of the last completed step");
    private final Gauge tokensPerSecond = gauge("parallax_tokens_per_second", "Training throughput of the last step");
    private final Gauge lastStep = gauge("parallax_last_step", "Last completed step");
    private final Gauge commSeconds = gauge("parallax_comm_seconds", "Time spent in collectives since the rank started");
    private final Gauge commBytes = gauge("parallax_comm_bytes", "Bytes handed to collectives since the rank started");
    private final Gauge rssBytes = gauge("parallax_rank_rss_bytes", "Resident memory of the rank process");
    private final Gauge loss = gauge("parallax_loss", "Loss at the last completed step");
    private final Gauge generation = Gauge.builder().name("parallax_generation")
            .help("Generation of the worker pool: 0 when started, +1 for each restart after a failure").register(registry);
    private final Gauge restarts = Gauge.builder().name("parallax_restarts")
            .help("Failures the job has restarted after (elastic restarts)").register(registry);
    private final Gauge lastCheckpoint = Gauge.builder().name("parallax_last_checkpoint_step")
            .help("Step of the last complete distributed checkpoint").register(registry);
    private final Gauge checkpointBytes = Gauge.builder().name("parallax_last_checkpoint_bytes")
            .help("Bytes of the last complete distributed checkpoint (every rank's file)").register(registry);

    private MetricsServer(String addr, int port) throws IOException {
        server = HTTPServer.builder().hostname(addr).port(port).registry(registry).buildAndStart();
        address = addr + ":" + server.getPort();
    }

    private Gauge gauge(String name, String help) {
        return Gauge.builder().name(name).help(help).labelNames("rank").register(registry);
    }

    static MetricsServer start(String addr, int port) {
        try {
            return new MetricsServer(addr, port);
        } catch (BindException e) {
            throw new ClusterError("metrics port " + addr + ":" + port + " is in use; pick another with --metrics-port");
        } catch (IOException e) {
            throw new ClusterError("cannot serve metrics on " + addr + ":" + port + ": " + e.getMessage());
        }
    }

    /** host:port where /metrics is served. */
    public String address() { return address; }

    public int port() { return server.getPort(); }

    void onEvent(RankEvent e) {
        if ("checkpoint".equals(e.kind())) {
            if (!Double.isNaN(e.number("step"))) lastCheckpoint.set(e.number("step"));
            if (!Double.isNaN(e.number("bytes"))) checkpointBytes.set(e.number("bytes"));
            return;
        }
        if (!"step".equals(e.kind())) return;
        String r = String.valueOf(e.rank());
        lastStep.labelValues(r).set(e.step());
        set(stepSeconds, r, e.number("stepSeconds"));
        set(tokensPerSecond, r, e.number("tokensPerSecond"));
        set(commSeconds, r, e.number("commSeconds"));
        set(commBytes, r, e.number("commBytes"));
        set(rssBytes, r, e.number("rssBytes"));
        set(loss, r, e.number("loss"));
    }

    /** A pool of generation {@code g} is up after {@code n} restarts. */
    void onGeneration(int g, int n) {
        generation.set(g);
        restarts.set(n);
    }

    void onStatus(WorkerPool.RankStatus s) {
        if (s.rssBytes() > 0) rssBytes.labelValues(String.valueOf(s.rank())).set(s.rssBytes());
    }

    private static void set(Gauge g, String rank, double v) {
        if (!Double.isNaN(v)) g.labelValues(rank).set(v);
    }

    @Override
    public void close() {
        server.close();
    }
}
