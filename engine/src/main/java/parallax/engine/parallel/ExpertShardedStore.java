package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.model.Gpt;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Device;

/**
 * The parameters of an expert-parallel rank, in two stores of the same ZeRO stage: the
 * routed experts it holds (E / ep of each block) kept in step over the expert-data-parallel
 * group, the ranks holding the same experts; everything else (embeddings, attention, the
 * router, a shared expert, the head) over the whole data-and-context-parallel group as
 * without experts. ZeRO shards each over its own group (Megatron-core's expert
 * data-parallel group, DeepSpeed-MoE's expert groups).
 *
 * <p>The expert gradients need one more factor. A rank's expert gradient already sums the
 * gradients of every rank of its expert-parallel group (their tokens came to it by
 * all-to-all), and the expert store averages it over the dp x cp / ep ranks holding those
 * experts; the data-parallel mean over all dp x cp ranks is that divided by ep again, which
 * the step applies.
 */
final class ExpertShardedStore extends ParameterStore {

    private final ParameterStore dense, experts;
    private final int ep;

    private ExpertShardedStore(ParameterStore dense, ParameterStore experts, int ep, DType dtype, Device device, boolean offload) {
        super(Comm.single(), dtype, device, offload);
        this.dense = dense;
        this.experts = experts;
        this.ep = ep;
    }

    /**
     * The stores of ZeRO {@code stage} for units {@code ranges} of {@code model} (whose
     * expert-parallel group of {@code ep} is set): the experts over {@code expertDp}, the
     * rest over {@code dp}.
     */
    static ParameterStore create(int stage, Gpt model, List<int[]> ranges, long seed, DType dtype, Comm dp, Comm expertDp,
                                 int ep, String optimizer, double lr, Device device, boolean offload) {
        ParameterStore dense = ParameterStore.create(stage, model, ranges, seed, dtype, dp, optimizer, lr, device, offload,
                p -> !Gpt.isExpertWeight(p.name()));
        ParameterStore experts;
        try {
            experts = ParameterStore.create(stage, model, ranges, seed, dtype, expertDp, optimizer, lr, device, offload,
                    p -> Gpt.isExpertWeight(p.name()));
        } catch (RuntimeException e) {
            dense.close();
            throw e;
        }
        return new ExpertShardedStore(dense, experts, ep, dtype, device, offload);
    }

    @Override public int stage() { return dense.stage(); }

    @Override
    void place(FlatUnit u, Tensor full32) { throw new IllegalStateException("the expert-sharded store places through its two stores"); }

    @Override
    public Tensor weight(String name) { return experts.holds(name) ? experts.weight(name) : dense.weight(name); }

    @Override
    public void beforeForward(int index) {
        dense.beforeForward(index);
        if (experts.holdsUnit(index)) experts.beforeForward(index);
    }

    @Override
    public void afterForward(int index, int microBatch, Pass pass) {
        dense.afterForward(index, microBatch, pass);
        if (experts.holdsUnit(index)) experts.afterForward(index, microBatch, pass);
    }

    @Override
    public void beforeBackward(int index, int microBatch) {
        dense.beforeBackward(index, microBatch);
        if (experts.holdsUnit(index)) experts.beforeBackward(index, microBatch);
    }

    @Override
    public void afterBackward(int index, int microBatch, boolean lastMicroBatch) {
        dense.afterBackward(index, microBatch, lastMicroBatch);
        if (experts.holdsUnit(index)) experts.afterBackward(index, microBatch, lastMicroBatch);
    }

    @Override
    public boolean freesBetweenForwardAndBackward() {
        return dense.freesBetweenForwardAndBackward() && experts.freesBetweenForwardAndBackward();
    }

    @Override
    public boolean gradientsFitOneBucket() { return dense.gradientsFitOneBucket() && experts.gradientsFitOneBucket(); }

    @Override
    public void step(double gradScale) {
        dense.step(gradScale);
        experts.step(gradScale / ep);
    }

    @Override
    Tensor syncedGradient(FlatUnit u) { throw new IllegalStateException("the expert-sharded store holds no unit itself"); }

    @Override
    public boolean gradientsOverflow() {
        boolean a = dense.gradientsOverflow(), b = experts.gradientsOverflow();
        return a || b;
    }

    @Override
    public void zeroGrad() {
        dense.zeroGrad();
        experts.zeroGrad();
    }

    @Override public long gradientBytes() { return dense.gradientBytes() + experts.gradientBytes(); }

    @Override public long parameterBytes() { return dense.parameterBytes() + experts.parameterBytes(); }

    @Override public long optimizerBytes() { return dense.optimizerBytes() + experts.optimizerBytes(); }

    @Override public Device optimizerDevice() { return dense.optimizerDevice(); }

    @Override
    public Map<String, float[]> exportParameters() {
        Map<String, float[]> out = new LinkedHashMap<>(dense.exportParameters());
        out.putAll(experts.exportParameters());
        return out;
    }

    @Override
    public List<Gpt.ParamSpec> specs() {
        List<Gpt.ParamSpec> s = new ArrayList<>(dense.specs());
        s.addAll(experts.specs());
        return s;
    }

    @Override public long localParameterCount() { return dense.localParameterCount() + experts.localParameterCount(); }

    @Override public DataParallel dataParallel() { return dense.dataParallel(); }

    @Override
    public void close() {
        try {
            dense.close();
            experts.close();
        } finally {
            super.close();
        }
    }
}
