package parallax.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.Peers;
import parallax.engine.formats.Converter;
import parallax.engine.formats.Gguf;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.Tokenizer;
import parallax.engine.formats.TokenizerFiles;
import parallax.engine.report.Progress;

/**
 * A Hugging Face Llama checkpoint made here (random weights, config.json, a tokenizer
 * trained here) converted by %convert loads in llama.cpp (node-llama-cpp 3.21.1): llama.cpp's
 * tokenization of a fixed text equals ours from the tokenizer file, for a SentencePiece-style
 * tokenizer.json (GGUF model "llama"), a byte-level tokenizer.json (GGUF "gpt2", GPT-2's
 * pre-tokenizer) and a SentencePiece tokenizer.model trained by Debian's python3-sentencepiece
 * (whose own encoding must agree too); and llama.cpp's log-probabilities after each prefix
 * match transformers' Llama forward written out in {@link TinyLlama}, greedy tokens included.
 */
class LlamaCppLlamaTest {

    static final String TEXT = "It was the best of times, it was the worst of times; a naïve café → 42";

    @TempDir
    Path dir;

    static String corpus() throws IOException {
        try (InputStream in = LlamaCppLlamaTest.class.getResourceAsStream("corpus.txt")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).replaceAll("\\s+", " ").trim();
        }
    }

    static Path convert(Path weights, String name) {
        Path out = weights.resolveSibling(name + ".gguf");
        Converter.convert(weights, out, new Converter.Options(null, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        return out;
    }

    @Test
    void aLlamaWithASentencePieceStyleTokenizerJsonRunsInLlamaCppAsTransformersWould() throws Exception {
        LlamaCppTest.needLlama();
        Path hf = dir.resolve("hf");
        Files.createDirectories(hf);
        int tokens = TokenizerFiles.writeSentencePieceStyle(hf, corpus(), 200, "{% for m in messages %}{{ m['content'] }}{% endfor %}");
        // three rows more than the tokenizer has: the GGUF vocabulary is padded as llama.cpp's converter pads it
        TinyLlama m = new TinyLlama(2, 64, 4, 2, 128, tokens + 3, 64, 7, 0.25);
        Path gguf = convert(m.write(hf), "tiny-llama");
        try (Gguf g = Gguf.open(gguf)) {
            assertEquals("llama", g.metadata().get("tokenizer.ggml.model"));
            assertEquals(true, g.metadata().get("tokenizer.ggml.add_bos_token"));
            assertEquals(1L, g.metadata().get("tokenizer.ggml.bos_token_id"));
            assertTrue(String.valueOf(g.metadata().get("tokenizer.chat_template")).contains("messages"));
        }
        Tokenizer ours = Tokenizer.beside(hf.resolve("model.safetensors"));
        long[] ids = ours.encode(TEXT);
        assertTrue(Arrays.stream(ids).anyMatch(i -> ours.tokens().get((int) i).startsWith("<0x")), "the text needs byte fallback somewhere");
        long[] withBos = new long[ids.length + 1];
        withBos[0] = 1;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        long[] prompt = Arrays.copyOf(withBos, 6);
        List<Object> res = new LlamaCpp.Request(gguf, m.context, true).tokenize(TEXT).logProbs(withBos).greedy(prompt, 12).run();
        assertArrayEquals(ids, (long[]) res.get(0), "llama.cpp's tokens for the text are ours from tokenizer.json");
        String summary = compare("tokenizer.json (SentencePiece style)", m.logProbs(withBos), (float[][]) res.get(1), m.vocab);
        assertArrayEquals(m.greedy(prompt, 12), (long[]) res.get(2), "greedy generation, llama.cpp vs the reference forward");
        // quantized with the tokenizer carried: Q8_0 (rows of 64 are whole blocks of 32) keeps the top token
        Path q8 = hf.resolve("tiny-llama-Q8_0.gguf");
        Converter.convert(hf.resolve("model.safetensors"), q8, new Converter.Options(parallax.engine.numerics.DType.Q8_0, "llama",
                Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        List<Object> rq = new LlamaCpp.Request(q8, m.context, false).tokenize(TEXT).logProbs(withBos).run();
        assertArrayEquals(ids, (long[]) rq.get(0), "the Q8_0 file carries the same tokenizer");
        double[][] ref = m.logProbs(withBos);
        float[][] lq = (float[][]) rq.get(1);
        int top1 = 0;
        double kl = 0;
        for (int t = 0; t < ref.length; t++) {
            if (LlamaCppTest.argmax(ref[t]) == LlamaCppTest.argmax(lq[t])) top1++;
            for (int k = 0; k < m.vocab; k++) kl += Math.exp(ref[t][k]) * (ref[t][k] - lq[t][k]);
        }
        kl /= ref.length;
        summary += String.format(Locale.ROOT, "Q8_0: mean KL(reference || llama.cpp) %.3g, top-1 %d/%d%n", kl, top1, ref.length);
        assertTrue(top1 >= 0.9 * ref.length && kl < 1e-2, summary);
        Files.writeString(Path.of("target/llama-judge-llama.txt"), summary);
    }

    @Test
    void aByteLevelTokenizerJsonTokenizesInLlamaCppAsOurs() throws Exception {
        LlamaCppTest.needLlama();
        Path hf = dir.resolve("bl");
        Files.createDirectories(hf);
        int tokens = TokenizerFiles.writeByteLevel(hf, corpus(), 200);
        TinyLlama m = new TinyLlama(1, 64, 4, 4, 128, tokens, 64, 11, 0.25);
        Path gguf = convert(m.write(hf), "tiny-bl");
        try (Gguf g = Gguf.open(gguf)) {
            assertEquals("gpt2", g.metadata().get("tokenizer.ggml.model"));
            assertEquals("gpt-2", g.metadata().get("tokenizer.ggml.pre"));
        }
        Tokenizer ours = Tokenizer.beside(hf.resolve("model.safetensors"));
        long[] ids = ours.encode(TEXT);
        List<Object> res = new LlamaCpp.Request(gguf, m.context, true).tokenize(TEXT).logProbs(ids).run();
        assertArrayEquals(ids, (long[]) res.get(0), "llama.cpp's tokens for the text are ours from the byte-level tokenizer.json");
        compare("tokenizer.json (byte-level)", m.logProbs(ids), (float[][]) res.get(1), m.vocab);
    }

    @Test
    void aSentencePieceModelTokenizesInLlamaCppAsSentencePieceDoes() throws Exception {
        LlamaCppTest.needLlama();
        Peers.python("sentencepiece", "python3-sentencepiece");
        Path hf = dir.resolve("spm");
        Files.createDirectories(hf);
        Path text = dir.resolve("corpus.txt");
        Files.writeString(text, corpus().replace(". ", ".\n"));
        Path script = dir.resolve("spm.py");
        // a real tokenizer.model, trained by SentencePiece itself as Llama's was (BPE, byte fallback, no normalization)
        Files.writeString(script, String.join("\n",
                "import sys, sentencepiece as spm",
                "spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type='bpe', vocab_size=400,",
                "    byte_fallback=True, normalization_rule_name='identity', remove_extra_whitespaces=False, character_coverage=1.0,",
                "    num_threads=1, minloglevel=2)",
                "sp = spm.SentencePieceProcessor(model_file=sys.argv[2] + '.model')",
                "print(' '.join(str(i) for i in sp.encode(sys.argv[3])))", ""));
        Process p = new ProcessBuilder(Peers.PYTHON.toString(), script.toString(), text.toString(), hf.resolve("tokenizer").toString(), TEXT)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, "sentencepiece: " + out);
        long[] reference = Arrays.stream(out.substring(out.lastIndexOf('\n') + 1).split(" ")).mapToLong(Long::parseLong).toArray();
        Files.delete(hf.resolve("tokenizer.vocab"));
        Tokenizer ours = Tokenizer.beside(hf.resolve("model.safetensors"));
        assertEquals(400, ours.size());
        assertArrayEquals(reference, ours.encode(TEXT), "our reading of tokenizer.model tokenizes as SentencePiece does");
        TinyLlama m = new TinyLlama(1, 64, 4, 2, 128, 400, 64, 13, 0.25);
        Path gguf = convert(m.write(hf), "tiny-spm");
        List<Object> res = new LlamaCpp.Request(gguf, m.context, true).tokenize(TEXT).run();
        assertArrayEquals(reference, (long[]) res.get(0), "llama.cpp's tokens for the text are SentencePiece's");
    }

    /** F32: llama.cpp's log-probabilities equal the reference's within 1e-4 of the largest, and so do the top-1 tokens. */
    static String compare(String what, double[][] ref, float[][] lp, int vocab) throws IOException {
        assertEquals(ref.length, lp.length);
        double maxDiff = 0, scale = 0;
        int top1 = 0;
        for (int t = 0; t < ref.length; t++) {
            if (LlamaCppTest.argmax(ref[t]) == LlamaCppTest.argmax(lp[t])) top1++;
            for (int k = 0; k < vocab; k++) {
                if (ref[t][k] > -20) maxDiff = Math.max(maxDiff, Math.abs(ref[t][k] - lp[t][k]));
                scale = Math.max(scale, Math.abs(ref[t][k]));
            }
        }
        String s = String.format(Locale.ROOT, "%s: max |log p llama.cpp - log p reference| %.3g (largest |log p| %.3g, relative %.2g), top-1 %d/%d%n",
                what, maxDiff, scale, maxDiff / scale, top1, ref.length);
        assertTrue(maxDiff <= 1e-4 * scale, s);
        assertEquals(ref.length, top1, s);
        return s;
    }
}
