package parallax.engine.cluster;

import java.nio.file.Path;

/** A coordinator for the "coordinator killed" test: starts 2 ranks, prints their pids, waits. */
public final class PoolHolderMain {
    public static void main(String[] args) throws Exception {
        WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2,
                WorkerPool.Options.defaults().withLogDir(Path.of(args[0])));
        StringBuilder sb = new StringBuilder("PIDS");
        for (long p : pool.workerPids()) sb.append(' ').append(p);
        System.out.println(sb);
        System.out.flush();
        Thread.sleep(120_000);
    }
}
