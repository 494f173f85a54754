package parallax.engine.cluster;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import parallax.engine.UserError;

/**
 * Runs one of our PyTorch peer scripts (a resource next to {@code owner}) with Debian's
 * /usr/bin/python3 and python3-torch, placed like the ranks: one Python process per node
 * of the nodes file, started the way the ranks are (a child process here, {@code ssh} for
 * a remote node), each spawning that node's ranks. So a benchmark's peer runs on the same
 * nodes, addresses and links as our ranks: on the local default all on 127.0.0.1, on a
 * test bed inside the same namespaces.
 *
 * <p>Every script takes {@code --world W --master-addr A --port P --rank-offset O
 * --local-ranks L --node-addr N} (its ranks are O..O+L-1; Gloo binds the interface that
 * holds N) plus its own arguments, and prints its results as JSON lines on stdout, which
 * {@link #run} returns. Over ssh the script text goes through the connection's stdin into
 * a temporary file on the node, which is removed afterwards. One intra-op thread per rank.
 * A failure is one {@link UserError} line; an interrupt stops every process started.
 */
public final class PeerJob {

    /** The ranks one nodes-file line holds: {@code ranks} of them from {@code firstRank}. */
    private record Share(Nodes.Node node, int firstRank, int ranks) {}

    private PeerJob() {}

    /** Consecutive placements on one line of the nodes file (ranks fill the lines in order). */
    private static List<Share> shares(Nodes nodes, int world) {
        List<Share> out = new ArrayList<>();
        Nodes.Placement prev = null;
        for (Nodes.Placement p : nodes.place(world)) {
            if (prev != null && p.localRank() == prev.localRank() + 1 && p.node() == prev.node()) {
                Share last = out.remove(out.size() - 1);
                out.add(new Share(last.node(), last.firstRank(), last.ranks() + 1));
            } else {
                out.add(new Share(p.node(), p.rank(), 1));
            }
            prev = p;
        }
        return out;
    }

    /**
     * @param what the peer's name in messages, e.g. "PyTorch peer"
     * @return every line the ranks printed that starts with '{', node by node
     */
    public static List<String> run(Class<?> owner, String script, String what, Nodes nodes, int world, long timeoutSeconds,
                                   List<String> args) {
        List<Share> shares = shares(nodes, world);
        Nodes.Node first = shares.get(0).node();
        Path dir = null;
        List<Process> started = new ArrayList<>();
        try {
            dir = Files.createTempDirectory("parallax-peer");
            byte[] text;
            try (InputStream in = owner.getResourceAsStream(script)) {
                if (in == null) throw new UserError("the " + what + "'s script " + script + " is missing from the build");
                text = in.readAllBytes();
            }
            Path file = dir.resolve(script);
            Files.write(file, text);
            int port = first.local() ? freePort(first.addr()) : nodes.masterPort() > 0 ? nodes.masterPort() + 1 : 29501;
            List<Path> outputs = new ArrayList<>();
            int k = 0;
            for (Share share : shares) {
                Nodes.Node node = share.node();
                List<String> a = new ArrayList<>(List.of("--world", String.valueOf(world), "--master-addr", first.addr(),
                        "--port", String.valueOf(port), "--rank-offset", String.valueOf(share.firstRank()),
                        "--local-ranks", String.valueOf(share.ranks()), "--node-addr", node.addr()));
                a.addAll(args);
                Path out = dir.resolve("node-" + k++ + ".out");
                outputs.add(out);
                ProcessBuilder pb;
                if (node.local()) {
                    List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", file.toString()));
                    cmd.addAll(a);
                    pb = new ProcessBuilder(cmd);
                    pb.environment().put("OMP_NUM_THREADS", "1");
                    pb.redirectInput(ProcessBuilder.Redirect.PIPE);
                } else {
                    StringBuilder remote = new StringBuilder("f=$(mktemp /tmp/parallax-peer-XXXXXX.py) && cat > \"$f\" && "
                            + "OMP_NUM_THREADS=1 /usr/bin/python3 \"$f\"");
                    for (String s : a) remote.append(' ').append(Launcher.shellQuote(s));
                    remote.append("; s=$?; rm -f \"$f\"; exit $s");
                    pb = new ProcessBuilder(Launcher.ssh(nodes, node, remote.toString()));
                }
                pb.redirectErrorStream(true).redirectOutput(out.toFile());
                Process p = pb.start();
                started.add(p);
                try (var stdin = p.getOutputStream()) {
                    if (!node.local()) stdin.write(text);
                }
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < shares.size(); i++) {
                Process p = started.get(i);
                boolean done = p.waitFor(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                String out = Files.readString(outputs.get(i), StandardCharsets.UTF_8);
                if (!done || p.exitValue() != 0) {
                    String last = out.lines().filter(l -> !l.isBlank()).reduce((x, y) -> y)
                            .orElse(done ? "exit " + p.exitValue() : "no result after " + timeoutSeconds + " s");
                    throw new UserError("the " + what + " failed on " + shares.get(i).node().host()
                            + " (needs Debian python3-torch at /usr/bin/python3 there): " + last);
                }
                out.lines().filter(l -> l.startsWith("{")).forEach(lines::add);
            }
            return lines;
        } catch (IOException e) {
            throw new UserError("cannot run the " + what + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while running the " + what);
        } finally {
            for (Process p : started) {
                if (p.isAlive()) {
                    p.descendants().forEach(ProcessHandle::destroyForcibly);
                    p.destroyForcibly();
                }
            }
            if (dir != null) deleteQuietly(dir);
        }
    }

    private static int freePort(String addr) throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(addr))) {
            return s.getLocalPort();
        }
    }

    private static void deleteQuietly(Path dir) {
        try (var s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // temporary files: the OS cleans them up
        }
    }
}
