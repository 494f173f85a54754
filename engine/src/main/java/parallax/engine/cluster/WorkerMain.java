package parallax.engine.cluster;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;
import org.bytedeco.pytorch.global.torch;

/**
 * One rank: a JVM started by a launcher (local process, ssh, or a scheduler). It joins the
 * rendezvous, builds the world group, then serves the coordinator's commands over the
 * control channel ({@link Wire}) until told to exit, and exits at once if the coordinator's
 * connection drops (so no rank outlives its notebook).
 *
 * <p>Configuration comes from flags, falling back to torchrun's environment variables, so
 * a Slurm {@code srun} or a Kubernetes PyTorchJob can start ranks directly:
 * <pre>
 *   --master-addr / MASTER_ADDR   --master-port / MASTER_PORT   --rank / RANK
 *   --world / WORLD_SIZE          --local-rank / LOCAL_RANK     --device / PARALLAX_DEVICE (cpu;
 *                                     cuda:N; "cuda" = cuda:LOCAL_RANK, as torchrun/Slurm place ranks)
 *   --host-addr / PARALLAX_HOST_ADDR (address this rank's Gloo device binds; default MASTER_ADDR's
 *                                     interface for local runs, else this host's name)
 *   --coordinator host:port / PARALLAX_COORDINATOR, --token / PARALLAX_TOKEN: attach to a notebook
 *   --task CLASS [--args JSON] [--mesh dp,tp,pp]: without a coordinator, run one RankTask,
 *                                     print {"rank":r,"result":...} and exit (batch jobs)
 * </pre>
 */
public final class WorkerMain {

    private final Map<String, String> opt;
    private final int rank;
    private final int world;
    private final int localRank;
    private final String host;
    private final String device;
    private final long timeoutMs;
    /** The job's generation (0, then +1 per restart): every store key carries it, so a new generation's rendezvous never meets an old one's keys. */
    private final String generationPrefix;
    private final CommStats stats = new CommStats();
    private Writer control;
    private Rendezvous rdv;
    private Collectives worldGroup;
    private Mesh mesh;
    private int meshGeneration;
    private final Map<MeshShape, Mesh> meshes = new HashMap<>();
    private volatile boolean busy;
    private volatile long lastStep = -1;
    private SpmdShell shell;
    private final List<String> addedClasspath = new ArrayList<>();

    private WorkerMain(Map<String, String> opt) {
        this.opt = opt;
        this.rank = Integer.parseInt(need(opt, "rank", "RANK"));
        this.world = Integer.parseInt(need(opt, "world", "WORLD_SIZE"));
        this.localRank = Integer.parseInt(get(opt, "local-rank", "LOCAL_RANK", "0"));
        this.host = get(opt, "host", "PARALLAX_HOST", hostName());
        this.device = rankDevice(get(opt, "device", "PARALLAX_DEVICE", "cpu"), localRank);
        this.timeoutMs = Long.parseLong(get(opt, "timeout-ms", "PARALLAX_TIMEOUT_MS", "60000"));
        this.generationPrefix = "gen" + Integer.parseInt(get(opt, "generation", "PARALLAX_GENERATION", "0")) + "/";
    }

    /**
     * The rank's device: as given ("cpu", "cuda:N"), or "cuda" alone for one GPU per local
     * rank, cuda:LOCAL_RANK, as torchrun and Slurm lay ranks out (numbered among the GPUs
     * CUDA_VISIBLE_DEVICES leaves visible).
     */
    static String rankDevice(String given, int localRank) {
        String d = given.trim().toLowerCase(java.util.Locale.ROOT);
        if (d.equals("cuda") || d.equals("gpu")) return "cuda:" + localRank;
        return parallax.engine.torch.Device.parse(d).label();
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opt = parse(args);
        WorkerMain w;
        try {
            w = new WorkerMain(opt);
        } catch (RuntimeException e) {
            System.err.println("parallax worker: " + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            w.serve();
        } catch (Throwable t) {
            w.fatal(t);
            Runtime.getRuntime().halt(3);
        }
        Runtime.getRuntime().halt(0);
    }

    private void serve() throws Exception {
        long t0 = System.nanoTime();
        String coordinator = get(opt, "coordinator", "PARALLAX_COORDINATOR", null);
        BlockingQueue<JsonObject> commands = new LinkedBlockingQueue<>();
        if (coordinator != null) connect(coordinator, commands);
        double jvmMs = System.currentTimeMillis() - java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
        long tTorch = System.nanoTime();
        parallax.engine.torch.CudaCheck.requireLoadable(); // a GPU build that cannot load here: one line, not SIGABRT
        torch.set_num_threads(1);
        double torchMs = (System.nanoTime() - tTorch) / 1e6;
        String masterAddr = need(opt, "master-addr", "MASTER_ADDR");
        int masterPort = Integer.parseInt(need(opt, "master-port", "MASTER_PORT"));
        String hostAddr = get(opt, "host-addr", "PARALLAX_HOST_ADDR", isLoopback(masterAddr) ? masterAddr : host);
        // The rank's GPU is bound before any CUDA work, NCCL's group set-up included.
        parallax.engine.torch.Device.parse(device).bind();
        long tStore = System.nanoTime();
        rdv = Rendezvous.join(masterAddr, masterPort, rank, world, device, hostAddr, timeoutMs);
        double storeMs = (System.nanoTime() - tStore) / 1e6;
        long tGroups = System.nanoTime();
        worldGroup = rdv.group(generationPrefix + "world/", "world", range(world), stats);
        MeshShape shape = parseMesh(get(opt, "mesh", "PARALLAX_MESH", null));
        ensureMesh(shape);
        double groupsMs = (System.nanoTime() - tGroups) / 1e6;
        double readyMs = (System.nanoTime() - t0) / 1e6;
        if (coordinator == null) {
            runStandalone(shape);
            return;
        }
        JsonObject ready = Wire.msg("ready");
        ready.addProperty("rank", rank);
        ready.addProperty("readyMs", readyMs);
        ready.addProperty("backend", rdv.backend());
        ready.addProperty("device", device);
        ready.addProperty("rssBytes", rssBytes());
        JsonObject phases = new JsonObject();
        phases.addProperty("jvmToMainMs", jvmMs);
        phases.addProperty("libtorchLoadMs", torchMs);
        phases.addProperty("storeMs", storeMs);
        phases.addProperty("groupsMs", groupsMs);
        ready.add("phases", phases);
        Wire.send(control, ready);
        while (true) {
            JsonObject cmd = commands.take();
            String type = cmd.get("type").getAsString();
            if (type.equals("exit")) return;
            handle(cmd);
        }
    }

    /** Connects the control channel; a reader thread answers status and queues the rest. */
    private void connect(String coordinator, BlockingQueue<JsonObject> commands) throws IOException {
        int colon = coordinator.lastIndexOf(':');
        Socket s = new Socket();
        s.connect(new InetSocketAddress(coordinator.substring(0, colon), Integer.parseInt(coordinator.substring(colon + 1))), 10_000);
        s.setTcpNoDelay(true);
        control = new BufferedWriter(new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8));
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        JsonObject hello = Wire.msg("hello");
        hello.addProperty("rank", rank);
        hello.addProperty("pid", ProcessHandle.current().pid());
        hello.addProperty("host", host);
        hello.addProperty("token", get(opt, "token", "PARALLAX_TOKEN", ""));
        Wire.send(control, hello);
        java.util.concurrent.atomic.AtomicLong lastHeard = new java.util.concurrent.atomic.AtomicLong(System.nanoTime());
        watchCoordinator(lastHeard);
        Thread reader = new Thread(() -> {
            try {
                JsonObject m;
                while ((m = Wire.read(in)) != null) {
                    lastHeard.set(System.nanoTime());
                    String type = m.get("type").getAsString();
                    if (type.equals("ping")) {
                        Wire.send(control, Wire.msg("pong"));   // the coordinator's sign that this rank is reachable
                    } else if (type.equals("status")) {
                        Wire.send(control, status());
                    } else if (type.equals("exit")) {
                        Runtime.getRuntime().halt(0);
                    } else {
                        commands.add(m);
                    }
                }
            } catch (IOException | RuntimeException e) {
                // fall through: a broken channel means the coordinator is gone
            }
            // The coordinator is gone (closed, killed, or its machine died): no orphan ranks.
            Runtime.getRuntime().halt(4);
        }, "parallax-control");
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Exits when the coordinator has been silent for {@code parallax.control.silenceMs}
     * (default 30 s; it pings every second): its machine or the link to it is gone, and a
     * connection that cannot be reached is never closed, so this rank would outlive its notebook.
     */
    private void watchCoordinator(java.util.concurrent.atomic.AtomicLong lastHeard) {
        long limit = Long.getLong("parallax.control.silenceMs", 30_000);
        Thread w = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(Math.min(1000, limit));
                } catch (InterruptedException e) {
                    return;
                }
                long silent = (System.nanoTime() - lastHeard.get()) / 1_000_000;
                if (silent > limit) {
                    System.err.println("parallax worker rank " + rank + ": no word from the coordinator for " + silent / 1000.0 + " s; exiting");
                    Runtime.getRuntime().halt(4);
                }
            }
        }, "parallax-watchdog");
        w.setDaemon(true);
        w.start();
    }

    private JsonObject status() {
        JsonObject st = Wire.msg("status");
        st.addProperty("rank", rank);
        st.addProperty("pid", ProcessHandle.current().pid());
        st.addProperty("host", host);
        st.addProperty("device", device);
        st.addProperty("backend", rdv == null ? "" : rdv.backend());
        // how the world group moves tensors: "shm" when every rank is on this machine
        st.addProperty("transport", worldGroup == null ? "" : worldGroup.transport());
        st.addProperty("rssBytes", rssBytes());
        st.addProperty("busy", busy);
        st.addProperty("lastStep", lastStep);
        return st;
    }

    private void handle(JsonObject cmd) throws IOException {
        long id = cmd.get("id").getAsLong();
        busy = true;
        lastStep = -1;
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        PrintStream fwd = new PrintStream(new LineForwarder(line -> sendOut(id, line)), true, StandardCharsets.UTF_8);
        System.setOut(fwd);
        System.setErr(fwd);
        JsonObject reply;
        try {
            ensureMesh(parseMesh(cmd.has("mesh") ? cmd.get("mesh").getAsString() : null));
            JsonElement value;
            String type = cmd.get("type").getAsString();
            if (type.equals("exec")) {
                if (shell == null) {
                    shell = new SpmdShell();
                    addedClasspath.forEach(shell::addToClasspath);
                }
                value = shell.eval(cmd.get("code").getAsString(), dist());
            } else if (type.equals("classpath")) {
                value = addClasspath(cmd.getAsJsonArray("paths"));
            } else {
                value = runTask(cmd.get("task").getAsString(), cmd.has("args") ? cmd.get("args").getAsString() : "{}", reporter(id));
            }
            reply = Wire.msg("result");
            reply.add("value", value == null ? JsonNull.INSTANCE : value);
        } catch (Throwable t) {
            reply = Wire.msg("error");
            reply.addProperty("message", describe(t));
        } finally {
            fwd.flush();
            System.setOut(oldOut);
            System.setErr(oldErr);
            busy = false;
        }
        reply.addProperty("id", id);
        reply.addProperty("rank", rank);
        reply.addProperty("lastStep", lastStep);
        reply.add("comm", Wire.GSON.toJsonTree(stats.toMap()));
        Wire.send(control, reply);
    }

    /** Jars the kernel added to its class path (%maven, %jars) after this rank started. */
    private JsonElement addClasspath(JsonArray paths) {
        for (JsonElement p : paths) {
            addedClasspath.add(p.getAsString());
            if (shell != null) shell.addToClasspath(p.getAsString());
        }
        return new JsonPrimitive(addedClasspath.size());
    }

    private JsonElement runTask(String className, String argsJson, RankReporter reporter) throws Exception {
        Class<?> c;
        try {
            c = Class.forName(className);
        } catch (ClassNotFoundException e) {
            throw new ClusterError("task class " + className + " is not on the worker classpath");
        }
        if (!RankTask.class.isAssignableFrom(c)) throw new ClusterError(className + " does not implement RankTask");
        RankTask task = (RankTask) c.getDeclaredConstructor().newInstance();
        Object v = task.run(dist(), argsJson, reporter);
        return v == null ? null : Wire.GSON.toJsonTree(v);
    }

    private void runStandalone(MeshShape shape) throws Exception {
        String task = opt.get("task");
        if (task == null) throw new ClusterError("no --task and no --coordinator: nothing to do");
        RankReporter rep = new RankReporter() {
            @Override public void step(long step, Map<String, ?> metrics) { lastStep = step; line("step", step, metrics); }
            @Override public void event(String kind, Map<String, ?> fields) { line(kind, -1, fields); }
            @Override public void log(String text) { line("log", -1, Map.of("text", text)); }
            private void line(String kind, long step, Map<String, ?> f) {
                JsonObject o = Wire.msg("event");
                o.addProperty("rank", rank);
                o.addProperty("kind", kind);
                o.addProperty("step", step);
                o.add("fields", Wire.GSON.toJsonTree(f));
                System.out.println(Wire.GSON.toJson(o));
            }
        };
        JsonElement v = runTask(task, opt.getOrDefault("args", "{}"), rep);
        worldGroup.barrier();
        JsonObject out = Wire.msg("result");
        out.addProperty("rank", rank);
        out.add("result", v == null ? JsonNull.INSTANCE : v);
        System.out.println(Wire.GSON.toJson(out));
        System.out.flush();
    }

    private RankReporter reporter(long id) {
        return new RankReporter() {
            @Override public void step(long step, Map<String, ?> metrics) {
                lastStep = step;
                Map<String, Object> m = new java.util.LinkedHashMap<>(metrics);
                m.putIfAbsent("commSeconds", stats.totalNanos() / 1e9);
                m.putIfAbsent("commBytes", stats.totalBytes());
                m.putIfAbsent("rssBytes", rssBytes());
                send("step", step, m);
            }
            @Override public void event(String kind, Map<String, ?> fields) { send(kind, -1, fields); }
            @Override public void log(String line) { sendOut(id, line); }
            private void send(String kind, long step, Map<String, ?> fields) {
                JsonObject o = Wire.msg("event");
                o.addProperty("id", id);
                o.addProperty("rank", rank);
                o.addProperty("kind", kind);
                o.addProperty("step", step);
                o.add("fields", Wire.GSON.toJsonTree(fields));
                try {
                    Wire.send(control, o);
                } catch (IOException e) {
                    Runtime.getRuntime().halt(4);
                }
            }
        };
    }

    private void sendOut(long id, String line) {
        JsonObject o = Wire.msg("out");
        o.addProperty("id", id);
        o.addProperty("rank", rank);
        o.addProperty("text", line);
        try {
            Wire.send(control, o);
        } catch (IOException e) {
            Runtime.getRuntime().halt(4);
        }
    }

    /** Rebuilds the DP/TP/PP groups when a run asks for a different mesh shape. */
    private void ensureMesh(MeshShape shape) {
        if (shape == null) shape = mesh == null ? MeshShape.dataParallel(world) : mesh.shape();
        shape.requireWorld(world);
        if (mesh != null && mesh.shape().equals(shape)) return;
        // Every rank sees the same sequence of shapes, so reusing a mesh built earlier is
        // consistent across ranks and saves re-creating its Gloo groups.
        Mesh known = meshes.get(shape);
        if (known != null) {
            mesh = known;
            return;
        }
        String prefix = generationPrefix + "mesh" + (++meshGeneration) + "/";
        mesh = new Mesh(shape, rank, worldGroup, (name, members) -> rdv.group(prefix + name + "/", name, members, stats));
        meshes.put(shape, mesh);
    }

    Dist dist() {
        return new Dist(rank, localRank, host, device, rdv.backend(), worldGroup, mesh, stats);
    }

    private void fatal(Throwable t) {
        String m = describe(t);
        System.err.println("parallax worker rank " + rank + ": " + m);
        t.printStackTrace();
        if (control != null) {
            JsonObject o = Wire.msg("fatal");
            o.addProperty("rank", rank);
            o.addProperty("message", m);
            try {
                Wire.send(control, o);
            } catch (IOException ignored) {
                // the coordinator learns from the exit instead
            }
        }
    }

    static String describe(Throwable t) {
        Throwable root = t;
        while (root instanceof java.lang.reflect.InvocationTargetException && root.getCause() != null) root = root.getCause();
        String msg = String.valueOf(root.getMessage()).lines().findFirst().orElse("");
        if (root instanceof OutOfMemoryError) return "out of memory: " + msg;
        if (root instanceof ClusterError || root instanceof parallax.engine.UserError) return msg;
        return root.getClass().getSimpleName() + ": " + msg;
    }

    // ---- small helpers ----

    static long rssBytes() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux: unknown
        }
        return -1;
    }

    private static MeshShape parseMesh(String s) {
        if (s == null || s.isBlank()) return null;
        String[] p = s.split(",");
        int cp = p.length > 3 ? Integer.parseInt(p[3].trim()) : 1;
        return new MeshShape(Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim()), Integer.parseInt(p[2].trim()), cp);
    }

    static String meshArg(MeshShape s) {
        return s.dp() + "," + s.tp() + "," + s.pp() + "," + s.cp();
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }

    private static boolean isLoopback(String addr) {
        return addr.startsWith("127.") || addr.equals("localhost") || addr.equals("::1");
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("worker arguments are --name value pairs; bad: " + args[i]);
            }
            m.put(args[i].substring(2), args[++i]);
        }
        return m;
    }

    private static String get(Map<String, String> opt, String flag, String env, String dflt) {
        String v = opt.get(flag);
        if (v == null && env != null) v = System.getenv(env);
        return v == null ? dflt : v;
    }

    private static String need(Map<String, String> opt, String flag, String env) {
        String v = get(opt, flag, env, null);
        if (v == null) throw new IllegalArgumentException("missing --" + flag + " (or environment variable " + env + ")");
        return v;
    }

    /** An OutputStream that hands over complete lines. */
    private static final class LineForwarder extends java.io.OutputStream {
        private final Consumer<String> sink;
        private final java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();

        LineForwarder(Consumer<String> sink) { this.sink = sink; }

        @Override
        public synchronized void write(int b) {
            if (b == '\n') {
                sink.accept(buf.toString(StandardCharsets.UTF_8));
                buf.reset();
            } else {
                buf.write(b);
            }
        }

        @Override
        public synchronized void flush() {
            if (buf.size() > 0) {
                sink.accept(buf.toString(StandardCharsets.UTF_8));
                buf.reset();
            }
        }
    }
}
