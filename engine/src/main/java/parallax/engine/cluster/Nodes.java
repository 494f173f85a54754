package parallax.engine.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.UserError;

/**
 * Where ranks run: a hostfile in the style of DeepSpeed's and MPI's, plus the rendezvous
 * address. One node per line; ranks fill the nodes in order (the first node's slots get
 * ranks 0..slots-1), so tensor-parallel groups stay inside a node; {@code distribution
 * cyclic} deals them round the nodes instead.
 *
 * <pre>
 * # master: where rank 0 serves the TCPStore and the coordinator listens. Use a private
 * # network address on a real cluster; both ports are open to whoever can reach it.
 * master_addr 127.0.0.1
 * master_port 29500            # 0 or absent: a free port is picked per start
 * coordinator_addr 127.0.0.1   # where the coordinator listens (default: master_addr)
 * distribution block           # or cyclic: how ranks are dealt to the nodes (default block)
 * ssh_options -p 22            # extra arguments for every ssh call (optional)
 * localhost slots=4                                  # local processes, CPU, Gloo
 * node2     slots=2 devices=cuda:0,cuda:1 addr=10.0.0.2   # over ssh, NCCL
 * </pre>
 *
 * Per node: {@code slots=N} (ranks on it), {@code devices=} (one per slot; default cpu),
 * {@code addr=} (the address its ranks bind for Gloo; default the host name),
 * {@code launcher=local|ssh} (default: local for localhost/127.0.0.1, else ssh),
 * {@code java=} (java binary on that node; default "java" on PATH),
 * {@code share_gpus=yes} (let two ranks use one GPU: refused otherwise, since the second
 * rank's memory and kernels would contend with the first's unnoticed).
 * The same install path (classpath) must exist on every node, as with mpirun.
 */
public record Nodes(String masterAddr, String coordinatorAddr, int masterPort, Distribution distribution, List<String> sshOptions,
                    List<Node> nodes) {

    /**
     * How ranks are dealt to nodes (Slurm's {@code --distribution}): BLOCK fills each node's
     * slots before the next (consecutive ranks, such as a TP group, share a node); CYCLIC
     * deals one rank to each node in turn (consecutive ranks on different nodes).
     */
    public enum Distribution { BLOCK, CYCLIC }

    /** One line of the file. */
    public record Node(String host, int slots, List<String> devices, String addr, String launcher, String java) {
        public boolean local() { return launcher.equals("local"); }

        String deviceOf(int localRank) {
            return devices.isEmpty() ? "cpu" : devices.get(localRank);
        }
    }

    /** Where one rank goes. */
    public record Placement(int rank, int localRank, Node node, String device) {}

    /** The embedded default: everything on this machine over loopback, {@code slots} CPU ranks. */
    public static Nodes localDefault(int slots) {
        return new Nodes("127.0.0.1", "127.0.0.1", 0, Distribution.BLOCK, List.of(),
                List.of(new Node("localhost", slots, List.of(), "127.0.0.1", "local", "java")));
    }

    public static Nodes read(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new UserError("cannot read nodes file " + file + ": " + e.getMessage());
        }
        return parse(text, file.toString());
    }

    public static Nodes parse(String text, String source) {
        String masterAddr = null, coordinatorAddr = null;
        int masterPort = 0;
        Distribution distribution = Distribution.BLOCK;
        List<String> ssh = new ArrayList<>();
        List<Node> nodes = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].replaceAll("#.*", "").strip();
            if (line.isEmpty()) continue;
            String where = source + " line " + (i + 1) + ": ";
            String[] f = line.split("\\s+");
            String key = f[0].contains("=") ? f[0].substring(0, f[0].indexOf('=')) : f[0];
            String val = f[0].contains("=") ? f[0].substring(f[0].indexOf('=') + 1) : (f.length > 1 ? f[1] : null);
            switch (key) {
                case "master_addr" -> {
                    if (val == null || val.isEmpty()) throw new UserError(where + "master_addr needs an address");
                    masterAddr = val;
                }
                case "master_port" -> masterPort = port(where, val);
                case "distribution" -> distribution = distribution(where, val);
                case "coordinator_addr" -> {
                    if (val == null || val.isEmpty()) throw new UserError(where + "coordinator_addr needs an address");
                    coordinatorAddr = val;
                }
                case "ssh_options" -> ssh.addAll(List.of(line.substring("ssh_options".length()).strip().split("\\s+")));
                default -> nodes.add(node(where, f));
            }
        }
        if (nodes.isEmpty()) throw new UserError(source + ": no nodes (add a line such as 'localhost slots=2')");
        if (masterAddr == null) masterAddr = nodes.get(0).addr();
        if (coordinatorAddr == null) coordinatorAddr = masterAddr;
        return new Nodes(masterAddr, coordinatorAddr, masterPort, distribution, List.copyOf(ssh), List.copyOf(nodes));
    }

    private static Node node(String where, String[] f) {
        String host = f[0];
        if (host.contains("=")) throw new UserError(where + "expected a host name first, got '" + host + "'");
        int slots = -1;
        List<String> devices = List.of();
        String addr = null;
        String launcher = null;
        String java = "java";
        boolean shareGpus = false;
        for (int k = 1; k < f.length; k++) {
            int eq = f[k].indexOf('=');
            if (eq < 0) throw new UserError(where + "expected key=value, got '" + f[k] + "'");
            String k0 = f[k].substring(0, eq);
            String v = f[k].substring(eq + 1);
            switch (k0) {
                case "slots" -> {
                    try {
                        slots = Integer.parseInt(v);
                    } catch (NumberFormatException e) {
                        slots = -1;
                    }
                    if (slots < 1) throw new UserError(where + "slots must be a positive whole number, got '" + v + "'");
                }
                case "devices" -> {
                    devices = List.of(v.split(","));
                    for (String d : devices) {
                        if (!d.equals("cpu") && !d.matches("cuda:\\d+")) {
                            throw new UserError(where + "device '" + d + "' is not cpu or cuda:N");
                        }
                    }
                }
                case "addr" -> addr = v;
                case "launcher" -> {
                    if (!v.equals("local") && !v.equals("ssh")) throw new UserError(where + "launcher is local or ssh, got '" + v + "'");
                    launcher = v;
                }
                case "java" -> java = v;
                case "share_gpus" -> {
                    if (!v.equals("yes") && !v.equals("no")) throw new UserError(where + "share_gpus is yes or no, got '" + v + "'");
                    shareGpus = v.equals("yes");
                }
                default -> throw new UserError(where + "unknown key '" + k0 + "'"
                        + parallax.engine.DidYouMean.hint(k0, List.of("slots", "devices", "addr", "launcher", "java", "share_gpus")));
            }
        }
        if (slots < 0) slots = devices.isEmpty() ? 1 : devices.size();
        if (!devices.isEmpty() && devices.size() != slots) {
            throw new UserError(where + "devices lists " + devices.size() + " devices for " + slots + " slots");
        }
        if (!shareGpus) {
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (String d : devices)
                if (d.startsWith("cuda") && !seen.add(d))
                    throw new UserError(where + "two ranks on " + d + ": give each rank its own GPU, or add share_gpus=yes to share one");
        }
        boolean isLocal = host.equals("localhost") || host.equals("127.0.0.1");
        if (addr == null) addr = host.equals("localhost") ? "127.0.0.1" : host;
        if (launcher == null) launcher = isLocal ? "local" : "ssh";
        return new Node(host, slots, devices, addr, launcher, java);
    }

    /** "block" or "cyclic", any case; one line otherwise. */
    public static Distribution distribution(String where, String v) {
        for (Distribution d : Distribution.values()) if (d.name().equalsIgnoreCase(String.valueOf(v))) return d;
        throw new UserError(where + "distribution is block or cyclic, got '" + v + "'");
    }

    /** The same nodes with ranks dealt by {@code d}. */
    public Nodes withDistribution(Distribution d) {
        return new Nodes(masterAddr, coordinatorAddr, masterPort, d, sshOptions, nodes);
    }

    private static int port(String where, String v) {
        try {
            int p = Integer.parseInt(v);
            if (p < 0 || p > 65535) throw new NumberFormatException();
            return p;
        } catch (NumberFormatException | NullPointerException e) {
            throw new UserError(where + "master_port must be a port number 0..65535, got '" + v + "'");
        }
    }

    public int slots() {
        return nodes.stream().mapToInt(Node::slots).sum();
    }

    /** Assigns {@code ranks} ranks to nodes in order; fails with one line when they do not fit. */
    public List<Placement> place(int ranks) {
        if (ranks < 1) throw new UserError("the number of ranks must be at least 1, got " + ranks);
        if (ranks > slots()) {
            throw new UserError(ranks + " ranks asked but the nodes file has " + slots() + " slots; add nodes or slots");
        }
        List<Placement> out = new ArrayList<>();
        int r = 0;
        if (distribution == Distribution.CYCLIC) {
            for (int l = 0; r < ranks; l++) {
                for (Node n : nodes) if (l < n.slots() && r < ranks) out.add(new Placement(r++, l, n, n.deviceOf(l)));
            }
            return out;
        }
        for (Node n : nodes) {
            for (int l = 0; l < n.slots() && r < ranks; l++, r++) out.add(new Placement(r, l, n, n.deviceOf(l)));
        }
        return out;
    }

    /**
     * These nodes without the slots {@code gone} occupied (ranks lost for good): a node
     * keeps its other slots and devices, one left with none drops out.
     */
    public Nodes without(List<Placement> gone) {
        List<Node> out = new ArrayList<>();
        for (Node n : nodes) {
            int slots = n.slots();
            List<String> devices = new ArrayList<>(n.devices());
            for (Placement p : gone) {
                if (!p.node().equals(n)) continue;
                slots--;
                if (!devices.isEmpty()) devices.remove(p.device());
            }
            if (slots > 0) out.add(new Node(n.host(), slots, List.copyOf(devices), n.addr(), n.launcher(), n.java()));
        }
        return new Nodes(masterAddr, coordinatorAddr, masterPort, distribution, sshOptions, out);
    }

    /** The file text of this configuration (for %cluster show and edits). */
    public String toText() {
        StringBuilder sb = new StringBuilder();
        sb.append("master_addr ").append(masterAddr).append('\n');
        sb.append("master_port ").append(masterPort).append('\n');
        if (!coordinatorAddr.equals(masterAddr)) sb.append("coordinator_addr ").append(coordinatorAddr).append('\n');
        if (distribution != Distribution.BLOCK) sb.append("distribution ").append(distribution.name().toLowerCase(Locale.ROOT)).append('\n');
        if (!sshOptions.isEmpty()) sb.append("ssh_options ").append(String.join(" ", sshOptions)).append('\n');
        for (Node n : nodes) {
            sb.append(n.host()).append(" slots=").append(n.slots());
            if (!n.devices().isEmpty()) sb.append(" devices=").append(String.join(",", n.devices()));
            if (!n.addr().equals(n.host())) sb.append(" addr=").append(n.addr());
            boolean defaultLocal = n.host().equals("localhost") || n.host().equals("127.0.0.1");
            if (n.local() != defaultLocal) sb.append(" launcher=").append(n.launcher());
            if (!n.java().equals("java")) sb.append(" java=").append(n.java());
            sb.append('\n');
        }
        return sb.toString();
    }

    /** "gloo" when every placed rank is on a CPU, "nccl" when on CUDA devices. */
    public static String backendOf(String device) {
        return device.toLowerCase(Locale.ROOT).startsWith("cuda") ? "nccl" : "gloo";
    }
}
