package parallax.engine.model;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.torch.Device;

/**
 * The routing arithmetic of a mixture-of-experts layer (Shazeer et al. 2017), kept apart
 * from the GPT so that tests can feed it hand-made router probabilities.
 *
 * <p>A linear router (hidden -> E, no bias) gives each token logits over the experts; their
 * softmax, in fp32, is the router's probability P(e | token). Each token goes to its k most
 * probable experts, with gates equal to those k probabilities renormalised to sum to 1
 * (Mixtral, Jiang et al. 2024). An expert takes at most
 * capacity = ceil(cf x tokens x k / E) of them (Switch Transformer, Fedus et al. 2021);
 * first choices of every token are served before second choices (GShard's priority,
 * Lepikhin et al. 2020), each in token order, and what is over capacity is dropped: the
 * token keeps its residual and that expert's share is zero. cf 0 drops nothing.
 */
public final class MixtureOfExperts {

    private MixtureOfExperts() {}

    /**
     * Where a micro-batch's tokens go. For expert e, {@code rows[e]} are the tokens it serves
     * and {@code slots[e]} the matching places (token x k + choice) in the gate matrix;
     * {@code load[e]} counts the tokens routed to it before the capacity cut;
     * {@code dropped} the (token, expert) assignments cut.
     */
    public record Plan(long[][] rows, long[][] slots, long[] load, long dropped, long capacity) {
        public long served() {
            long n = 0;
            for (long[] r : rows) n += r.length;
            return n;
        }
    }

    /** The router's probabilities [tokens, E] in fp32 for tokens {@code x} [tokens, hidden]; each row sums to 1. */
    public static Tensor routerProbabilities(Tensor x, Tensor router) {
        Tensor logits = torch.linear(x, router, new org.bytedeco.pytorch.TensorOptional());
        return logits.to(torch.ScalarType.Float).softmax(-1);
    }

    /**
     * The k chosen experts of each token (indices [tokens, k], most probable first) and
     * their gates renormalised over the k ([tokens, k], fp32, rows sum to 1).
     */
    public static Tensor[] topK(Tensor probs, int k) {
        T_TensorTensor_T top = probs.topk(k, -1, true, true);
        Tensor values = top.get0(), indices = top.get1();
        Tensor gates = values.div(values.sum(new long[] {-1}, true, new org.bytedeco.pytorch.ScalarTypeOptional()));
        return new Tensor[] {indices, gates};
    }

    /** The plan for {@code choice}, the chosen experts token-major ([tokens x k] as in {@link #topK}). */
    public static Plan plan(GptConfig.Moe moe, long[] choice, long tokens) {
        int e = moe.experts(), k = moe.topK();
        long capacity = moe.capacity(tokens);
        long[] load = new long[e];
        List<List<Long>> rows = new ArrayList<>(), slots = new ArrayList<>();
        for (int i = 0; i < e; i++) { rows.add(new ArrayList<>()); slots.add(new ArrayList<>()); }
        long dropped = 0;
        for (int j = 0; j < k; j++) {
            for (long t = 0; t < tokens; t++) {
                int ex = (int) choice[(int) (t * k + j)];
                load[ex]++;
                if (rows.get(ex).size() >= capacity) { dropped++; continue; }
                rows.get(ex).add(t);
                slots.get(ex).add(t * k + j);
            }
        }
        long[][] r = new long[e][], s = new long[e][];
        for (int i = 0; i < e; i++) {
            // token order within an expert, so that the expert's batch (and the sums over it) are the same whatever the priority
            long[][] pairs = new long[rows.get(i).size()][];
            for (int q = 0; q < pairs.length; q++) pairs[q] = new long[] {rows.get(i).get(q), slots.get(i).get(q)};
            java.util.Arrays.sort(pairs, (a, b) -> Long.compare(a[0], b[0]));
            r[i] = new long[pairs.length];
            s[i] = new long[pairs.length];
            for (int q = 0; q < pairs.length; q++) { r[i][q] = pairs[q][0]; s[i][q] = pairs[q][1]; }
        }
        return new Plan(r, s, load, dropped, capacity);
    }

    /**
     * Switch Transformer's load-balancing loss (Fedus et al. 2021, eq. 4), for top-k:
     * alpha x E x sum_i f_i P_i, where f_i = load_i / (k x tokens) is the fraction of the
     * assignments routed to expert i (a count: no gradient) and P_i the mean router
     * probability of expert i (its gradient reaches the router). It is alpha at a uniform
     * split and grows as the load concentrates.
     */
    public static Tensor auxLoss(GptConfig.Moe moe, Tensor probs, long[] load) {
        int e = moe.experts();
        long tokens = probs.size(0);
        float[] f = new float[e];
        for (int i = 0; i < e; i++) f[i] = (float) ((double) load[i] / ((double) moe.topK() * tokens));
        Tensor fraction = Device.of(probs).fromFloats(f, e);
        Tensor meanProb = probs.mean(new long[] {0}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
        return meanProb.mul(fraction).sum().mul(new Scalar(moe.auxLossWeight() * e));
    }

    /** The host copy of an integer tensor. */
    static long[] hostLongs(Tensor t) {
        Tensor h = Device.toHost(t.detach()).to(torch.ScalarType.Long).contiguous();
        long[] out = new long[(int) h.numel()];
        h.data_ptr_long().get(out);
        return out;
    }
}
