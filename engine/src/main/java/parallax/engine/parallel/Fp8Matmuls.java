package parallax.engine.parallel;

import java.util.HashMap;
import java.util.Map;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorTensorHook;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import parallax.engine.model.Gpt;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.torch.Torch;

/**
 * FP8 linear layers (Micikevicius et al., "FP8 Formats for Deep Learning", 2022; NVIDIA
 * TransformerEngine's recipe; docs/reference.md#fp8-training): in each block's linear layers the input x and the weight W
 * are cast to E4M3 and the output gradient dy to E5M2, each after multiplying by its
 * per-tensor scale ({@link Fp8Scaling}); the three GEMMs of the layer (forward x·Wᵀ,
 * dgrad dy·W, wgrad dyᵀ·x) then see only FP8 values.
 *
 * <p>Emulated exactly: a cast is scale, clamp to ±max (saturating, as the recipes do),
 * libtorch's {@code to(float8)} (bit-exact with the project's codecs) and back, times
 * 1/scale, in FP32; the matmul runs in FP32 on the dequantized values, which is what an
 * FP8 tensor core computes up to its accumulation order. The casts of x and W pass the
 * gradient straight through (q + (x − x) with the difference detached, so the forward value
 * is exactly q); dy is cast by a gradient hook on the layer's output, so dgrad and wgrad
 * both use the E5M2 gradient. The bias and everything outside the GEMMs stay in the run's
 * base precision. The Java API has no custom autograd functions, so this is ops and a
 * hook, like {@link TensorParallel}'s operators; on a GPU the same casts run on the device
 * (a real FP8 GEMM, torch._scaled_mm, is not wired in).
 */
public final class Fp8Matmuls implements Gpt.Matmuls {

    private final Fp8Scaling scaling;
    private final ScalarType base;
    private final Map<Fp8Scaling.Slot, TensorTensorHook> hooks = new HashMap<>();

    Fp8Matmuls(Fp8Scaling scaling) {
        this.scaling = scaling;
        this.base = Torch.scalarType(scaling.recipe().base());
    }

    public Fp8Scaling scaling() { return scaling; }

    @Override
    public Tensor linear(String weightName, Tensor x, Tensor weight, Tensor bias) {
        Fp8Scaling.Slot sx = scaling.slot(weightName, Fp8Scaling.Role.X);
        Fp8Scaling.Slot sw = scaling.slot(weightName, Fp8Scaling.Role.W);
        Fp8Scaling.Slot sdy = scaling.slot(weightName, Fp8Scaling.Role.DY);
        Tensor x32 = x.to(ScalarType.Float), w32 = weight.to(ScalarType.Float);
        Tensor xq = straightThrough(x32, cast(sx, x32));
        Tensor wq = straightThrough(w32, cast(sw, w32));
        Tensor y = torch.linear(xq, wq, new TensorOptional());
        if (y.requires_grad()) y.register_hook(hooks.computeIfAbsent(sdy, this::gradientCast));
        Tensor out = y.to(base);
        return bias == null ? out : out.add(bias);
    }

    /** The dy cast, run by autograd on the gradient of the layer's FP32 output. */
    private TensorTensorHook gradientCast(Fp8Scaling.Slot slot) {
        TensorTensorHook hook = new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                return cast(slot, new Tensor(grad).to(ScalarType.Float));
            }
        };
        // Made inside a step's PointerScope, which would free it at the step's end; it serves the whole run.
        hook.retainReference();
        return hook;
    }

    /** Forward value exactly {@code q}, gradient passed to {@code x} unchanged. */
    static Tensor straightThrough(Tensor x, Tensor q) {
        return q.detach().add(x.sub(x.detach()));
    }

    /**
     * Quantize–dequantize of an FP32 tensor through {@code slot}'s format with its scale:
     * (FP8(clamp(x · s, ±max))) · (1/s). Records the step's amax, saturated and flushed counts.
     */
    Tensor cast(Fp8Scaling.Slot slot, Tensor x) {
        Tensor v = x.detach();
        Tensor s = scaling.scale(slot, v);
        double max = slot.role.max();
        Tensor scaled = v.mul(s);
        Tensor clamped = scaled.clamp(new ScalarOptional(new Scalar(-max)), new ScalarOptional(new Scalar(max)));
        Tensor q = clamped.to(fp8(slot.role.format())).to(ScalarType.Float);
        Tensor inv = s.reciprocal();
        Tensor out = q.mul(inv);
        slot.record(v.abs().max(), scaled.abs().gt(new Scalar(max)).sum(), v.ne(new Scalar(0.0)).logical_and(q.eq(new Scalar(0.0))).sum(),
                v.numel());
        return out;
    }

    static ScalarType fp8(FloatFormat f) {
        return f == FloatFormat.E4M3FN ? ScalarType.Float8_e4m3fn : ScalarType.Float8_e5m2;
    }
}
