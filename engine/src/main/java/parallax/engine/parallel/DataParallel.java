package parallax.engine.parallel;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Data parallelism: every DP rank holds the whole (TP/PP-local) model, runs its slice of
 * the global batch, and the gradients are averaged with an all-reduce before the
 * optimizer step, so every rank takes the same step as one process on the whole batch.
 *
 * <ul>
 *   <li>Buckets: one all-reduce per model unit (embedding, each block, head), issued as
 *       soon as that unit's backward is done on the last micro-batch, so the later units'
 *       buckets go out while earlier ones are still being differentiated — the bucket
 *       order of PyTorch DDP (Li et al., VLDB 2020). Our collectives are blocking, so
 *       the all-reduce runs between unit backwards rather than truly concurrently.</li>
 *   <li>Gradient accumulation: on every micro-batch but the last, gradients just
 *       accumulate in {@code .grad} and nothing is sent (DDP's {@code no_sync}); one
 *       all-reduce per step then serves all micro-batches.</li>
 *   <li>Local SGD (Stich, ICLR 2019; Lin et al. "Don't use large mini-batches, use local
 *       SGD", 2020): ranks step on their own gradients and average parameters every k
 *       steps — fewer, larger synchronisations, at some cost in loss.</li>
 * </ul>
 * The storage and the step are in {@link Zero} (stage 0 is this plain data parallelism).
 */
public final class DataParallel {

    private DataParallel() {}

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
