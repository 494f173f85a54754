package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.UserError;

/**
 * Serving memory: the weights in one encoding plus the KV cache for a context and batch.
 * KV cache per token is 2 (K and V) · layers · kv_heads · head_dim · bytes, so grouped-query
 * attention shrinks it by heads/kv_heads (Ainslie et al. 2023).
 */
public final class InferencePlan {

    /** Weight encodings; bits per weight of the block formats from ggml's block layouts. */
    public enum Encoding {
        F32("f32", 32), F16("f16", 16), BF16("bf16", 16), FP8("fp8", 8),
        /** blocks of 32: fp16 scale + 32 int8 = 34 bytes. */
        Q8_0("q8_0", 34 * 8 / 32.0),
        /** blocks of 32: fp16 scale + 16 bytes of nibbles = 18 bytes. */
        Q4_0("q4_0", 18 * 8 / 32.0),
        /** llama.cpp's mix: Q4_K (144 bytes per 256) for most tensors, Q6_K (210 per 256) for some. */
        Q4_K_M("q4_k_m", 144 * 8 / 256.0);

        public final String label;
        public final double bits;

        Encoding(String label, double bits) { this.label = label; this.bits = bits; }

        public static Encoding of(String s) {
            String k = s.toLowerCase(Locale.ROOT).replace('-', '_');
            for (Encoding e : values()) if (e.label.equals(k)) return e;
            if (k.equals("fp16")) return F16;
            if (k.equals("fp32")) return F32;
            List<String> names = new ArrayList<>();
            for (Encoding e : values()) names.add(e.label);
            throw new UserError("unknown encoding '" + s + "'." + parallax.engine.DidYouMean.hint(k, names)
                    + " Known: " + String.join(", ", names));
        }
    }

    static final double Q6_K_BITS = 210 * 8 / 256.0;

    /**
     * One GPU model's answer: usable memory, GPUs needed, the longest context one GPU holds,
     * and memory-bound decode throughput on the GPUs needed (NaN when the GPU has no
     * bandwidth figure).
     */
    public record Fit(GpuProfile gpu, long usableBytes, int gpusNeeded, long maxContext, double decodeTokensPerSecond) {}

    public record Result(ModelSpec model, Encoding encoding, int context, int batch, int kvBytes, double weightBytes,
                         double kvBytesPerToken, double kvCacheBytes, double totalBytes, double headroom, List<Fit> fits,
                         double weightBytesReadPerStep) {

        /** Bytes one decode step reads from memory: the weights it uses plus every sequence's KV cache at full context. */
        public double bytesReadPerStep() { return weightBytesReadPerStep + kvCacheBytes; }
    }

    private InferencePlan() {}

    /**
     * Bytes of the weights in one encoding. Vectors (norms, biases) stay f32 in GGUF files;
     * for Q4_K_M, llama.cpp (src/llama-quant.cpp) stores the output layer and, in the
     * "more bits" layers (first and last eighth and every third in between), attn_v and
     * ffn_down as Q6_K: we follow that rule.
     */
    public static double weightBytes(ModelSpec m, Encoding e) {
        boolean block = e == Encoding.Q8_0 || e == Encoding.Q4_0 || e == Encoding.Q4_K_M;
        double bits = 0;
        int n = m.layers();
        int moreBits = 0;
        for (int i = 0; i < n; i++) if (i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2) moreBits++;
        for (ModelSpec.Tensor x : m.tensors()) {
            long el = x.elements();
            int copies = m.copies(x);
            if (x.cols() == 1 && block) { bits += 32.0 * el * copies; continue; }
            if (e != Encoding.Q4_K_M) { bits += e.bits * el * copies; continue; }
            boolean output = x.name().equals("lm_head.weight") || (m.tiedEmbeddings() && x.place() == ModelSpec.Place.EMBEDDING
                    && x.split() == ModelSpec.Split.VOCAB);
            boolean vOrDown = x.name().contains("v_proj") || x.name().contains("down_proj") || x.name().contains("c_proj.weight")
                    && x.name().startsWith("mlp") || x.name().contains("value.weight") || x.name().equals("output.dense.weight");
            if (output) bits += Q6_K_BITS * el;
            else if (vOrDown && x.place() == ModelSpec.Place.LAYER) bits += el * (Q6_K_BITS * moreBits + e.bits * (n - moreBits));
            else bits += e.bits * el * copies;
        }
        return bits / 8;
    }

    /** 2 (K and V) · layers · kv_heads · head_dim · bytes; latent attention caches (d_c + d_h^R) per layer instead. */
    public static double kvBytesPerToken(ModelSpec m, int kvBytes) {
        return (double) m.layers() * m.kvCacheElementsPerLayer() * kvBytes;
    }

    /**
     * Parameters one decode step of {@code batch} sequences reads: all of a dense model; for MoE,
     * the routed experts any of the batch's tokens picks. With uniform routing a layer's expert is
     * missed by all B tokens with probability (1 − k/E)^B, so E·(1 − (1 − k/E)^B) experts are read:
     * k (the active parameters) at batch 1, nearly all E at large batches.
     */
    public static double parametersReadPerStep(ModelSpec m, int batch) {
        if (!m.moe()) return m.parameters();
        double e = m.experts(), touched = e * (1 - Math.pow(1 - m.topK() / e, batch));
        return m.parameters() - m.routedParameters() * (1 - touched / e);
    }

    /**
     * Memory-bound decode: each step reads the weights it uses and the KV cache once, at the
     * HBM bandwidth, and yields one token per sequence, so tokens/s = batch · n · bandwidth /
     * bytes per step over n GPUs that each hold 1/n (communication between them left out: an
     * upper bound, as the roofline is).
     */
    public static double decodeTokensPerSecond(double bytesPerStep, int batch, int gpus, double hbmBytesPerS) {
        if (!(hbmBytesPerS > 0)) return Double.NaN;
        return batch * gpus * hbmBytesPerS / bytesPerStep;
    }

    public static Result plan(ModelSpec m, Encoding e, int context, int batch, int kvBytes, double headroom, List<GpuProfile> gpus) {
        ModelSpec.positive("context length", context);
        ModelSpec.positive("batch", batch);
        if (kvBytes != 1 && kvBytes != 2 && kvBytes != 4) throw new UserError("KV cache bytes per element must be 1, 2 or 4");
        if (headroom < 0 || headroom >= 1) throw new UserError("headroom must be a fraction in [0, 1), got " + headroom);
        double w = weightBytes(m, e);
        double perTok = kvBytesPerToken(m, kvBytes);
        double kv = perTok * context * batch;
        double total = w + kv;
        double wRead = w * parametersReadPerStep(m, batch) / m.parameters();   // the encoding's average bytes per parameter
        List<Fit> fits = new ArrayList<>();
        for (GpuProfile g : gpus) {
            long usable = (long) (g.memoryBytes() * (1 - headroom));
            int need = (int) Math.ceil(total / usable);
            long maxCtx = usable > w ? (long) ((usable - w) / (perTok * batch)) : 0;
            fits.add(new Fit(g, usable, need, maxCtx, decodeTokensPerSecond(wRead + kv, batch, Math.max(1, need), g.hbmBytesPerS())));
        }
        return new Result(m, e, context, batch, kvBytes, w, perTok, kv, total, headroom, fits, wRead);
    }
}
