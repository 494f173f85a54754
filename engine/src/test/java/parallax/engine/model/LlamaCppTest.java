package parallax.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.Peers;
import parallax.engine.formats.Converter;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.QuantMix;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/**
 * llama.cpp (node-llama-cpp 3.21.1, its prebuilt CPU build) judges the gpt2 GGUF files the
 * engine writes for a GPT it trained: every file loads; for F32 its log-probabilities after
 * each prefix of a fixed text match the engine's libtorch forward and greedy generation
 * gives the same tokens; F16, Q8_0 and Q4_K_M keep the top-1 token and a small KL
 * divergence from the F32 engine model; llama.cpp tokenizes text into the engine's byte ids.
 */
class LlamaCppTest {

    /** Hidden 256 so that K-quant super-blocks fit the rows; two blocks to stay quick. */
    static final GptConfig CFG = new GptConfig("judge", 2, 256, 4, 256, 64, 0);
    static final String PROMPT = "It was the best of times, it was the worst of times, it was";

    @TempDir
    static Path dir;
    static Path ckpt;
    static Checkpoint.Loaded model;

    @BeforeAll
    static void train() {
        Trainer.Result r = Trainer.train(CFG, TextData.Source.TEXT, 5, 40, 8, "adamw", 3e-3);
        ckpt = dir.resolve("judge.safetensors");
        Checkpoint.save(CFG, r.parameters(), Map.of("parallax.run", "LlamaCppTest"), ckpt);
        model = Checkpoint.load(ckpt);
    }

    static void needLlama() {
        LlamaCpp.missing().ifPresent(Peers::unavailable);
    }

    static Path export(String name, DType to, QuantMix mix) {
        Path out = dir.resolve(name + ".gguf");
        Converter.Options o = new Converter.Options(to, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD, mix);
        CheckpointGguf.convert(ckpt, out, o, Progress.NONE);
        return out;
    }

    /** The engine's log-softmax after each prefix of {@code ids}. */
    static double[][] engineLogProbs(Checkpoint.Loaded m, long[] ids) {
        float[] logits = Checkpoint.logits(m, new long[][] {ids});
        int v = m.config().vocab();
        double[][] out = new double[ids.length][v];
        for (int t = 0; t < ids.length; t++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < v; k++) max = Math.max(max, logits[t * v + k]);
            double sum = 0;
            for (int k = 0; k < v; k++) sum += Math.exp(logits[t * v + k] - max);
            for (int k = 0; k < v; k++) out[t][k] = logits[t * v + k] - max - Math.log(sum);
        }
        return out;
    }

    @Test
    void llamaCppRunsTheExportedGptAndAgreesWithTheEngine() throws Exception {
        needLlama();
        long[] ids = CheckpointGguf.byteIds(PROMPT);
        double[][] ref = engineLogProbs(model, ids);
        Map<String, Path> files = new LinkedHashMap<>();
        files.put("F32", export("f32", DType.F32, null));
        files.put("F16", export("f16", DType.F16, null));
        files.put("Q8_0", export("q8_0", DType.Q8_0, null));
        files.put("Q4_K_M", export("q4_k_m", null, QuantMix.Q4_K_M));
        StringBuilder summary = new StringBuilder();
        Map<String, Double> kls = new LinkedHashMap<>();
        for (var f : files.entrySet()) {
            boolean f32 = f.getKey().equals("F32");
            LlamaCpp.Request req = new LlamaCpp.Request(f.getValue(), CFG.sequence(), f32).logProbs(ids);
            if (f32) req.greedy(CheckpointGguf.byteIds("It was the "), 24).tokenize(PROMPT);
            List<Object> res = req.run();
            float[][] lp = (float[][]) res.get(0);
            assertEquals(ids.length, lp.length);
            double maxDiff = 0, kl = 0, scale = 0;
            int top1 = 0;
            for (int t = 0; t < ids.length; t++) {
                int a = argmax(ref[t]), b = argmax(lp[t]);
                if (a == b) top1++;
                for (int k = 0; k < CFG.vocab(); k++) {
                    double p = Math.exp(ref[t][k]);
                    kl += p * (ref[t][k] - lp[t][k]);
                    if (ref[t][k] > -20) maxDiff = Math.max(maxDiff, Math.abs(ref[t][k] - lp[t][k]));
                    scale = Math.max(scale, Math.abs(ref[t][k]));
                }
            }
            kl /= ids.length;
            kls.put(f.getKey(), kl);
            summary.append(String.format(Locale.ROOT, "%s: max |log p llama.cpp - log p engine| %.3g (largest |log p| %.3g, relative %.2g), mean KL(engine F32 || llama.cpp) %.3g, top-1 agreement %d/%d%n",
                    f.getKey(), maxDiff, scale, maxDiff / scale, kl, top1, ids.length));
            if (f32) {
                // llama.cpp's GELU reads a table of fp16 values (ggml GGML_GELU_FP16), the engine computes erf: hence not bit-equal
                assertTrue(maxDiff <= 1e-4 * scale, "F32: log-probabilities differ by " + maxDiff + ", more than 1e-4 of " + scale);
                assertEquals(ids.length, top1, "F32: the same top-1 token at every position");
                long[] prompt = CheckpointGguf.byteIds("It was the ");
                assertArrayEquals(engineGreedy(prompt, 24), (long[]) res.get(1), "F32: greedy generation, llama.cpp vs the engine");
                assertArrayEquals(ids, (long[]) res.get(2), "llama.cpp's tokens for the text are its bytes, the engine's ids");
            } else {
                assertTrue(top1 >= 0.9 * ids.length, f.getKey() + ": top-1 agreement " + top1 + "/" + ids.length);
            }
        }
        assertTrue(kls.get("F16") < 1e-4 && kls.get("Q8_0") < 1e-3 && kls.get("Q4_K_M") < 1e-2, "KL divergences " + kls);
        assertTrue(kls.get("Q8_0") < kls.get("Q4_K_M"), "Q8_0 keeps the model closer than Q4_K_M: " + kls);
        Files.writeString(Path.of("target/llama-judge.txt"), summary.toString());
    }

    static long[] engineGreedy(long[] prompt, int n) {
        long[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        for (int i = prompt.length; i < seq.length; i++) {
            long[] ctx = java.util.Arrays.copyOfRange(seq, Math.max(0, i - CFG.sequence()), i);
            double[][] lp = engineLogProbs(model, ctx);
            seq[i] = argmax(lp[lp.length - 1]);
        }
        return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    static int argmax(double[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
        return b;
    }

    static int argmax(float[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
        return b;
    }

    @Test
    void quantTypesLineUpBySizeAndKlDivergenceForBothJudges() {
        needLlama();
        Path out = dir.resolve("sweep");
        try {
            Files.createDirectories(out);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
        QuantComparison.Result r = QuantComparison.run(ckpt, out, List.of("f32", "f16", "q8_0", "q5_k_m", "q4_k_m", "q4_0"));
        assertEquals(List.of("F32", "F16", "Q8_0", "Q5_K_M", "Q4_K_M", "Q4_0"), r.rows().stream().map(QuantComparison.Row::type).toList());
        QuantComparison.Row f32 = r.rows().get(0);
        assertEquals(0.0, f32.engineMeanKl(), 1e-12, "F32 read back is the checkpoint");
        assertTrue(f32.llamaCppMeanKl() < 1e-5, "llama.cpp on F32: KL " + f32.llamaCppMeanKl());
        for (int i = 0; i < r.rows().size(); i++) {
            QuantComparison.Row row = r.rows().get(i);
            Path file = out.resolve("judge-" + row.type() + ".gguf");
            assertEquals(file.toFile().length(), row.bytes(), row.type() + ": the size on disk");
            assertEquals(8.0 * row.bytes() / r.parameters(), row.bitsPerParameter(), 1e-9);
            assertTrue(row.engineTop1() >= 0.9 && row.llamaCppTop1() >= 0.9, row.toString());
            if (i > 0) {
                QuantComparison.Row prev = r.rows().get(i - 1);
                if (i <= 4) assertTrue(row.bytes() < prev.bytes(), "sizes shrink from F32 to Q4_K_M: " + r.rows());
                if (i <= 4) assertTrue(row.engineMeanKl() > prev.engineMeanKl(), "KL grows as the files shrink: " + r.rows());
                // llama.cpp adds its F32 floor (FP16 GELU table) and the rounding of activations its CPU dot products
                // make (Q8_0 / Q8_K blocks), never much less than the engine's KL
                double floor = f32.llamaCppMeanKl();
                assertTrue(row.llamaCppMeanKl() >= row.engineMeanKl() / 3 && row.llamaCppMeanKl() <= 5 * row.engineMeanKl() + 2 * floor, row.toString());
            }
        }
        try {
            Files.writeString(Path.of("target/llama-quant-sweep.txt"), r.rows().stream().map(Object::toString).reduce("", (a, b) -> a + b + "\n"));
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
        parallax.engine.report.Report rep = QuantComparison.report(r);
        assertEquals("quant types: size against KL divergence", rep.title());
    }

    @Test
    void sideBySideGreedyTextIsTheSameForF32() {
        needLlama();
        Path f32 = export("side", DType.F32, null);
        parallax.engine.report.Report rep = LlamaCpp.sideBySide(model, f32, "It was the ", 24);
        LlamaCpp.SideBySide s = (LlamaCpp.SideBySide) rep.data();
        assertEquals(24, s.sameFromStart(), "greedy text, llama.cpp vs the engine: " + CheckpointGguf.text(s.llamaCpp()) + " | " + CheckpointGguf.text(s.engine()));
        assertArrayEquals(engineGreedy(CheckpointGguf.byteIds("It was the "), 24), s.engine());
    }
}
