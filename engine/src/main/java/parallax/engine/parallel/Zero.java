package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.StorageImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;
import parallax.engine.model.Optimizer;
import parallax.engine.torch.DType;
import parallax.engine.torch.Torch;

/**
 * Where this rank's parameters, gradients and optimizer state live, and how they are
 * synchronised across the data-parallel group: ZeRO (Rajbhandari et al., SC20) stages
 * 0 to 3. Everything is bucketed by model unit (embedding, each block, head): a unit's
 * parameters are views into one flat buffer padded to a multiple of the DP size, and
 * DP rank r owns elements [r*S, (r+1)*S) of it, S = padded / dp.
 *
 * <ul>
 *   <li>stage 0 (plain DP): full parameters, gradients and optimizer state on every rank;
 *       gradients all-reduced per unit, overlapped with backward ({@link DataParallel}).</li>
 *   <li>stage 1: optimizer state (and fp32 master weights) only for the owned slice;
 *       full gradients are still kept, but reduce-scattered so each rank receives the
 *       average of its slice; after the step the updated slices are all-gathered
 *       (together the same bytes as one all-reduce).</li>
 *   <li>stage 2: + gradients: each micro-step's gradients are reduce-scattered and only
 *       the owned slice is kept (accumulated in fp32); full gradients are freed.</li>
 *   <li>stage 3: + parameters: only the owned slice is kept between uses; a unit's
 *       parameters are all-gathered before its forward, their memory is freed after it
 *       while the autograd graph keeps the tensors ({@link #offload}), and they are
 *       all-gathered again into the same storage before the unit's backward
 *       ({@link #refill}), then freed. Activations are kept as in plain DP; with
 *       activation checkpointing the unit's forward is recomputed instead.</li>
 * </ul>
 * In mixed precision the compute copy is bf16/fp16 and an fp32 master copy (full for
 * stage 0, the owned slice otherwise) is what the optimizer updates.
 */
public final class Zero {

    /** One unit's parameters: the bucket unit of every stage. */
    final class Unit {
        final int index;
        final List<Gpt.ParamSpec> specs;
        final long[] offsets;
        final long numel, padded, shardSize;
        Tensor flat;                  // compute dtype [padded]; null between uses in stage 3
        Tensor shard;                 // stage 3: compute dtype [shardSize], persistent
        Tensor master;                // fp32 weights the optimizer updates (may alias flat/shard)
        Tensor gradFull;              // fp32 [padded] after all-reduce (stages 0, 1)
        Tensor gradShard;             // fp32 [shardSize] accumulated (stages 2, 3)
        final Map<String, Tensor> params = new LinkedHashMap<>();
        Optimizer optimizer;
        java.util.concurrent.Future<?> reduced; // stage 0: the all-reduce of the bucket holding gradFull

        Unit(int index, List<Gpt.ParamSpec> specs) {
            this.index = index;
            this.specs = specs;
            this.offsets = new long[specs.size()];
            long n = 0;
            for (int i = 0; i < specs.size(); i++) { offsets[i] = n; n += specs.get(i).numel(); }
            this.numel = n;
            this.padded = (n + dp.size() - 1) / dp.size() * dp.size();
            this.shardSize = padded / dp.size();
        }

        /** Makes the named parameter views (leaves that require grad) over {@code flat}. */
        void bindViews() {
            params.clear();
            for (int i = 0; i < specs.size(); i++) {
                Gpt.ParamSpec s = specs.get(i);
                Tensor slice = flat.narrow(0, offsets[i], s.numel());
                Tensor v = slice.view(s.shape());
                slice.close(); // only the view may keep the buffer alive
                v.requires_grad_(true);
                params.put(s.name(), v);
            }
        }

        List<Tensor> grads() {
            List<Tensor> g = new ArrayList<>();
            for (int i = 0; i < specs.size(); i++) {
                Tensor p = params.get(specs.get(i).name());
                Tensor gr = p.grad();
                g.add(gr.defined() ? gr : torch.zeros(specs.get(i).shape()));
            }
            return g;
        }

        /** This unit's gradients as one fp32 vector of length {@code padded}. */
        Tensor flatGrad() {
            List<Tensor> parts = new ArrayList<>();
            addGradParts(parts);
            return Torch.flatCat(parts).to(torch.ScalarType.Float);
        }

        /** This unit's gradients, then zeros up to {@code padded}: the pieces of its flat gradient. */
        void addGradParts(List<Tensor> parts) {
            List<Tensor> g = grads();
            parts.addAll(g);
            if (padded > numel) parts.add(torch.zeros(new long[] {padded - numel}, new org.bytedeco.pytorch.TensorOptions(g.get(0).scalar_type())));
        }

        void freeGrads() {
            for (Tensor p : params.values()) p.mutable_grad().reset();
        }
    }

    private final Comm dp;
    private final int stage;
    private final DType dtype;
    private final List<Unit> units = new ArrayList<>();
    private final Map<String, Unit> byName = new LinkedHashMap<>();
    private final PointerScope storage = new PointerScope();
    /** Stage 0 gradient buckets: units waiting to be sent, and the buckets sent this step. */
    private final List<Unit> pending = new ArrayList<>();
    private final List<Tensor> buckets = new ArrayList<>();
    private long pendingBytes;
    private final List<Unit> sent = new ArrayList<>();
    /**
     * Bucket size: PyTorch DDP's default bucket_cap_mb (25 MiB), or PARALLAX_DP_BUCKET_MB.
     * A model smaller than one bucket is all-reduced once, right after its backward: on
     * this 2-core box every extra overlapped bucket cost the backward about 2 ms.
     */
    private final long bucketBytes = (long) (Double.parseDouble(System.getenv().getOrDefault("PARALLAX_DP_BUCKET_MB", "25")) * (1 << 20));

    /**
     * Builds the storage of units [from, to) from the model's deterministic init.
     * Must be called outside any step scope: its tensors live until {@link #close}.
     */
    public Zero(Gpt model, int from, int to, long seed, int stage, DType dtype, Comm dp, String optimizer, double lr) {
        if (stage < 0 || stage > 3) throw new parallax.engine.UserError("--zero must be 0, 1, 2 or 3, not " + stage);
        this.dp = dp;
        this.stage = stage;
        this.dtype = dtype;
        this.dataParallel = new DataParallel(dp);
        storage.extend();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int u = from; u < to; u++) {
                Unit unit = new Unit(u, model.params(u));
                float[] all = new float[(int) unit.padded];
                for (int i = 0; i < unit.specs.size(); i++) {
                    float[] v = model.initialValues(unit.specs.get(i), seed);
                    System.arraycopy(v, 0, all, (int) unit.offsets[i], v.length);
                }
                Tensor full32 = Torch.fromFloats(all, unit.padded);
                long lo = dp.rank() * unit.shardSize;
                if (stage < 3) {
                    unit.flat = full32.to(dtype.scalarType()).contiguous();
                    unit.bindViews();
                    if (dtype == DType.FP32) unit.master = stage == 0 ? unit.flat : unit.flat.narrow(0, lo, unit.shardSize);
                    else unit.master = stage == 0 ? full32 : full32.narrow(0, lo, unit.shardSize).clone();
                } else {
                    unit.shard = full32.narrow(0, lo, unit.shardSize).to(dtype.scalarType()).clone();
                    unit.master = dtype == DType.FP32 ? unit.shard : full32.narrow(0, lo, unit.shardSize).clone();
                }
                if (unit.master != full32) full32.close();
                unit.optimizer = Optimizer.create(optimizer, unit.master.numel(), lr);
                units.add(unit);
                for (Gpt.ParamSpec s : unit.specs) byName.put(s.name(), unit);
            }
        }
        storage.close(); // extended scope: detaches nothing, keeps everything until close()
    }

    public int stage() { return stage; }

    /**
     * Plain DP (stage 0) whose gradients, as fp32, fit in one bucket: they are all-reduced
     * in one call after the backward, so there is no per-unit communication to overlap.
     */
    public boolean gradientsFitOneBucket() {
        if (stage != 0) return false;
        long bytes = 0;
        for (Unit u : units) bytes += u.padded * 4;
        return bytes <= bucketBytes;
    }

    private boolean localSgd;
    private final DataParallel dataParallel;

    /** The gradient all-reduce of stages 0 and 1 (overlapped with backward). */
    public DataParallel dataParallel() { return dataParallel; }

    /** Local SGD: keep gradients local (no all-reduce); see {@link #averageParameters}. */
    public void localSgd(boolean on) {
        if (on && stage != 0) throw new parallax.engine.UserError("local SGD needs --zero 0 (each rank keeps its own full state)");
        this.localSgd = on;
    }

    /** The compute tensor of a parameter, for the model's forward. */
    public Tensor weight(String name) {
        Unit u = byName.get(name);
        Tensor t = u.params.get(name);
        if (t == null) throw new IllegalStateException(name + " is not gathered (ZeRO-3)");
        return t;
    }

    Unit unit(int index) {
        for (Unit u : units) if (u.index == index) return u;
        throw new IllegalArgumentException("unit " + index + " not on this stage");
    }

    /** Stage 3: all-gather the unit's parameters before use (forward or recompute). */
    public void gather(int index) {
        if (stage < 3) return;
        Unit u = unit(index);
        Tensor full = Torch.empty(dtype, u.padded);
        dp.allGather(full, u.shard);
        u.flat = Torch.keep(full);
        u.bindViews();
        for (Tensor p : u.params.values()) Torch.keep(p);
    }

    /**
     * A unit's gathered parameters whose memory was handed back after the forward while
     * the autograd graph still holds the tensors (PyTorch FSDP's "reshard after forward";
     * DeepSpeed's ZeRO-3 likewise re-gathers for the backward instead of recomputing).
     */
    public static final class Gathered {
        final Unit unit;
        final Tensor flat;
        final List<Tensor> views;

        Gathered(Unit unit, Tensor flat, List<Tensor> views) {
            this.unit = unit;
            this.flat = flat;
            this.views = views;
        }
    }

    /** Whether ZeRO-3 can free gathered parameters between forward and backward (CPU storage). */
    public boolean freesBetweenForwardAndBackward() {
        return stage == 3 && !units.isEmpty() && units.get(0).shard.is_cpu();
    }

    /**
     * Stage 3, right after a unit's forward that built a graph: frees the memory of the
     * gathered parameters (the storage becomes empty; the graph keeps its tensors, and the
     * views stay valid objects) and hands them over to the caller until the backward.
     */
    public Gathered offload(int index) {
        Unit u = unit(index);
        Gathered g = new Gathered(u, u.flat, new ArrayList<>(u.params.values()));
        u.flat.storage().unsafeGetStorageImpl().reset();
        u.params.clear();
        u.flat = null;
        return g;
    }

    /**
     * Stage 3, before the unit's backward: all-gathers the parameters again into the same
     * storage the graph's tensors use. The copy is raw (not a tensor op), so the graph's
     * saved tensors keep their version and autograd accepts them.
     */
    public void refill(Gathered g) {
        long bytes = g.unit.padded * dtype.bytes();
        StorageImpl impl = g.flat.storage().unsafeGetStorageImpl();
        impl.set_data_ptr_noswap(impl.allocator()._allocate(bytes));
        impl.set_nbytes(bytes);
        try (PointerScope s = new PointerScope()) {
            Tensor full = Torch.empty(dtype, g.unit.padded);
            dp.allGather(full, g.unit.shard);
            org.bytedeco.javacpp.Pointer.memcpy(g.flat.data_ptr(), full.data_ptr(), bytes);
        }
        // bound again for the backward, so that afterBackward finds the gradients
        g.unit.flat = g.flat;
        g.unit.params.clear();
        for (int i = 0; i < g.views.size(); i++) g.unit.params.put(g.unit.specs.get(i).name(), g.views.get(i));
    }

    /** Stage 3, after the unit's backward: frees the re-gathered parameters for good. */
    public void drop(Gathered g) {
        if (g.unit.flat == g.flat) {
            g.unit.params.clear();
            g.unit.flat = null;
        }
        for (Tensor v : g.views) v.close();
        g.flat.close();
    }

    /** Stage 3: drop the gathered copy after use. */
    public void release(int index) {
        if (stage < 3) return;
        Unit u = unit(index);
        for (Tensor p : u.params.values()) p.close();
        u.params.clear();
        if (u.flat != null) u.flat.close();
        u.flat = null;
    }

    /**
     * After the backward of unit {@code index} for one micro-batch. Stages 0 and 1
     * synchronise only on the last micro-batch (gradient accumulation without
     * communication); stages 2 and 3 reduce-scatter every micro-batch and keep the slice.
     */
    public void afterBackward(int index, boolean lastMicroBatch) {
        Unit u = unit(index);
        if (stage <= 1) {
            if (!lastMicroBatch) return;
            if (stage == 0 && !localSgd && dp.size() > 1) {
                // Units join a bucket until it holds bucketBytes or the stage's backward is
                // done; then one copy fills the bucket and one all-reduce averages it.
                pending.add(u);
                pendingBytes += u.padded * 4;
                if (pendingBytes >= bucketBytes || u.index == units.get(0).index) flushBucket(pending);
                return;
            }
            Tensor g = u.flatGrad();
            keep(u, "gradFull", g); // the communication bucket, alive until the step
            if (stage == 0) {
                // local SGD or a group of one: nothing to send
            } else {
                // ZeRO-1 needs only its own slice of the averaged gradient: reduce-scatter
                // (the all-gather of updated weights after the step completes the all-reduce).
                Tensor mine = torch.empty(u.shardSize);
                keep(u, "gradShard", mine);
                dataParallel.reduceScatterAsync(mine, g);
            }
        } else {
            Tensor g = u.flatGrad();
            Tensor mine = torch.empty(u.shardSize);
            dp.reduceScatter(mine, g);
            mine.div_(new Scalar(dp.size()));
            if (u.gradShard == null) keep(u, "gradShard", mine);
            else u.gradShard.add_(mine);
            u.freeGrads();
        }
    }

    /**
     * Copies the gradients of the pending units into one fp32 bucket, makes each unit's
     * {@code gradFull} a view of its part, and starts the bucket's all-reduce.
     */
    private void flushBucket(List<Unit> group) {
        List<Tensor> parts = new ArrayList<>();
        for (Unit u : group) u.addGradParts(parts);
        Tensor bucket = Torch.keep(Torch.flatCat(parts).to(torch.ScalarType.Float));
        buckets.add(bucket);
        long off = 0;
        for (Unit u : group) {
            keep(u, "gradFull", bucket.narrow(0, off, u.padded));
            off += u.padded;
        }
        java.util.concurrent.Future<?> done = dataParallel.allReduceAsync(bucket);
        for (Unit u : group) {
            sent.add(u);
            u.reduced = done;
        }
        if (group == pending) {
            pending.clear();
            pendingBytes = 0;
        }
    }

    private void keep(Unit u, String field, Tensor t) {
        Torch.keep(t);
        if (field.equals("gradFull")) { if (u.gradFull != null) u.gradFull.close(); u.gradFull = t; }
        else { u.gradShard = t; }
    }

    /** Bytes of gradients held right now (before the step frees them). */
    public long gradientBytes() {
        long b = 0;
        for (Unit u : units) {
            if (stage <= 1) for (Tensor p : u.params.values()) { Tensor g = p.grad(); if (g.defined()) b += g.nbytes(); }
            else if (u.gradShard != null) b += u.gradShard.nbytes();
        }
        return b;
    }

    public long parameterBytes() {
        long b = 0;
        for (Unit u : units) b += stage < 3 ? u.flat.nbytes() : u.shard.nbytes();
        return b;
    }

    /** Optimizer state plus a separate fp32 master copy where there is one. */
    public long optimizerBytes() {
        long b = 0;
        for (Unit u : units) {
            b += u.optimizer.stateBytes();
            if (dtype != DType.FP32) b += u.master.nbytes();
        }
        return b;
    }

    /** True when any gradient element on this rank is inf or NaN (fp16 overflow check). */
    public boolean gradientsOverflow() {
        dataParallel.finish();
        for (Unit u : units) {
            Tensor g = stage == 0 ? u.gradFull : u.gradShard;
            if (g != null && !g.isfinite().all().item_bool()) return true;
        }
        return false;
    }

    /**
     * Optimizer step on the owned slice (stage 0: everything), gradients multiplied by
     * {@code gradScale} first (1 / loss scale), then the compute copy is refreshed:
     * cast (stage 0), all-gather of the updated slices (stages 1, 2), slice cast (3).
     */
    public void step(double gradScale) {
        // Stage 0 steps units in the order their buckets were sent, each as soon as its
        // bucket is averaged (units are independent, so the order changes no result).
        List<Unit> order = units;
        if (stage == 0 && !sent.isEmpty()) {
            order = new ArrayList<>(sent);
            for (Unit u : units) if (!order.contains(u)) order.add(u);
        } else {
            dataParallel.finish();
        }
        try (NoGradGuard ng = new NoGradGuard()) {
            for (Unit u : order) {
                if (u.reduced != null) dataParallel.await(u.reduced);
                long lo = dp.rank() * u.shardSize;
                Tensor g;
                if (stage == 0) g = u.gradFull;
                else g = u.gradShard;
                if (gradScale != 1.0) g = g.mul(new Scalar(gradScale));
                u.optimizer.step(u.master, g);
                if (stage == 0) {
                    if (dtype != DType.FP32) u.flat.copy_(u.master);
                } else if (stage < 3) {
                    Tensor mine = u.master.to(dtype.scalarType()).clone();
                    Tensor full = Torch.empty(dtype, u.padded);
                    dp.allGather(full, mine);
                    u.flat.copy_(full);
                } else if (dtype != DType.FP32) {
                    u.shard.copy_(u.master);
                }
            }
        }
        dataParallel.finish();
    }

    /** Frees gradients after the step (or after a skipped step). */
    public void zeroGrad() {
        dataParallel.finish();
        for (Unit u : units) {
            u.freeGrads();
            if (u.gradFull != null) { u.gradFull.close(); u.gradFull = null; }
            if (u.gradShard != null) { u.gradShard.close(); u.gradShard = null; }
        }
        for (Tensor b : buckets) b.close();
        buckets.clear();
        for (Unit u : sent) u.reduced = null;
        sent.clear();
    }

    /** Local SGD: average this rank's full parameters over the DP group (stages 0 only). */
    public void averageParameters() {
        try (NoGradGuard ng = new NoGradGuard()) {
            for (Unit u : units) {
                Tensor m = u.master;
                DataParallel.allReduceBucket(dp, m);
                if (dtype != DType.FP32) u.flat.copy_(m);
            }
        }
    }

    /**
     * This rank's parameters as fp32 arrays by name (stage 3: gathered first), for
     * comparing layouts. Call on every DP rank: stage 3 gathers collectively.
     */
    public Map<String, float[]> exportParameters() {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Unit u : units) {
            try (PointerScope s = new PointerScope()) {
                Tensor flat;
                if (stage < 3) flat = u.flat;
                else {
                    flat = Torch.empty(dtype, u.padded);
                    dp.allGather(flat, u.shard);
                }
                float[] all = Torch.toFloats(flat);
                for (int i = 0; i < u.specs.size(); i++) {
                    float[] v = new float[(int) u.specs.get(i).numel()];
                    System.arraycopy(all, (int) u.offsets[i], v, 0, v.length);
                    out.put(u.specs.get(i).name(), v);
                }
            }
        }
        return out;
    }

    public List<Gpt.ParamSpec> specs() {
        List<Gpt.ParamSpec> s = new ArrayList<>();
        for (Unit u : units) s.addAll(u.specs);
        return s;
    }

    public long localParameterCount() {
        long n = 0;
        for (Unit u : units) n += u.numel;
        return n;
    }

    public void close() {
        dataParallel.close();
        storage.deallocate();
    }
}
