package parallax.engine.parallel;

import parallax.engine.torch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.numerics.DType;

/**
 * ZeRO stage 2 (+ gradient partitioning): as stage 1, but every micro-batch's gradients
 * are reduce-scattered as soon as a unit's backward is done and only the owned slice is
 * kept, accumulated in fp32; the full gradients are freed at once. Storage and the step
 * are stage 1's ({@link ShardedOptimizer}).
 */
sealed class ShardedGradients extends ShardedOptimizer permits ShardedParameters {

    ShardedGradients(Comm dp, DType dtype, Device device, boolean offload) { super(dp, dtype, device, offload); }

    @Override public int stage() { return 2; }

    @Override
    public void afterBackward(int index, int microBatch, boolean lastMicroBatch) {
        reduceScatterGradients(unit(index));
    }

    /** Averages the unit's gradients over the DP group into its owned slice, then frees them. */
    void reduceScatterGradients(FlatUnit u) {
        Tensor g = u.flatGrad();
        Tensor mine = device.empty(DType.F32, u.shardSize);
        dp.reduceScatter(mine, g);
        mine.div_(new Scalar(dp.size()));
        if (u.gradShard == null) u.keepGradShard(mine);
        else u.gradShard.add_(mine);
        u.freeGrads();
    }

    @Override
    public long gradientBytes() {
        long b = 0;
        for (FlatUnit u : units) if (u.gradShard != null) b += u.gradShard.nbytes();
        return b;
    }
}
