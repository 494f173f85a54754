package parallax.engine.parallel;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorTensorHook;
import parallax.engine.model.Gpt;

/**
 * Megatron-LM tensor parallelism (Shoeybi et al. 2019, section 3): the model
 * ({@link Gpt}) holds column-parallel Q, K, V and fc1 (each rank its heads / its part of
 * the MLP) and row-parallel attention-output and fc2, and calls the two conjugate
 * operators below. Per block: two all-reduces forward (g after out-proj and after fc2)
 * and two backward (f before QKV and before fc1).
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
    private final TensorTensorHook allReduceGradient;

    public TensorParallel(Comm tp) {
        this.tp = tp;
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
