package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/** HF Llama <-> GGUF names, llama.* metadata, and the Q/K row permutation, checked as reshape/swapaxes. */
class LlamaNamesTest {

    @TempDir
    Path dir;

    @Test
    void namesMapBothWays() {
        String[][] pairs = {
            {"model.embed_tokens.weight", "token_embd.weight"},
            {"model.norm.weight", "output_norm.weight"},
            {"lm_head.weight", "output.weight"},
            {"model.layers.3.input_layernorm.weight", "blk.3.attn_norm.weight"},
            {"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
            {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
            {"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
            {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
            {"model.layers.12.post_attention_layernorm.weight", "blk.12.ffn_norm.weight"},
            {"model.layers.0.mlp.gate_proj.weight", "blk.0.ffn_gate.weight"},
            {"model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight"},
            {"model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"},
        };
        for (String[] p : pairs) {
            assertEquals(p[1], LlamaNames.hfToGguf(p[0]).orElseThrow());
            assertEquals(p[0], LlamaNames.ggufToHf(p[1]));
        }
        assertTrue(LlamaNames.hfToGguf("model.layers.0.self_attn.rotary_emb.inv_freq").isEmpty());
    }

    /** numpy's w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols), written as index arithmetic. */
    static float[] permuteLikeNumpy(float[] w, int rows, int cols, int heads) {
        int half = rows / heads / 2;
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++)
            for (int a = 0; a < 2; a++)
                for (int i = 0; i < half; i++)
                    for (int c = 0; c < cols; c++) {
                        int src = ((h * 2 + a) * half + i) * cols + c;     // [h][a][i][c]
                        int dst = ((h * half + i) * 2 + a) * cols + c;     // swapped: [h][i][a][c]
                        out[dst] = w[src];
                    }
        return out;
    }

    @Test
    void convertPermutesQAndKAndTheInverseRestoresThem() throws Exception {
        int hidden = 32, heads = 4, kvHeads = 2, ffn = 64, vocab = 40;
        int kvRows = hidden / heads * kvHeads;
        List<TestData.T> ts = new ArrayList<>();
        float[] q = TestData.gaussian(hidden * hidden, 1, 1);
        float[] k = TestData.gaussian(kvRows * hidden, 1, 2);
        ts.add(new TestData.T("model.embed_tokens.weight", DType.F32, new long[] {vocab, hidden}, TestData.floats(TestData.gaussian(vocab * hidden, 1, 3))));
        ts.add(new TestData.T("model.layers.0.self_attn.q_proj.weight", DType.F32, new long[] {hidden, hidden}, TestData.floats(q)));
        ts.add(new TestData.T("model.layers.0.self_attn.k_proj.weight", DType.F32, new long[] {kvRows, hidden}, TestData.floats(k)));
        ts.add(new TestData.T("model.layers.0.self_attn.v_proj.weight", DType.F32, new long[] {kvRows, hidden}, TestData.floats(TestData.gaussian(kvRows * hidden, 1, 4))));
        ts.add(new TestData.T("model.layers.0.input_layernorm.weight", DType.F32, new long[] {hidden}, TestData.floats(TestData.gaussian(hidden, 1, 5))));
        ts.add(new TestData.T("model.norm.weight", DType.F32, new long[] {hidden}, TestData.floats(TestData.gaussian(hidden, 1, 6))));
        ts.add(new TestData.T("lm_head.weight", DType.F32, new long[] {vocab, hidden}, TestData.floats(TestData.gaussian(vocab * hidden, 1, 7))));
        Path hf = dir.resolve("hf");
        Files.createDirectories(hf);
        Path src = hf.resolve("model.safetensors");
        TestData.writeSafetensors(src, Map.of("format", "pt"), ts);
        Files.writeString(hf.resolve("config.json"), "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
                + " \"num_hidden_layers\": 1, \"intermediate_size\": 64, \"rms_norm_eps\": 1e-6, \"max_position_embeddings\": 256,"
                + " \"rope_theta\": 10000.0, \"vocab_size\": 40}");
        Path gguf = dir.resolve("out/model.gguf");
        Converter.convert(src, gguf, new Converter.Options(null, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        try (Gguf g = Gguf.open(gguf)) {
            Map<String, Object> m = g.metadata();
            assertEquals("llama", m.get("general.architecture"));
            assertEquals(32L, m.get("llama.embedding_length"));
            assertEquals(4L, m.get("llama.attention.head_count"));
            assertEquals(2L, m.get("llama.attention.head_count_kv"));
            assertEquals(8L, m.get("llama.rope.dimension_count"));
            assertEquals(1L, m.get("llama.block_count"));
            assertEquals(64L, m.get("llama.feed_forward_length"));
            assertEquals(256L, m.get("llama.context_length"));
            assertEquals(1e-6f, m.get("llama.attention.layer_norm_rms_epsilon"));
            Map<String, byte[]> got = TestData.readAll(g);
            assertArrayEquals(TestData.floats(permuteLikeNumpy(q, hidden, hidden, heads)), got.get("blk.0.attn_q.weight"));
            assertArrayEquals(TestData.floats(permuteLikeNumpy(k, kvRows, hidden, kvHeads)), got.get("blk.0.attn_k.weight"));
            assertArrayEquals(ts.get(3).bytes(), got.get("blk.0.attn_v.weight"), "V is not permuted");
            assertArrayEquals(ts.get(0).bytes(), got.get("token_embd.weight"));
        }
        Path back = dir.resolve("back/model.safetensors");
        Converter.convert(gguf, back, new Converter.Options(null, "llama", Converter.Names.GGUF_TO_HF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        try (Safetensors s = Safetensors.open(back)) {
            Map<String, byte[]> got = TestData.readAll(s);
            for (TestData.T t : ts) assertArrayEquals(t.bytes(), got.get(t.name()), t.name() + " restored bit-exact");
        }
        String cfg = Files.readString(dir.resolve("back/config.json"));
        assertTrue(cfg.contains("\"num_key_value_heads\":2"), cfg);
        // quantized: Q/K permuted then quantized per row; dequantizing and un-permuting stays close
        Path q8 = dir.resolve("out/model-Q8_0.gguf");
        Converter.Result r = Converter.convert(src, q8, new Converter.Options(DType.Q8_0, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        assertTrue(r.perTensor().stream().anyMatch(t -> t.to().equals("Q8_0") && t.maxError() > 0));
        Path back8 = dir.resolve("back8/model.safetensors");
        Converter.convert(q8, back8, new Converter.Options(null, "llama", Converter.Names.GGUF_TO_HF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        try (Safetensors s = Safetensors.open(back8)) {
            float[] qq = new float[q.length];
            ByteBuffer b = ByteBuffer.wrap(TestData.readAll(s).get("model.layers.0.self_attn.q_proj.weight")).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().get(qq);
            double max = 0;
            for (int i = 0; i < q.length; i++) max = Math.max(max, Math.abs(q[i] - qq[i]));
            assertTrue(max < 0.03, "Q8_0 round trip of q_proj within a step: " + max);
        }
    }
}
