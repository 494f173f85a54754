package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;
import parallax.engine.model.Optimizer;
import parallax.engine.torch.Torch;

/**
 * One model unit's parameters (the embedding, a block, or the head) laid out in one flat
 * buffer: the piece every store shares. The buffer is padded to a multiple of the DP size
 * so that DP rank r owns elements [r*S, (r+1)*S), S = padded / dp. Each named parameter
 * is a view into the buffer, so one collective moves the whole unit.
 *
 * <p>The tensors below are what the stores keep per unit; which ones exist depends on the
 * ZeRO stage (see each store's class comment).
 */
final class FlatUnit {

    final int index;
    final List<Gpt.ParamSpec> specs;
    final long[] offsets;
    final long numel, padded, shardSize;

    Tensor flat;          // compute dtype [padded]; between uses under ZeRO-3 it is null
    Tensor shard;         // ZeRO-3: compute dtype [shardSize], this rank's slice, persistent
    Tensor master;        // fp32 weights the optimizer updates (may alias flat or shard in fp32)
    Tensor gradFull;      // fp32 [padded]: the averaged gradient (stage 0), the unscattered one (stage 1)
    Tensor gradShard;     // fp32 [shardSize]: this rank's averaged slice (stages 1-3)
    Optimizer optimizer;
    Future<?> reduced;    // stage 0: the bucket all-reduce that averages gradFull
    final Map<String, Tensor> params = new LinkedHashMap<>();

    FlatUnit(int index, List<Gpt.ParamSpec> specs, int dpSize) {
        this.index = index;
        this.specs = specs;
        this.offsets = new long[specs.size()];
        long n = 0;
        for (int i = 0; i < specs.size(); i++) {
            offsets[i] = n;
            n += specs.get(i).numel();
        }
        this.numel = n;
        this.padded = (n + dpSize - 1) / dpSize * dpSize;
        this.shardSize = padded / dpSize;
    }

    /** First element of DP rank {@code dpRank}'s slice. */
    long sliceStart(int dpRank) { return dpRank * shardSize; }

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

    /** The unit's gradients in spec order (zeros for a parameter the backward did not reach). */
    List<Tensor> grads() {
        List<Tensor> g = new ArrayList<>();
        for (Gpt.ParamSpec s : specs) {
            Tensor gr = params.get(s.name()).grad();
            g.add(gr.defined() ? gr : torch.zeros_like(params.get(s.name())));
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
        if (padded > numel) parts.add(g.get(0).new_zeros(padded - numel));
    }

    /** Bytes of the parameters' own gradients (.grad), as autograd left them. */
    long gradBytes() {
        long b = 0;
        for (Tensor p : params.values()) {
            Tensor g = p.grad();
            if (g.defined()) b += g.nbytes();
        }
        return b;
    }

    void freeGrads() {
        for (Tensor p : params.values()) p.mutable_grad().reset();
    }

    /** Replaces {@link #gradFull}, closing the one it held. */
    void keepGradFull(Tensor t) {
        Torch.keep(t);
        if (gradFull != null) gradFull.close();
        gradFull = t;
    }

    /** Replaces {@link #gradShard} (the caller closes nothing: it was freed at zeroGrad). */
    void keepGradShard(Tensor t) {
        gradShard = Torch.keep(t);
    }

    /** Frees this step's gradients (after the optimizer step or a skipped step). */
    void clearGrads() {
        freeGrads();
        if (gradFull != null) { gradFull.close(); gradFull = null; }
        if (gradShard != null) { gradShard.close(); gradShard = null; }
        reduced = null;
    }

    /** Copies the parameters out of a [padded] flat buffer as fp32 arrays by name. */
    void exportFrom(Tensor flatValues, Map<String, float[]> out) {
        float[] all = Device.hostFloats(flatValues);
        for (int i = 0; i < specs.size(); i++) {
            float[] v = new float[(int) specs.get(i).numel()];
            System.arraycopy(all, (int) offsets[i], v, 0, v.length);
            out.put(specs.get(i).name(), v);
        }
    }
}
