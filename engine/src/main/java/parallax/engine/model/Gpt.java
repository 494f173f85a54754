package parallax.engine.model;

import parallax.engine.numerics.DType;
import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * A decoder-only GPT (nanoGPT style), written out with libtorch ops: token and position
 * embeddings, {@code layers} pre-LayerNorm blocks of causal multi-head self-attention and
 * a GELU MLP, a final LayerNorm and an (untied) LM head.
 *
 * <p>The model is a list of <em>units</em>: unit 0 is the embedding, units 1..L are the
 * blocks, unit L+1 is the final LayerNorm, LM head and loss. Pipeline stages own a range
 * of units; ZeRO buckets and checkpoint segments are unit-aligned.
 *
 * <p>The model holds no weights. A forward call looks each weight up by name through a
 * function given by the caller, so the strategy decides where parameters live (a flat
 * buffer, a gathered ZeRO-3 shard, a bf16 copy). Tensor parallelism (Megatron-LM,
 * Shoeybi et al. 2019) is built in: with {@code tpSize > 1} a rank holds the rows of Q,
 * K, V and fc1 for its heads / its quarter of the MLP (column parallel) and the matching
 * columns of the attention output and fc2 (row parallel), and calls the {@link TpOps}
 * f and g operators around them. With sequence parallelism (Korthikanti et al. 2022) the
 * LayerNorm and residual regions hold a slice of the sequence and f and g become
 * all-gather and reduce-scatter along it.
 *
 * <p>The attention core is an {@link Attention}: causal softmax attention over the
 * rank's tokens, or ring attention over a context-parallel group, where the rank holds
 * only some of a sequence's tokens ({@code positions}: their places in the sequence).
 */
public final class Gpt {

    /** Megatron's conjugate operators; identity for tpSize 1. */
    public interface TpOps {
        /** f: identity forward, all-reduce of the gradient backward. */
        Tensor copyToTensorParallel(Tensor x);

        /** g: all-reduce forward, identity backward. */
        Tensor reduceFromTensorParallel(Tensor x);

        /** Whether the LayerNorm and residual regions hold this rank's slice of the sequence. */
        default boolean sequenceParallel() { return false; }

        /** Sequence parallelism, after the embedding: keep this rank's slice (backward: all-gather). */
        default Tensor scatterToSequence(Tensor x) { return x; }

        /** Sequence parallelism, into a TP region: all-gather the sequence (backward: reduce-scatter). */
        default Tensor gatherFromSequence(Tensor x) { return x; }

        /** Sequence parallelism, out of a row-parallel layer: reduce-scatter the partial sums (backward: all-gather). */
        default Tensor reduceScatterToSequence(Tensor x) { return x; }

        /** Sequence parallelism, before the replicated head: all-gather (backward: this rank's slice). */
        default Tensor gatherForReplicated(Tensor x) { return x; }

        /**
         * A replicated weight used on this rank's slice of the sequence (LayerNorms, the
         * row-parallel biases): its gradient is summed over the TP group.
         */
        default Tensor sequenceParallelWeight(Tensor w) { return w; }

        /**
         * Sequence parallelism: {@code gathered} (the whole sequence, all-gathered from
         * {@code shard}) has been used by the linear layers whose outputs are
         * {@code consumers}; keep only the shard until their backward needs it again.
         */
        default void keepShardOnly(Tensor gathered, Tensor shard, Tensor... consumers) {}

        TpOps NONE = new TpOps() {
            @Override public Tensor copyToTensorParallel(Tensor x) { return x; }
            @Override public Tensor reduceFromTensorParallel(Tensor x) { return x; }
        };
    }

    /**
     * The attention core: softmax(q k^T / sqrt(d) + causal mask) v for q, k, v of shape
     * (B, heads, T, head_dim), where T are this rank's tokens at {@code positions}.
     */
    public interface Attention {
        Tensor attend(Tensor q, Tensor k, Tensor v, long[] positions, List<Tensor> made);
    }

    /** Causal attention over the rank's own tokens (all of the sequence, or under context parallelism a part). */
    public static final Attention LOCAL = (q, k, v, positions, made) -> {
        long t = q.size(2), hd = q.size(3);
        Tensor scores = keep(made, torch.matmul(q, k.transpose(-2, -1)).mul(new Scalar(1.0 / Math.sqrt(hd))));
        scores = keep(made, scores.masked_fill(causalMask(Device.of(q), positions, positions, t), new Scalar(Double.NEGATIVE_INFINITY)));
        Tensor probs = keep(made, scores.softmax(-1));
        return keep(made, torch.matmul(probs, v));
    };

    /**
     * True where a query at {@code qPos} must not see a key at {@code kPos} (the key comes
     * later). Null positions mean 0..t-1, the whole sequence in order.
     */
    public static Tensor causalMask(Device device, long[] qPos, long[] kPos, long t) {
        if (qPos == null && kPos == null) return device.ones(DType.BOOL, t, t).triu(1);
        Tensor q = device.fromLongs(qPos, qPos.length, 1), k = device.fromLongs(kPos, 1, kPos.length);
        return k.gt(q);
    }

    /**
     * How a linear layer runs, y = x W^T + b (bias may be null). The zero-bubble pipeline
     * schedule swaps in one that leaves the weight gradients for later
     * ({@code parallel.DeferredWeightGradients}).
     */
    public interface Linear {
        Tensor apply(Tensor x, Tensor weight, Tensor bias);

        Linear PLAIN = (x, w, b) -> torch.linear(x, w, b == null ? new TensorOptional() : new TensorOptional(b));
    }

    /**
     * How the linear layers of the blocks multiply (Q, K, V, the attention output, fc1, fc2;
     * not the LM head): plainly in the compute dtype, or through a narrower format such as
     * FP8 with its scaling ({@code parallel.Fp8Matmuls}). {@code weightName} names the layer.
     */
    public interface Matmuls {
        /** y = x W^T + b ({@code bias} may be null). */
        Tensor linear(String weightName, Tensor x, Tensor weight, Tensor bias);

        Matmuls PLAIN = (name, x, weight, bias) -> Linear.PLAIN.apply(x, weight, bias);
    }

    /**
     * What the mixture-of-experts blocks hand out beside their output, per micro-batch: the
     * load-balancing loss of each block (a scalar with its graph, to be added to the
     * training loss) and how the block routed its tokens.
     */
    public interface Routing {
        void auxLoss(int layer, Tensor loss);

        /** Tokens routed to each expert (before the capacity cut) and the assignments dropped. */
        void routed(int layer, long[] load, long dropped);
    }

    /**
     * Expert parallelism (as Megatron-core and DeepSpeed-MoE build it): this rank holds
     * experts [rank x E/size, (rank+1) x E/size) of every block, and tokens reach the experts
     * of the other ranks of its group, and come back, through an equal-split all-to-all that
     * autograd sees ({@code parallel.ExpertParallel}).
     */
    public interface ExpertOps {
        int rank();

        int size();

        /**
         * Equal-split all-to-all of {@code x} along dim 0 (block j to rank j), with its
         * gradient (the same all-to-all run on the gradient) in backward.
         */
        Tensor allToAll(Tensor x);

        ExpertOps NONE = new ExpertOps() {
            @Override public int rank() { return 0; }
            @Override public int size() { return 1; }
            @Override public Tensor allToAll(Tensor x) { return x; }
        };
    }

    /**
     * One parameter as this rank holds it. {@code shardDim} is -1 when every TP rank
     * holds the whole tensor, else the dimension cut into {@code tpSize} equal parts.
     * {@code nanoGpt} is the name of the tensor holding it in nanoGPT's state_dict (the
     * layout exporters write); Q, K and V share one name, stacked by rows in that order.
     */
    public record ParamSpec(String name, int unit, long[] fullShape, long[] shape, int shardDim, Init init, String nanoGpt) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    /** How a tensor starts: GPT-2 normal(0, std), or constant ones / zeros. */
    public record Init(double std, double constant) {
        static Init normal(double std) { return new Init(std, 0); }
        static Init constant(double c) { return new Init(0, c); }
    }

    private final GptConfig cfg;
    private final int tpRank;
    private final int tpSize;
    private final TpOps tp;
    private final Attention attention;
    private final long[] positions;
    private final Matmuls mm;
    private Linear linear = Linear.PLAIN;
    private ExpertOps ep = ExpertOps.NONE;

    public Gpt(GptConfig cfg, int tpRank, int tpSize, TpOps tp) {
        this(cfg, tpRank, tpSize, tp, LOCAL, null, Matmuls.PLAIN);
    }

    public Gpt(GptConfig cfg, int tpRank, int tpSize, TpOps tp, Matmuls matmuls) {
        this(cfg, tpRank, tpSize, tp, LOCAL, null, matmuls);
    }

    /**
     * {@code positions}: where this rank's tokens sit in the sequence (null: all of it, in
     * order); {@code attention}: the core that sees the rest of the sequence if it is elsewhere;
     * {@code matmuls}: how the blocks' linear layers multiply (plainly, or through FP8).
     */
    public Gpt(GptConfig cfg, int tpRank, int tpSize, TpOps tp, Attention attention, long[] positions, Matmuls matmuls) {
        if (cfg.heads() % tpSize != 0)
            throw new parallax.engine.UserError("heads " + cfg.heads() + " is not divisible by tp " + tpSize);
        this.cfg = cfg;
        this.tpRank = tpRank;
        this.tpSize = tpSize;
        this.tp = tp == null ? TpOps.NONE : tp;
        this.attention = attention == null ? LOCAL : attention;
        this.positions = positions;
        this.mm = matmuls == null ? Matmuls.PLAIN : matmuls;
    }

    public Gpt(GptConfig cfg) { this(cfg, 0, 1, TpOps.NONE); }

    /**
     * Shards the experts over {@code ops}'s group: from now on {@link #params} lists only this
     * rank's experts and the blocks dispatch tokens to the others. Set before building a store.
     */
    public void useExpertParallel(ExpertOps ops) {
        if (ops.size() > 1 && (!cfg.isMoe() || cfg.moe().experts() % ops.size() != 0))
            throw new parallax.engine.UserError("expert parallelism " + ops.size() + " needs a mixture whose experts it divides");
        this.ep = ops;
    }

    /** The experts this rank holds: [first, first + count). */
    public int firstExpert() { return cfg.isMoe() ? ep.rank() * localExperts() : 0; }

    public int localExperts() { return cfg.isMoe() ? cfg.moe().experts() / ep.size() : 0; }

    /** Whether {@code name} is one of the routed experts' weights (sharded by expert parallelism). */
    public static boolean isExpertWeight(String name) {
        int at = name.indexOf(".moe.e");
        return at >= 0 && name.length() > at + 6 && Character.isDigit(name.charAt(at + 6));
    }

    /** Runs every linear layer of the blocks and the head through {@code l} from now on. */
    public void useLinear(Linear l) { this.linear = l; }

    /** A linear layer of a block: through the model's {@link Matmuls} (FP8), else its {@link Linear}. */
    private Tensor blockLinear(String name, Tensor x, Tensor weight, Tensor bias) {
        return mm == Matmuls.PLAIN ? linear(x, weight, bias) : mm.linear(name, x, weight, bias);
    }

    public GptConfig config() { return cfg; }

    public int units() { return cfg.layers() + 2; }

    public static String unitName(GptConfig cfg, int unit) {
        if (unit == 0) return "embed";
        if (unit == cfg.layers() + 1) return "head";
        return "block" + (unit - 1);
    }

    /** The parameters of one unit, as this TP rank holds them. */
    public List<ParamSpec> params(int unit) {
        long h = cfg.hidden(), f = cfg.ffn(), v = cfg.vocab();
        double std = 0.02;
        // GPT-2: residual projections scaled by 1/sqrt(2L) (Radford et al. 2019, section 2.3).
        double projStd = std / Math.sqrt(2.0 * cfg.layers());
        List<ParamSpec> out = new ArrayList<>();
        //                      engine name        nanoGPT name                       init                     shape
        if (unit == 0) {
            out.add(full("wte", "wte.weight", unit, Init.normal(std), v, h));
            out.add(full("wpe", "wpe.weight", unit, Init.normal(std), cfg.sequence(), h));
        } else if (unit == cfg.layers() + 1) {
            out.add(full("lnf.w", "ln_f.weight", unit, Init.constant(1), h));
            out.add(full("lnf.b", "ln_f.bias", unit, Init.constant(0), h));
            out.add(full("head.w", "lm_head.weight", unit, Init.normal(std), v, h));
        } else {
            String p = "h" + (unit - 1) + ".", n = "h." + (unit - 1) + ".";
            out.add(full(p + "ln1.w", n + "ln_1.weight", unit, Init.constant(1), h));
            out.add(full(p + "ln1.b", n + "ln_1.bias", unit, Init.constant(0), h));
            for (String m : new String[] {"q", "k", "v"}) {
                out.add(shard(p + "attn.w" + m, n + "attn.c_attn.weight", unit, Init.normal(std), 0, h, h)); // column parallel
                out.add(shard(p + "attn.b" + m, n + "attn.c_attn.bias", unit, Init.constant(0), 0, h));
            }
            out.add(shard(p + "attn.wo", n + "attn.c_proj.weight", unit, Init.normal(projStd), 1, h, h)); // row parallel
            out.add(full(p + "attn.bo", n + "attn.c_proj.bias", unit, Init.constant(0), h));
            out.add(full(p + "ln2.w", n + "ln_2.weight", unit, Init.constant(1), h));
            out.add(full(p + "ln2.b", n + "ln_2.bias", unit, Init.constant(0), h));
            if (cfg.isMoe()) {
                out.add(full(p + "moe.router", n + "moe.router.weight", unit, Init.normal(std), cfg.moe().experts(), h));
                for (int e = firstExpert(); e < firstExpert() + localExperts(); e++)
                    expertMlp(out, p + "moe.e" + e + ".", n + "moe.experts." + e + ".", unit, std, projStd);
                if (cfg.moe().sharedExpert()) expertMlp(out, p + "moe.shared.", n + "moe.shared_expert.", unit, std, projStd);
                return out;
            }
            out.add(shard(p + "mlp.w1", n + "mlp.c_fc.weight", unit, Init.normal(std), 0, f, h)); // column parallel
            out.add(shard(p + "mlp.b1", n + "mlp.c_fc.bias", unit, Init.constant(0), 0, f));
            out.add(shard(p + "mlp.w2", n + "mlp.c_proj.weight", unit, Init.normal(projStd), 1, h, f)); // row parallel
            out.add(full(p + "mlp.b2", n + "mlp.c_proj.bias", unit, Init.constant(0), h));
        }
        return out;
    }

    /**
     * One expert: the dense MLP's shapes and init under its own names, cut by tensor
     * parallelism as the dense MLP is (fc1 by columns, fc2 by rows: Megatron-core's expert
     * tensor parallelism).
     */
    private void expertMlp(List<ParamSpec> out, String p, String n, int unit, double std, double projStd) {
        long h = cfg.hidden(), f = cfg.ffn();
        out.add(shard(p + "w1", n + "c_fc.weight", unit, Init.normal(std), 0, f, h));
        out.add(shard(p + "b1", n + "c_fc.bias", unit, Init.constant(0), 0, f));
        out.add(shard(p + "w2", n + "c_proj.weight", unit, Init.normal(projStd), 1, h, f));
        out.add(full(p + "b2", n + "c_proj.bias", unit, Init.constant(0), h));
    }

    private ParamSpec full(String name, String nanoGpt, int unit, Init init, long... shape) {
        return new ParamSpec(name, unit, shape, shape.clone(), -1, init, nanoGpt);
    }

    private ParamSpec shard(String name, String nanoGpt, int unit, Init init, int dim, long... fullShape) {
        long[] shape = fullShape.clone();
        shape[dim] = fullShape[dim] / tpSize;
        return new ParamSpec(name, unit, fullShape, shape, tpSize == 1 ? -1 : dim, init, nanoGpt);
    }

    /** Every parameter of the whole (tp 1) model, in unit order: the one table of names and shapes. */
    public static List<ParamSpec> allParams(GptConfig cfg) {
        Gpt g = new Gpt(cfg);
        List<ParamSpec> out = new ArrayList<>();
        for (int u = 0; u < g.units(); u++) out.addAll(g.params(u));
        return out;
    }

    /**
     * This rank's slice of the parameter's initial value. The full tensor is drawn from
     * a generator seeded by (seed, name) alone, then cut, so every layout starts from
     * exactly the same weights as the single-process model.
     */
    public float[] initialValues(ParamSpec p, long seed) {
        float[] full = fullInit(p, seed);
        if (p.shardDim() < 0) return full;
        return Shards.cut(full, p.fullShape(), p.shardDim(), tpRank, tpSize);
    }

    static float[] fullInit(ParamSpec p, long seed) {
        long n = 1;
        for (long d : p.fullShape()) n *= d;
        float[] a = new float[(int) n];
        if (p.init().std() == 0) {
            java.util.Arrays.fill(a, (float) p.init().constant());
            return a;
        }
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + p.name().hashCode());
        for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextGaussian() * p.init().std());
        return a;
    }

    /**
     * Runs one unit. {@code x} is the hidden state [B, T, h] (ignored by the embedding,
     * which reads {@code tokens}); the head unit returns the mean cross-entropy loss
     * (fp32 scalar) against {@code targets}. Every intermediate is appended to
     * {@code made} (if not null) so that activation memory can be counted.
     */
    public Tensor forward(int unit, Tensor x, Tensor tokens, Tensor targets, Function<String, Tensor> w, List<Tensor> made) {
        return forward(unit, x, tokens, targets, w, made, null);
    }

    /**
     * {@link #forward(int, Tensor, Tensor, Tensor, Function, List)}, handing a mixture of
     * experts' load-balancing losses and routing counts to {@code routing}; without one
     * (null) those losses are not computed, as for inference.
     */
    public Tensor forward(int unit, Tensor x, Tensor tokens, Tensor targets, Function<String, Tensor> w, List<Tensor> made,
                          Routing routing) {
        if (unit == 0) return embed(tokens, w, made);
        if (unit == cfg.layers() + 1) return head(x, targets, w, made);
        return block(unit - 1, x, w, made, routing);
    }

    /**
     * Inference: the logits [B, T, vocab] for {@code tokens} [B, T] (int64), through every
     * unit of a whole (tp 1) model: embedding, blocks, final LayerNorm and LM head.
     */
    public Tensor logits(Tensor tokens, Function<String, Tensor> w) {
        if (tpSize != 1) throw new IllegalStateException("logits() needs the whole model (tp 1)");
        Tensor x = embed(tokens, w, null);
        for (int l = 0; l < cfg.layers(); l++) x = block(l, x, w, null, null);
        Tensor n = layerNorm(x, w.apply("lnf.w"), w.apply("lnf.b"));
        return linear(n, w.apply("head.w"), null);
    }

    private Tensor embed(Tensor tokens, Function<String, Tensor> w, List<Tensor> made) {
        long t = tokens.size(1);
        Tensor pos = positions == null ? Device.of(tokens).arange(t) : Device.of(tokens).fromLongs(positions, positions.length);
        Tensor tok = keep(made, torch.embedding(w.apply("wte"), tokens));
        Tensor pe = keep(made, torch.embedding(w.apply("wpe"), pos));
        Tensor x = keep(made, tok.add(pe));
        // Sequence parallelism: the embedding is computed whole, then each TP rank keeps its slice.
        return tp.sequenceParallel() ? keep(made, tp.scatterToSequence(x)) : x;
    }

    private Tensor block(int layer, Tensor x, Function<String, Tensor> w, List<Tensor> made, Routing routing) {
        String p = "h" + layer + ".";
        long heads = cfg.heads() / tpSize, hd = cfg.headDim(), local = heads * hd;

        // Attention: x + g(out_proj(attn(f(ln1(x))))); with sequence parallelism f and g
        // are an all-gather and a reduce-scatter along the sequence.
        Tensor ln1 = keep(made, layerNorm(x, sp(w, p + "ln1.w"), sp(w, p + "ln1.b")));
        Tensor a = keep(made, intoTensorParallel(ln1));
        long b = a.size(0), t = a.size(1);
        Tensor qLin = keep(made, blockLinear(p + "attn.wq", a, w.apply(p + "attn.wq"), w.apply(p + "attn.bq")));
        Tensor kLin = keep(made, blockLinear(p + "attn.wk", a, w.apply(p + "attn.wk"), w.apply(p + "attn.bk")));
        Tensor vLin = keep(made, blockLinear(p + "attn.wv", a, w.apply(p + "attn.wv"), w.apply(p + "attn.bv")));
        if (tp.sequenceParallel()) tp.keepShardOnly(a, ln1, qLin, kLin, vLin);
        Tensor q = heads(qLin, b, t, heads, hd), k = heads(kLin, b, t, heads, hd), v = heads(vLin, b, t, heads, hd);
        Tensor y = attention.attend(q, k, v, positions, made);   // (B, heads, T, hd)
        y = keep(made, y.transpose(1, 2).contiguous().view(b, t, local));
        Tensor x1 = keep(made, x.add(rowParallel(p + "attn.wo", y, w.apply(p + "attn.wo"), sp(w, p + "attn.bo"), made)));

        // MLP: x1 + g(fc2(gelu(fc1(f(ln2(x1)))))).
        Tensor ln2 = keep(made, layerNorm(x1, sp(w, p + "ln2.w"), sp(w, p + "ln2.b")));
        if (cfg.isMoe()) return keep(made, x1.add(experts(layer, ln2, w, made, routing)));
        Tensor m = keep(made, intoTensorParallel(ln2));
        Tensor h1 = keep(made, blockLinear(p + "mlp.w1", m, w.apply(p + "mlp.w1"), w.apply(p + "mlp.b1")));
        if (tp.sequenceParallel()) tp.keepShardOnly(m, ln2, h1);
        Tensor g = keep(made, torch.gelu(h1));
        return keep(made, x1.add(rowParallel(p + "mlp.w2", g, w.apply(p + "mlp.w2"), sp(w, p + "mlp.b2"), made)));
    }

    /**
     * The mixture of experts in place of the MLP ({@link MixtureOfExperts}): route each token
     * to its top-k experts, run each expert on the tokens it serves (every expert runs, on
     * no rows if none, so that every expert has a gradient), and add their outputs back
     * weighted by the gates; the shared expert, if any, sees every token.
     */
    private Tensor experts(int layer, Tensor ln2, Function<String, Tensor> w, List<Tensor> made, Routing routing) {
        GptConfig.Moe moe = cfg.moe();
        String p = "h" + layer + ".moe.";
        long b = ln2.size(0), t = ln2.size(1), h = cfg.hidden(), n = b * t;
        Tensor x = keep(made, ln2.reshape(n, h));
        Tensor probs = keep(made, MixtureOfExperts.routerProbabilities(x, w.apply(p + "router")));
        Tensor[] top = MixtureOfExperts.topK(probs, moe.topK());
        Tensor gates = keep(made, top[1].reshape(-1).to(x.scalar_type()));
        MixtureOfExperts.Plan plan = MixtureOfExperts.plan(moe, MixtureOfExperts.hostLongs(top[0]), n);
        if (routing != null) {
            routing.routed(layer, plan.load(), plan.dropped());
            if (moe.auxLossWeight() > 0) routing.auxLoss(layer, MixtureOfExperts.auxLoss(moe, probs, plan.load()));
        }
        Device device = Device.of(x);
        Tensor out = keep(made, torch.zeros_like(x));
        if (ep.size() > 1) out = keep(made, out.index_add(0, combineRows(plan, device), expertParallel(p, x, gates, plan, w, made)));
        else for (int e = 0; e < moe.experts(); e++) {
            long[] rows = plan.rows()[e];
            Tensor idx = device.fromLongs(rows, rows.length);
            Tensor in = keep(made, x.index_select(0, idx));
            Tensor y = keep(made, expertMlp(p + "e" + e + ".", in, w, made));
            Tensor g = keep(made, gates.index_select(0, device.fromLongs(plan.slots()[e], rows.length)));
            out = keep(made, out.index_add(0, idx, keep(made, y.mul(g.unsqueeze(1)))));
        }
        if (moe.sharedExpert()) out = keep(made, out.add(expertMlp(p + "shared.", x, w, made)));
        return keep(made, out.view(b, t, h));
    }

    /**
     * The routed experts under expert parallelism: every (token, expert) assignment that is
     * served, gate-weighted, in expert order (the rows of {@link #combineRows}).
     *
     * <p>Each rank packs the token copies for every expert into a buffer of E x C rows, C the
     * most an expert can take from one rank (its capacity, or every token of the micro-batch
     * when nothing is dropped), unused rows zero; experts are in rank order, so the block for
     * rank j is its experts' rows. One equal-split all-to-all brings each rank the rows for its
     * experts from every rank; each expert runs on its rows (padding included: its outputs go
     * nowhere and get no gradient); a second all-to-all brings the outputs home. With every
     * block the same size each all-to-all is its own inverse (block (i, j) and (j, i) swap),
     * so the gradient takes the same two all-to-alls back in reverse order. The fixed size is
     * the price of a shape-preserving op, which is what autograd can follow here.
     */
    private Tensor expertParallel(String p, Tensor x, Tensor gates, MixtureOfExperts.Plan plan, Function<String, Tensor> w,
                                  List<Tensor> made) {
        int n = ep.size(), local = localExperts(), experts = cfg.moe().experts();
        long tokens = x.size(0), h = x.size(1), cap = Math.min(plan.capacity(), tokens);
        Device device = Device.of(x);
        long[] src = new long[(int) (experts * cap)];
        java.util.Arrays.fill(src, tokens); // the zero row appended below
        for (int e = 0; e < experts; e++) {
            long[] rows = plan.rows()[e];
            for (int q = 0; q < rows.length; q++) src[(int) (e * cap + q)] = rows[q];
        }
        org.bytedeco.pytorch.TensorVector withZero = new org.bytedeco.pytorch.TensorVector(x, x.new_zeros(1, h));
        Tensor padded = keep(made, torch.cat(withZero, 0));
        withZero.close();
        Tensor send = keep(made, padded.index_select(0, device.fromLongs(src, src.length)));
        Tensor received = keep(made, ep.allToAll(send)).view(n, local, cap, h);   // [source rank, my expert, row, h]
        org.bytedeco.pytorch.TensorVector outs = new org.bytedeco.pytorch.TensorVector();
        for (int j = 0; j < local; j++) {
            Tensor in = keep(made, received.select(1, j).reshape(n * cap, h));
            Tensor y = keep(made, expertMlp(p + "e" + (firstExpert() + j) + ".", in, w, made));
            outs.push_back(y.view(n, 1, cap, h));
        }
        Tensor back = keep(made, torch.cat(outs, 1).reshape(experts * cap, h));
        outs.close();
        Tensor home = keep(made, ep.allToAll(back));                                // [expert, row, h] for my tokens
        int served = (int) plan.served();
        long[] at = new long[served], slots = new long[served];
        int i = 0;
        for (int e = 0; e < experts; e++) {
            for (int q = 0; q < plan.rows()[e].length; q++) {
                at[i] = e * cap + q;
                slots[i++] = plan.slots()[e][q];
            }
        }
        Tensor y = keep(made, home.index_select(0, device.fromLongs(at, served)));
        Tensor g = keep(made, gates.index_select(0, device.fromLongs(slots, served)));
        return keep(made, y.mul(g.unsqueeze(1)));
    }

    /** The token of each served assignment, in expert order (as {@link #expertParallel} returns them). */
    private static Tensor combineRows(MixtureOfExperts.Plan plan, Device device) {
        long[] rows = new long[(int) plan.served()];
        int i = 0;
        for (long[] r : plan.rows()) for (long t : r) rows[i++] = t;
        return device.fromLongs(rows, rows.length);
    }

    /**
     * One expert on its rows. Under tensor parallelism each TP rank holds a slice of every
     * expert, and every TP rank routes the same tokens the same way (their inputs are equal),
     * so the expert runs as the dense MLP does: f, column-parallel fc1, row-parallel fc2, g.
     * An expert without rows skips the collectives (every TP rank agrees it has none).
     */
    private Tensor expertMlp(String p, Tensor x, Function<String, Tensor> w, List<Tensor> made) {
        boolean split = tpSize > 1 && x.size(0) > 0;
        Tensor in = split ? keep(made, tp.copyToTensorParallel(x)) : x;
        Tensor h1 = keep(made, blockLinear(p + "w1", in, w.apply(p + "w1"), w.apply(p + "b1")));
        Tensor g = keep(made, torch.gelu(h1));
        if (!split) return blockLinear(p + "w2", g, w.apply(p + "w2"), w.apply(p + "b2"));
        Tensor partial = keep(made, blockLinear(p + "w2", g, w.apply(p + "w2"), null));
        return keep(made, tp.reduceFromTensorParallel(partial).add(w.apply(p + "b2")));
    }

    /** A replicated weight as the sequence-parallel region uses it (its gradient summed over TP there). */
    private Tensor sp(Function<String, Tensor> w, String name) {
        Tensor t = w.apply(name);
        return tp.sequenceParallel() ? tp.sequenceParallelWeight(t) : t;
    }

    /** Megatron's f, or with sequence parallelism the all-gather that enters a TP region. */
    private Tensor intoTensorParallel(Tensor x) {
        return tp.sequenceParallel() ? tp.gatherFromSequence(x) : tp.copyToTensorParallel(x);
    }

    /**
     * A row-parallel linear layer: each TP rank multiplies its slice of the input by its
     * rows of the weight, the partial sums are all-reduced (Megatron's g) or, with
     * sequence parallelism, reduce-scattered along the sequence, and the bias, held whole
     * by every rank, is added once after the sum. With one TP rank there is nothing to
     * reduce and the bias goes into the same fused multiply-add.
     */
    private Tensor rowParallel(String name, Tensor x, Tensor weight, Tensor bias, List<Tensor> made) {
        if (tpSize == 1) return keep(made, blockLinear(name, x, weight, bias));
        Tensor partial = keep(made, blockLinear(name, x, weight, null));
        Tensor sum = keep(made, tp.sequenceParallel() ? tp.reduceScatterToSequence(partial) : tp.reduceFromTensorParallel(partial));
        return keep(made, sum.add(bias));
    }

    private Tensor head(Tensor x, Tensor targets, Function<String, Tensor> w, List<Tensor> made) {
        // The head is replicated on every TP rank: it sees the whole sequence. Under sequence
        // parallelism the final LayerNorm still runs on this rank's slice, then the slices
        // are gathered for the head (and only the slice is kept for its backward).
        Tensor logits;
        if (tp.sequenceParallel()) {
            Tensor nShard = keep(made, layerNorm(x, sp(w, "lnf.w"), sp(w, "lnf.b")));
            Tensor n = keep(made, tp.gatherForReplicated(nShard));
            logits = keep(made, linear(n, w.apply("head.w"), null));
            tp.keepShardOnly(n, nShard, logits);
        } else {
            Tensor n = keep(made, layerNorm(x, w.apply("lnf.w"), w.apply("lnf.b")));
            logits = keep(made, linear(n, w.apply("head.w"), null));
        }
        // The loss is taken in fp32 whatever the compute type (as mixed-precision recipes do).
        Tensor flat = keep(made, logits.view(-1, cfg.vocab()).to(torch.ScalarType.Float));
        return keep(made, torch.cross_entropy_loss(flat, targets.view(-1)));
    }

    private Tensor heads(Tensor t, long b, long s, long heads, long hd) {
        return t.view(b, s, heads, hd).transpose(1, 2);
    }

    private Tensor layerNorm(Tensor x, Tensor weight, Tensor bias) {
        return torch.layer_norm(x, new long[] {cfg.hidden()}, new TensorOptional(weight), new TensorOptional(bias), 1e-5, false);
    }

    private Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return linear.apply(x, weight, bias);
    }

    static Tensor keep(List<Tensor> made, Tensor t) {
        if (made != null) made.add(t);
        return t;
    }
}
