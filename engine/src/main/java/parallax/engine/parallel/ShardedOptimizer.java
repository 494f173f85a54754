package parallax.engine.parallel;

import parallax.engine.torch.Device;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Torch;

/**
 * ZeRO stage 1 (optimizer state partitioning): each DP rank keeps the optimizer state, and
 * in mixed precision the fp32 master weights, of its own slice of every unit only. Full
 * gradients are still accumulated over the micro-batches; after the last one they are
 * reduce-scattered (overlapped with the backward on {@link DataParallel}'s thread) so each
 * rank receives the average of its slice. After its optimizer step each rank all-gathers
 * the updated slices into the full compute copy: reduce-scatter plus all-gather move the
 * same bytes as one all-reduce.
 */
sealed class ShardedOptimizer extends ParameterStore permits ShardedGradients {

    ShardedOptimizer(Comm dp, DType dtype, Device device, boolean offload) { super(dp, dtype, device, offload); }

    @Override public int stage() { return 1; }

    @Override
    void place(FlatUnit u, Tensor full32) {
        long lo = u.sliceStart(dp.rank());
        u.flat = full32.to(Torch.scalarType(dtype)).contiguous();
        u.bindViews();
        u.master = masterIsComputeCopy() ? u.flat.narrow(0, lo, u.shardSize) : masterCopy(full32.narrow(0, lo, u.shardSize));
    }

    @Override
    public void afterBackward(int index, int microBatch, boolean lastMicroBatch) {
        if (!lastMicroBatch) return; // full gradients accumulate locally until the last micro-batch
        FlatUnit u = unit(index);
        Tensor g = u.flatGrad();
        u.keepGradFull(g); // the unscattered buffer must live until the reduce-scatter is done
        Tensor mine = device.empty(DType.F32, u.shardSize);
        u.keepGradShard(mine);
        dataParallel.reduceScatterAsync(mine, g);
    }

    @Override
    Tensor syncedGradient(FlatUnit u) { return u.gradShard; }

    @Override
    public void step(double gradScale) {
        dataParallel.finish();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : units) {
                stepUnit(u, u.gradShard, gradScale);
                Tensor mine = device.empty(dtype, u.shardSize).copy_(u.master); // cast, and up to the device when offloaded
                Tensor full = device.empty(dtype, u.padded);
                dp.allGather(full, mine);
                u.flat.copy_(full);
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
}
