package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorTensorHook;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;
import parallax.engine.torch.Torch;

/**
 * The backward split the zero-bubble schedule needs (Qi et al., ICLR 2024): B computes
 * only the gradients of the activations, which the previous stage is waiting for; W
 * computes the weight gradients, which only the optimizer needs, later.
 *
 * <p>Every linear layer (where nearly all weight-gradient work is) runs with its weight
 * and bias detached, so autograd's backward produces dX = dY W and nothing else for it.
 * The layer keeps its input X; a hook on its output catches dY as the backward passes
 * (after any hook the caller put on the output, such as sequence parallelism's gather, so
 * dY is the gradient the layer really sees). {@link #computeWeightGradients} then adds
 * dW = dY^T X and db = sum(dY) into the parameters' {@code .grad}, as autograd would
 * have. LayerNorm and embedding gradients stay in B: they are cheap.
 */
public final class DeferredWeightGradients implements Gpt.Linear {

    /** One linear layer's use in one forward. */
    private static final class Use {
        final Tensor input, weight, bias;
        Tensor outputGrad;

        Use(Tensor input, Tensor weight, Tensor bias) {
            this.input = input;
            this.weight = weight;
            this.bias = bias;
        }
    }

    /** Caught dY, by micro-batch, in the order the backward reached the layers. */
    private final Map<Integer, List<Use>> ready = new HashMap<>();
    /** The hooks must live as long as the graphs that call them. */
    private final List<TensorTensorHook> hooks = new ArrayList<>();
    /**
     * Bytes kept for W by micro-batch, from its B on: each layer's output gradient and its
     * input, an input shared by several layers (Q, K and V read the same one) once.
     */
    private final Map<Integer, Long> heldBytes = new HashMap<>();
    private final Map<Integer, java.util.Set<Long>> heldInputs = new HashMap<>();
    /** Layer uses whose backward has not reached them yet. */
    private int awaiting;
    private int backwardOf = -1;

    @Override
    public Tensor apply(Tensor x, Tensor weight, Tensor bias) {
        Tensor w = weight.detach();
        Tensor b = bias == null ? null : bias.detach();
        Tensor raw = torch.linear(x, w, b == null ? new TensorOptional() : new TensorOptional(b));
        if (!raw.requires_grad() || !weight.requires_grad()) return raw; // no graph (a checkpoint's first forward)
        Use use = new Use(Torch.keep(x.detach()), weight, bias);
        TensorTensorHook h = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                if (backwardOf < 0) throw new IllegalStateException("a deferred linear layer's backward ran outside a B pass");
                use.outputGrad = Torch.keep(new Tensor(grad).detach());
                long bytes = use.outputGrad.nbytes();
                // An expert that got no token has an empty input (no storage to count).
                if (use.input.numel() > 0
                        && heldInputs.computeIfAbsent(backwardOf, k -> new java.util.HashSet<>()).add(use.input.storage().data().address()))
                    bytes += use.input.storage().nbytes();
                heldBytes.merge(backwardOf, bytes, Long::sum);
                awaiting--;
                ready.computeIfAbsent(backwardOf, k -> new ArrayList<>()).add(use);
                return grad;
            }
        };
        hooks.add(h);
        awaiting++;
        raw.register_hook(h);
        // The caller may hook the returned tensor; through this alias its hooks run first.
        return raw.view_as(raw);
    }

    /** The B pass of micro-batch {@code mb} starts: the dY caught from now on belong to it. */
    public void beginBackward(int mb) { backwardOf = mb; }

    public void endBackward() { backwardOf = -1; }

    /** Whether micro-batch {@code mb} has weight gradients waiting. */
    public boolean pending(int mb) { return ready.containsKey(mb); }

    /**
     * Activation bytes held now for micro-batches whose B has run and whose W has not (the
     * memory the zero-bubble schedule trades for its smaller bubble; counted with the
     * stage's activations by {@link PipelineParallel}).
     */
    public long heldBytes() {
        long sum = 0;
        for (long b : heldBytes.values()) sum += b;
        return sum;
    }

    /** W of micro-batch {@code mb}: adds its weight and bias gradients into the parameters' {@code .grad}. */
    public void computeWeightGradients(int mb) {
        heldBytes.remove(mb);
        heldInputs.remove(mb);
        List<Use> uses = ready.remove(mb);
        if (uses == null) return;
        try (NoGradGuard ng = new NoGradGuard()) {
            for (Use u : uses) {
                long out = u.outputGrad.size(-1), in = u.input.size(-1);
                Tensor dy = u.outputGrad.reshape(-1, out), x = u.input.reshape(-1, in);
                accumulate(u.weight, dy.t().mm(x));
                if (u.bias != null) accumulate(u.bias, dy.sum(new long[] {0}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
                u.outputGrad.close();
                u.input.close();
            }
        }
    }

    /** The step is over: no graph is left, so no hook can be called again. */
    public void endStep() {
        if (!ready.isEmpty()) throw new IllegalStateException("weight gradients of micro-batches " + ready.keySet() + " were never computed");
        hooks.clear();
        heldBytes.clear();
        heldInputs.clear();
        awaiting = 0;
    }

    private static void accumulate(Tensor param, Tensor g) {
        Tensor grad = param.grad();
        if (grad.defined()) grad.add_(g);
        else param.mutable_grad().put(g);
    }
}
