package parallax.engine.parallel;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorTensorHook;
import parallax.engine.model.Gpt;

/**
 * Expert parallelism's communication (Lepikhin et al. 2020, GShard; Rajbhandari et al.
 * 2022, DeepSpeed-MoE): the all-to-all that takes tokens to the ranks holding their experts
 * and brings the experts' outputs back, over the expert-parallel group of the mesh.
 *
 * <p>The Java API has no custom autograd functions, so the all-to-all is made visible to
 * autograd as {@link TensorParallel} makes its collectives: y = clone(x) (gradient: the
 * identity), its values replaced by the all-to-all outside autograd's view, and a gradient
 * hook on y that runs the all-to-all on the gradient. That is the right gradient because an
 * equal-split all-to-all is a permutation of the group's blocks that is its own inverse
 * (block j of rank i goes to block i of rank j and back), hence also its own transpose.
 * {@link Gpt} pads every expert's buffer to a fixed size so that the split is equal.
 */
public final class ExpertParallel implements Gpt.ExpertOps {

    private final Comm ep;
    private final TensorTensorHook reverse;

    public ExpertParallel(Comm ep) {
        this.ep = ep;
        this.reverse = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                // Runs inside backward: the gradient goes back to the ranks the values came from.
                return exchange(new Tensor(grad));
            }
        };
    }

    @Override public int rank() { return ep.rank(); }

    @Override public int size() { return ep.size(); }

    @Override
    public Tensor allToAll(Tensor x) {
        if (ep.size() == 1) return x;
        Tensor y = x.clone();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor d = x.detach(), moved = exchange(d);
            y.copy_(moved);
            moved.close();
            d.close();
        }
        if (y.requires_grad()) y.register_hook(reverse);
        return y;
    }

    /** The all-to-all of {@code t}'s values, a new tensor of its shape. */
    private Tensor exchange(Tensor t) {
        Tensor in = t.contiguous(), out = in.new_empty(in.sizes());
        ep.allToAll(out, in);
        if (in != t) in.close();
        return out;
    }
}
