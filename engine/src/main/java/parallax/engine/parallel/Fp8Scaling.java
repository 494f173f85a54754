package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.torch.Device;

/**
 * The per-tensor scales of an FP8 run and where they come from: one {@link Slot} per
 * tensor that is cast (each FP8 layer's input x, weight w and output gradient dy).
 *
 * <p>Delayed scaling (TransformerEngine's DelayedScaling, "max" rule): during a step every
 * slot keeps the largest |value| it saw (over micro-batches and recomputes); after the step
 * the amaxes are reduced (max) over the tensor- and data-parallel groups, so every rank
 * holds the same scales and a layout casts exactly as one process would; each slot's amax
 * joins its history of the last {@code history} steps, and the next step's scale is
 * (max of the format / max of the history) / 2^margin. A zero or non-finite amax keeps the
 * old scale; every scale starts at 1. Current scaling takes the scale from the tensor
 * itself when it is cast ({@link #currentScale}); no scaling keeps 1.
 *
 * <p>It also counts, per slot and step, the values that saturated (|x · scale| beyond the
 * format's max, clamped) and the non-zero values that flushed to zero: the trace the
 * report draws.
 */
public final class Fp8Scaling {

    /** The tensors of a linear layer that are cast to FP8. */
    public enum Role {
        X("input", FloatFormat.E4M3FN), W("weight", FloatFormat.E4M3FN), DY("output gradient", FloatFormat.E5M2);

        final String label;
        final FloatFormat format;

        Role(String label, FloatFormat format) {
            this.label = label;
            this.format = format;
        }

        public FloatFormat format() { return format; }

        /** The format's max: 448 for E4M3, 57344 for E5M2. */
        public double max() { return format.maxFinite(); }
    }

    /** One cast tensor's scale, history and this step's counts (device scalars, read once per step). */
    static final class Slot {
        final String layer;
        final Role role;
        final double[] history;
        int filled, next;
        float scale = 1f;
        Tensor amax, saturated, flushed; // this step's, on the device
        long values;                     // this step's count of values cast

        Slot(String layer, Role role, int history) {
            this.layer = layer;
            this.role = role;
            this.history = new double[history];
        }

        String name() { return layer + " " + role.name().toLowerCase(java.util.Locale.ROOT); }

        /** Adds one cast's amax and counts to this step's. */
        void record(Tensor amaxNow, Tensor saturatedNow, Tensor flushedNow, long n) {
            amax = amax == null ? amaxNow : torch.maximum(amax, amaxNow);
            saturated = saturated == null ? saturatedNow : saturated.add(saturatedNow);
            flushed = flushed == null ? flushedNow : flushed.add(flushedNow);
            values += n;
        }

        /** The delayed-scaling rule after a step whose (reduced) amax was {@code stepAmax}. */
        void update(double stepAmax, int margin) {
            history[next] = stepAmax;
            next = (next + 1) % history.length;
            filled = Math.min(filled + 1, history.length);
            double ref = 0;
            for (int i = 0; i < filled; i++) ref = Math.max(ref, history[i]);
            float sf = (float) role.max() / (float) ref;
            sf = sf / (float) Math.pow(2, margin);
            if (ref > 0 && Double.isFinite(ref) && Float.isFinite(sf)) scale = sf;
        }
    }

    /** What a run's slots did, step by step: [slot][step]. */
    public record Trace(List<String> slots, List<String> roles, double[][] amax, double[][] scale, double[][] saturatedShare,
                        double[][] flushedShare) {}

    private final Fp8Recipe recipe;
    private final Device device;
    private final Comm tp, dp;
    private final Map<String, Slot> slots = new LinkedHashMap<>();
    private final List<double[]> amaxSteps = new ArrayList<>(), scaleSteps = new ArrayList<>(), satSteps = new ArrayList<>(),
            flushSteps = new ArrayList<>();

    Fp8Scaling(Fp8Recipe recipe, Device device, Comm tp, Comm dp) {
        this.recipe = recipe;
        this.device = device;
        this.tp = tp;
        this.dp = dp;
    }

    public Fp8Recipe recipe() { return recipe; }

    /** The slot of {@code layer}'s tensor {@code role}, made on first use (the same order on every rank of a stage). */
    Slot slot(String layer, Role role) {
        return slots.computeIfAbsent(layer + "/" + role, k -> new Slot(layer, role, recipe.history()));
    }

    /** The scale a cast of {@code slot} uses now, as a device scalar (fp32). */
    Tensor scale(Slot slot, Tensor value) {
        return switch (recipe.scaling()) {
            case NONE -> device.full(1.0, DType.F32);
            case DELAYED -> device.full(slot.scale, DType.F32);
            case CURRENT -> currentScale(slot, value);
        };
    }

    /**
     * Current scaling: max / amax of the tensor being cast (TransformerEngine's
     * Float8CurrentScaling), with the amax taken over the whole tensor when tensor
     * parallelism splits it; 1 for an all-zero tensor.
     */
    Tensor currentScale(Slot slot, Tensor value) {
        Tensor amax = reduceMax(value.detach().abs().max().to(torch.ScalarType.Float).reshape(1), tp);
        Tensor scale = device.full(slot.role.max(), DType.F32, 1).div(amax);
        return torch.where(amax.gt(new org.bytedeco.pytorch.Scalar(0.0)), scale, device.ones(DType.F32, 1)).reshape(new long[0]);
    }

    /** The max of {@code v} (shape [n]) over the group, elementwise. */
    static Tensor reduceMax(Tensor v, Comm group) {
        if (group.size() == 1) return v;
        Tensor all = v.new_zeros(new long[] {group.size() * v.numel()});
        group.allGather(all, v.contiguous());
        return all.view(group.size(), v.numel()).amax(new long[] {0}, false);
    }

    /**
     * After an optimizer step: reads this step's amaxes and counts (one device-to-host copy),
     * reduces the amaxes over the TP and DP groups, updates the delayed scales and records
     * the trace. Every rank of a stage calls it, inside the step's PointerScope (the step's
     * counts are tensors of that scope).
     */
    void endStep() {
        if (slots.isEmpty()) return;
        List<Slot> all = new ArrayList<>(slots.values());
        int n = all.size();
        double[] scale = new double[n], amax = new double[n], sat = new double[n], flush = new double[n];
        for (int i = 0; i < n; i++) scale[i] = recipe.scaling() == Fp8Recipe.Scaling.DELAYED ? all.get(i).scale : Double.NaN;
        try (PointerScope s = new PointerScope()) {
            TensorVector parts = new TensorVector();
            for (Slot slot : all) {
                parts.push_back(slot.amax == null ? device.zeros(DType.F32) : slot.amax.to(torch.ScalarType.Float).reshape(new long[0]));
            }
            Tensor amaxes = reduceMax(reduceMax(torch.stack(parts), tp), dp);
            TensorVector counts = new TensorVector();
            for (Slot slot : all) {
                counts.push_back(slot.saturated == null ? device.zeros(DType.F32) : slot.saturated.to(torch.ScalarType.Float).reshape(new long[0]));
                counts.push_back(slot.flushed == null ? device.zeros(DType.F32) : slot.flushed.to(torch.ScalarType.Float).reshape(new long[0]));
            }
            float[] a = Device.hostFloats(amaxes);
            float[] c = Device.hostFloats(torch.stack(counts));
            for (int i = 0; i < n; i++) {
                Slot slot = all.get(i);
                amax[i] = a[i];
                sat[i] = slot.values == 0 ? 0 : (double) c[2 * i] / slot.values;
                flush[i] = slot.values == 0 ? 0 : (double) c[2 * i + 1] / slot.values;
                if (recipe.scaling() == Fp8Recipe.Scaling.DELAYED) slot.update(a[i], recipe.margin());
                slot.amax = slot.saturated = slot.flushed = null;
                slot.values = 0;
            }
        }
        amaxSteps.add(amax);
        scaleSteps.add(scale);
        satSteps.add(sat);
        flushSteps.add(flush);
    }

    /** The run so far, [slot][step]. Current scaling's scales vary per cast and are not traced (NaN). */
    public Trace trace() {
        List<String> names = new ArrayList<>(), roles = new ArrayList<>();
        for (Slot s : slots.values()) {
            names.add(s.name());
            roles.add(s.role.name());
        }
        return new Trace(names, roles, transpose(amaxSteps, names.size()), transpose(scaleSteps, names.size()),
                transpose(satSteps, names.size()), transpose(flushSteps, names.size()));
    }

    private static double[][] transpose(List<double[]> steps, int slots) {
        double[][] out = new double[slots][steps.size()];
        for (int s = 0; s < steps.size(); s++) for (int i = 0; i < slots && i < steps.get(s).length; i++) out[i][s] = steps.get(s)[i];
        return out;
    }
}
