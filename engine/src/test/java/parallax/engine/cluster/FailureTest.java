package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runtime never hangs: dead ranks, interrupts, a dead coordinator, bad set-ups. */
class FailureTest {

    @TempDir
    Path logs;

    private WorkerPool.Options opts() {
        return WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 30_000);
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    private static void awaitGone(long[] pids, Duration within) throws InterruptedException {
        long end = System.nanoTime() + within.toNanos();
        while (System.nanoTime() < end) {
            boolean any = false;
            for (long p : pids) any |= alive(p);
            if (!any) return;
            Thread.sleep(100);
        }
        for (long p : pids) assertFalse(alive(p), "worker " + p + " still running after " + within);
    }

    @Test
    void killedRankIsReportedAndTheOthersStop() throws Exception {
        WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts());
        long[] pids = pool.workerPids();
        AtomicLong killedAt = new AtomicLong();
        ClusterError e = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> assertThrows(ClusterError.class,
                () -> pool.run(StepTask.class.getName(), "{\"steps\":1000,\"sleepMs\":50}", null, ev -> {
                    if (ev.rank() == 1 && ev.step() == 3 && killedAt.get() == 0) {
                        killedAt.set(System.nanoTime());
                        ProcessHandle.of(pids[1]).ifPresent(ProcessHandle::destroyForcibly);   // kill -9
                    }
                })));
        double seconds = (System.nanoTime() - killedAt.get()) / 1e9;
        System.out.printf("dead rank reported %.2f s after kill -9: %s%n", seconds, e.getMessage());
        assertTrue(seconds < 10, "reported within 10 s (spec), took " + seconds);
        String m = e.getMessage();
        assertTrue(m.startsWith("rank 1 on localhost (pid " + pids[1] + ") died during the run: killed by signal 9"), m);
        assertTrue(m.contains("last completed step 3"), m);
        assertFalse(pool.alive());
        awaitGone(pids, Duration.ofSeconds(5));
        pool.close();
    }

    @Test
    void interruptStopsEveryRank() throws Exception {
        WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts());
        long[] pids = pool.workerPids();
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicLong firstStep = new AtomicLong();
        Thread cell = new Thread(() -> {
            try {
                pool.run(StepTask.class.getName(), "{\"steps\":100000,\"sleepMs\":20}", null, ev -> firstStep.compareAndSet(0, 1));
            } catch (Throwable t) {
                thrown.set(t);
            }
        });
        cell.start();
        while (firstStep.get() == 0 && cell.isAlive()) Thread.sleep(20);
        long t0 = System.nanoTime();
        cell.interrupt();
        cell.join(30_000);
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("interrupt stopped the ranks in %.2f s%n", seconds);
        assertFalse(cell.isAlive());
        assertTrue(thrown.get() instanceof ClusterError && thrown.get().getMessage().startsWith("interrupted"), String.valueOf(thrown.get()));
        for (long p : pids) assertFalse(alive(p), "rank " + p + " stopped when close returned");
    }

    @Test
    void workersExitWhenTheCoordinatorDies() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        Process coord = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                PoolHolderMain.class.getName(), logs.toString()).redirectErrorStream(true).start();
        long[] pids;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(coord.getInputStream()))) {
            String line;
            do {
                line = r.readLine();
            } while (line != null && !line.startsWith("PIDS"));
            assertTrue(line != null, "coordinator printed the worker pids");
            String[] f = line.split(" ");
            pids = new long[f.length - 1];
            for (int i = 1; i < f.length; i++) pids[i - 1] = Long.parseLong(f[i]);
            for (long p : pids) assertTrue(alive(p));
            coord.destroyForcibly();   // kill -9: no shutdown hook runs
            coord.waitFor();
            awaitGone(pids, Duration.ofSeconds(10));
        }
    }

    @Test
    void aCollectiveThatNobodyJoinsTimesOutWithItsName() throws Exception {
        WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts().withTimeouts(60_000, 2_000));
        long[] pids = pool.workerPids();
        ClusterError e = assertThrows(ClusterError.class,
                () -> pool.exec("if (dist.rank() == 0) dist.barrier();\n1", null, ev -> { }));
        System.out.println("collective timeout: " + e.getMessage());
        assertTrue(e.getMessage().startsWith("rank 0 failed: barrier on group world (world rank 0, group ranks [0, 1])"), e.getMessage());
        assertTrue(e.getMessage().contains("timed out after 2.0 s"), e.getMessage());
        assertTrue(e.getMessage().contains("rank(s) [1] had finished without calling it"), e.getMessage());
        // a group that timed out cannot be trusted again: the pool is stopped
        assertFalse(pool.alive());
        awaitGone(pids, Duration.ofSeconds(5));
    }

    @Test
    void portInUseIsOneLine() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            Nodes n = Nodes.parse("master_addr 127.0.0.1\nmaster_port " + taken.getLocalPort() + "\nlocalhost slots=2\n", "test");
            ClusterError e = assertThrows(ClusterError.class, () -> WorkerPool.start(n, 2, opts()));
            assertEquals("rendezvous port 127.0.0.1:" + taken.getLocalPort()
                    + " is in use; set another master_port in the nodes file (or 0 for any free port)", e.getMessage());
        }
    }

    @Test
    void unreachableNodeIsOneLineAndNothingIsLeft() {
        Nodes n = Nodes.parse("master_addr 127.0.0.1\nlocalhost slots=1\nno-such-node.invalid slots=1\n", "test");
        List<ProcessHandle> before = new ArrayList<>(ProcessHandle.current().children().toList());
        ClusterError e = assertThrows(ClusterError.class, () -> WorkerPool.start(n, 2, opts()));
        assertTrue(e.getMessage().startsWith("rank 1 on no-such-node.invalid died before joining: ssh failed"), e.getMessage());
        assertTrue(e.getMessage().contains("no-such-node.invalid"), e.getMessage());
        assertTrue(ProcessHandle.current().children().filter(p -> !before.contains(p)).noneMatch(ProcessHandle::isAlive));
    }
}
