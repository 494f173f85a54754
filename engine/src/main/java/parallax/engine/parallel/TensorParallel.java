package parallax.engine.parallel;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorTensorHook;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;

/**
 * Megatron-LM tensor parallelism (Shoeybi et al. 2019, section 3): the model
 * ({@link Gpt}) holds column-parallel Q, K, V and fc1 (each rank its heads / its part of
 * the MLP) and row-parallel attention-output and fc2, and calls the two conjugate
 * operators below. Per block: two all-reduces forward (g after out-proj and after fc2)
 * and two backward (f before QKV and before fc1).
 *
 * <p>Sequence parallelism (Korthikanti et al., "Reducing Activation Recomputation in
 * Large Transformer Models", 2022, section 4.2.2): between the TP regions (LayerNorms,
 * residual adds) each rank holds only its slice of the sequence, so those activations
 * shrink by tp. f becomes an all-gather along the sequence (backward: reduce-scatter) and
 * g a reduce-scatter (backward: all-gather): the same bytes on the wire as the two
 * all-reduces, since an all-reduce is a reduce-scatter plus an all-gather. The replicated
 * weights used in the sliced regions see only their slice's tokens, so their gradients
 * are summed over the TP group ({@link #sequenceParallelWeight}).
 *
 * <p>The Java API has no custom autograd functions, so each operator is an ordinary op
 * plus the collective done by hand:
 * <ul>
 *   <li>f = clone (gradient: identity) with a gradient hook that all-reduces the
 *       gradient as autograd passes through it;</li>
 *   <li>g = clone (gradient: identity) whose values are then all-reduced in place,
 *       outside autograd's view, so the forward sees the sum and the backward the
 *       identity.</li>
 * </ul>
 */
public final class TensorParallel implements Gpt.TpOps {

    private final Comm tp;
    private final boolean sequenceParallel;
    private final TensorTensorHook allReduceGradient, gatherOwnSlices, reduceScatterIntoOwnSlice;

    public TensorParallel(Comm tp) {
        this(tp, false);
    }

    public TensorParallel(Comm tp, boolean sequenceParallel) {
        this.tp = tp;
        this.sequenceParallel = sequenceParallel && tp.size() > 1;
        // Backward of "keep my slice": every rank's slice of the gradient, gathered.
        this.gatherOwnSlices = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                Tensor g = new Tensor(grad);
                long c = g.size(1) / tp.size();
                return allGatherSequence(g.narrow(1, tp.rank() * c, c));
            }
        };
        // Backward of "gather the sequence": the sum over ranks of their gradients for my slice.
        this.reduceScatterIntoOwnSlice = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                Tensor g = new Tensor(grad);
                long c = g.size(1) / tp.size();
                Tensor out = torch.zeros_like(g);
                out.narrow(1, tp.rank() * c, c).copy_(reduceScatterSequence(g));
                return out;
            }
        };
        this.allReduceGradient = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                // Runs inside backward: the summed gradient replaces this rank's partial one.
                Tensor sum = new Tensor(grad).clone();
                tp.allReduce(sum);
                return sum;
            }
        };
    }

    public Comm group() { return tp; }

    @Override
    public boolean sequenceParallel() { return sequenceParallel; }

    @Override
    public Tensor scatterToSequence(Tensor x) {
        long c = x.size(1) / tp.size();
        if (x.requires_grad()) x.register_hook(gatherOwnSlices);
        return sliceOf(x, c);
    }

    /**
     * This rank's (B, c, h) slice of {@code x}, a copy. The view it is cut from is closed at
     * once: a view left to the step's PointerScope keeps x's storage referenced, which the
     * activation count (Torch.heldByAutograd) reads as held for backward.
     */
    private Tensor sliceOf(Tensor x, long c) {
        Tensor view = x.narrow(1, tp.rank() * c, c);
        Tensor y = view.clone();
        view.close();
        return y;
    }

    @Override
    public Tensor gatherFromSequence(Tensor x) {
        Tensor y = gatherValues(x);
        if (y.requires_grad()) y.register_hook(reduceScatterIntoOwnSlice);
        return y;
    }

    @Override
    public Tensor reduceScatterToSequence(Tensor partial) {
        long c = partial.size(1) / tp.size();
        if (partial.requires_grad()) partial.register_hook(gatherOwnSlices);
        Tensor y = sliceOf(partial, c);
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor mine = reduceScatterSequence(partial);
            y.copy_(mine);
            mine.close();
        }
        return y;
    }

    @Override
    public Tensor gatherForReplicated(Tensor x) {
        return gatherValues(x);
    }

    @Override
    public Tensor sequenceParallelWeight(Tensor w) {
        return copyToTensorParallel(w);
    }

    /**
     * The whole sequence, differentiable only through this rank's slice: the slice is
     * placed among zeros (a concatenation autograd follows), and the other ranks' slices
     * are filled in afterwards, outside autograd's view.
     */
    private Tensor gatherValues(Tensor x) {
        long b = x.size(0), c = x.size(1), h = x.size(2);
        int n = tp.size(), r = tp.rank();
        org.bytedeco.pytorch.TensorVector parts = new org.bytedeco.pytorch.TensorVector();
        if (r > 0) parts.push_back(x.new_zeros(b, (long) r * c, h));
        parts.push_back(x);
        if (r < n - 1) parts.push_back(x.new_zeros(b, (long) (n - 1 - r) * c, h));
        Tensor y = torch.cat(parts, 1);
        parts.close(); // its copy of x would count x as held (see sliceOf)
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor d = x.detach(), all = allGatherSequence(d);
            y.copy_(all);
            all.close();
            d.close();
        }
        return y;
    }

    /** (B, c, h) slices of every rank, concatenated along the sequence in rank order: (B, n*c, h). */
    private Tensor allGatherSequence(Tensor slice) {
        long b = slice.size(0), c = slice.size(1), h = slice.size(2);
        int n = tp.size();
        Tensor flat = slice.new_empty(n * b * c * h);
        Tensor src = slice.contiguous(), srcFlat = src.view(-1);
        tp.allGather(flat, srcFlat);
        srcFlat.close(); // views of the slice, closed for the reason sliceOf gives
        src.close();
        Tensor byRank = flat.view(n, b, c, h), perm = byRank.permute(1, 0, 2, 3);
        Tensor out = perm.reshape(b, n * c, h);
        perm.close();
        byRank.close();
        return out;
    }

    /** The sum over ranks of (B, n*c, h) tensors: this rank's (B, c, h) slice of it. */
    private Tensor reduceScatterSequence(Tensor full) {
        long b = full.size(0), h = full.size(2);
        int n = tp.size();
        long c = full.size(1) / n;
        Tensor d = full.detach(), split = d.reshape(b, n, c, h), perm = split.permute(1, 0, 2, 3), packed = perm.contiguous();
        Tensor byRank = packed.view(-1);
        Tensor mine = full.new_empty(b * c * h);
        tp.reduceScatter(mine, byRank);
        // Views of full (packed is one too when the permutation changes nothing), closed as in sliceOf.
        for (Tensor t : new Tensor[] {byRank, packed, perm, split, d}) t.close();
        return mine.view(b, c, h);
    }

    /**
     * Sequence parallelism keeps only the slice of a gathered input between forward and
     * backward (Korthikanti et al. 2022, section 4.2.2: "we only store the sharded input"),
     * so the linear layers' inputs shrink by tp like the rest of the layer: the gathered
     * copy's memory is handed back after its forward uses, and the first backward that
     * reaches one of its consumers gathers it again into the same storage (through a second
     * tensor on that storage, so the version autograd recorded stays valid).
     */
    @Override
    public void keepShardOnly(Tensor gathered, Tensor shard, Tensor... consumers) {
        if (!sequenceParallel || !gathered.requires_grad() || gathered.storage_offset() != 0 || !gathered.is_contiguous()) return;
        Regather r = new Regather(gathered, shard);
        regathers.removeIf(x -> x.done);
        regathers.add(r);
        for (Tensor c : consumers) if (c.requires_grad()) c.register_hook(r.hook());
        r.release();
    }

    /** Gathered inputs waiting for their backward (their hooks are called from native code). */
    private final java.util.List<Regather> regathers = new java.util.ArrayList<>();

    private final class Regather {
        final Tensor gathered, shard;
        final long bytes;
        final org.bytedeco.pytorch.StorageImpl impl;
        final java.util.List<TensorTensorHook> hooks = new java.util.ArrayList<>();
        boolean done;

        Regather(Tensor gathered, Tensor shard) {
            this.gathered = gathered;
            this.shard = parallax.engine.torch.Torch.keep(shard.detach());
            this.bytes = gathered.storage().nbytes();
            this.impl = gathered.storage().unsafeGetStorageImpl();
        }

        void release() { impl.reset(); }

        TensorTensorHook hook() {
            TensorTensorHook h = new TensorTensorHook() {
                @Override
                public TensorBase call(TensorBase grad) {
                    if (!done) refill();
                    return grad;
                }
            };
            hooks.add(h);
            return h;
        }

        void refill() {
            done = true;
            impl.set_data_ptr_noswap(impl.allocator()._allocate(bytes));
            impl.set_nbytes(bytes);
            try (NoGradGuard ng = new NoGradGuard()) {
                Tensor alias = shard.new_empty(new long[] {0}).set_(gathered.storage()).view(gathered.sizes());
                alias.copy_(allGatherSequence(shard));
            }
            shard.close();
        }
    }

    /** f: identity forward, all-reduce backward. */
    @Override
    public Tensor copyToTensorParallel(Tensor x) {
        if (tp.size() == 1) return x;
        Tensor y = x.clone();
        if (y.requires_grad()) y.register_hook(allReduceGradient);
        return y;
    }

    /** g: all-reduce forward, identity backward. */
    @Override
    public Tensor reduceFromTensorParallel(Tensor partial) {
        if (tp.size() == 1) return partial;
        Tensor y = partial.clone();
        try (NoGradGuard ng = new NoGradGuard()) {
            tp.allReduce(y);
        }
        return y;
    }
}
