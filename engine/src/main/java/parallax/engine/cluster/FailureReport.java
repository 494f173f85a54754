package parallax.engine.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The one line a user reads when a rank is lost: which rank died on which host, why (exit
 * code, or the signal and what it usually means), after which completed step, and the
 * last line the worker printed.
 */
final class FailureReport {

    private FailureReport() {}

    /** "rank 2 on host (pid 123) died {@code when}: killed by signal 9 (SIGKILL: ...) (last completed step 7); last output: ...". */
    static String death(RankChannel r, String when) {
        String cause = cause(r);
        String tail = lastLogLine(r); // after the exit: the worker's last words are in the log by then
        return "rank " + r.rank() + " on " + r.host() + (r.pid > 0 ? " (pid " + r.pid + ")" : "") + " died "
                + when + ": " + cause + lastStep(r) + (tail.isEmpty() ? "" : "; last output: " + tail);
    }

    /** " (last completed step N)", or "" before the first step. */
    static String lastStep(RankChannel r) {
        long s = r.lastStep;
        return s >= 0 ? " (last completed step " + s + ")" : "";
    }

    /** Why the process ended, from its exit code (waiting up to a second for it). */
    private static String cause(RankChannel r) {
        try {
            if (!r.process.waitFor(1, TimeUnit.SECONDS)) return "closed its control connection";
            int code = r.process.exitValue();
            if (code == 4) return "lost its connection to the coordinator";
            if (code == 255 && !r.place.node().local())
                return "ssh failed (exit 255: the node refused the login, is unreachable, or its link went down)";
            return code > 128 ? "killed by signal " + (code - 128) + signalName(code - 128) : "exit code " + code;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }

    private static String signalName(int sig) {
        return switch (sig) {
            case 9 -> " (SIGKILL: killed, or out of memory)";
            case 15 -> " (SIGTERM)";
            case 6 -> " (SIGABRT: native crash)";
            case 11 -> " (SIGSEGV: native crash)";
            default -> "";
        };
    }

    /** The worker's last line of output that says something (not a Gloo notice or a stack frame), cut at 200 characters. */
    private static String lastLogLine(RankChannel r) {
        try {
            List<String> lines = Files.readAllLines(r.log);
            for (int i = lines.size() - 1; i >= 0; i--) {
                String l = lines.get(i).strip();
                if (!l.isEmpty() && !l.startsWith("[Gloo]") && !l.startsWith("at ")) {
                    return l.length() > 200 ? l.substring(0, 200) + "..." : l;
                }
            }
        } catch (IOException | RuntimeException ignored) {
            // no log yet
        }
        return "";
    }
}
