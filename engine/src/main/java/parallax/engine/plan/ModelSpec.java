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
                        int ffn, int vocab, int maxSeq, int experts, int topK, boolean tiedEmbeddings, Detail detail) {

    /**
     * What the newer configs add to the shape above; zeros mean "as the plain shape implies".
     * {@code headDim}: an explicit attention head size (Qwen3, gpt-oss), else hidden/heads.
     * {@code denseLayers}: the first layers keep a dense MLP of {@code denseFfn} (DeepSeek-V3's
     * first_k_dense_replace). {@code sharedExperts}: experts every token passes through
     * (DeepSeek-V3's n_shared_experts, each of size {@code ffn}). The last five size
     * multi-head latent attention (DeepSeek-V2 §2.1; 0 = ordinary attention).
     */
    public record Detail(int headDim, int denseLayers, int denseFfn, int sharedExperts,
                         int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim) {
        public static final Detail NONE = new Detail(0, 0, 0, 0, 0, 0, 0, 0, 0);

        public Detail {
            for (int v : new int[] {headDim, denseLayers, denseFfn, sharedExperts, qLoraRank, kvLoraRank, qkNopeHeadDim, qkRopeHeadDim, vHeadDim})
                if (v < 0) throw new UserError("model shape sizes must not be negative, got " + v);
            if (denseLayers > 0 && denseFfn == 0) throw new UserError("dense layers need their MLP size");
        }

        public static Detail headDim(int d) { return new Detail(d, 0, 0, 0, 0, 0, 0, 0, 0); }

        public boolean mla() { return kvLoraRank > 0; }
    }

    /** A plain shape (no explicit head size, dense layers, shared experts or latent attention). */
    public ModelSpec(String name, Arch arch, int layers, int hidden, int heads, int kvHeads,
                     int ffn, int vocab, int maxSeq, int experts, int topK, boolean tiedEmbeddings) {
        this(name, arch, layers, hidden, heads, kvHeads, ffn, vocab, maxSeq, experts, topK, tiedEmbeddings, Detail.NONE);
    }

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
        PARALLAX_GPT,
        /** Qwen3-MoE: LLaMA blocks with per-head q/k RMSNorm, an explicit head size, routed experts. */
        QWEN3_MOE,
        /**
         * gpt-oss: biased attention with a learned sink per head, a biased router, experts with a
         * fused gate/up projection and biases (SwiGLU); head size 64 whatever the hidden size.
         */
        GPT_OSS,
        /**
         * DeepSeek-V3: multi-head latent attention (low-rank q and kv projections, a decoupled RoPE
         * key), the first layers dense, the rest a shared expert plus routed experts with a biased
         * sigmoid router (DeepSeek-V3 technical report §2.1).
         */
        DEEPSEEK_V3;

        public boolean gatedMlp() { return this == LLAMA || this == QWEN2 || this == QWEN3_MOE || this == GPT_OSS || this == DEEPSEEK_V3; }

        /** Rotary positions (no learned position table, so sequences past maxSeq are the user's call). */
        public boolean rotary() { return this != GPT2 && this != BERT && this != PARALLAX_GPT; }
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

    /**
     * Where a tensor lives in the pipeline: first stage, every layer, last stage; or only in
     * the MoE layers / only in the dense layers of a model whose first layers are dense.
     */
    public enum Place { EMBEDDING, LAYER, HEAD, MOE_LAYER, DENSE_LAYER }

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
        if (detail == null) detail = Detail.NONE;
        if (detail.denseLayers() > layers) throw new UserError(detail.denseLayers() + " dense layers exceed the " + layers + " layers");
        if (detail.headDim() == 0 && !detail.mla() && hidden % heads != 0) throw new UserError("hidden size " + hidden + " is not divisible by " + heads + " heads");
        if (heads % kvHeads != 0) throw new UserError(heads + " attention heads are not divisible into " + kvHeads + " KV heads");
        if (topK > experts) throw new UserError("top-k " + topK + " is larger than the " + experts + " experts");
    }

    static void positive(String what, long v) {
        if (v <= 0) throw new UserError(what + " must be a positive number, got " + v);
    }

    public int headDim() { return detail.headDim() > 0 ? detail.headDim() : hidden / heads; }

    public boolean moe() { return experts > 1; }

    /** Layers whose MLP is a mixture of experts (all of them unless the first are dense). */
    public int moeLayers() { return moe() ? layers - detail.denseLayers() : 0; }

    /** Copies of a tensor in the whole model: one per layer it appears in, else one. */
    public int copies(Tensor x) {
        return switch (x.place()) {
            case LAYER -> layers;
            case MOE_LAYER -> layers - detail.denseLayers();
            case DENSE_LAYER -> detail.denseLayers();
            default -> 1;
        };
    }

    /** True for a routed expert's tensor: {@code experts} copies, of which each token uses top-k. */
    public boolean routed(Tensor x) { return moe() && x.count() == experts && x.place() != Place.EMBEDDING && x.place() != Place.HEAD; }

    /** MLP width one token passes through in an MoE layer: top-k routed experts plus the shared ones. */
    public long activeFfn() { return (long) ffn * (moe() ? topK + detail.sharedExperts() : 1); }

    /**
     * Elements of the KV cache per token and layer: K and V of every KV head, or for latent
     * attention the compressed latent plus the shared RoPE key (DeepSeek-V2 §2.1.2: (d_c + d_h^R) per layer).
     */
    public long kvCacheElementsPerLayer() {
        if (detail.mla()) return (long) detail.kvLoraRank() + detail.qkRopeHeadDim();
        return 2L * kvHeads * headDim();
    }

    /** Tensors as the HF checkpoint names them; LAYER tensors appear once (for one block). */
    public List<Tensor> tensors() {
        List<Tensor> t = new ArrayList<>();
        long h = hidden, f = ffn, kv = (long) kvHeads * headDim(), q = (long) heads * headDim();
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
                if (detail.sharedExperts() > 0) {
                    // the engine's --shared-expert: MLPs of the experts' shape every token passes through
                    int n = detail.sharedExperts();
                    t.add(new Tensor("mlp.shared_expert.c_fc.weight", f, h, n, Split.COLUMN, Place.MOE_LAYER, false));
                    t.add(new Tensor("mlp.shared_expert.c_fc.bias", f, 1, n, Split.COLUMN, Place.MOE_LAYER, false));
                    t.add(new Tensor("mlp.shared_expert.c_proj.weight", h, f, n, Split.ROW, Place.MOE_LAYER, false));
                    t.add(new Tensor("mlp.shared_expert.c_proj.bias", h, 1, n, Split.NONE, Place.MOE_LAYER, false));
                }
                t.add(new Tensor("ln_f.weight", h, 1, 1, Split.NONE, Place.HEAD, false));
                t.add(new Tensor("ln_f.bias", h, 1, 1, Split.NONE, Place.HEAD, false));
                if (!tiedEmbeddings) t.add(new Tensor("lm_head.weight", vocab, h, 1, vocabSplit, Place.HEAD, false));
            }
            case LLAMA, QWEN2 -> {
                boolean qkvBias = arch == Arch.QWEN2;
                t.add(new Tensor("model.embed_tokens.weight", vocab, h, 1, Split.VOCAB, Place.EMBEDDING, false));
                t.add(new Tensor("input_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("self_attn.q_proj.weight", q, h, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("self_attn.k_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("self_attn.v_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                if (qkvBias) {
                    t.add(new Tensor("self_attn.q_proj.bias", q, 1, 1, Split.COLUMN, Place.LAYER, false));
                    t.add(new Tensor("self_attn.k_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                    t.add(new Tensor("self_attn.v_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                }
                t.add(new Tensor("self_attn.o_proj.weight", h, q, 1, Split.ROW, Place.LAYER, false));
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
            case QWEN3_MOE, GPT_OSS -> {
                boolean oss = arch == Arch.GPT_OSS;
                t.add(new Tensor("model.embed_tokens.weight", vocab, h, 1, Split.VOCAB, Place.EMBEDDING, false));
                t.add(new Tensor("input_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("self_attn.q_proj.weight", q, h, 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("self_attn.k_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("self_attn.v_proj.weight", kv, h, 1, Split.COLUMN, Place.LAYER, true));
                t.add(new Tensor("self_attn.o_proj.weight", h, q, 1, Split.ROW, Place.LAYER, false));
                if (oss) {
                    t.add(new Tensor("self_attn.q_proj.bias", q, 1, 1, Split.COLUMN, Place.LAYER, false));
                    t.add(new Tensor("self_attn.k_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                    t.add(new Tensor("self_attn.v_proj.bias", kv, 1, 1, Split.COLUMN, Place.LAYER, true));
                    t.add(new Tensor("self_attn.o_proj.bias", h, 1, 1, Split.NONE, Place.LAYER, false));
                    t.add(new Tensor("self_attn.sinks", heads, 1, 1, Split.COLUMN, Place.LAYER, false));
                } else {
                    t.add(new Tensor("self_attn.q_norm.weight", headDim(), 1, 1, Split.NONE, Place.LAYER, false));
                    t.add(new Tensor("self_attn.k_norm.weight", headDim(), 1, 1, Split.NONE, Place.LAYER, false));
                }
                t.add(new Tensor("post_attention_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("mlp.experts.E.gate_proj.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("mlp.experts.E.up_proj.weight", f, h, experts, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("mlp.experts.E.down_proj.weight", h, f, experts, Split.ROW, Place.LAYER, false));
                if (oss) {
                    t.add(new Tensor("mlp.experts.E.gate_up_proj_bias", 2 * f, 1, experts, Split.COLUMN, Place.LAYER, false));
                    t.add(new Tensor("mlp.experts.E.down_proj_bias", h, 1, experts, Split.NONE, Place.LAYER, false));
                    t.add(new Tensor("mlp.router.bias", experts, 1, 1, Split.NONE, Place.LAYER, false));
                }
                if (moe()) t.add(new Tensor(oss ? "mlp.router.weight" : "mlp.gate.weight", experts, h, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("model.norm.weight", h, 1, 1, Split.NONE, Place.HEAD, false));
                if (!tiedEmbeddings) t.add(new Tensor("lm_head.weight", vocab, h, 1, Split.VOCAB, Place.HEAD, false));
            }
            case DEEPSEEK_V3 -> {
                Detail d = detail;
                long nope = d.qkNopeHeadDim(), rope = d.qkRopeHeadDim(), v = d.vHeadDim(), a = heads;
                t.add(new Tensor("model.embed_tokens.weight", vocab, h, 1, Split.VOCAB, Place.EMBEDDING, false));
                t.add(new Tensor("input_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                // The down-projections are small and kept whole on every TP rank (Megatron-core MLA); the up-projections split by heads.
                if (d.qLoraRank() > 0) {
                    t.add(new Tensor("self_attn.q_a_proj.weight", d.qLoraRank(), h, 1, Split.NONE, Place.LAYER, false));
                    t.add(new Tensor("self_attn.q_a_layernorm.weight", d.qLoraRank(), 1, 1, Split.NONE, Place.LAYER, false));
                    t.add(new Tensor("self_attn.q_b_proj.weight", a * (nope + rope), d.qLoraRank(), 1, Split.COLUMN, Place.LAYER, false));
                } else {
                    t.add(new Tensor("self_attn.q_proj.weight", a * (nope + rope), h, 1, Split.COLUMN, Place.LAYER, false));
                }
                t.add(new Tensor("self_attn.kv_a_proj_with_mqa.weight", d.kvLoraRank() + rope, h, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("self_attn.kv_a_layernorm.weight", d.kvLoraRank(), 1, 1, Split.NONE, Place.LAYER, false));
                t.add(new Tensor("self_attn.kv_b_proj.weight", a * (nope + v), d.kvLoraRank(), 1, Split.COLUMN, Place.LAYER, false));
                t.add(new Tensor("self_attn.o_proj.weight", h, a * v, 1, Split.ROW, Place.LAYER, false));
                t.add(new Tensor("post_attention_layernorm.weight", h, 1, 1, Split.NONE, Place.LAYER, false));
                long df = d.denseFfn();
                t.add(new Tensor("mlp.gate_proj.weight", df, h, 1, Split.COLUMN, Place.DENSE_LAYER, false));
                t.add(new Tensor("mlp.up_proj.weight", df, h, 1, Split.COLUMN, Place.DENSE_LAYER, false));
                t.add(new Tensor("mlp.down_proj.weight", h, df, 1, Split.ROW, Place.DENSE_LAYER, false));
                t.add(new Tensor("mlp.experts.E.gate_proj.weight", f, h, experts, Split.COLUMN, Place.MOE_LAYER, false));
                t.add(new Tensor("mlp.experts.E.up_proj.weight", f, h, experts, Split.COLUMN, Place.MOE_LAYER, false));
                t.add(new Tensor("mlp.experts.E.down_proj.weight", h, f, experts, Split.ROW, Place.MOE_LAYER, false));
                if (d.sharedExperts() > 0) {
                    long sf = f * d.sharedExperts();
                    t.add(new Tensor("mlp.shared_experts.gate_proj.weight", sf, h, 1, Split.COLUMN, Place.MOE_LAYER, false));
                    t.add(new Tensor("mlp.shared_experts.up_proj.weight", sf, h, 1, Split.COLUMN, Place.MOE_LAYER, false));
                    t.add(new Tensor("mlp.shared_experts.down_proj.weight", h, sf, 1, Split.ROW, Place.MOE_LAYER, false));
                }
                t.add(new Tensor("mlp.gate.weight", experts, h, 1, Split.NONE, Place.MOE_LAYER, false));
                t.add(new Tensor("mlp.gate.e_score_correction_bias", experts, 1, 1, Split.NONE, Place.MOE_LAYER, false));
                t.add(new Tensor("model.norm.weight", h, 1, 1, Split.NONE, Place.HEAD, false));
                if (!tiedEmbeddings) t.add(new Tensor("lm_head.weight", vocab, h, 1, Split.VOCAB, Place.HEAD, false));
            }
            default -> throw new IllegalStateException(arch.toString());
        }
        return t;
    }

    /** Parameters of one transformer block (all experts; an MoE block where the first layers are dense). */
    public long layerParameters() {
        return tensors().stream().filter(x -> x.place() == Place.LAYER || x.place() == Place.MOE_LAYER && moeLayers() > 0
                || x.place() == Place.DENSE_LAYER && moeLayers() == 0).mapToLong(Tensor::elements).sum();
    }

    /** Ψ: every parameter, summed over the checkpoint's tensors (tied embeddings counted once). */
    public long parameters() {
        long sum = 0;
        for (Tensor x : tensors()) sum += x.elements() * copies(x);
        return sum;
    }

    /** Parameters one token passes through: for MoE only top-k of the routed experts' MLPs. */
    public long activeParameters() {
        if (!moe()) return parameters();
        long sum = 0;
        for (Tensor x : tensors()) {
            long e = routed(x) ? x.rows() * x.cols() * topK : x.elements();
            sum += e * copies(x);
        }
        return sum;
    }

    /** Parameters of the routed experts, all layers: what expert parallelism divides. */
    public long routedParameters() {
        long sum = 0;
        for (Tensor x : tensors()) if (routed(x)) sum += x.elements() * copies(x);
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
        if (detail.denseFfn() % tp != 0) throw new UserError("tp=" + tp + " does not divide the dense MLP size " + detail.denseFfn() + " of " + name);
    }

    static long ceilDiv(long a, long b) { return (a + b - 1) / b; }

    /** A copy with another name (a catalog alias or a config file's path). */
    public ModelSpec named(String newName) {
        return new ModelSpec(newName, arch, layers, hidden, heads, kvHeads, ffn, vocab, maxSeq, experts, topK, tiedEmbeddings, detail);
    }

    /** One line describing the shape, as the planner's header shows it. */
    public String shapeLine() {
        Detail d = detail;
        String attn = d.mla() ? String.format("%d heads (latent attention: kv rank %d + RoPE key %d)", heads, d.kvLoraRank(), d.qkRopeHeadDim())
                : String.format("%d heads (%d KV)%s", heads, kvHeads, d.headDim() > 0 ? " of " + d.headDim() : "");
        String mlp = moe() ? String.format(" x %d experts (top-%d)%s%s", experts, topK,
                d.sharedExperts() > 0 ? " + " + d.sharedExperts() + " shared" : "",
                d.denseLayers() > 0 ? String.format(", first %d layers dense (MLP %d)", d.denseLayers(), d.denseFfn()) : "") : "";
        return String.format("%s: %s, %d layers, hidden %d, %s, MLP %d%s, vocab %d, context %d%s",
                name, arch, layers, hidden, attn, ffn, mlp, vocab, maxSeq, tiedEmbeddings ? ", tied embeddings" : "");
    }
}
