package parallax.kernel;

import java.util.Optional;

/**
 * Exits the kernel when the process that launched it (the Jupyter client or notebook
 * server) is gone, as ipykernel's parent poller does. Without it a JVM outlives a client
 * that was killed, holding ports and memory.
 */
final class ParentWatch {

    static final long POLL_MILLIS = 1000;

    private ParentWatch() {}

    static void start(Runnable onParentDeath) {
        Optional<ProcessHandle> parent = ProcessHandle.current().parent();
        if (parent.isEmpty()) return;
        long parentPid = parent.get().pid();
        if (parentPid <= 1) return; // started detached: nothing to watch
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(POLL_MILLIS);
                } catch (InterruptedException e) {
                    return;
                }
                Optional<ProcessHandle> now = ProcessHandle.current().parent();
                boolean orphaned = now.isEmpty() || now.get().pid() != parentPid || !now.get().isAlive();
                if (orphaned) {
                    onParentDeath.run();
                    return;
                }
            }
        }, "parallax-parent-watch");
        t.setDaemon(true);
        t.start();
    }
}
