package parallax.engine.plan;

import parallax.engine.plan.Layout.Recompute;

/**
 * Activation memory of training, after Korthikanti et al. 2022, "Reducing Activation
 * Recomputation in Large Transformer Models" (Megatron), Sections 4.1-4.3.
 *
 * <p>The paper counts, per layer, with 16-bit activations and 1-byte dropout masks:
 * attention 11sbh + 5as²b, MLP 19sbh, two LayerNorms 4sbh (34sbh + 5as²b). Tensor
 * parallelism splits 24sbh of it and the 5as²b term by t; the remaining 10sbh (the
 * LayerNorm inputs, the QKV and MLP inputs, the two dropout masks) is split only by
 * sequence parallelism. We keep the paper's terms and generalise two of them: grouped
 * query attention stores K and V for kv/a of the heads (4sbh becomes (2 + 2·kv/a)·sbh for
 * Q,K and 2sbh becomes 2·kv/a·sbh for V), and an MLP of width f stores 4sbf (activation
 * input and fc2 input) or 6sbf when gated (gate, up, product). For a = kv and f = 4h
 * ungated this is exactly the paper's 34sbh + 5as²b.
 */
public final class Activations {

    private Activations() {}

    /** Coefficient of sbh that tensor parallelism does not split (paper: 10). */
    static final double UNSPLIT = 10;

    /** Coefficient of sbh split by tensor parallelism (paper: 24 for MHA and a 4h GELU MLP). */
    public static double splitCoefficient(ModelSpec m) {
        double kvRatio = (double) m.kvHeads() / m.heads();
        double attention = 2 + 2 * kvRatio + 2 * kvRatio + 2;     // Q, K, V, out-proj input
        // each token visits top-k routed experts (and any shared ones)
        double mlp = (m.arch().gatedMlp() ? 6.0 : 4.0) * m.activeFfn() / m.hidden();
        return attention + mlp;
    }

    /**
     * Bytes of activations one transformer layer keeps for one micro-batch, with the paper's
     * 2-byte elements and dropout. s sequence, b micro-batch, t tensor-parallel size.
     */
    public static double perLayer(ModelSpec m, long s, long b, int t, boolean sp, Recompute r) {
        return perLayer(m, s, b, t, sp, r, 2, true);
    }

    /**
     * The same, counted by element: {@code e} bytes per stored element and, with dropout,
     * one byte per mask element. The paper's bytes split into elements as: unsplit 4sbh
     * elements (two LayerNorm inputs, QKV and MLP inputs) plus two sbh masks; split K/2·sbh
     * elements; attention scores as²b (softmax output) plus, with dropout, a mask and the
     * dropout output. Full recomputation keeps the layer input, sbh elements.
     */
    public static double perLayer(ModelSpec m, long s, long b, int t, boolean sp, Recompute r, int e, boolean dropout) {
        double sbh = (double) s * b * m.hidden();
        if (r == Recompute.FULL) return e * sbh / (sp ? t : 1);          // only the layer input is kept
        double unsplit = (e * 4 + (dropout ? 2 : 0)) * sbh / (sp ? t : 1);
        double split = e * splitCoefficient(m) / 2 * sbh / t;
        double as2b = (double) m.heads() * s * s * b / t;
        double scores = r == Recompute.SELECTIVE ? 0 : e * as2b + (dropout ? as2b + e * as2b : 0);
        return unsplit + split + scores;
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
     * Micro-batches whose activations a pipeline stage holds at its peak. 1F1B: stage i
     * (0-based) holds min(p − i, m); interleaved with v chunks that grows by the factor
     * 1 + (p−1)/(p·v) (Korthikanti §4.2.3, exact for the first stage); GPipe holds all m.
     */
    public static double inFlight(Layout.Schedule schedule, int p, int v, int m, int stage) {
        if (p == 1) return 1;
        return switch (schedule) {
            case GPIPE -> m;
            case ONE_F_ONE_B -> Math.min(p - stage, m);
            case INTERLEAVED -> Math.min(p - stage, m) * (1 + (p - 1.0) / ((double) p * v));
        };
    }

    /** Embedding-side extra on the first stage: the embedding dropout mask, sbh bytes per micro-batch (§4.3); none without dropout. */
    public static double embedding(ModelSpec m, long s, long b, int t, boolean sp, boolean dropout) {
        return dropout ? (double) s * b * m.hidden() / (sp ? t : 1) : 0;
    }

    /**
     * Output side on the last stage: final norm input and output layer input (e bytes each)
     * and fp32 logits, 4sbh/t·(1 + v/h) bytes for e = 2 (§4.3).
     */
    public static double outputLayer(ModelSpec m, long s, long b, int t, int e) {
        // The engine's GPT keeps its head whole on every TP rank (no vocab-parallel split, no SP).
        int split = m.arch() == ModelSpec.Arch.PARALLAX_GPT ? 1 : t;
        return (2.0 * e * s * b * m.hidden() + 4.0 * s * b * m.vocab()) / split;
    }
}
