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
import parallax.engine.torch.Torch;

/**
 * Data parallelism's gradient all-reduce: every DP rank holds the whole (TP/PP-local)
 * model, runs its slice of the global batch, and the gradients are averaged before the
 * optimizer step, so every rank takes the same step as one process on the whole batch.
 *
 * <ul>
 *   <li>Buckets (PyTorch DDP, Li et al., VLDB 2020): units (embedding, each block, head)
 *       join a bucket in backward order as their gradients are ready; a bucket that holds
 *       {@code bucketBytes} (DDP's default cap, 25 MiB) is copied into one fp32 buffer and
 *       handed to a communication thread, so its all-reduce overlaps with the backward of
 *       the earlier units. The last bucket goes when the backward is done.</li>
 *   <li>The optimizer waits for each unit's bucket ({@link #await}); only those waits are
 *       communication the step is exposed to.</li>
 *   <li>Gradient accumulation: on every micro-batch but the last, gradients accumulate in
 *       {@code .grad} and nothing is sent (DDP's {@code no_sync}).</li>
 * </ul>
 * ZeRO-1 uses the same thread for its reduce-scatter ({@link #reduceScatterAsync}).
 * The store that keeps the weights is {@link FullReplica}.
 */
public final class DataParallel implements AutoCloseable {

    private final Comm dp;
    private final ExecutorService comm;
    private final List<Future<?>> inFlight = new ArrayList<>();
    /**
     * Bucket size: DDP's default bucket_cap_mb (25 MiB), or PARALLAX_DP_BUCKET_MB. A model
     * smaller than one bucket is all-reduced once, right after its backward.
     */
    private final long bucketBytes = (long) (Double.parseDouble(System.getenv().getOrDefault("PARALLAX_DP_BUCKET_MB", "25")) * (1 << 20));
    private final List<FlatUnit> pending = new ArrayList<>();
    private long pendingBytes;
    private final List<Tensor> buckets = new ArrayList<>();
    private final List<FlatUnit> sent = new ArrayList<>();
    private long busyNanos, waitNanos;

    public DataParallel(Comm dp) {
        this.dp = dp;
        this.comm = dp.size() > 1 ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "dp-allreduce");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    boolean fitsOneBucket(long bytes) { return bytes <= bucketBytes; }

    /**
     * The unit's gradients of this step are complete: it joins the open bucket, which is
     * sent once it is full or when {@code lastOfBackward} (no unit comes after it).
     */
    void gradientsReady(FlatUnit u, boolean lastOfBackward) {
        pending.add(u);
        pendingBytes += u.padded * 4;
        if (pendingBytes >= bucketBytes || lastOfBackward) flushBucket();
    }

    /**
     * Copies the pending units' gradients into one fp32 bucket, makes each unit's
     * {@code gradFull} a view of its part, and starts the bucket's all-reduce.
     */
    private void flushBucket() {
        List<Tensor> parts = new ArrayList<>();
        for (FlatUnit u : pending) u.addGradParts(parts);
        Tensor bucket = Torch.keep(Torch.flatCat(parts).to(org.bytedeco.pytorch.global.torch.ScalarType.Float));
        buckets.add(bucket);
        long off = 0;
        for (FlatUnit u : pending) {
            u.keepGradFull(bucket.narrow(0, off, u.padded));
            off += u.padded;
        }
        Future<?> done = allReduceAsync(bucket);
        for (FlatUnit u : pending) {
            sent.add(u);
            u.reduced = done;
        }
        pending.clear();
        pendingBytes = 0;
    }

    /** The units whose buckets were sent this step, in the order they were sent. */
    List<FlatUnit> sentOrder() { return sent; }

    /** Frees this step's buckets (their units' views were closed by the store). */
    void clearBuckets() {
        for (Tensor b : buckets) b.close();
        buckets.clear();
        sent.clear();
    }

    /**
     * Starts averaging {@code bucket} over the DP group on the communication thread.
     * The bucket must stay alive and untouched until {@link #finish}.
     */
    Future<?> allReduceAsync(Tensor bucket) {
        if (comm == null) return null;
        return track(comm.submit(() -> {
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope()) {
                allReduceMean(dp, bucket);
            }
            synchronized (this) { busyNanos += System.nanoTime() - t0; }
        }));
    }

    /**
     * ZeRO-1: starts reduce-scattering {@code bucket} so that {@code mine} receives the
     * average of this rank's slice only (the optimizer updates nothing else).
     */
    void reduceScatterAsync(Tensor mine, Tensor bucket) {
        if (comm == null) {
            mine.copy_(bucket);
            return;
        }
        track(comm.submit(() -> {
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                dp.reduceScatter(mine, bucket);
                mine.div_(new Scalar(dp.size()));
            }
            synchronized (this) { busyNanos += System.nanoTime() - t0; }
        }));
    }

    private Future<?> track(Future<?> f) {
        inFlight.add(f);
        return f;
    }

    /** Waits for one bucket started by {@link #allReduceAsync} (null: nothing to wait for). */
    void await(Future<?> f) {
        if (f == null) return;
        long t0 = System.nanoTime();
        get(f);
        waitNanos += System.nanoTime() - t0;
    }

    /** Waits for every collective in flight (before the optimizer reads gradients). */
    void finish() {
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

    /**
     * Since the last call: nanoseconds the step waited for gradient collectives running
     * on the communication thread (exposed communication), and nanoseconds those
     * collectives ran (mostly hidden behind the backward).
     */
    public synchronized Timing takeTiming() {
        Timing t = new Timing(waitNanos, busyNanos);
        busyNanos = 0;
        waitNanos = 0;
        return t;
    }

    /** Time of the overlapped gradient synchronisation within one step. */
    public record Timing(long exposedNanos, long overlappedNanos) {}

    @Override
    public void close() {
        if (comm != null) comm.shutdownNow();
    }

    /** Averages one tensor over the DP group, in place. */
    static void allReduceMean(Comm dp, Tensor t) {
        if (dp.size() == 1) return;
        try (NoGradGuard ng = new NoGradGuard()) {
            dp.allReduce(t);
            t.div_(new Scalar(dp.size()));
        }
    }
}
