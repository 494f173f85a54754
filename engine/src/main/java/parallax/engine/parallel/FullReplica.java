package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Torch;

/**
 * ZeRO stage 0, plain data parallelism: every rank keeps the whole (TP/PP-local) model,
 * its gradients and its optimizer state. After the step's last micro-batch each unit's
 * gradients join a {@link DataParallel} bucket that is averaged over the group while the
 * backward goes on; the optimizer steps each unit as soon as its bucket is averaged.
 *
 * <p>With local SGD the gradients stay local and {@link #averageParameters} averages the
 * weights every k steps instead.
 */
final class FullReplica extends ParameterStore {

    private boolean localSgd;

    FullReplica(Comm dp, DType dtype, Device device, boolean offload) { super(dp, dtype, device, offload); }

    @Override public int stage() { return 0; }

    @Override
    void place(FlatUnit u, Tensor full32) {
        u.flat = full32.to(Torch.scalarType(dtype)).contiguous();
        u.bindViews();
        u.master = masterIsComputeCopy() ? u.flat : offloaded() ? masterCopy(full32) : full32;
    }

    /** Local SGD: keep gradients local (no all-reduce); see {@link #averageParameters}. */
    void localSgd(boolean on) { this.localSgd = on; }

    @Override
    public boolean gradientsFitOneBucket() {
        long bytes = 0;
        for (FlatUnit u : units) bytes += u.padded * 4;
        return dataParallel.fitsOneBucket(bytes);
    }

    @Override
    public void afterBackward(int index, int microBatch, boolean lastMicroBatch) {
        if (!lastMicroBatch) return; // gradient accumulation: nothing is sent (DDP's no_sync)
        FlatUnit u = unit(index);
        if (!localSgd && dp.size() > 1) {
            dataParallel.gradientsReady(u, u.index == units.get(0).index);
            return;
        }
        u.keepGradFull(u.flatGrad()); // local SGD or a group of one: nothing to send
    }

    @Override
    Tensor syncedGradient(FlatUnit u) { return u.gradFull; }

    @Override
    public void step(double gradScale) {
        // Units step in the order their buckets were sent, each once its bucket is averaged
        // (units are independent, so the order changes no result).
        List<FlatUnit> order = new ArrayList<>(dataParallel.sentOrder());
        for (FlatUnit u : units) if (!order.contains(u)) order.add(u);
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : order) {
                dataParallel.await(u.reduced);
                stepUnit(u, u.gradFull, gradScale);
                if (u.master != u.flat) u.flat.copy_(u.master); // weights back up to the device when offloaded
            }
        }
        dataParallel.finish();
    }

    @Override
    public long gradientBytes() {
        long b = 0;
        for (FlatUnit u : units) b += u.gradBytes();
        return b;
    }

    /** Local SGD: averages this rank's full parameters over the DP group. */
    void averageParameters() {
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : units) {
                DataParallel.allReduceMean(dp, u.master);
                if (u.master != u.flat) u.flat.copy_(u.master);
            }
        }
    }
}
