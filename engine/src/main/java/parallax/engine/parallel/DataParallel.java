package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Data parallelism: every DP rank holds the whole (TP/PP-local) model, runs its slice of
 * the global batch, and the gradients are averaged with an all-reduce before the
 * optimizer step, so every rank takes the same step as one process on the whole batch.
 *
 * <ul>
 *   <li>Buckets: whole model units (embedding, each block, head) joined, in backward
 *       order, into buckets of up to 25 MiB (DDP's default cap); a full bucket is handed
 *       to a communication thread and overlaps with the backward of the earlier units —
 *       the bucket scheme of PyTorch DDP (Li et al., VLDB 2020). The last bucket goes
 *       when the backward is done. The optimizer steps each bucket's units once its
 *       all-reduce is done; only those waits are communication the step is exposed to.</li>
 *   <li>Gradient accumulation: on every micro-batch but the last, gradients just
 *       accumulate in {@code .grad} and nothing is sent (DDP's {@code no_sync}); one
 *       all-reduce per step then serves all micro-batches.</li>
 *   <li>Local SGD (Stich, ICLR 2019; Lin et al. "Don't use large mini-batches, use local
 *       SGD", 2020): ranks step on their own gradients and average parameters every k
 *       steps — fewer, larger synchronisations, at some cost in loss.</li>
 * </ul>
 * The storage and the step are in {@link Zero} (stage 0 is this plain data parallelism).
 */
public final class DataParallel implements AutoCloseable {

    private final Comm dp;
    private final ExecutorService comm;
    private final List<Future<?>> inFlight = new ArrayList<>();
    private long busyNanos, waitNanos;

    public DataParallel(Comm dp) {
        this.dp = dp;
        this.comm = dp.size() > 1 ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "dp-allreduce");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /**
     * Starts averaging {@code bucket} over the DP group on the communication thread.
     * The bucket must stay alive and untouched until {@link #finish}.
     */
    public Future<?> allReduceAsync(Tensor bucket) {
        if (comm == null) return null;
        return track(comm.submit(() -> {
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope()) {
                allReduceBucket(dp, bucket);
            }
            synchronized (this) { busyNanos += System.nanoTime() - t0; }
        }));
    }

    private Future<?> track(Future<?> f) {
        inFlight.add(f);
        return f;
    }

    /** Waits for one bucket started by {@link #allReduceAsync} (null: nothing to wait for). */
    public void await(Future<?> f) {
        if (f == null) return;
        long t0 = System.nanoTime();
        get(f);
        waitNanos += System.nanoTime() - t0;
    }

    /**
     * ZeRO-1: starts reduce-scattering {@code bucket} so that {@code mine} receives the
     * average of this rank's slice only (the optimizer updates nothing else).
     */
    public void reduceScatterAsync(Tensor mine, Tensor bucket) {
        if (comm == null) {
            mine.copy_(bucket);
            return;
        }
        inFlight.add(comm.submit(() -> {
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                dp.reduceScatter(mine, bucket);
                mine.div_(new Scalar(dp.size()));
            }
            synchronized (this) { busyNanos += System.nanoTime() - t0; }
        }));
    }

    /** Waits for every bucket in flight (before the optimizer step). */
    public void finish() {
        long t0 = System.nanoTime();
        for (Future<?> f : inFlight) get(f);
        inFlight.clear();
        waitNanos += System.nanoTime() - t0;
    }

    private static void get(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during the gradient all-reduce", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("gradient all-reduce failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Nanoseconds the buckets spent in all-reduce (overlapped) and the step waited for them, since the last call. */
    public synchronized long[] takeNanos() {
        long[] r = {busyNanos, waitNanos};
        busyNanos = 0;
        waitNanos = 0;
        return r;
    }

    @Override
    public void close() {
        if (comm != null) comm.shutdownNow();
    }

    /** Averages one flat bucket over the DP group, in place. */
    public static void allReduceBucket(Comm dp, Tensor bucket) {
        if (dp.size() == 1) return;
        try (NoGradGuard ng = new NoGradGuard()) {
            dp.allReduce(bucket);
            bucket.div_(new Scalar(dp.size()));
        }
    }

    /** Whether gradients are synchronised after this micro-batch (only the last one). */
    public static boolean syncAfter(int microBatch, int microBatches) {
        return microBatch == microBatches - 1;
    }
}
