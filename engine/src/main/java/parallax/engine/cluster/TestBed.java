package parallax.engine.cluster;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import parallax.engine.UserError;

/**
 * Several nodes on one Linux machine, each a network namespace of its own: what the
 * multi-node tests and lesson 12 run on. Per node: a veth pair into a bridge, one address
 * on a private /24 made for the bed (10.77.x.0/24, checked unused first), a private mount
 * namespace with its own tmpfs {@code /dev/shm}, and an {@code sshd} listening on the
 * node's address with a host key and a user key made for the bed. This machine, in its
 * own namespace, is on the bridge as 10.77.x.1: the coordinator listens there and rank 0
 * serves the store on the first node. {@link #nodesFile()} is the nodes file for it.
 *
 * <p>Links can be shaped ({@code tc}: a token bucket for the rate, netem for a delay where
 * the kernel has it) in both directions of each node's veth, like a node's NIC into a
 * non-blocking switch, and taken down. {@link #close()} removes everything (processes in the namespaces, the
 * namespaces, the bridge, the keys); a bed left by a process that died is removed by the
 * next {@link #build}. Needs root: see {@link #unavailableReason()}.
 *
 * <p>What it proves and what it does not (docs/cluster.md): the ranks talk over real
 * TCP between separate network stacks, find no shared memory across nodes, and see the
 * shaped rate and delay; but all nodes share one kernel, its CPUs and memory bandwidth,
 * and there is no RDMA.
 */
public final class TestBed implements AutoCloseable {

    /** A link's rate (bits/s, 0: unshaped) and one-way delay added by the node's side. */
    public record Link(long bitsPerSecond, double delayMs) {

        public static final Link UNSHAPED = new Link(0, 0);

        public Link {
            if (bitsPerSecond < 0) throw new UserError("a link rate cannot be negative");
            if (!(delayMs >= 0 && delayMs <= 10_000)) throw new UserError("a link delay is 0 to 10000 ms, got " + delayMs);
        }

        /** {@code rate} such as 100mbit, 1gbit, 10gbit, 500kbit (or null: unshaped); {@code delay} such as 0.5ms, 2ms, 300us (a bare number: ms; or null). */
        public static Link parse(String rate, String delay) {
            return new Link(rate == null ? 0 : bits(rate), delay == null ? 0 : millis(delay));
        }

        static long bits(String rate) {
            String r = rate.toLowerCase(Locale.ROOT).strip().replace("bit/s", "bit").replace("bps", "bit");
            long mult = r.endsWith("gbit") ? 1_000_000_000L : r.endsWith("mbit") ? 1_000_000L : r.endsWith("kbit") ? 1000L
                    : r.endsWith("bit") ? 1 : -1;
            try {
                if (mult < 0) throw new NumberFormatException();
                double v = Double.parseDouble(r.replaceAll("[a-z]+$", ""));
                if (!(v > 0)) throw new NumberFormatException();
                long b = Math.round(v * mult);
                if (b < 8000) throw new UserError("link rate " + rate + " is below 8 kbit/s");
                return b;
            } catch (NumberFormatException e) {
                throw new UserError("'" + rate + "' is not a link rate such as 100mbit, 1gbit or 10gbit");
            }
        }

        static double millis(String delay) {
            String d = delay.toLowerCase(Locale.ROOT).strip();
            double f = d.endsWith("us") ? 1e-3 : d.endsWith("ms") ? 1 : d.endsWith("s") ? 1e3 : d.matches("[0-9.]+") ? 1 : -1;
            try {
                if (f < 0) throw new NumberFormatException();
                return Double.parseDouble(d.replaceAll("[a-z]+$", "")) * f;
            } catch (NumberFormatException e) {
                throw new UserError("'" + delay + "' is not a delay such as 0.5ms or 2ms");
            }
        }

        public boolean shaped() { return bitsPerSecond > 0 || delayMs > 0; }

        public String describe() {
            if (!shaped()) return "unshaped";
            String r = bitsPerSecond == 0 ? "" : bitsPerSecond % 1_000_000_000L == 0 ? bitsPerSecond / 1_000_000_000L + " Gbit/s"
                    : bitsPerSecond % 1_000_000L == 0 ? bitsPerSecond / 1_000_000L + " Mbit/s" : bitsPerSecond / 1000.0 + " kbit/s";
            return r + (delayMs > 0 ? (r.isEmpty() ? "" : ", ") + "+" + delayMs + " ms delay" : "");
        }
    }

    /** One node: its namespace, its address, the host end of its veth, its sshd's pid. */
    public record Node(String namespace, String addr, String hostLink, long sshdPid) {}

    private static final String PREFIX = "parallax-tb-";
    private static final String ALIAS = "parallax-testbed-";

    private final String id;
    private final String net;          // "10.77.x"
    private final Path dir;
    private final String bridge;
    private final List<Node> nodes = new ArrayList<>();
    private final List<Process> sshds = new ArrayList<>();
    private final List<String> namespaces = new ArrayList<>();
    private final int slots;
    private Path nodesFile;
    private Link link = Link.UNSHAPED;
    private boolean closed;
    private final Thread hook = new Thread(this::close, "parallax-testbed-teardown");

    private TestBed(String id, String net, Path dir, int slots) {
        this.id = id;
        this.net = net;
        this.dir = dir;
        this.slots = slots;
        this.bridge = "pxb" + id;
    }

    /** Why no bed can be built here (one line), or null when it can. */
    public static String unavailableReason() {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) return "network namespaces need Linux";
        long uid = effectiveUid();
        if (uid != 0) return "building network namespaces needs root (this process runs as uid " + uid + ")";
        for (String tool : List.of("ip", "tc", "sshd", "ssh", "ssh-keygen", "unshare", "nsenter", "mount")) {
            if (which(tool) == null) return "'" + tool + "' is not installed (Debian: iproute2, openssh-server, openssh-client, util-linux, mount)";
        }
        return null;
    }

    /**
     * Builds {@code count} nodes of {@code slots} ranks each, with every link shaped to
     * {@code link}; one line on failure, with nothing left behind.
     */
    public static TestBed build(int count, int slots, Link link) {
        if (count < 1 || count > 32) throw new UserError("a test bed has 1 to 32 nodes, not " + count);
        if (slots < 1 || slots > 64) throw new UserError("slots per node are 1 to 64, not " + slots);
        String why = unavailableReason();
        if (why != null) throw new UserError("cannot build a multi-node test bed here: " + why);
        removeLeftovers();
        String id = String.format("%04x", new SecureRandom().nextInt(1 << 16));
        Path dir;
        try {
            dir = Files.createTempDirectory("parallax-testbed-");
        } catch (IOException e) {
            throw new UserError("cannot make a directory for the test bed's keys: " + e.getMessage());
        }
        TestBed bed = new TestBed(id, freeSubnet(), dir, slots);
        Runtime.getRuntime().addShutdownHook(bed.hook);
        try {
            bed.make(count);
            bed.shape(link);
            return bed;
        } catch (RuntimeException e) {
            bed.close();
            throw e;
        }
    }

    private void make(int count) {
        run("ip", "link", "add", bridge, "type", "bridge");
        run("ip", "link", "set", bridge, "alias", ALIAS + ProcessHandle.current().pid());
        run("ip", "addr", "add", coordinatorAddr() + "/24", "dev", bridge);
        run("ip", "link", "set", bridge, "up");
        keygen("host_key");
        keygen("id");
        try {
            Files.copy(dir.resolve("id.pub"), dir.resolve("authorized_keys"));
            Files.createDirectories(Path.of("/run/sshd"));   // Debian's sshd wants its privilege-separation directory
        } catch (IOException e) {
            throw new UserError("test bed: " + e.getMessage());
        }
        for (int k = 0; k < count; k++) {
            String ns = PREFIX + ProcessHandle.current().pid() + "-" + id + "-" + k;
            String host = "pxh" + id + k, inside = "pxn" + id + k, addr = net + "." + (k + 2);
            run("ip", "netns", "add", ns);
            namespaces.add(ns);
            run("ip", "link", "add", host, "type", "veth", "peer", "name", inside);
            run("ip", "link", "set", inside, "netns", ns);
            run("ip", "-n", ns, "link", "set", inside, "name", "eth0");
            run("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0");
            run("ip", "-n", ns, "link", "set", "eth0", "up");
            run("ip", "-n", ns, "link", "set", "lo", "up");
            run("ip", "link", "set", host, "master", bridge);
            run("ip", "link", "set", host, "up");
            nodes.add(new Node(ns, addr, host, startSshd(k, ns, addr)));
        }
        writeNodesFile();
    }

    /**
     * An sshd configuration for a test node: key login only (host key {@code dir/host_key}, keys
     * allowed in {@code dir/authorized_keys}), root allowed, no PAM; {@code extra} lines appended.
     */
    public static String sshdConfig(Path dir, int port, List<String> listen, Path pidFile, String... extra) {
        List<String> lines = new ArrayList<>();
        for (String a : listen) lines.add("ListenAddress " + a);
        lines.addAll(List.of("Port " + port,
                "HostKey " + dir.resolve("host_key"),
                "AuthorizedKeysFile " + dir.resolve("authorized_keys"),
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no"));
        lines.addAll(List.of(extra));
        lines.add("PidFile " + pidFile);
        lines.add("");
        return String.join("\n", lines);
    }

    /** sshd in the node's network namespace and a mount namespace of its own, with a fresh tmpfs on /dev/shm. */
    private long startSshd(int k, String ns, String addr) {
        Path cfg = dir.resolve("sshd_config-" + k);
        try {
            Files.writeString(cfg, sshdConfig(dir, 22, List.of(addr), dir.resolve("sshd-" + k + ".pid"),
                    "MaxStartups 64",
                    "MaxSessions 64",
                    // a session whose client is gone ends within 6 s (the link-down tests rely on it)
                    "ClientAliveInterval 2",
                    "ClientAliveCountMax 3"));
            String script = "mount -t tmpfs -o size=1g,mode=1777 parallax-shm /dev/shm && exec " + which("sshd") + " -D -e -f " + cfg;
            Process p = new ProcessBuilder(which("ip"), "netns", "exec", ns, which("unshare"), "-m", "--propagation", "private",
                    "sh", "-c", script).redirectErrorStream(true).redirectOutput(dir.resolve("sshd-" + k + ".log").toFile()).start();
            sshds.add(p);
            for (int i = 0; i < 100; i++) {
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(addr, 22), 200);
                    return p.pid();
                } catch (IOException e) {
                    if (!p.isAlive()) break;
                    Thread.sleep(100);
                }
            }
            throw new UserError("test bed: sshd on " + addr + " did not start: " + Files.readString(dir.resolve("sshd-" + k + ".log")).strip());
        } catch (IOException e) {
            throw new UserError("test bed: cannot start sshd on " + addr + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("test bed: interrupted while starting sshd");
        }
    }

    private void writeNodesFile() {
        StringBuilder sb = new StringBuilder();
        sb.append("# a test bed of ").append(nodes.size()).append(" network namespaces (parallax TestBed ").append(id).append(")\n");
        sb.append("master_addr ").append(nodes.get(0).addr()).append('\n');
        sb.append("master_port 29500\n");
        sb.append("coordinator_addr ").append(coordinatorAddr()).append('\n');
        sb.append("ssh_options -p 22 -i ").append(dir.resolve("id"))
                .append(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\n");
        for (Node n : nodes) sb.append(n.addr()).append(" slots=").append(slots).append(" java=").append(Launcher.localJava()).append('\n');
        nodesFile = dir.resolve("nodes");
        try {
            Files.writeString(nodesFile, sb.toString());
        } catch (IOException e) {
            throw new UserError("test bed: cannot write its nodes file: " + e.getMessage());
        }
    }

    // ---- what a test or a lesson uses ----

    /** The nodes file of this bed (every node over ssh, rank 0's store on the first node). */
    public Path nodesFile() { return nodesFile; }

    public Nodes nodesConfig() { return Nodes.read(nodesFile); }

    public List<Node> nodes() { return List.copyOf(nodes); }

    public int slots() { return slots; }

    /** This machine's address on the bridge (where the coordinator listens). */
    public String coordinatorAddr() { return net + ".1"; }

    /** The shaping every link has now. */
    public Link link() { return link; }

    /** Shapes every node's link, both directions, to {@code l} (UNSHAPED: removes the shaping). */
    public void shape(Link l) {
        for (int k = 0; k < nodes.size(); k++) shape(k, l);
        this.link = l;
    }

    private void shape(int k, Link l) {
        Node n = nodes.get(k);
        tc(List.of(), n.hostLink(), l);                                            // into the node
        tc(List.of(which("ip"), "netns", "exec", n.namespace()), "eth0", l);       // out of the node
    }

    /** Takes node {@code k}'s link down (the node is cut off) or brings it back up. */
    public void link(int k, boolean up) {
        run("ip", "link", "set", nodes.get(k).hostLink(), up ? "up" : "down");
    }

    /** Process ids in node {@code k}'s namespace whose command line runs {@code mainClass}. */
    public List<Long> processes(int k, String mainClass) {
        List<Long> out = new ArrayList<>();
        for (String line : run("ip", "netns", "pids", nodes.get(k).namespace()).split("\\s+")) {
            if (line.isBlank()) continue;
            long pid = Long.parseLong(line.strip());
            try {
                String cmd = new String(Files.readAllBytes(Path.of("/proc", String.valueOf(pid), "cmdline")), StandardCharsets.UTF_8);
                if (cmd.contains(mainClass)) out.add(pid);
            } catch (IOException e) {
                // gone meanwhile
            }
        }
        return out;
    }

    /** Names in node {@code k}'s own /dev/shm (seen through its sshd's mount namespace). */
    public List<String> sharedMemoryFiles(int k) {
        Path shm = Path.of("/proc", String.valueOf(nodes.get(k).sshdPid()), "root", "dev", "shm");
        try (var s = Files.list(shm)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UserError("test bed: cannot read node " + k + "'s /dev/shm: " + e.getMessage());
        }
    }

    /** Removes every process, namespace, link and key of this bed; safe to call twice. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        for (String ns : namespaces) killAll(ns);
        for (Process p : sshds) p.destroyForcibly();
        for (String ns : namespaces) quiet("ip", "netns", "del", ns);
        quiet("ip", "link", "del", bridge);
        try (var s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // a temporary directory: the OS cleans it up
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // already shutting down: this is the hook
        }
    }

    @Override
    public String toString() {
        return nodes.size() + " nodes x " + slots + " slots on " + net + ".0/24, links " + link.describe();
    }

    // ---- helpers ----

    private void tc(List<String> in, String dev, Link l) {
        List<String> base = new ArrayList<>(in);
        base.add(which("tc"));
        if (!l.shaped()) {
            quiet(concat(base, "qdisc", "del", "dev", dev, "root"));
            return;
        }
        long bytesPerS = l.bitsPerSecond() / 8;
        String rate = l.bitsPerSecond() + "bit";
        // A token bucket (tbf) for the rate, whose bucket holds 4 ms of traffic (at least
        // 128 KiB, so a 64 KiB GSO segment always fits) and whose queue 50 ms (at least 1 MiB),
        // so TCP fills the link without drops; a peak rate just above the rate keeps a full
        // bucket from leaving at line speed after an idle gap, as nothing can on a real link.
        // A delay needs netem, under the bucket.
        List<String> tbf = List.of("tbf", "rate", rate, "burst", String.valueOf(Math.max(128 << 10, bytesPerS / 250)),
                "limit", String.valueOf(Math.max(1 << 20, bytesPerS / 20)),
                "peakrate", Math.round(l.bitsPerSecond() * PEAK_OVER_RATE) + "bit", "mtu", String.valueOf(70_000));
        if (l.delayMs() > 0) {
            List<String> netem = concat(base, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "netem", "delay", l.delayMs() + "ms", "limit", "100000");
            try {
                run(netem);
            } catch (UserError e) {
                throw new UserError("test bed: cannot add a delay: this kernel has no netem (CONFIG_NET_SCH_NETEM); shape the rate alone");
            }
            if (l.bitsPerSecond() > 0) {
                List<String> child = concat(base, "qdisc", "replace", "dev", dev, "parent", "1:1", "handle", "10:");
                child.addAll(tbf);
                run(child);
            }
        } else {
            List<String> cmd = concat(base, "qdisc", "replace", "dev", dev, "root");
            cmd.addAll(tbf);
            run(cmd);
        }
    }

    /** How much faster than the rate a full bucket may drain (tbf's peak rate). */
    static final double PEAK_OVER_RATE = 1.01;

    private static List<String> concat(List<String> a, String... b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(List.of(b));
        return out;
    }

    private void keygen(String name) {
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.resolve(name).toString());
    }

    /** Picks 10.77.x.0/24 with no address or route of this machine in it. */
    private static String freeSubnet() {
        String addrs = run("ip", "-4", "-o", "addr", "show"), routes = run("ip", "-4", "route", "show", "table", "all");
        List<Integer> order = new ArrayList<>();
        for (int x = 1; x < 255; x++) order.add(x);
        java.util.Collections.shuffle(order, new SecureRandom());
        for (int x : order) {
            String net = "10.77." + x;
            if (addrs.contains(" " + net + ".") || routes.contains(net + ".")) continue;
            String covering = run("ip", "-4", "route", "show", "match", net + ".0/24");
            if (covering.lines().anyMatch(l -> !l.startsWith("default") && !l.isBlank())) continue;
            return net;
        }
        throw new UserError("test bed: no free 10.77.x.0/24 subnet on this machine");
    }

    /** Removes beds whose owning process is gone (it was killed before it could clean up). */
    static void removeLeftovers() {
        for (String line : run("ip", "netns", "list").split("\n")) {
            String ns = line.strip().split("\\s+")[0];
            if (!ns.startsWith(PREFIX)) continue;
            String[] f = ns.substring(PREFIX.length()).split("-");
            if (f.length == 3 && !alive(f[0])) {
                killAll(ns);
                quiet("ip", "netns", "del", ns);
            }
        }
        for (String line : run("ip", "-o", "link", "show", "type", "bridge").split("\n")) {
            int a = line.indexOf("alias " + ALIAS);
            if (a < 0) continue;
            String pid = line.substring(a + ("alias " + ALIAS).length()).strip().split("\\s+")[0];
            String name = line.split(":\\s+")[1].split("[:@]")[0];
            if (!alive(pid)) quiet("ip", "link", "del", name);
        }
    }

    private static boolean alive(String pid) {
        try {
            return ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false);
        } catch (NumberFormatException e) {
            return true;   // not ours to judge
        }
    }

    private static void killAll(String ns) {
        for (int round = 0; round < 3; round++) {
            String pids = runQuiet("ip", "netns", "pids", ns);
            if (pids.isBlank()) return;
            for (String p : pids.split("\\s+")) {
                if (!p.isBlank()) ProcessHandle.of(Long.parseLong(p.strip())).ifPresent(ProcessHandle::destroyForcibly);
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static String run(String... cmd) {
        return run(List.of(cmd));
    }

    /** Runs a command; its output, or one line naming the command and what it said. */
    private static String run(List<String> cmd) {
        List<String> c = new ArrayList<>(cmd);
        String exe = which(c.get(0));
        if (exe != null) c.set(0, exe);
        try {
            Process p = new ProcessBuilder(c).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new UserError("test bed: '" + String.join(" ", cmd) + "' did not finish in 30 s");
            }
            if (p.exitValue() != 0) {
                throw new UserError("test bed: '" + String.join(" ", cmd) + "' failed: " + out.strip().lines().findFirst().orElse("exit " + p.exitValue()));
            }
            return out;
        } catch (IOException e) {
            throw new UserError("test bed: cannot run " + cmd.get(0) + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("test bed: interrupted");
        }
    }

    private static String runQuiet(String... cmd) {
        try {
            return run(cmd);
        } catch (UserError e) {
            return "";
        }
    }

    private static void quiet(String... cmd) {
        runQuiet(cmd);
    }

    private static void quiet(List<String> cmd) {
        try {
            run(cmd);
        } catch (UserError ignored) {
            // tearing down: whatever is already gone is fine
        }
    }

    /** The full path of {@code tool} on PATH or in the sbin directories, or null. */
    static String which(String tool) {
        if (tool.startsWith("/")) return Files.isExecutable(Path.of(tool)) ? tool : null;
        List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
        dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin"));
        for (String d : dirs) {
            if (d.isEmpty()) continue;
            Path p = Path.of(d, tool);
            if (Files.isExecutable(p)) return p.toString();
        }
        return null;
    }

    private static long effectiveUid() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("Uid:")) return Long.parseLong(l.split("\\s+")[2]);
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux
        }
        return -1;
    }
}
