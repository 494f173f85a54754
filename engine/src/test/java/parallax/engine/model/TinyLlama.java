package parallax.engine.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;

/**
 * A small Llama-architecture checkpoint made in a test, in Hugging Face's layout
 * (model.safetensors with transformers' names and a config.json), with random weights, and
 * the reference forward of transformers' LlamaForCausalLM written out in double precision:
 * RMSNorm, rotary embeddings by rotate_half on the unpermuted Q/K, grouped-query attention
 * with a causal mask, SwiGLU, an untied output layer. llama.cpp runs the same weights after
 * %convert permuted Q and K for its own rotary layout, so agreement checks that too.
 */
final class TinyLlama {

    final int layers, hidden, heads, kvHeads, ffn, vocab, context;
    final double eps = 1e-5, theta = 10000;
    final Map<String, float[]> w = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();

    TinyLlama(int layers, int hidden, int heads, int kvHeads, int ffn, int vocab, int context, long seed, double std) {
        this.layers = layers;
        this.hidden = hidden;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.ffn = ffn;
        this.vocab = vocab;
        this.context = context;
        SplittableRandom r = new SplittableRandom(seed);
        int kvRows = hidden / heads * kvHeads;
        add("model.embed_tokens.weight", r, std, vocab, hidden);
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            norm(p + "input_layernorm.weight", r, hidden);
            add(p + "self_attn.q_proj.weight", r, std, hidden, hidden);
            add(p + "self_attn.k_proj.weight", r, std, kvRows, hidden);
            add(p + "self_attn.v_proj.weight", r, std, kvRows, hidden);
            add(p + "self_attn.o_proj.weight", r, std, hidden, hidden);
            norm(p + "post_attention_layernorm.weight", r, hidden);
            add(p + "mlp.gate_proj.weight", r, std, ffn, hidden);
            add(p + "mlp.up_proj.weight", r, std, ffn, hidden);
            add(p + "mlp.down_proj.weight", r, std, hidden, ffn);
        }
        norm("model.norm.weight", r, hidden);
        add("lm_head.weight", r, std, vocab, hidden);
    }

    private void add(String name, SplittableRandom r, double std, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) (gaussian(r) * std);
        w.put(name, v);
        shapes.put(name, new long[] {rows, cols});
    }

    private void norm(String name, SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (1 + 0.1 * gaussian(r));
        w.put(name, v);
        shapes.put(name, new long[] {n});
    }

    private static double gaussian(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    /** Writes model.safetensors and config.json into {@code dir}; returns the weights file. */
    Path write(Path dir) throws IOException {
        Files.createDirectories(dir);
        List<TensorSpec> specs = new ArrayList<>();
        shapes.forEach((n, s) -> specs.add(new TensorSpec(n, DType.F32, s)));
        Path file = dir.resolve("model.safetensors");
        try (TensorWriter tw = Safetensors.writer(file, Map.of("format", "pt"), specs)) {
            for (var e : w.entrySet()) {
                tw.beginTensor();
                ByteBuffer b = ByteBuffer.allocate(4 * e.getValue().length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(e.getValue());
                tw.write(b);
            }
            tw.commit();
        }
        Files.writeString(dir.resolve("config.json"), String.format(java.util.Locale.ROOT,
                "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, \"num_attention_heads\": %d,"
                        + " \"num_key_value_heads\": %d, \"num_hidden_layers\": %d, \"intermediate_size\": %d, \"rms_norm_eps\": %s,"
                        + " \"max_position_embeddings\": %d, \"rope_theta\": %s, \"vocab_size\": %d, \"tie_word_embeddings\": false,"
                        + " \"bos_token_id\": 1, \"eos_token_id\": 2}",
                hidden, heads, kvHeads, layers, ffn, eps, context, theta, vocab));
        return file;
    }

    /** The log-softmax of the logits after each prefix of {@code ids}. */
    double[][] logProbs(long[] ids) {
        int t = ids.length, d = hidden / heads, group = heads / kvHeads, kvRows = d * kvHeads;
        double[][] h = new double[t][hidden];
        float[] emb = w.get("model.embed_tokens.weight");
        for (int i = 0; i < t; i++) for (int k = 0; k < hidden; k++) h[i][k] = emb[(int) ids[i] * hidden + k];
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            double[][] x = rmsNorm(h, w.get(p + "input_layernorm.weight"));
            double[][] q = matmul(x, w.get(p + "self_attn.q_proj.weight"), hidden);
            double[][] k = matmul(x, w.get(p + "self_attn.k_proj.weight"), kvRows);
            double[][] v = matmul(x, w.get(p + "self_attn.v_proj.weight"), kvRows);
            rope(q, heads, d);
            rope(k, kvHeads, d);
            double[][] att = new double[t][hidden];
            for (int hd = 0; hd < heads; hd++) {
                int kv = hd / group;
                for (int i = 0; i < t; i++) {
                    double[] s = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += q[i][hd * d + c] * k[j][kv * d + c];
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += s[j] = Math.exp(s[j] - max);
                    for (int j = 0; j <= i; j++) for (int c = 0; c < d; c++) att[i][hd * d + c] += s[j] / sum * v[j][kv * d + c];
                }
            }
            add(h, matmul(att, w.get(p + "self_attn.o_proj.weight"), hidden));
            x = rmsNorm(h, w.get(p + "post_attention_layernorm.weight"));
            double[][] g = matmul(x, w.get(p + "mlp.gate_proj.weight"), ffn);
            double[][] u = matmul(x, w.get(p + "mlp.up_proj.weight"), ffn);
            for (int i = 0; i < t; i++) for (int c = 0; c < ffn; c++) g[i][c] = g[i][c] / (1 + Math.exp(-g[i][c])) * u[i][c];
            add(h, matmul(g, w.get(p + "mlp.down_proj.weight"), hidden));
        }
        double[][] logits = matmul(rmsNorm(h, w.get("model.norm.weight")), w.get("lm_head.weight"), vocab);
        for (double[] row : logits) {
            double max = Double.NEGATIVE_INFINITY;
            for (double z : row) max = Math.max(max, z);
            double sum = 0;
            for (double z : row) sum += Math.exp(z - max);
            double log = Math.log(sum);
            for (int c = 0; c < row.length; c++) row[c] = row[c] - max - log;
        }
        return logits;
    }

    /** {@code n} tokens by argmax after {@code prompt}. */
    long[] greedy(long[] prompt, int n) {
        long[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        for (int i = prompt.length; i < seq.length; i++) {
            double[][] lp = logProbs(java.util.Arrays.copyOf(seq, i));
            double[] last = lp[lp.length - 1];
            int best = 0;
            for (int c = 1; c < last.length; c++) if (last[c] > last[best]) best = c;
            seq[i] = best;
        }
        return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    private double[][] rmsNorm(double[][] x, float[] g) {
        double[][] out = new double[x.length][hidden];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) ss += v * v;
            double inv = 1 / Math.sqrt(ss / hidden + eps);
            for (int c = 0; c < hidden; c++) out[i][c] = x[i][c] * inv * g[c];
        }
        return out;
    }

    /** x · Wᵀ for a [rows, cols] weight stored row-major. */
    private static double[][] matmul(double[][] x, float[] wt, int rows) {
        int cols = x[0].length;
        double[][] out = new double[x.length][rows];
        for (int i = 0; i < x.length; i++)
            for (int r = 0; r < rows; r++) {
                double s = 0;
                for (int c = 0; c < cols; c++) s += x[i][c] * wt[r * cols + c];
                out[i][r] = s;
            }
        return out;
    }

    /** transformers' rotary embedding: the two halves of each head rotated by position · θ^(−2i/d). */
    private void rope(double[][] x, int n, int d) {
        for (int pos = 0; pos < x.length; pos++)
            for (int h = 0; h < n; h++)
                for (int i = 0; i < d / 2; i++) {
                    double a = pos * Math.pow(theta, -2.0 * i / d);
                    double c = Math.cos(a), s = Math.sin(a);
                    double x1 = x[pos][h * d + i], x2 = x[pos][h * d + i + d / 2];
                    x[pos][h * d + i] = x1 * c - x2 * s;
                    x[pos][h * d + i + d / 2] = x2 * c + x1 * s;
                }
    }

    private static void add(double[][] h, double[][] y) {
        for (int i = 0; i < h.length; i++) for (int c = 0; c < h[i].length; c++) h[i][c] += y[i][c];
    }
}
