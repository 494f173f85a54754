package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.StorageImpl;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Torch;

/**
 * ZeRO stage 3 (+ parameter partitioning): between uses each DP rank keeps only its slice
 * of every unit's parameters. Around each use:
 * <ol>
 *   <li>before the unit's forward, the slices are all-gathered into a full buffer;</li>
 *   <li>after a forward that built a graph, the buffer's memory is freed while the graph
 *       keeps its tensor objects (PyTorch FSDP's "reshard after forward"; DeepSpeed's
 *       ZeRO-3 likewise gathers again for the backward instead of recomputing);</li>
 *   <li>before the unit's backward, the slices are all-gathered again into that same
 *       storage, through a second tensor on the storage (not one of the graph's), so the
 *       graph's saved tensors keep their version and autograd accepts them;</li>
 *   <li>after the backward, gradients are reduce-scattered as in stage 2 and the gathered
 *       copy is freed for good.</li>
 * </ol>
 * With activation checkpointing a segment's forward runs without a graph (the copy is freed
 * at once) and is recomputed before its backward with the parameters gathered again.
 * Activations are kept exactly as in plain data parallelism.
 */
final class ShardedParameters extends ShardedGradients {

    /** A unit's gathered parameters whose memory was handed back until its backward. */
    private record Gathered(FlatUnit unit, Tensor flat, List<Tensor> views) {}

    /** Freed copies waiting for their backward, by (unit, micro-batch). */
    private final Map<Long, Gathered> waiting = new HashMap<>();

    ShardedParameters(Comm dp, DType dtype, Device device, boolean offload) { super(dp, dtype, device, offload); }

    @Override public int stage() { return 3; }

    @Override
    void place(FlatUnit u, Tensor full32) {
        long lo = u.sliceStart(dp.rank());
        u.shard = full32.narrow(0, lo, u.shardSize).to(Torch.scalarType(dtype)).clone();
        u.master = masterIsComputeCopy() ? u.shard : masterCopy(full32.narrow(0, lo, u.shardSize));
    }

    private static long key(int unit, int microBatch) { return ((long) unit << 32) | (microBatch & 0xffffffffL); }

    @Override
    public void beforeForward(int index) {
        FlatUnit u = unit(index);
        Tensor full = device.empty(dtype, u.padded);
        dp.allGather(full, u.shard);
        u.flat = Torch.keep(full);
        u.bindViews();
        for (Tensor p : u.params.values()) Torch.keep(p);
    }

    @Override
    public void afterForward(int index, int microBatch, Pass pass) {
        FlatUnit u = unit(index);
        switch (pass) {
            case NO_GRAPH -> release(u);
            case GRAPH -> {
                waiting.put(key(index, microBatch), new Gathered(u, u.flat, new ArrayList<>(u.params.values())));
                u.flat.storage().unsafeGetStorageImpl().reset();
                u.params.clear();
                u.flat = null;
            }
            case RECOMPUTE -> { } // kept gathered until its backward is done
        }
    }

    @Override
    public void beforeBackward(int index, int microBatch) {
        Gathered g = waiting.get(key(index, microBatch));
        if (g == null) return; // recomputed: still gathered
        long bytes = g.unit().padded * dtype.bytes();
        // The storage's own allocator (host or CUDA caching allocator) gives it memory again.
        StorageImpl impl = g.flat().storage().unsafeGetStorageImpl();
        impl.set_data_ptr_noswap(impl.allocator()._allocate(bytes));
        impl.set_nbytes(bytes);
        try (PointerScope s = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            // A fresh tensor on the same storage has its own version counter: filling it
            // leaves the versions autograd recorded for the graph's tensors untouched.
            Tensor alias = device.empty(dtype, 0).set_(g.flat().storage());
            dp.allGather(alias, g.unit().shard);
        }
        // bound again for the backward, so that the gradient hook finds the gradients
        g.unit().flat = g.flat();
        g.unit().params.clear();
        for (int i = 0; i < g.views().size(); i++) g.unit().params.put(g.unit().specs.get(i).name(), g.views().get(i));
    }

    @Override
    public void afterBackward(int index, int microBatch, boolean lastMicroBatch) {
        FlatUnit u = unit(index);
        reduceScatterGradients(u);
        Gathered g = waiting.remove(key(index, microBatch));
        if (g == null) {
            release(u);
            return;
        }
        if (u.flat == g.flat()) {
            u.params.clear();
            u.flat = null;
        }
        for (Tensor v : g.views()) v.close();
        g.flat().close();
    }

    /** Drops the gathered copy of {@code u}. */
    private static void release(FlatUnit u) {
        for (Tensor p : u.params.values()) p.close();
        u.params.clear();
        if (u.flat != null) u.flat.close();
        u.flat = null;
    }

    @Override
    public void step(double gradScale) {
        dataParallel.finish();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : units) {
                stepUnit(u, u.gradShard, gradScale);
                if (u.master != u.shard) u.shard.copy_(u.master);
            }
        }
        dataParallel.finish();
    }

    @Override
    public long parameterBytes() {
        long b = 0;
        for (FlatUnit u : units) b += u.shard.nbytes();
        return b;
    }

    @Override
    Tensor fullParameters(FlatUnit u) {
        Tensor flat = device.empty(dtype, u.padded);
        dp.allGather(flat, u.shard);
        return flat;
    }
}
