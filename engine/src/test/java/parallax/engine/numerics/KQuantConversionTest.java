package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.formats.Converter;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.QuantMix;
import parallax.engine.formats.TensorEntry;
import parallax.engine.formats.TestData;
import parallax.engine.report.Progress;

/**
 * What {@code %convert} writes for the K-quants, through the whole converter (mapped
 * windows, sub-chunks spread over the worker threads, the row-permuted Llama path), is byte
 * for byte what the plain one-sub-block-at-a-time transcription of ggml's reference
 * quantizer ({@link KQuantizerScalar}, itself checked against ggml's output) gives for the
 * same tensor on one thread.
 */
class KQuantConversionTest {

    @TempDir
    Path dir;

    /** Gaussian values whose scale changes from row to row (1e-4 to 1e2), with outliers and all-zero super-blocks. */
    static float[] values(int rows, int cols, long seed) {
        float[] x = TestData.gaussian(rows * cols, 1, seed);
        Random r = new Random(seed + 1);
        for (int row = 0; row < rows; row++) {
            float scale = (float) Math.pow(10, row % 7 - 4);
            for (int c = 0; c < cols; c++) {
                int i = row * cols + c;
                x[i] *= scale;
                if (r.nextInt(997) == 0) x[i] *= 60;
                if (row % 11 == 5 && c < 256) x[i] = 0;
            }
        }
        return x;
    }

    static float[] floats(byte[] b) {
        float[] x = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(x);
        return x;
    }

    /** Asserts that every K-quant tensor of {@code gguf} is the oracle's quantization of {@code source.get(name)}; returns the types seen. */
    static List<DType> assertOracleBytes(Path gguf, Map<String, float[]> source) {
        List<DType> seen = new ArrayList<>();
        try (ModelFile m = ModelFiles.open(gguf)) {
            for (TensorEntry t : m.tensors()) {
                if (!KQuantizerScalar.writes(t.dtype())) continue;
                float[] x = source.get(t.name());
                ByteBuffer want = ByteBuffer.allocate((int) t.dtype().bytesFor(x.length)).order(ByteOrder.LITTLE_ENDIAN);
                new KQuantizerScalar().quantize(t.dtype(), x, x.length, want, null);
                assertEquals(want.capacity(), t.length(), t.name() + " size");
                ByteBuffer got = m.bytes(t, 0, (int) t.length());
                for (int i = 0; i < want.capacity(); i++) {
                    if (got.get(i) != want.get(i)) {
                        throw new AssertionError(t.name() + " (" + t.dtype() + "): byte " + i + " (super-block "
                                + i / t.dtype().blockBytes() + ") differs from the one-thread transcription");
                    }
                }
                seen.add(t.dtype());
            }
        }
        return seen;
    }

    @Test
    void theLinearPathOnEveryWorkerWritesTheOneThreadBytes() throws Exception {
        // 300 x 4096 values are 19 sub-chunks of 64 Ki, so every worker quantizes pieces of this tensor
        Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
        shapes.put("blk.0.ffn_up.weight", new long[] {300, 4096});
        shapes.put("blk.0.ffn_down.weight", new long[] {72, 4096});
        shapes.put("output.weight", new long[] {40, 768});
        List<TestData.T> ts = new ArrayList<>();
        Map<String, float[]> source = new HashMap<>();
        long seed = 17;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            float[] x = values((int) e.getValue()[0], (int) e.getValue()[1], seed++);
            source.put(e.getKey(), x);
            ts.add(new TestData.T(e.getKey(), DType.F32, e.getValue(), TestData.floats(x)));
        }
        Path src = dir.resolve("m.safetensors");
        TestData.writeSafetensors(src, Map.of(), ts);
        for (QuantMix mix : QuantMix.values()) {
            Path dst = dir.resolve("m-" + mix + ".gguf");
            Converter.convert(src, dst, new Converter.Options(null, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD).withMix(mix), Progress.NONE);
            List<DType> seen = assertOracleBytes(dst, source);
            // ffn_up gets the mix's base type, output and (layer 0 of 1) ffn_down Q6_K
            assertEquals(List.of(mix.base(), DType.Q6_K, DType.Q6_K), seen, mix + ": types written");
        }
    }

    @Test
    void theRowPermutedLlamaPathOnEveryWorkerWritesTheOneThreadBytes() throws Exception {
        int hidden = 512, heads = 8, kvHeads = 4, vocab = 300;
        int kvRows = hidden / heads * kvHeads;
        List<TestData.T> ts = new ArrayList<>();
        ts.add(new TestData.T("model.embed_tokens.weight", DType.F32, new long[] {vocab, hidden}, TestData.floats(values(vocab, hidden, 1))));
        ts.add(new TestData.T("model.layers.0.self_attn.q_proj.weight", DType.F32, new long[] {hidden, hidden}, TestData.floats(values(hidden, hidden, 2))));
        ts.add(new TestData.T("model.layers.0.self_attn.k_proj.weight", DType.F32, new long[] {kvRows, hidden}, TestData.floats(values(kvRows, hidden, 3))));
        ts.add(new TestData.T("model.layers.0.self_attn.v_proj.weight", DType.F32, new long[] {kvRows, hidden}, TestData.floats(values(kvRows, hidden, 4))));
        ts.add(new TestData.T("model.norm.weight", DType.F32, new long[] {hidden}, TestData.floats(values(1, hidden, 5))));
        Path hf = dir.resolve("hf");
        Files.createDirectories(hf);
        Path src = hf.resolve("model.safetensors");
        TestData.writeSafetensors(src, Map.of("format", "pt"), ts);
        Files.writeString(hf.resolve("config.json"), "{\"hidden_size\": 512, \"num_attention_heads\": 8, \"num_key_value_heads\": 4,"
                + " \"num_hidden_layers\": 1, \"intermediate_size\": 1024, \"rms_norm_eps\": 1e-6, \"max_position_embeddings\": 256,"
                + " \"rope_theta\": 10000.0, \"vocab_size\": 300}");
        // the permuted rows, exactly: the same conversion to F32
        Path f32 = dir.resolve("f32/model.gguf");
        Converter.convert(src, f32, new Converter.Options(DType.F32, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        Map<String, float[]> permuted = new HashMap<>();
        try (ModelFile m = ModelFiles.open(f32)) {
            TestData.readAll(m).forEach((k, v) -> permuted.put(k, floats(v)));
        }
        for (DType t : List.of(DType.Q4_K, DType.Q6_K)) {
            Path q = dir.resolve(t + "/model.gguf");
            Converter.convert(src, q, new Converter.Options(t, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
            List<DType> seen = assertOracleBytes(q, permuted);
            assertEquals(4, seen.size(), t + ": embedding, q, k, v quantized");
            assertTrue(seen.stream().allMatch(s -> s == t), t + ": " + seen);
        }
    }
}
