package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/**
 * tokenizer.json and tokenizer.model become llama.cpp's tokenizer.ggml.* keys when a Hugging
 * Face Llama is converted; tokenizing follows merge ranks (tokenizer.json); refusals are one
 * line and leave nothing behind. llama.cpp itself judges the files in LlamaCppLlamaTest.
 */
class TokenizerTest {

    static final String CORPUS = "the cat sat on the mat and the cat ate the rat that sat on the hat";

    @TempDir
    Path dir;

    /** A tiny HF Llama (2 layers of nothing but the tensors GGUF needs) with {@code rows} embedding rows beside a tokenizer. */
    Path checkpoint(Path hf, int rows) throws IOException {
        int hidden = 8;
        List<TestData.T> ts = new ArrayList<>();
        ts.add(new TestData.T("model.embed_tokens.weight", DType.F32, new long[] {rows, hidden}, TestData.floats(TestData.gaussian(rows * hidden, 1, 1))));
        ts.add(new TestData.T("model.norm.weight", DType.F32, new long[] {hidden}, TestData.floats(TestData.gaussian(hidden, 1, 2))));
        Path src = hf.resolve("model.safetensors");
        TestData.writeSafetensors(src, Map.of("format", "pt"), ts);
        Files.writeString(hf.resolve("config.json"), "{\"hidden_size\": 8, \"num_attention_heads\": 2, \"num_hidden_layers\": 1, \"vocab_size\": " + rows + "}");
        return src;
    }

    static Converter.Options llama() {
        return new Converter.Options(null, "llama", Converter.Names.HF_TO_GGUF, Onnx.EXTERNAL_THRESHOLD);
    }

    @Test
    void aSentencePieceStyleTokenizerJsonBecomesLlamaCppsKeys() throws IOException {
        Path hf = Files.createDirectories(dir.resolve("hf"));
        int n = TokenizerFiles.writeSentencePieceStyle(hf, CORPUS, 20, "{{ messages }}");
        Path out = dir.resolve("m.gguf");
        Converter.Result r = Converter.convert(checkpoint(hf, n + 2), out, llama(), Progress.NONE);
        assertTrue(r.notes().stream().anyMatch(s -> s.startsWith("tokenizer from tokenizer.json: " + n + " tokens, GGUF model \"llama\"")), r.notes().toString());
        try (Gguf g = Gguf.open(out)) {
            Map<String, Object> m = g.metadata();
            assertEquals("llama", m.get("tokenizer.ggml.model"));
            @SuppressWarnings("unchecked") List<Object> tokens = (List<Object>) m.get("tokenizer.ggml.tokens");
            @SuppressWarnings("unchecked") List<Object> types = (List<Object>) m.get("tokenizer.ggml.token_type");
            @SuppressWarnings("unchecked") List<Object> scores = (List<Object>) m.get("tokenizer.ggml.scores");
            assertEquals(n + 2, tokens.size(), "padded to the embedding's rows");
            assertEquals("[PAD" + n + "]", tokens.get(n));
            assertEquals(5, types.get(n), "padding is UNUSED");
            assertEquals("<unk>", tokens.get(0));
            assertEquals(2, types.get(0), "<unk> is UNKNOWN");
            assertEquals(3, types.get(1), "<s> is CONTROL");
            assertEquals("<0x41>", tokens.get(3 + 0x41));
            assertEquals(6, types.get(3 + 0x41), "byte tokens are BYTE");
            assertEquals(1L, m.get("tokenizer.ggml.bos_token_id"));
            assertEquals(2L, m.get("tokenizer.ggml.eos_token_id"));
            assertEquals(0L, m.get("tokenizer.ggml.unknown_token_id"));
            assertEquals(true, m.get("tokenizer.ggml.add_bos_token"));
            assertEquals(false, m.get("tokenizer.ggml.add_eos_token"));
            assertEquals(true, m.get("tokenizer.ggml.add_space_prefix"));
            assertEquals("{{ messages }}", m.get("tokenizer.chat_template"));
            // the first merged piece scores highest among merged pieces, and later ones lower, as SentencePiece scores them
            Tokenizer t = Tokenizer.beside(hf.resolve("model.safetensors"));
            int first = -1;
            for (int i = 0; i < n; i++) if (((String) tokens.get(i)).length() > 1 && !((String) tokens.get(i)).startsWith("<")) { first = i; break; }
            assertEquals(0f, ((Number) scores.get(first)).floatValue(), 0f);
            assertTrue(((Number) scores.get(n - 1)).floatValue() < ((Number) scores.get(first)).floatValue());
            assertEquals(t.size(), n);
        }
    }

    @Test
    void mergesApplyByRankNotByWhatTheVocabularyHolds() throws IOException {
        // "abc": (b, c) outranks (a, b), and no merge joins a with bc, so BPE stops at [a, bc] although "abc" is a token
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true,"
                + " \"vocab\": {\"<unk>\": 0, \"\u2581\": 1, \"a\": 2, \"b\": 3, \"c\": 4, \"bc\": 5, \"\u2581a\": 6, \"abc\": 7},"
                + " \"merges\": [\"b c\", \"\u2581 a\"]}, \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\u2581\"},"
                + " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]}}");
        Tokenizer t = HfTokenizerJson.read(dir);
        assertArrayEquals(new long[] {6, 5}, t.encode("abc"));
        assertArrayEquals(new long[] {6, 5, 6, 5}, t.encode("abc abc"));
    }

    /** Converts and expects one line mentioning {@code what}, with nothing left in the output directory. */
    void refused(Path src, String what) throws IOException {
        Path outDir = Files.createDirectories(dir.resolve("out-" + what.hashCode()));
        UserError e = assertThrows(UserError.class, () -> Converter.convert(src, outDir.resolve("m.gguf"), llama(), Progress.NONE));
        assertTrue(e.getMessage().contains(what), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        try (Stream<Path> s = Files.list(outDir)) {
            assertEquals(0, s.count(), "nothing written");
        }
    }

    @Test
    void anUnsupportedModelTypeIsOneLineAndNothingIsWritten() throws IOException {
        Path hf = Files.createDirectories(dir.resolve("uni"));
        Files.writeString(hf.resolve("tokenizer.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"<unk>\", 0.0]]}}");
        refused(checkpoint(hf, 8), "model type Unigram is not supported");
    }

    @Test
    void mergesThatDoNotMatchTheVocabularyAreOneLineAndNothingIsWritten() throws IOException {
        Path hf = Files.createDirectories(dir.resolve("bad"));
        int n = TokenizerFiles.writeSentencePieceStyle(hf, CORPUS, 10, null);
        Path json = hf.resolve("tokenizer.json");
        Files.writeString(json, Files.readString(json).replace("\"merges\":[", "\"merges\":[[\"zq\",\"x\"],"));
        refused(checkpoint(hf, n), "merge 0 (\"zq x\") does not match the vocabulary: \"zq\" is not a token");
    }

    @Test
    void aVocabularyLargerThanTheEmbeddingIsOneLine() throws IOException {
        Path hf = Files.createDirectories(dir.resolve("big"));
        int n = TokenizerFiles.writeSentencePieceStyle(hf, CORPUS, 10, null);
        refused(checkpoint(hf, n - 1), "tokens but the token embedding has only " + (n - 1) + " rows");
    }

    @Test
    void aTokenizerModelThatIsNotProtobufIsOneLine() throws IOException {
        Path hf = Files.createDirectories(dir.resolve("spm"));
        Files.write(hf.resolve("tokenizer.model"), new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02});
        refused(checkpoint(hf, 8), "not a SentencePiece model");
    }
}
