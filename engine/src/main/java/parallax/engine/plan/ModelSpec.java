package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import parallax.engine.UserError;

/**
 * The shape of a transformer, enough to count its parameters tensor by tensor and to
 * size its activations, KV cache and communication.
 *
 * <p>{@code ffn} is the MLP's intermediate size (per expert for MoE); {@code kvHeads}
 * equals {@code heads} for multi-head attention and is smaller for grouped-query
 * attention (GQA, Ainslie et al. 2023). {@code experts} is 1 for a dense model.
 */
public record ModelSpec(String name, Arch arch, int layers, int hidden, int heads, int kvHeads,
                        int ffn, int vocab, int maxSeq, int experts, int topK, boolean tiedEmbeddings) {

    /** The block layouts we count. Each names the tensors its HF checkpoint holds. */
    public enum Arch {
        /** GPT-2: learned positions, LayerNorm with bias, biased linears, GELU MLP (2 matrices). */
        GPT2,
        /** LLaMA / Mistral / Mixtral: RoPE, RMSNorm, no biases, SwiGLU MLP (3 matrices). */
        LLAMA,
        /** Qwen2 / Qwen2.5: LLaMA plus biases on the q, k and v projections. */
        QWEN2,
        /** BERT encoder: word + position + token-type embeddings, post-LN, biases, pooler. */
        BERT,
        /**
         * The engine's own GPT (parallax.engine.model.Gpt): GPT-2 blocks, an untied head, and
         * the embedding and head kept whole on every tensor-parallel rank (no vocab split).
         */
        PARALLAX_GPT;

        public boolean gatedMlp() { return this == LLAMA || this == QWEN2; }
    }

    /** How tensor parallelism (Megatron, Shoeybi et al. 2019) splits a tensor. */
    public enum Split {
        /** Output features split: QKV, fc1/gate/up; its bias is split too. */
        COLUMN,
        /** Input features split: attention out-proj, fc2/down; its bias is replicated. */
        ROW,
        /** Vocabulary rows split (vocab-parallel embedding and output layer). */
        VOCAB,
        /** Replicated on every TP rank: norms, row-parallel biases, positions, router. */
        NONE
    }

    /** Where a tensor lives in the pipeline: first stage, every layer, or last stage. */
    public enum Place { EMBEDDING, LAYER, HEAD }

    /**
     * One parameter tensor. {@code rows x cols} (cols = 1 for vectors); {@code count} copies
     * (experts). {@code kvRows} marks K/V projections, whose heads may be fewer than the TP
     * size under GQA (then each rank keeps one replicated KV head).
     */
    public record Tensor(String name, long rows, long cols, int count, Split split, Place place, boolean kvRows) {
        public long elements() { return rows * cols * count; }
    }

    public ModelSpec {
        if (name == null || name.isBlank()) name = "custom";
        positive("layers", layers);
        positive("hidden", hidden);
        positive("heads", heads);
        positive("kv-heads", kvHeads);
        positive("ffn", ffn);
        positive("vocab", vocab);
        positive("sequence length", maxSeq);
        positive("experts", experts);
        positive("top-k", topK);
        if (hidden % heads != 0) throw new UserError("hidden size " + hidden + " is not divisible by " + heads + " heads");
        if (heads % kvHeads != 0) throw new UserError(heads + " attention heads are not divisible into " + kvHeads + " KV heads");
        if (topK > experts) throw new UserError("top-k " + topK + " is larger than the " + experts + " experts");
    }

    static void positive(String what, long v) {
        if (v <= 0) throw new UserError(what + " must be a positive number, got " + v);
    }

    public int headDim() { return hidden / heads; }

    public boolean moe() { return experts > 1; }

    /** Tensors as the HF checkpoint names them; LAYER tensors appear once (for one block). */
    public List<Tensor> tensors() {
        List<Tensor> t = new ArrayList<>();
        long h = hidden, f = ffn, kv = (long) kvHeads * headDim();
        switch (arch) {
            case GPT2, PARALLAX_GPT -> {
                Split vocabSplit = arch == Arch.PARALLAX_GPT ? Split.NONE : Split.VOCAB;
                t.add(new Tensor("wte", vocab, h, 1, vocabSplit, Place.EMBEDDING, false));
                t.add(new Tensor("wpe", maxSeq, h, 1, Split.NONE, Place.EMBEDDING, false));
                t.add(new Tensor("ln_1.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("ln_1.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                // c_attn fuses q, k and v; split q separately from k/v so GQA shapes count right.
                t.add(new Tensor("attn.c_attn.q.weight", h, h, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("attn.c_attn.q.bias", h, 1, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("attn.c_attn.kv.weight", 2 * kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attn.c_attn.kv.bias", 2 * kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attn.c_proj.weight", h, h, 1, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("attn.c_proj.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("ln_2.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("ln_2.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("mlp.c_fc.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("mlp.c_fc.bias", f, 1, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("mlp.c_proj.weight", h, f, experts, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("mlp.c_proj.bias", h, 1, experts, Split.NONE, Place.LAYER, false));
                if (moe()) t.add(new Tensor("mlp.router.weight", experts, h, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("ln_f.weight", h, 1, 1, Split.NONE, Place.HEAD, false));
                t.add(new Tensor("ln_f.bias", h, 1, 1, Split.NONE, Place.HEAD, false));
                if (!tiedEmbeddings) t.add(new Tensor("lm_head.weight", vocab, h, 1, vocabSplit, Place.HEAD, false));
            }
            case LLAMA, QWEN2 -> {
                boolean qkvBias = arch == Arch.QWEN2;
                t.add(new Tensor("model.embed_tokens.weight", vocab, h, 1, Split.VOCAB, Place.EMBEDDING, false));
                t.add(new Tensor("input_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("self_attn.q_proj.weight", h, h, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("self_attn.k_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("self_attn.v_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                if (qkvBias) {
                    t.add(new Tensor("self_attn.q_proj.bias", h, 1, 1, Split.COLUMN, Place.LAYER, false));
                    t.add(new Tensor("self_attn.k_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                    t.add(new Tensor("self_attn.v_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                }
                t.add(new Tensor("self_attn.o_proj.weight", h, h, 1, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("post_attention_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                String mlp = moe() ? "block_sparse_moe.experts.E." : "mlp.";
                t.add(new Tensor(mlp + "gate_proj.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor(mlp + "up_proj.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor(mlp + "down_proj.weight", h, f, experts, Split.ROW, Place.LAYER, false));
                if (moe()) t.add(new Tensor("block_sparse_moe.gate.weight", experts, h, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("model.norm.weight", h, 1, 1, Split.NONE, Place.HEAD, false));
                if (!tiedEmbeddings) t.add(new Tensor("lm_head.weight", vocab, h, 1, Split.VOCAB, Place.HEAD, false));
            }
            case BERT -> {
                t.add(new Tensor("embeddings.word_embeddings.weight", vocab, h, 1, Split.VOCAB, Place.EMBEDDING, false));
                t.add(new Tensor("embeddings.position_embeddings.weight", maxSeq, h, 1, Split.NONE, Place.EMBEDDING, false));
                t.add(new Tensor("embeddings.token_type_embeddings.weight", 2, h, 1, Split.NONE, Place.EMBEDDING, false));
                t.add(new Tensor("embeddings.LayerNorm.weight", h, 1, 1, Split.NONE, Place.EMBEDDING, false));
                t.add(new Tensor("embeddings.LayerNorm.bias", h, 1, 1, Split.NONE, Place.EMBEDDING, false));
                t.add(new Tensor("attention.self.query.weight", h, h, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("attention.self.query.bias", h, 1, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("attention.self.key.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attention.self.key.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attention.self.value.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attention.self.value.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("attention.output.dense.weight", h, h, 1, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("attention.output.dense.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("attention.output.LayerNorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("attention.output.LayerNorm.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("intermediate.dense.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("intermediate.dense.bias", f, 1, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("output.dense.weight", h, f, experts, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("output.dense.bias", h, 1, experts, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("output.LayerNorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("output.LayerNorm.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("pooler.dense.weight", h, h, 1, Split.NONE, Place.HEAD, false));
                t.add(new Tensor("pooler.dense.bias", h, 1, 1, Split.NONE, Place.HEAD, false));
            }
            default -> throw new IllegalStateException(arch.toString());
        }
        return t;
    }

    /** Parameters of one transformer block (all experts). */
    public long layerParameters() {
        return tensors().stream().filter(x -> x.place() == Place.LAYER).mapToLong(Tensor::elements).sum();
    }

    /** Ψ: every parameter, summed over the checkpoint's tensors (tied embeddings counted once). */
    public long parameters() {
        long sum = 0;
        for (Tensor x : tensors()) sum += x.place() == Place.LAYER ? x.elements() * layers : x.elements();
        return sum;
    }

    /** Parameters one token passes through: for MoE only top-k of the experts' MLPs. */
    public long activeParameters() {
        if (!moe()) return parameters();
        long sum = 0;
        for (Tensor x : tensors()) {
            long e = x.count() == experts && experts > 1 ? x.rows() * x.cols() * topK : x.elements();
            sum += x.place() == Place.LAYER ? e * layers : e;
        }
        return sum;
    }

    /** Elements of one tensor held by one tensor-parallel rank of {@code tp}. */
    public long elementsPerTpRank(Tensor x, int tp) {
        if (tp == 1) return x.elements();
        return switch (x.split()) {
            case NONE -> x.elements();
            case VOCAB -> ceilDiv(x.rows(), tp) * x.cols() * x.count(); // Megatron pads the vocabulary
            case ROW -> x.rows() * (x.cols() / tp) * x.count();
            case COLUMN -> {
                if (x.kvRows() && kvHeads < tp) {
                    // GQA with fewer KV heads than TP ranks: each rank keeps one whole KV head.
                    long perHead = x.rows() / kvHeads;
                    yield perHead * x.cols() * x.count();
                }
                yield (x.rows() / tp) * x.cols() * x.count();
            }
        };
    }

    /** Checks that tensor parallelism of {@code tp} splits this model evenly. */
    public void checkTensorParallel(int tp) {
        if (tp <= 0) throw new UserError("tensor-parallel size must be positive, got " + tp);
        if (heads % tp != 0) throw new UserError("tp=" + tp + " does not divide the " + heads + " attention heads of " + name);
        if (kvHeads % tp != 0 && tp % kvHeads != 0)
            throw new UserError("tp=" + tp + " and the " + kvHeads + " KV heads of " + name + " do not divide one another");
        if (ffn % tp != 0) throw new UserError("tp=" + tp + " does not divide the MLP size " + ffn + " of " + name);
    }

    static long ceilDiv(long a, long b) { return (a + b - 1) / b; }

    /** A copy with another name (a catalog alias or a config file's path). */
    public ModelSpec named(String newName) {
        return new ModelSpec(newName, arch, layers, hidden, heads, kvHeads, ffn, vocab, maxSeq, experts, topK, tiedEmbeddings);
    }

    /** One line describing the shape, as the planner's header shows it. */
    public String shapeLine() {
        return String.format("%s: %s, %d layers, hidden %d, %d heads (%d KV), MLP %d%s, vocab %d, context %d%s",
                name, arch, layers, hidden, heads, kvHeads, ffn,
                moe() ? String.format(" x %d experts (top-%d)", experts, topK) : "",
                vocab, maxSeq, tiedEmbeddings ? ", tied embeddings" : "");
    }
}
