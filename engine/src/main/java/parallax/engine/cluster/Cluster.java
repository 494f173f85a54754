package parallax.engine.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import parallax.engine.UserError;

/**
 * The notebook session's cluster: the nodes configuration and the worker pool that stays up
 * between cells. One per JVM (the kernel session); {@code %cluster} and {@code %parallel}
 * share it through {@link #session()}.
 *
 * <p>The nodes file is {@code $PARALLAX_NODES}, else {@code ~/.parallax/nodes} when it exists;
 * without one the embedded default is used: every rank a CPU process on this machine over
 * loopback, as many as asked for.
 */
public final class Cluster {

    private static final Cluster SESSION = new Cluster();

    private Nodes configured;       // null: embedded default
    private UserError unreadable;   // the nodes file's problem, said on every use until it is replaced
    private Path nodesFile;
    private WorkerPool pool;
    private MetricsServer metrics;

    private Cluster() {
        this(defaultNodesFile());
    }

    /** A cluster reading and writing {@code nodesFile} (the session uses the default path). */
    Cluster(Path nodesFile) {
        this.nodesFile = nodesFile;
        try {
            if (Files.exists(nodesFile)) configured = Nodes.read(nodesFile);
        } catch (UserError e) {
            // Not thrown here: the session must stay usable to fix the file (%cluster nodes ...).
            unreadable = e;
        }
    }

    public static Cluster session() {
        return SESSION;
    }

    static Path defaultNodesFile() {
        String env = System.getenv("PARALLAX_NODES");
        if (env != null && !env.isBlank()) return Path.of(env);
        return Path.of(System.getProperty("user.home"), ".parallax", "nodes");
    }

    public synchronized Path nodesFile() { return nodesFile; }

    /** True when no nodes file is in use (every rank local). */
    public synchronized boolean usingDefault() { return configured == null; }

    /** The nodes for {@code ranks} ranks: the configured file, or the local default. */
    public synchronized Nodes nodes(int ranks) {
        if (unreadable != null) throw unreadable;
        return configured != null ? configured : Nodes.localDefault(Math.max(1, ranks));
    }

    /** Ranks to start when none are named: every slot of the nodes file, or 2 locally. */
    public synchronized int defaultRanks() {
        if (pool != null && pool.alive()) return pool.size();
        return configured != null ? configured.slots() : 2;
    }

    /** Reads and uses another nodes file (the pool restarts on next use). */
    public synchronized Nodes useNodesFile(Path file) {
        Nodes n = Nodes.read(file);
        stop();
        configured = n;
        unreadable = null;
        nodesFile = file;
        return n;
    }

    /** Validates {@code text}, writes it to the nodes file (temp file + rename) and uses it. */
    public synchronized Nodes writeNodes(String text) {
        Nodes n = Nodes.parse(text, "nodes");
        try {
            Files.createDirectories(nodesFile.toAbsolutePath().getParent());
            Path tmp = Files.createTempFile(nodesFile.toAbsolutePath().getParent(), ".nodes", ".tmp");
            Files.writeString(tmp, text.endsWith("\n") ? text : text + "\n");
            Files.move(tmp, nodesFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UserError("cannot write nodes file " + nodesFile + ": " + e.getMessage());
        }
        stop();
        configured = n;
        unreadable = null;
        return n;
    }

    /** Forgets the nodes file and goes back to the local default. */
    public synchronized void useDefault() {
        stop();
        configured = null;
        unreadable = null;
    }

    /**
     * The running pool with {@code ranks} ranks, started (or restarted, if it has another
     * size or died) as needed.
     */
    public synchronized WorkerPool pool(int ranks) {
        if (pool != null && pool.alive() && pool.size() == ranks) return pool;
        stop();
        pool = WorkerPool.start(nodes(ranks), ranks, workerOptions());
        if (metrics != null) pool.metrics(metrics);
        pool.onSuccessor(this::follow);
        return pool;
    }

    /** A run restarted its pool after a failure: the new generation is the session's pool from now on. */
    private synchronized void follow(WorkerPool next) {
        pool = next;
    }

    /** The options this session starts workers with. */
    public WorkerPool.Options workerOptions() { return WorkerPool.Options.defaults(); }

    /** The pool if one is up, else null. */
    public synchronized WorkerPool current() {
        return pool != null && pool.alive() ? pool : null;
    }

    public synchronized void stop() {
        if (pool != null) pool.close();
        pool = null;
    }

    public synchronized List<WorkerPool.RankStatus> status() {
        return pool == null ? List.of() : pool.status();
    }

    /** Starts (once) the Prometheus endpoint on {@code port} (0: any free port) of the master address. */
    public synchronized MetricsServer metrics(int port) {
        if (port < 0 || port > 65535) throw new UserError("--metrics-port must be 0 (any free port) or a TCP port up to 65535, got " + port);
        if (metrics == null) {
            metrics = MetricsServer.start(nodes(1).masterAddr(), port);
            if (pool != null) pool.metrics(metrics);
        }
        return metrics;
    }

    /** The Prometheus endpoint if started, else null. */
    public synchronized MetricsServer metricsIfStarted() {
        return metrics;
    }
}
