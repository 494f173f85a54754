package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.UserError;
import parallax.engine.model.Gpt;
import parallax.engine.model.Optimizer;
import parallax.engine.numerics.DType;

/**
 * Where this rank's parameters, gradients and optimizer state live, and how they are kept
 * in step across the data-parallel group: every run has one. The four ZeRO stages
 * (Rajbhandari et al., SC20) are four stores, each in its own class:
 * <ul>
 *   <li>{@link FullReplica}, stage 0: plain data parallelism, everything on every rank;</li>
 *   <li>{@link ShardedOptimizer}, stage 1: optimizer state for the owned slice only;</li>
 *   <li>{@link ShardedGradients}, stage 2: + gradients for the owned slice only;</li>
 *   <li>{@link ShardedParameters}, stage 3: + parameters, gathered around each use.</li>
 * </ul>
 * All keep parameters per model unit in a {@link FlatUnit}; the gradient all-reduce of
 * stage 0 and its overlap with backward are {@link DataParallel}'s. In mixed precision the
 * compute copy is bf16/fp16 and an fp32 master copy (whole for stage 0, the owned slice
 * otherwise) is what the optimizer updates.
 *
 * <p>{@link Stage} calls the hooks around each unit: {@link #beforeForward},
 * {@link #afterForward}, {@link #beforeBackward}, {@link #afterBackward}. Only ZeRO-3 does
 * anything in the first three; every stage synchronises gradients in the last.
 */
public abstract sealed class ParameterStore implements AutoCloseable
        permits FullReplica, ShardedOptimizer, ExpertShardedStore {

    /** What a forward left behind, for {@link #afterForward}. */
    public enum Pass {
        /** No graph was built (a checkpointed segment's first forward): nothing is needed until backward. */
        NO_GRAPH,
        /** The graph holds the parameters until this micro-batch's backward. */
        GRAPH,
        /** A checkpointed segment's forward run again just before its backward. */
        RECOMPUTE
    }

    final Comm dp;
    final DType dtype;
    final Device device;
    /** ZeRO-Offload: master weights and optimizer state in host memory, the step on the CPU. */
    private final boolean offload;
    final DataParallel dataParallel;
    final List<FlatUnit> units = new ArrayList<>();
    private final Map<String, FlatUnit> byName = new LinkedHashMap<>();
    /** Made by {@link #build} (a scope is entered where it is made). */
    private PointerScope storage;

    /** The store for ZeRO {@code stage} over units [from, to) of {@code model}, from its deterministic init. */
    public static ParameterStore create(int stage, Gpt model, int from, int to, long seed, DType dtype, Comm dp,
                                        String optimizer, double lr, Device device, boolean offload) {
        return create(stage, model, List.of(new int[] {from, to}), seed, dtype, dp, optimizer, lr, device, offload);
    }

    /**
     * The store over several unit ranges [from, to) (the model chunks of an interleaved
     * pipeline stage), in the order given.
     */
    public static ParameterStore create(int stage, Gpt model, List<int[]> ranges, long seed, DType dtype, Comm dp,
                                        String optimizer, double lr, Device device, boolean offload) {
        return create(stage, model, ranges, seed, dtype, dp, optimizer, lr, device, offload, p -> true);
    }

    /**
     * The store over the parameters {@code keep} selects (a unit with none is left out):
     * expert parallelism keeps the routed experts in a store of their own, over the
     * expert-data-parallel group ({@link ExpertShardedStore}).
     */
    static ParameterStore create(int stage, Gpt model, List<int[]> ranges, long seed, DType dtype, Comm dp,
                                 String optimizer, double lr, Device device, boolean offload,
                                 java.util.function.Predicate<Gpt.ParamSpec> keep) {
        ParameterStore s = switch (stage) {
            case 0 -> new FullReplica(dp, dtype, device, offload);
            case 1 -> new ShardedOptimizer(dp, dtype, device, offload);
            case 2 -> new ShardedGradients(dp, dtype, device, offload);
            case 3 -> new ShardedParameters(dp, dtype, device, offload);
            default -> throw new UserError("--zero must be 0, 1, 2 or 3, not " + stage);
        };
        s.build(model, ranges, seed, optimizer, lr, keep);
        return s;
    }

    ParameterStore(Comm dp, DType dtype, Device device, boolean offload) {
        this.dp = dp;
        this.dtype = dtype;
        this.device = device;
        this.offload = offload;
        this.dataParallel = new DataParallel(dp);
    }

    /**
     * Builds the units' storage from the model's per-name init. Runs outside any step
     * scope: its tensors live until {@link #close}.
     */
    private void build(Gpt model, List<int[]> ranges, long seed, String optimizer, double lr,
                       java.util.function.Predicate<Gpt.ParamSpec> keep) {
        storage = new PointerScope();
        storage.extend();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (int[] range : ranges) for (int u = range[0]; u < range[1]; u++) {
                List<Gpt.ParamSpec> specs = model.params(u).stream().filter(keep).toList();
                if (specs.isEmpty()) continue;
                FlatUnit unit = new FlatUnit(u, specs, dp.size());
                float[] all = new float[(int) unit.padded];
                for (int i = 0; i < unit.specs.size(); i++) {
                    float[] v = model.initialValues(unit.specs.get(i), seed);
                    System.arraycopy(v, 0, all, (int) unit.offsets[i], v.length);
                }
                Tensor full32 = device.fromFloats(all, unit.padded);
                place(unit, full32);
                if (unit.master != full32) full32.close();
                unit.optimizer = Optimizer.create(optimizer, unit.master, lr);
                units.add(unit);
                for (Gpt.ParamSpec s : unit.specs) byName.put(s.name(), unit);
            }
        }
        storage.close(); // an extended scope: keeps everything it holds until close()
    }

    /** Sets up {@code u}'s compute copy and master weights from its full fp32 init {@code full32}. */
    abstract void place(FlatUnit u, Tensor full32);

    /** The ZeRO stage this store implements. */
    public abstract int stage();

    boolean fp32() { return dtype == DType.F32; }

    /**
     * ZeRO-Offload (Ren et al., USENIX ATC 2021): fp32 master weights and optimizer state in
     * host memory, gradients copied down for the step, weights copied back up. On a CPU rank
     * host and device memory are one, so only the separate master copy remains.
     */
    boolean offloaded() { return offload; }

    /** Where the optimizer state and master weights live. */
    public Device optimizerDevice() { return offload ? Device.cpu() : device; }

    /**
     * Whether the master weights can be the compute copy itself (fp32, on the same device);
     * otherwise they are a separate fp32 copy, refreshed into the compute copy after each step.
     */
    boolean masterIsComputeCopy() { return fp32() && !offloaded(); }

    /** {@code t} (fp32) as a master copy of its own, where the optimizer lives. */
    Tensor masterCopy(Tensor t) {
        return offloaded() ? Device.toHost(t).clone() : t.clone();
    }

    /** The compute tensor of a parameter, for the model's forward. */
    public Tensor weight(String name) {
        Tensor t = byName.get(name).params.get(name);
        if (t == null) throw new IllegalStateException(name + " is not gathered (ZeRO-3)");
        return t;
    }

    /** Whether this store holds parameter {@code name}. */
    boolean holds(String name) { return byName.containsKey(name); }

    /** Whether this store holds any parameter of unit {@code index}. */
    boolean holdsUnit(int index) {
        for (FlatUnit u : units) if (u.index == index) return true;
        return false;
    }

    FlatUnit unit(int index) {
        for (FlatUnit u : units) if (u.index == index) return u;
        throw new IllegalArgumentException("unit " + index + " not on this stage");
    }

    // ---- the hooks Stage calls around each unit ----

    /** Before unit {@code index} runs forward (also a recompute). */
    public void beforeForward(int index) {}

    /** After unit {@code index} ran forward for micro-batch {@code microBatch}. */
    public void afterForward(int index, int microBatch, Pass pass) {}

    /** Before the backward that reaches unit {@code index} for micro-batch {@code microBatch}. */
    public void beforeBackward(int index, int microBatch) {}

    /**
     * After the backward of unit {@code index} for one micro-batch: the gradient
     * synchronisation of this stage. {@code lastMicroBatch}: the step's last one.
     */
    public abstract void afterBackward(int index, int microBatch, boolean lastMicroBatch);

    /**
     * Whether the gathered parameters can be freed between a unit's forward and its
     * backward and gathered again (ZeRO-3 on CPU storage); where not, Stage recomputes.
     */
    public boolean freesBetweenForwardAndBackward() { return true; }

    /**
     * Whether every gradient of the step goes out in one collective after the backward
     * (nothing to overlap with it), so a stage may run as one autograd graph.
     */
    public boolean gradientsFitOneBucket() { return false; }

    // ---- the step ----

    /**
     * The optimizer step on the owned part (stage 0: everything), gradients multiplied by
     * {@code gradScale} first (1 / loss scale), then the compute copy made current.
     */
    public abstract void step(double gradScale);

    /** One unit's optimizer step on gradient {@code g}, scaled by {@code gradScale}. */
    void stepUnit(FlatUnit u, Tensor g, double gradScale) {
        if (offloaded()) g = Device.toHost(g); // gradients down to the host, where the step runs
        if (gradScale != 1.0) g = g.mul(new org.bytedeco.pytorch.Scalar(gradScale));
        u.optimizer.step(u.master, g);
    }

    /** The gradient the optimizer of {@code u} reads (after synchronisation). */
    abstract Tensor syncedGradient(FlatUnit u);

    /** True when any gradient element on this rank is inf or NaN (fp16 overflow check). */
    public boolean gradientsOverflow() {
        dataParallel.finish();
        for (FlatUnit u : units) {
            Tensor g = syncedGradient(u);
            if (g != null && !g.isfinite().all().item_bool()) return true;
        }
        return false;
    }

    /** Frees this step's gradients (after the step or a skipped step). */
    public void zeroGrad() {
        dataParallel.finish();
        for (FlatUnit u : units) u.clearGrads();
        dataParallel.clearBuckets();
    }

    // ---- memory, for the per-rank report ----

    /** Bytes of gradients held right now (before the step frees them). */
    public abstract long gradientBytes();

    /** Bytes of the compute copy of the parameters this rank keeps. */
    public long parameterBytes() {
        long b = 0;
        for (FlatUnit u : units) b += u.flat.nbytes();
        return b;
    }

    /** Optimizer state plus a separate fp32 master copy where there is one. */
    public long optimizerBytes() {
        long b = 0;
        for (FlatUnit u : units) {
            b += u.optimizer.stateBytes();
            if (!masterIsComputeCopy()) b += u.master.nbytes();
        }
        return b;
    }

    // ---- export ----

    /**
     * This rank's parameters as fp32 arrays by name, for comparing layouts and saving.
     * Call on every DP rank: ZeRO-3 gathers collectively.
     */
    public Map<String, float[]> exportParameters() {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (FlatUnit u : units) {
            try (PointerScope s = new PointerScope()) {
                u.exportFrom(fullParameters(u), out);
            }
        }
        return out;
    }

    /** The whole [padded] compute buffer of {@code u} (gathered under ZeRO-3). */
    Tensor fullParameters(FlatUnit u) { return u.flat; }

    public List<Gpt.ParamSpec> specs() {
        List<Gpt.ParamSpec> s = new ArrayList<>();
        for (FlatUnit u : units) s.addAll(u.specs);
        return s;
    }

    public long localParameterCount() {
        long n = 0;
        for (FlatUnit u : units) n += u.numel;
        return n;
    }

    /** The data-parallel gradient synchronisation this store uses (its timings feed the report). */
    public DataParallel dataParallel() { return dataParallel; }

    @Override
    public void close() {
        dataParallel.close();
        if (storage != null) storage.deallocate();
    }
}
