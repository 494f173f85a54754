package parallax.engine.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
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
    private final List<Path> addedClasspath = new ArrayList<>();
    private boolean hierarchical = true;
    private Nodes.Distribution distribution;   // null: as the nodes file says
    private TestBed testBed;
    private Nodes nodesBeforeTestBed;
    private Path fileBeforeTestBed;

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

    /** The nodes for {@code ranks} ranks: the configured file, or the local default (with the session's distribution, if set). */
    public synchronized Nodes nodes(int ranks) {
        if (unreadable != null) throw unreadable;
        Nodes n = configured != null ? configured : Nodes.localDefault(Math.max(1, ranks));
        return distribution == null ? n : n.withDistribution(distribution);
    }

    /** Deals ranks to nodes by {@code d} from now on, whatever the nodes file says; a change stops the running pool. */
    public synchronized void distribution(Nodes.Distribution d) {
        if (d != nodes(1).distribution()) stop();
        distribution = d;
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

    /**
     * The options this session starts workers with: the defaults, with the jars the kernel's
     * user added ({@link #addClasspath}) at the end of the class path, and the hierarchical
     * switch when it is off.
     */
    public synchronized WorkerPool.Options workerOptions() {
        WorkerPool.Options o = WorkerPool.Options.defaults();
        if (!addedClasspath.isEmpty()) {
            StringBuilder cp = new StringBuilder(o.classpath());
            for (Path p : addedClasspath) cp.append(java.io.File.pathSeparatorChar).append(p.toAbsolutePath());
            o = new WorkerPool.Options(o.logDir(), o.startTimeoutMs(), o.collectiveTimeoutMs(), cp.toString(), o.jvmArgs());
        }
        if (hierarchical) return o;
        List<String> jvm = new java.util.ArrayList<>(o.jvmArgs());
        jvm.add("-D" + Rendezvous.HIERARCHICAL_PROPERTY + "=false");
        return o.withJvmArgs(jvm);
    }

    /**
     * Jars or classes folders the kernel added to its own class path ({@code %maven},
     * {@code %jars}): ranks already running add them to their {@code %%parallel} JShell,
     * ranks started later have them on their class path.
     */
    public synchronized void addClasspath(List<Path> paths) {
        addedClasspath.addAll(paths);
        if (pool != null && pool.alive()) pool.addClasspath(paths);
    }

    /** What {@link #addClasspath} added, in order. */
    public synchronized List<Path> addedClasspath() {
        return List.copyOf(addedClasspath);
    }

    /**
     * Whether groups that span nodes use the hierarchical path (shared memory inside each
     * node, Gloo across); off: flat Gloo, for comparison. A change stops the running pool,
     * so the next start uses it.
     */
    public synchronized void hierarchical(boolean on) {
        if (on != hierarchical) stop();
        hierarchical = on;
    }

    public synchronized boolean hierarchical() { return hierarchical; }

    /**
     * Builds a multi-node test bed on this machine (root only) and makes its nodes file the
     * session's, replacing a running bed; {@link #removeTestBed()} goes back to the nodes used before.
     */
    public synchronized TestBed buildTestBed(int nodes, int slots, TestBed.Link link) {
        removeTestBed();
        TestBed bed = TestBed.build(nodes, slots, link);
        stop();
        nodesBeforeTestBed = configured;
        fileBeforeTestBed = nodesFile;
        configured = bed.nodesConfig();
        nodesFile = bed.nodesFile();
        testBed = bed;
        return bed;
    }

    /** The running test bed, or null. */
    public synchronized TestBed testBed() { return testBed; }

    /** Stops the ranks on the test bed, removes it, and goes back to the nodes used before it; false when none ran. */
    public synchronized boolean removeTestBed() {
        if (testBed == null) return false;
        stop();
        testBed.close();
        testBed = null;
        configured = nodesBeforeTestBed;
        nodesFile = fileBeforeTestBed;
        return true;
    }

    /** The rate the test bed's links are shaped to when the running pool is on it (bits/s), else 0. */
    public synchronized long shapedRate() {
        return testBed != null && pool != null && configured != null && pool.nodes().nodes().equals(configured.nodes())
                ? testBed.link().bitsPerSecond() : 0;
    }

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
            metrics = MetricsServer.start(nodes(1).coordinatorAddr(), port);
            if (pool != null) pool.metrics(metrics);
        }
        return metrics;
    }

    /** The Prometheus endpoint if started, else null. */
    public synchronized MetricsServer metricsIfStarted() {
        return metrics;
    }
}
