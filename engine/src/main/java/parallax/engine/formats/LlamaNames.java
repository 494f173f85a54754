package parallax.engine.formats;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face Llama tensor names <-> llama.cpp's GGUF names (convert_hf_to_gguf.py,
 * gguf-py tensor_mapping.py; summarised in docs/reference.md#llama-tensor-names), and the row permutation
 * llama.cpp applies to the Q and K projections so its RoPE can rotate adjacent pairs:
 * {@code w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols)}.
 */
public final class LlamaNames {

    private LlamaNames() {}

    private static final Pattern HF_LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.(weight|bias)");
    private static final Pattern GGUF_LAYER = Pattern.compile("blk\\.(\\d+)\\.(\\w+)\\.(weight|bias)");
    private static final String[][] LAYER = {
        {"input_layernorm", "attn_norm"},
        {"self_attn.q_proj", "attn_q"},
        {"self_attn.k_proj", "attn_k"},
        {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"},
        {"post_attention_layernorm", "ffn_norm"},
        {"mlp.gate_proj", "ffn_gate"},
        {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},
    };
    private static final String[][] GLOBAL = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };

    /** The GGUF name, or empty for a tensor llama.cpp drops (rotary inv_freq). */
    public static Optional<String> hfToGguf(String hf) {
        for (String[] g : GLOBAL) if (g[0].equals(hf)) return Optional.of(g[1]);
        if (hf.endsWith("rotary_emb.inv_freq")) return Optional.empty();
        Matcher m = HF_LAYER.matcher(hf);
        if (m.matches()) {
            for (String[] l : LAYER) {
                if (l[0].equals(m.group(2))) return Optional.of("blk." + m.group(1) + "." + l[1] + "." + m.group(3));
            }
        }
        throw new parallax.engine.UserError("no GGUF name for Llama tensor " + hf);
    }

    public static String ggufToHf(String gguf) {
        for (String[] g : GLOBAL) if (g[1].equals(gguf)) return g[0];
        Matcher m = GGUF_LAYER.matcher(gguf);
        if (m.matches()) {
            for (String[] l : LAYER) {
                if (l[1].equals(m.group(2))) return "model.layers." + m.group(1) + "." + l[0] + "." + m.group(3);
            }
        }
        throw new parallax.engine.UserError("no Hugging Face name for GGUF tensor " + gguf);
    }

    /** Which Q/K head count applies to an HF or GGUF name, or 0 when the rows stay put. */
    public static int permutedHeads(String name, int heads, int kvHeads) {
        if (name.endsWith("q_proj.weight") || name.endsWith("attn_q.weight")) return heads;
        if (name.endsWith("k_proj.weight") || name.endsWith("attn_k.weight")) return kvHeads;
        return 0;
    }

    /**
     * For HF -> GGUF: destination row {@code r} of a {@code rows}-row Q/K matrix comes from
     * this source row. With d = rows / heads and half = d / 2, destination (h, i, j) is
     * h*d + 2i + j and takes source (h, j, i) = h*d + j*half + i.
     */
    public static long sourceRowHfToGguf(long r, long rows, int heads) {
        long d = rows / heads;
        long half = d / 2;
        long h = r / d;
        long within = r % d;
        long i = within / 2;
        long j = within % 2;
        return h * d + j * half + i;
    }

    /** The inverse permutation, for GGUF -> HF. */
    public static long sourceRowGgufToHf(long r, long rows, int heads) {
        long d = rows / heads;
        long half = d / 2;
        long h = r / d;
        long within = r % d;
        long j = within / half;
        long i = within % half;
        return h * d + 2 * i + j;
    }
}
