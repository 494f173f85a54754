package parallax.engine;

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

/**
 * Runs one of our Python scripts (a resource next to {@code owner}) with Debian's
 * /usr/bin/python3 and python3-torch, as the PyTorch peer of a benchmark: one intra-op
 * thread, a free loopback port for its rendezvous, a temporary directory for its results
 * that is removed afterwards. Failures become one {@link UserError} line; an interrupt
 * stops the script and the processes it started.
 */
public final class PythonPeer {

    /** The script's arguments, given its directory and a free port. */
    public interface Args {
        List<String> of(Path dir, int port);
    }

    /** Reads the result from the directory and everything the script printed. */
    public interface Result<T> {
        T read(Path dir, String output) throws IOException;
    }

    private PythonPeer() {}

    /**
     * @param what the peer's name in messages, e.g. "PyTorch peer"
     */
    public static <T> T run(Class<?> owner, String script, String what, long timeoutSeconds, Args args, Result<T> result) {
        Path dir = null;
        Process p = null;
        try {
            dir = Files.createTempDirectory("parallax-peer");
            Path file = dir.resolve(script);
            try (InputStream in = owner.getResourceAsStream(script)) {
                Files.copy(in, file);
            }
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", file.toString()));
            cmd.addAll(args.of(dir, port));
            Path log = dir.resolve("output.txt");
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().put("OMP_NUM_THREADS", "1");
            p = pb.start();
            boolean done = p.waitFor(timeoutSeconds, TimeUnit.SECONDS);
            String out = Files.readString(log, StandardCharsets.UTF_8);
            if (!done || p.exitValue() != 0) {
                String last = out.lines().reduce((x, y) -> y).orElse(done ? "" : "no result after " + timeoutSeconds + " s");
                throw new UserError("the " + what + " failed (needs Debian python3-torch at /usr/bin/python3): " + last);
            }
            return result.read(dir, out);
        } catch (IOException e) {
            throw new UserError("cannot run the " + what + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while running the " + what);
        } finally {
            if (p != null && p.isAlive()) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
            }
            if (dir != null) deleteQuietly(dir);
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
