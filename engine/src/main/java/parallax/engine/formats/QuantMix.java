package parallax.engine.formats;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parallax.engine.numerics.DType;

/**
 * Which ggml type each tensor of a GGUF file gets when quantizing, as llama.cpp's quantize
 * tool chooses (src/llama-quant.cpp, llama_tensor_get_type; docs/reference.md#weight-sizes-by-encoding)
 * for the files people download, without an importance matrix:
 * <ul>
 * <li>Q4_K_M and Q5_K_M: matrices get Q4_K (Q5_K); the output layer (or the token
 *     embedding, when the output is tied to it) Q6_K; {@code attn_v} (and a fused
 *     {@code attn_qkv}) and {@code ffn_down} Q6_K in the layers where use_more_bits holds:
 *     i &lt; n/8, i ≥ 7n/8, or (i − n/8) mod 3 = 2.</li>
 * <li>a single type (Q4_K, Q6_K, Q8_0, ...) for every quantizable matrix.</li>
 * </ul>
 * Only matrices whose name ends in "weight" are quantized: not norms, not position
 * embeddings, not 1-D tensors. A row length that is not a whole number of the type's
 * blocks falls back as llama.cpp does (Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, and to
 * F16 when not even 32 divides it).
 */
public enum QuantMix {
    Q4_K_M(DType.Q4_K, 15), Q5_K_M(DType.Q5_K, 17);

    private final DType base;
    private final int fileType;

    QuantMix(DType base, int fileType) {
        this.base = base;
        this.fileType = fileType;
    }

    public DType base() { return base; }

    /** llama.cpp's llama_ftype number, written as general.file_type. */
    public int fileType() { return fileType; }

    /** The mix named {@code s} (q4_k_m, Q5_K_M), or null. */
    public static QuantMix parse(String s) {
        for (QuantMix m : values()) if (m.name().equalsIgnoreCase(s.trim())) return m;
        return null;
    }

    private static final Pattern LAYER = Pattern.compile("blk\\.(\\d+)\\.");

    /** Counts over the whole file that the rules need: attn_v-like and ffn_down tensors, and whether the output is tied. */
    record Census(int attnV, int ffnDown, boolean tiedOutput) {
        static Census of(List<String> names) {
            int v = 0, f = 0;
            boolean output = false;
            for (String n : names) {
                if (isAttnV(n)) v++;
                if (n.contains("ffn_down")) f++;
                if (n.equals("output.weight")) output = true;
            }
            return new Census(v, f, !output);
        }
    }

    static boolean isAttnV(String n) {
        return n.contains("attn_v.weight") || n.contains("attn_qkv.weight") || n.contains("attn_kv_b.weight");
    }

    /** Whether llama.cpp quantizes this tensor at all. */
    static boolean quantizable(String name, long[] shape) {
        return shape.length >= 2 && name.endsWith("weight") && !name.contains("_norm.weight")
                && !name.equals("position_embd.weight") && !name.equals("token_types.weight");
    }

    static boolean useMoreBits(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    /**
     * The type for tensor {@code name} under this mix; {@code index} is its position among
     * the tensors of its kind (attn_v-like or ffn_down), in file order.
     */
    DType typeFor(String name, Census census, int index) {
        if (name.equals("output.weight") || census.tiedOutput() && name.equals("token_embd.weight")) return DType.Q6_K;
        if (isAttnV(name) && useMoreBits(index, census.attnV())) return DType.Q6_K;
        if (name.contains("ffn_down")) {
            Matcher m = LAYER.matcher(name);
            int layer = m.find() ? Integer.parseInt(m.group(1)) : index;
            if (useMoreBits(layer, census.ffnDown())) return DType.Q6_K;
        }
        return base;
    }

    /** llama.cpp's fallback when rows of {@code cols} are not whole blocks of {@code t}; {@code t} itself when they are. */
    static DType fallback(DType t, long cols) {
        if (cols % t.blockElements() == 0) return t;
        DType f;
        switch (t) {
            case Q4_K: f = DType.Q5_0; break;
            case Q5_K: f = DType.Q5_1; break;
            case Q6_K: f = DType.Q8_0; break;
            default: f = DType.F16; break;
        }
        return cols % f.blockElements() == 0 ? f : DType.F16;
    }
}
