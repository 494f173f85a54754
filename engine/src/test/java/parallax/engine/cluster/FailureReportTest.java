package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The line a lost rank gets, from a real process's exit and output (no worker JVM needed). */
class FailureReportTest {

    @TempDir
    Path dir;

    /** A "rank" that runs {@code script} in sh with its output in the log, as the launcher does. */
    RankChannel rank(String launcher, String script) throws Exception {
        Path log = dir.resolve("rank-1.out");
        Process p = new ProcessBuilder("sh", "-c", script).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        Nodes.Node node = new Nodes.Node("node-a", 2, List.of("cpu"), "127.0.0.1", launcher, "java");
        return new RankChannel(new Nodes.Placement(1, 1, node, "cpu"), p, log, dir.resolve("rank-1.jsonl"), new LinkedBlockingQueue<>());
    }

    @Test
    void namesTheSignalTheStepAndTheLastLineThatSaysSomething() throws Exception {
        RankChannel r = rank("local", "echo 'loss 0.5'; echo 'out of memory here'; echo '[Gloo] noise'; echo '   at x.y(Z.java:1)'; kill -9 $$");
        r.lastStep = 7;
        assertEquals("rank 1 on node-a died during the run: killed by signal 9 (SIGKILL: killed, or out of memory)"
                + " (last completed step 7); last output: out of memory here", FailureReport.death(r, "during the run"));
        r.pid = 4242;
        r.lastStep = -1;
        assertTrue(FailureReport.death(r, "before joining").startsWith("rank 1 on node-a (pid 4242) died before joining: killed by signal 9"));
        assertEquals("", FailureReport.lastStep(r));
    }

    @Test
    void exitCodesSayWhatTheyMean() throws Exception {
        assertEquals("rank 1 on node-a died before the run: lost its connection to the coordinator",
                FailureReport.death(rank("local", "exit 4"), "before the run"));
        assertEquals("rank 1 on node-a died before the run: ssh failed (exit 255: the node refused the login, is unreachable, "
                        + "or its link went down); last output: Could not resolve hostname",
                FailureReport.death(rank("ssh", "echo 'Could not resolve hostname'; exit 255"), "before the run"));
        String longLine = "e".repeat(300);
        assertEquals("rank 1 on node-a died x: exit code 3; last output: " + "e".repeat(200) + "...",
                FailureReport.death(rank("local", "echo " + longLine + "; exit 3"), "x"));
        assertEquals("rank 1 on node-a died x: exit code 1", FailureReport.death(rank("local", "echo; echo '[Gloo] x'; exit 1"), "x"));
    }
}
