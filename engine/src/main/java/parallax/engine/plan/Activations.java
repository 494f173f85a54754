package parallax.engine.plan;

import java.util.List;
import parallax.engine.parallel.PipelineSchedule;
import parallax.engine.plan.Layout.Recompute;

/**
 * Activation memory of training, after Korthikanti et al. 2022, "Reducing Activation
 * Recomputation in Large Transformer Models" (Megatron), Sections 4.1-4.3.
 *
 * <p>The paper counts, per layer, with 16-bit activations and 1-byte dropout masks:
 * attention 11sbh + 5as²b, MLP 19sbh, two LayerNorms 4sbh (34sbh + 5as²b). Tensor
 * parallelism splits 24sbh of it and the 5as²b term by t; the remaining 10sbh (the
 * LayerNorm inputs, the QKV and MLP inputs, the two dropout masks) is split only by
 * sequence parallelism, which with tensor parallelism divides the whole layer by t (the
 * paper's Table 2). We keep the paper's terms and generalise two of them: grouped
 * query attention stores K and V for kv/a of the heads (4sbh becomes (2 + 2·kv/a)·sbh for
 * Q,K and 2sbh becomes 2·kv/a·sbh for V), and an MLP of width f stores 4sbf (activation
 * input and fc2 input) or 6sbf when gated (gate, up, product). For a = kv and f = 4h
 * ungated this is exactly the paper's 34sbh + 5as²b.
 *
 * <p>Context parallelism (cp ranks share a sequence, seq/cp tokens each) runs attention
 * blockwise around a ring (Liu et al. 2023, "Ring Attention"): every term counts this
 * rank's s/cp tokens, and the s x s scores are never stored. What attention keeps instead
 * is the softmax's log-sum-exp, one fp32 value per query and head (FlashAttention's
 * backward needs it); selective recomputation runs the attention core, ring included,
 * again in the backward and keeps nothing of it.
 */
public final class Activations {

    private Activations() {}

    /** Coefficient of sbh that tensor parallelism does not split (paper: 10). */
    static final double UNSPLIT = 10;

    /** Coefficient of sbh split by tensor parallelism (paper: 24 for MHA and a 4h GELU MLP). */
    public static double splitCoefficient(ModelSpec m) {
        double kvRatio = (double) m.kvHeads() / m.heads();
        double attention = 2 + 2 * kvRatio + 2 * kvRatio + 2;     // Q, K, V, out-proj input
        double mlp = (m.arch().gatedMlp() ? 6.0 : 4.0) * m.ffn() / m.hidden();
        if (m.moe()) mlp *= m.topK();                              // each token visits top-k experts
        return attention + mlp;
    }

    /**
     * Bytes of activations one transformer layer keeps for one micro-batch, with the paper's
     * 2-byte elements and dropout. s sequence, b micro-batch, t tensor-parallel size.
     */
    public static double perLayer(ModelSpec m, long s, long b, int t, boolean sp, Recompute r) {
        return perLayer(m, s, b, t, sp, r, 2, true);
    }

    /** The same in {@code e}-byte elements, without context parallelism. */
    public static double perLayer(ModelSpec m, long s, long b, int t, boolean sp, Recompute r, int e, boolean dropout) {
        return perLayer(m, s, b, t, 1, sp, r, e, dropout);
    }

    /**
     * Bytes one layer keeps for one micro-batch on one rank, counted by element: {@code e}
     * bytes per stored element and, with dropout, one byte per mask element. The paper's
     * bytes split into elements as: unsplit 4sbh elements (two LayerNorm inputs, QKV and MLP
     * inputs) plus two sbh masks; split K/2·sbh elements; attention scores as²b (softmax
     * output) plus, with dropout, a mask and the dropout output. Full recomputation keeps
     * the layer input, sbh elements. With {@code cp} > 1 every s is this rank's s/cp and
     * the scores give way to the fp32 log-sum-exp (see the class comment).
     */
    public static double perLayer(ModelSpec m, long s, long b, int t, int cp, boolean sp, Recompute r, int e, boolean dropout) {
        double local = (double) s / cp;
        double sbh = local * b * m.hidden();
        if (r == Recompute.FULL) return e * sbh / (sp ? t : 1);          // only the layer input is kept
        double unsplit = (e * 4 + (dropout ? 2 : 0)) * sbh / (sp ? t : 1);
        // Megatron keeps the QKV and MLP inputs sliced and gathers them again in the backward
        // (§4.2.2); the engine's GPT keeps them as all-gathered, whole on every TP rank.
        if (sp && t > 1 && m.arch() == ModelSpec.Arch.PARALLAX_GPT) unsplit = (e * 2.0 / t + e * 2 + (dropout ? 2.0 / t : 0)) * sbh;
        double split = e * splitCoefficient(m) / 2 * sbh / t;
        double attention;
        if (cp > 1) {
            attention = r == Recompute.SELECTIVE ? 0 : 4.0 * m.heads() / t * local * b;
        } else {
            double as2b = (double) m.heads() * s * s * b / t;
            attention = r == Recompute.SELECTIVE ? 0 : e * as2b + (dropout ? as2b + e * as2b : 0);
        }
        return unsplit + split + attention;
    }

    /** The paper's closed forms, for checking: sbh(34 + 5as/h) and its TP/SP/recompute variants. */
    public static double paperPerLayer(long s, long b, long h, long a, int t, boolean sp, Recompute r) {
        double sbh = (double) s * b * h;
        if (r == Recompute.FULL) return sp ? 2 * sbh / t : 2 * sbh;
        if (r == Recompute.SELECTIVE) return sp ? 34 * sbh / t : sbh * (10 + 24.0 / t);
        if (sp) return sbh / t * (34 + 5.0 * a * s / h);
        return sbh * (10 + 24.0 / t + 5.0 * a * s / (h * t));
    }

    /**
     * Bytes of one layer that the zero-bubble schedule keeps from a micro-batch's B (input
     * gradients) to its W (weight gradients), in {@code e}-byte elements: every linear
     * layer's input and the gradient of its output, since W computes dW = dYᵀX from them.
     * Per token, with tensor parallelism t: inputs h (QKV, whole on each TP rank) + h/t
     * (out-projection) + h (MLP, whole) + f/t (fc2; the gated MLP's down-projection);
     * output gradients h(1 + 2kv/a)/t (QKV) + h (out-projection) + f/t or 2f/t gated (the
     * MLP's first layer) + h (fc2). Sequence parallelism all-gathers the inputs it needs,
     * so it does not split these. Without recomputation; a checkpointed layer recomputes
     * them for its B and keeps them to W as well.
     */
    public static double weightGradientInputs(ModelSpec m, long s, long b, int t, int cp, int e) {
        double h = m.hidden(), f = m.ffn(), kv = (double) m.kvHeads() / m.heads();
        double mlpScale = m.moe() ? m.topK() : 1;
        double inputs = h + h / t + h + f / t * mlpScale;
        double grads = h * (1 + 2 * kv) / t + h + (m.arch().gatedMlp() ? 2 * f : f) / t * mlpScale + h;
        return e * (inputs + grads) * ((double) s / cp) * b;
    }

    /**
     * The output layer's share of {@link #weightGradientInputs}: its input, whole on every TP
     * rank, and the gradient of the logits, split by t over the vocabulary (whole for the
     * engine's GPT, whose head is replicated).
     */
    public static double outputLayerWeightGradient(ModelSpec m, long s, long b, int t, int e) {
        double vocab = m.arch() == ModelSpec.Arch.PARALLAX_GPT ? m.vocab() : (double) m.vocab() / t;
        return e * (m.hidden() + vocab) * (double) s * b;
    }

    /**
     * Micro-batches whose activations a pipeline stage holds at its peak, in units of the
     * stage's whole activations, for the engine's pass orders ({@link PipelineSchedule#ops}).
     * GPipe holds all m. 1F1B and ZB-H1: stage i (0-based) runs p − i − 1 warm-up forwards,
     * so it holds min(p − i, m) (Narayanan et al. 2021 §2.2.1; ZB-H1 keeps 1F1B's order of F
     * and B, Qi et al. 2023). Interleaved with v chunks per stage: Megatron's warm-up is
     * 2(p − i − 1) + (v − 1)p chunk forwards, so the stage holds
     * min(mv, 2(p − i − 1) + (v − 1)p + 1) chunks (all mv when m = p), that is p + (p − 1)/v
     * micro-batches on the first stage: p(1 + (p − 1)/(pv)), Korthikanti et al. §4.2.3.
     * Checked against the engine's schedules by walking their pass orders (PlannerTest).
     */
    public static double inFlight(Layout.Schedule schedule, int p, int v, int m, int stage) {
        if (p == 1) return 1;
        return switch (schedule) {
            case GPIPE -> m;
            case ONE_F_ONE_B, ZB_H1 -> Math.min(p - stage, m);
            case INTERLEAVED -> m == p ? m : Math.min((double) m * v, 2.0 * (p - stage - 1) + (v - 1.0) * p + 1) / v;
        };
    }

    /**
     * Micro-batches whose weight-gradient inputs (see {@link #weightGradientInputs}) stage
     * {@code stage} still holds, B done and W not yet run, when its activations peak. Under
     * ZB-H1 stage i runs each W i iterations after its B, so i micro-batches wait for W in
     * the steady state: none on the first stage, where W follows B at once, p − 1 on the
     * last. No other schedule splits the backward.
     */
    public static double weightGradientsPending(Layout.Schedule schedule, int p, int m, int stage) {
        if (schedule != Layout.Schedule.ZB_H1 || p == 1) return 0;
        return Math.max(0, Math.min(stage, m - (p - stage)));
    }

    /**
     * The peak bytes stage {@code stage} holds when its chunk c keeps {@code full[c]} bytes
     * per micro-batch from F to B and, for a split backward, {@code weights[c]} from B to W:
     * the engine's pass order walked op by op (exact for any chunk sizes).
     */
    public static double walkPeak(Layout.Schedule schedule, int p, int v, int m, int stage, double[] full, double[] weights) {
        // Interleaved: after the warm-up (fewer than (v + 2)p chunk forwards, the same for any
        // m ≥ 2p) each F/B pair's chunks repeat with period pv, as does the live sum before a
        // pair; cool-down only frees. So 3p micro-batches (warm-up plus a whole period) reach
        // the peak of any larger m (checked against the full walk in PlannerTest).
        int walked = schedule == Layout.Schedule.INTERLEAVED ? Math.min(m, 3 * p) : m;
        List<PipelineSchedule.Op> ops = PipelineSchedule.ops(p == 1 && schedule == Layout.Schedule.GPIPE
                ? parallax.engine.parallel.PipelineParallel.Schedule.ONE_F_ONE_B : schedule.engine(), p, v, walked, stage);
        boolean split = schedule == Layout.Schedule.ZB_H1;
        double live = 0, peak = 0;
        for (PipelineSchedule.Op op : ops) {
            int c = op.chunk();
            switch (op.kind()) {
                case F -> live += full[c];
                case B -> live += (split ? weights[c] : 0) - full[c];
                case W -> live -= weights[c];
            }
            peak = Math.max(peak, live);
        }
        return peak;
    }

    /** Embedding-side extra on the first stage: the embedding dropout mask, sbh bytes per micro-batch (§4.3); none without dropout. */
    public static double embedding(ModelSpec m, long s, long b, int t, boolean sp, boolean dropout) {
        return dropout ? (double) s * b * m.hidden() / (sp ? t : 1) : 0;
    }

    /**
     * Output side on the last stage: final norm input and output layer input (e bytes each)
     * and fp32 logits: 4sbh/t·(1 + V/h) bytes for e = 2 with sequence parallelism (§4.3).
     * Without it the two sbh inputs are whole on every TP rank; the vocabulary-parallel
     * logits split by t either way.
     */
    public static double outputLayer(ModelSpec m, long s, long b, int t, boolean sp, int e) {
        // The engine's GPT keeps its head whole on every TP rank (no vocab-parallel split; SP gathers first).
        if (m.arch() == ModelSpec.Arch.PARALLAX_GPT) return 2.0 * e * s * b * m.hidden() + 4.0 * s * b * m.vocab();
        return 2.0 * e * s * b * m.hidden() / (sp ? t : 1) + 4.0 * s * b * m.vocab() / t;
    }
}
