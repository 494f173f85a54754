package parallax.engine.cluster;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import parallax.engine.cluster.RankChannel.Incoming;

/**
 * The coordinator's side of the runtime: a pool of worker JVMs, one per rank, joined into
 * one c10d world, that stays up between runs (like ipyparallel's engines).
 *
 * <pre>{@code
 * try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(4), 4, WorkerPool.Options.defaults())) {
 *     List<JsonElement> perRank = pool.run("my.pkg.SumTask", "{\"n\":4}", new MeshShape(2, 2, 1),
 *             ev -> System.out.println(ev));
 * }
 * }</pre>
 *
 * <p>Failure handling: a rank that exits or drops its connection during a run ends the run
 * at once with a {@link ClusterError} naming the rank, host, exit cause and last completed
 * step; the other ranks are stopped and the pool is closed (the next start is clean). An
 * interrupt of the calling thread does the same within the stop grace (about 2 s).
 * Workers exit by themselves when this process dies (their control socket closes).
 *
 * <p>The parts: each rank's process and control connection is a {@link RankChannel}; one
 * {@link #run} or {@link #exec} is a {@link RunCollector}; the line a lost rank gets is a
 * {@link FailureReport}. This class starts the ranks, answers status and stops them.
 */
public final class WorkerPool implements AutoCloseable {

    /** Settings of a pool. */
    public record Options(Path logDir, long startTimeoutMs, long collectiveTimeoutMs, String classpath,
                          List<String> jvmArgs) {
        public static Options defaults() {
            String cp = System.getProperty("java.class.path");
            List<String> jvm = new ArrayList<>(List.of("-XX:+UseSerialGC", "-Xss1m",
                    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED", "-XX:TieredStopAtLevel=1",
                    "-Xmx512m", "-XX:MaxMetaspaceSize=256m", "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0",
                    "-Dorg.bytedeco.javacpp.maxBytes=0"));
            String extra = System.getenv("PARALLAX_WORKER_OPTS");
            if (extra != null && !extra.isBlank()) jvm.addAll(List.of(extra.trim().split("\\s+")));
            Path logs = Path.of(System.getProperty("java.io.tmpdir"), "parallax-" + ProcessHandle.current().pid());
            return new Options(logs, 60_000, 60_000, cp, jvm);
        }

        /** The worker JVM's maximum heap: the last -Xmx among the JVM arguments (PARALLAX_WORKER_OPTS may raise it). */
        public long heapBytes() { return JvmArgs.maxHeapBytes(jvmArgs); }

        public Options withLogDir(Path dir) { return new Options(dir, startTimeoutMs, collectiveTimeoutMs, classpath, jvmArgs); }

        public Options withTimeouts(long startMs, long collectiveMs) { return new Options(logDir, startMs, collectiveMs, classpath, jvmArgs); }

        public Options withJvmArgs(List<String> args) { return new Options(logDir, startTimeoutMs, collectiveTimeoutMs, classpath, args); }
    }

    /** One rank as the coordinator sees it. */
    public record RankStatus(int rank, String host, long pid, String device, String backend, String transport,
                             long rssBytes, String health, long lastStep) {}

    private final Nodes nodes;
    private final Options options;
    private final List<RankChannel> ranks = new ArrayList<>();
    private final BlockingQueue<Incoming> inbox = new LinkedBlockingQueue<>();
    private final ServerSocket control;
    private final String token;
    private final int masterPort;
    private final long startNanos = System.nanoTime();
    /** 0 for a pool started fresh; each restart after a failure starts the next generation. */
    private final int generation;
    /** Failures this job has restarted after (carried from generation to generation). */
    private final int restarts;
    private final EventLog events;
    private volatile Consumer<WorkerPool> successorListener = p -> {};
    private final AtomicBoolean closing = new AtomicBoolean();
    private volatile boolean closed;
    private long nextId = 1;
    private double startSeconds;
    private volatile MetricsServer metrics;
    private final Thread shutdownHook = new Thread(this::close, "parallax-pool-shutdown");

    private WorkerPool(Nodes nodes, Options options, ServerSocket control, String token, int masterPort, int generation, int restarts) {
        this.generation = generation;
        this.restarts = restarts;
        this.events = new EventLog(options.logDir().resolve("coordinator.jsonl"));
        this.nodes = nodes;
        this.options = options;
        this.control = control;
        this.token = token;
        this.masterPort = masterPort;
    }

    /**
     * Starts {@code world} ranks on {@code nodes} and waits until every rank has joined the
     * world group. Throws a one-line {@link ClusterError} (port in use, node unreachable,
     * rank died at start, rendezvous timeout naming the missing ranks) and leaves nothing running.
     */
    public static WorkerPool start(Nodes nodes, int world, Options options) {
        return start(nodes, world, options, 0, 0);
    }

    private static WorkerPool start(Nodes nodes, int world, Options options, int generation, int restarts) {
        List<Nodes.Placement> placements = nodes.place(world);
        InetAddress bindAddr = resolve("master_addr", nodes.masterAddr());
        InetAddress coordinatorAddr = resolve("coordinator_addr", nodes.coordinatorAddr());
        // The coordinator listens on coordinator_addr (default master_addr), an address of this
        // machine; rank 0 serves the store on master_addr (on a remote rank 0 only when the port is named).
        int port = nodes.masterPort();
        if (placements.get(0).node().local() || isThisMachine(bindAddr)) port = checkPort(bindAddr, port);
        else if (port == 0) port = 29500;
        ServerSocket control;
        try {
            control = new ServerSocket();
            control.bind(new InetSocketAddress(coordinatorAddr, 0), 64);
        } catch (IOException e) {
            throw new ClusterError("cannot listen on " + nodes.coordinatorAddr() + " for the worker control channel: " + e.getMessage());
        }
        byte[] t = new byte[16];
        new SecureRandom().nextBytes(t);
        WorkerPool pool = new WorkerPool(nodes, options, control, HexFormat.of().formatHex(t), port, generation, restarts);
        try {
            pool.launch(placements);
            pool.events.write("info", "pool-start", world + " ranks up in generation " + generation,
                    Map.of("generation", generation, "restarts", restarts, "world", world, "startSeconds", pool.startSeconds));
            return pool;
        } catch (RuntimeException | Error e) {
            pool.close();
            throw e;
        }
    }

    private static InetAddress resolve(String key, String addr) {
        try {
            return InetAddress.getByName(addr);
        } catch (IOException e) {
            throw new ClusterError(key + " " + addr + " does not resolve: " + e.getMessage());
        }
    }

    private static boolean isThisMachine(InetAddress a) {
        try {
            return a.isLoopbackAddress() || NetworkInterface.getByInetAddress(a) != null;
        } catch (IOException e) {
            return false;
        }
    }

    /** Picks a free port (port 0) or checks that the named one is free on the master address. */
    private static int checkPort(InetAddress addr, int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(addr, port));
            return s.getLocalPort();
        } catch (BindException e) {
            throw new ClusterError("rendezvous port " + addr.getHostAddress() + ":" + port
                    + " is in use; set another master_port in the nodes file (or 0 for any free port)");
        } catch (IOException e) {
            throw new ClusterError("cannot bind " + addr.getHostAddress() + ":" + port + ": " + e.getMessage());
        }
    }

    private void launch(List<Nodes.Placement> placements) {
        try {
            Files.createDirectories(options.logDir());
        } catch (IOException e) {
            throw new ClusterError("cannot create log directory " + options.logDir() + ": " + e.getMessage());
        }
        int world = placements.size();
        String coordinator = control.getInetAddress().getHostAddress() + ":" + control.getLocalPort();
        for (Nodes.Placement p : placements) {
            List<String> args = List.of(
                    "--rank", String.valueOf(p.rank()), "--world", String.valueOf(world),
                    "--local-rank", String.valueOf(p.localRank()), "--host", p.node().host(),
                    "--host-addr", p.node().addr(), "--device", p.device(),
                    "--master-addr", nodes.masterAddr(), "--master-port", String.valueOf(masterPort),
                    "--coordinator", coordinator, "--token", token,
                    "--timeout-ms", String.valueOf(options.collectiveTimeoutMs()),
                    "--generation", String.valueOf(generation));
            Path log = options.logDir().resolve("rank-" + p.rank() + ".out");
            Path jsonLog = options.logDir().resolve("rank-" + p.rank() + ".jsonl");
            Process proc;
            try {
                if (generation == 0) { // a restarted job's logs go on in the same files
                    Files.deleteIfExists(log);
                    Files.deleteIfExists(jsonLog);
                }
                List<String> jvm = new ArrayList<>(options.jvmArgs());
                // CUDA ranks load the GPU natives of the -Pcuda build (not verified here: no GPU).
                // A build with libtorch's GPU natives has only those: every rank must ask for them.
                if (parallax.engine.torch.CudaCheck.gpuNatives()) jvm.add("-Dorg.bytedeco.javacpp.platform.extension=-gpu");
                proc = Launcher.start(nodes, p.node(), jvm, options.classpath(), args, log);
            } catch (IOException e) {
                throw new ClusterError("cannot start rank " + p.rank() + " on " + p.node().host() + ": " + e.getMessage());
            }
            ranks.add(new RankChannel(p, proc, log, jsonLog, inbox));
        }
        Runtime.getRuntime().addShutdownHook(shutdownHook);
        Thread acceptor = new Thread(this::acceptLoop, "parallax-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        Thread ping = new Thread(this::pingLoop, "parallax-ping");
        ping.setDaemon(true);
        ping.start();
        awaitReady();
        startSeconds = (System.nanoTime() - startNanos) / 1e9;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                Socket s = control.accept();
                // Each connection says hello on its own thread, so a silent stranger on the
                // port cannot hold up the ranks.
                Thread t = new Thread(() -> greet(s), "parallax-hello");
                t.setDaemon(true);
                t.start();
            } catch (IOException | RuntimeException e) {
                if (closed) return;
            }
        }
    }

    /** How often every rank hears from the coordinator; a rank that hears nothing for long exits (WorkerMain). */
    static final long PING_MILLIS = 1000;

    private void pingLoop() {
        JsonObject ping = Wire.msg("ping");
        while (!closed) {
            for (RankChannel r : ranks) {
                if (!r.connected()) continue;
                try {
                    r.send(ping);
                } catch (IOException | RuntimeException ignored) {
                    // a lost rank is reported by its reader
                }
            }
            try {
                Thread.sleep(PING_MILLIS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private void greet(Socket s) {
        try {
            s.setTcpNoDelay(true);
            s.setSoTimeout(10_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            JsonObject hello = Wire.read(in);
            if (hello == null || !"hello".equals(hello.get("type").getAsString())
                    || !token.equals(hello.get("token").getAsString())) {
                s.close();   // not one of ours
                return;
            }
            s.setSoTimeout(0);
            ranks.get(hello.get("rank").getAsInt()).attach(s, hello.get("pid").getAsLong(), in, inbox);
        } catch (IOException | RuntimeException e) {
            try {
                s.close();
            } catch (IOException ignored) {
                // a stranger, or a rank that died while saying hello (its exit is reported)
            }
        }
    }

    private void awaitReady() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.startTimeoutMs());
        boolean[] ready = new boolean[ranks.size()];
        int n = 0;
        while (n < ranks.size()) {
            Incoming in = poll(deadline);
            if (in == null) {
                List<Integer> missing = new ArrayList<>();
                for (int i = 0; i < ready.length; i++) if (!ready[i]) missing.add(i);
                throw new ClusterError("rendezvous timed out after " + options.startTimeoutMs() / 1000 + " s: rank(s) "
                        + missing + " on " + missing.stream().map(i -> ranks.get(i).host()).distinct()
                        .collect(Collectors.joining(", ")) + " did not join; see " + options.logDir());
            }
            RankChannel r = ranks.get(in.rank());
            if (in.msg() == null) {
                if (!ready[in.rank()] || !r.process.isAlive() || !r.connected()) {
                    throw new ClusterError(FailureReport.death(r, "before joining"));
                }
                continue;
            }
            String type = in.msg().get("type").getAsString();
            if (type.equals("ready")) {
                ready[in.rank()] = true;
                r.readyMs = in.msg().get("readyMs").getAsDouble();
                if (in.msg().has("phases")) r.phases = in.msg().getAsJsonObject("phases");
                r.backend = in.msg().get("backend").getAsString();
                n++;
            } else if (type.equals("fatal")) {
                throw new ClusterError("rank " + in.rank() + " on " + r.host() + " failed to start: "
                        + in.msg().get("message").getAsString());
            }
        }
    }

    private Incoming poll(long deadlineNanos) {
        try {
            long wait = deadlineNanos - System.nanoTime();
            return wait <= 0 ? null : inbox.poll(wait, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            close();
            Thread.currentThread().interrupt();
            throw new ClusterError("interrupted: all " + ranks.size() + " ranks stopped");
        }
    }

    /**
     * Runs {@link RankTask} {@code taskClass} on every rank with the mesh {@code shape}
     * (null: keep the current one; a new shape rebuilds the DP/TP/PP groups) and returns
     * each rank's value as JSON, index = rank. Events stream to {@code listener} on this thread.
     */
    public synchronized List<JsonElement> run(String taskClass, String argsJson, MeshShape shape,
                                              Consumer<RankEvent> listener) {
        JsonObject cmd = Wire.msg("run");
        cmd.addProperty("task", taskClass);
        cmd.addProperty("args", argsJson == null ? "{}" : argsJson);
        return dispatch(cmd, shape, listener);
    }

    /**
     * Runs Java code (a {@code %%parallel} cell) in every rank's JShell with {@code dist}
     * bound; returns each rank's last expression value (as JSON strings) or JSON null.
     */
    public synchronized List<JsonElement> exec(String code, MeshShape shape, Consumer<RankEvent> listener) {
        JsonObject cmd = Wire.msg("exec");
        cmd.addProperty("code", code);
        return dispatch(cmd, shape, listener);
    }

    /**
     * Adds jars or classes folders to every rank's {@code %%parallel} JShell, for a kernel
     * whose user added them to its own (ranks started later get them on their class path).
     */
    public synchronized void addClasspath(List<Path> paths) {
        JsonObject cmd = Wire.msg("classpath");
        JsonArray list = new JsonArray();
        for (Path p : paths) list.add(p.toAbsolutePath().toString());
        cmd.add("paths", list);
        dispatch(cmd, null, ev -> {});
    }

    private List<JsonElement> dispatch(JsonObject cmd, MeshShape shape, Consumer<RankEvent> listener) {
        if (closed) throw new ClusterError("the worker pool is stopped; start it again");
        if (shape != null) {
            shape.requireWorld(ranks.size());
            cmd.addProperty("mesh", WorkerMain.meshArg(shape));
        }
        try {
            return new RunCollector(ranks, inbox, this::close, () -> metrics, listener, nextId++, options.collectiveTimeoutMs()).run(cmd);
        } catch (RanksLost e) {
            events.write("error", "ranks-lost", e.getMessage(), Map.of("generation", generation, "lost", e.lost(), "lastStep", e.lastStep()));
            throw e;
        }
    }

    /**
     * After ranks were lost (this pool is stopped): the job's next generation, as a
     * PyTorch Elastic agent starts one: {@code world} fresh workers on this pool's nodes,
     * less the slots of the {@code dropped} ranks (an elastic job does not refill them), at
     * a new rendezvous whose keys carry the generation. The Prometheus endpoint and the
     * logs carry over; whoever follows this pool ({@link #onSuccessor}) is told.
     */
    public WorkerPool nextGeneration(int world, List<Integer> dropped, String cause) {
        close();
        List<Nodes.Placement> gone = new ArrayList<>();
        for (int r : dropped) gone.add(ranks.get(r).place);
        Nodes remaining = gone.isEmpty() ? nodes : nodes.without(gone);
        events.write("warn", "restart", "starting generation " + (generation + 1) + " on " + world + " ranks after: " + cause,
                Map.of("generation", generation + 1, "restarts", restarts + 1, "world", world, "dropped", dropped));
        WorkerPool next = start(remaining, world, options, generation + 1, restarts + 1);
        MetricsServer ms = metrics;
        if (ms != null) {
            next.metrics(ms);
            ms.onGeneration(next.generation, next.restarts);
        }
        next.successorListener = successorListener;
        successorListener.accept(next);
        return next;
    }

    /**
     * Kills rank {@code rank}'s process with SIGKILL, as the OOM killer or a failing node
     * would (a drill for tests and lessons). Only a rank on this machine: a remote rank's
     * pid means nothing here.
     */
    public void kill(int rank) {
        RankChannel r = ranks.get(rank);
        if (!r.place.node().local() || r.pid <= 0)
            throw new ClusterError("rank " + rank + " runs on " + r.host() + ": only ranks on this machine can be killed from here");
        ProcessHandle.of(r.pid).ifPresent(ProcessHandle::destroyForcibly);
    }

    /** Called with each pool that replaces this one after a failure (the session keeps the current pool). */
    public void onSuccessor(Consumer<WorkerPool> listener) { this.successorListener = listener == null ? p -> {} : listener; }

    /** This pool's generation: 0 when started fresh, +1 for each restart after a failure. */
    public int generation() { return generation; }

    /** Failures the job has restarted after, up to this pool. */
    public int restarts() { return restarts; }

    /** The coordinator's JSON-lines log (failures, restarts, checkpoints). */
    public EventLog events() { return events; }

    /** Asks every rank for pid, RSS and whether it is busy; a rank silent for 2 s is "unresponsive". */
    public synchronized List<RankStatus> status() {
        if (closed) return List.of();
        for (RankChannel r : ranks) {
            r.lastStatus = null;
            try {
                r.send(Wire.msg("status"));
            } catch (IOException | RuntimeException ignored) {
                // reported as dead below
            }
        }
        long deadline = System.nanoTime() + 2_000_000_000L;
        List<Incoming> others = new ArrayList<>();
        int got = 0;
        while (got < ranks.size()) {
            Incoming in = poll(deadline);
            if (in == null) break;
            if (in.msg() != null && "status".equals(in.msg().get("type").getAsString())) {
                ranks.get(in.rank()).lastStatus = in.msg();
                got++;
            } else {
                others.add(in);
            }
        }
        inbox.addAll(others);
        List<RankStatus> out = new ArrayList<>();
        for (RankChannel r : ranks) {
            JsonObject s = r.lastStatus;
            String health = !r.process.isAlive() ? "dead" : s == null ? "unresponsive"
                    : s.get("busy").getAsBoolean() ? "busy" : "idle";
            out.add(new RankStatus(r.rank(), r.host(), r.pid, r.place.device(),
                    r.backend.isEmpty() ? Nodes.backendOf(r.place.device()) : r.backend,
                    s == null || !s.has("transport") ? "" : s.get("transport").getAsString(),
                    s == null ? -1 : s.get("rssBytes").getAsLong(), health, r.lastStep));
        }
        MetricsServer ms = metrics;
        if (ms != null) out.forEach(ms::onStatus);
        return out;
    }

    /** Feeds step events and status to a Prometheus endpoint from now on. */
    public void metrics(MetricsServer m) {
        this.metrics = m;
        if (m != null) m.onGeneration(generation, restarts);
    }

    public int size() { return ranks.size(); }

    public boolean alive() {
        return !closed && ranks.stream().allMatch(r -> r.process.isAlive());
    }

    public Nodes nodes() { return nodes; }

    public Path logDir() { return options.logDir(); }

    /** The options the pool's workers were started with. */
    public Options options() { return options; }

    /** Seconds from launching the first worker to every rank in the world group. */
    public double startSeconds() { return startSeconds; }

    /** Per rank, milliseconds from the worker's main() to its world group being ready. */
    public double[] readyMillis() {
        return ranks.stream().mapToDouble(r -> r.readyMs).toArray();
    }

    /** Per rank, where start-up time went: JVM to main, libtorch load, store, groups (ms). */
    public List<Map<String, Double>> readyPhases() {
        List<Map<String, Double>> out = new ArrayList<>();
        for (RankChannel r : ranks) {
            Map<String, Double> m = new LinkedHashMap<>();
            if (r.phases != null) r.phases.entrySet().forEach(e -> m.put(e.getKey(), e.getValue().getAsDouble()));
            out.add(m);
        }
        return out;
    }

    /** The worker processes (local ones; for ssh ranks, the ssh client). */
    public List<ProcessHandle> processes() {
        return ranks.stream().map(r -> r.process.toHandle()).collect(Collectors.toList());
    }

    /** Process ids the workers reported (their own pids, also for remote ranks). */
    public long[] workerPids() {
        return ranks.stream().mapToLong(r -> r.pid).toArray();
    }

    /** Stops every rank: asks them to exit, closes the channels, kills what is left after 2 s. */
    @Override
    public void close() {
        // Not synchronized: an interrupt or the shutdown hook must be able to stop a running job.
        if (!closing.compareAndSet(false, true)) return;
        closed = true;
        for (RankChannel r : ranks) r.hangUp();
        try {
            control.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        long deadline = System.nanoTime() + 2_000_000_000L;
        for (RankChannel r : ranks) r.awaitExitOrKill(deadline);
        // A rank unlinks its group's shared-memory segment once every member has mapped it;
        // one that died in between leaves it behind, named after its pid.
        for (RankChannel r : ranks) if (r.pid > 0 && r.place.node().local()) SharedMemoryGroup.removeLeftovers(r.pid);
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException ignored) {
            // already shutting down
        }
    }
}
