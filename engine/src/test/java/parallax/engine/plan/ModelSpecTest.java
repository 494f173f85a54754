package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parallax.engine.UserError;

class ModelSpecTest {

    /** The anchors of docs/reference.md#parameter-counts, summed from our tensor list. */
    @Test
    void anchors() {
        assertEquals(6_738_415_616L, ModelCatalog.get("llama-2-7b").parameters());
        assertEquals(124_439_808L, ModelCatalog.get("gpt2").parameters());
    }

    /**
     * Totals published with the checkpoints (HF model pages / safetensors index "total_size"
     * divided by the dtype size), which our shapes must reproduce.
     */
    @ParameterizedTest
    @CsvSource({
            "llama-2-13b, 13015864320", "llama-2-70b, 68976648192", "llama-3-8b, 8030261248",
            "llama-3-70b, 70553706496", "mistral-7b, 7241732096", "mixtral-8x7b, 46702792704",
            "gpt2-medium, 354823168", "gpt2-large, 774030080", "gpt2-xl, 1557611200",
            "bert-base, 109482240", "qwen2.5-0.5b, 494032768", "qwen2.5-7b, 7615616512"})
    void publishedTotals(String name, long expected) {
        assertEquals(expected, ModelCatalog.get(name).parameters(), name);
    }

    /** GPT family: 12lh² + 13lh + (V + s)h (closed form, docs/reference.md#parameter-counts) plus the final LayerNorm 2h. */
    @ParameterizedTest
    @CsvSource({"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny-gpt"})
    void gptClosedForm(String name) {
        ModelSpec m = ModelCatalog.get(name);
        long l = m.layers(), h = m.hidden(), v = m.vocab(), s = m.maxSeq();
        assertEquals(12 * l * h * h + 13 * l * h + (v + s) * h + 2 * h + (m.tiedEmbeddings() ? 0 : v * h), m.parameters());
    }

    /** LLaMA-style models counted by hand: attention, (gated) MLP per expert, router, norms, embeddings. */
    @ParameterizedTest
    @CsvSource({"llama-2-7b", "llama-2-70b", "llama-3-8b", "mistral-7b", "mixtral-8x7b", "qwen2.5-0.5b", "qwen2.5-72b"})
    void llamaByHand(String name) {
        ModelSpec m = ModelCatalog.get(name);
        long h = m.hidden(), kv = (long) m.kvHeads() * (h / m.heads()), f = m.ffn(), e = m.experts();
        long attention = 2 * h * h + 2 * h * kv + (m.arch() == ModelSpec.Arch.QWEN2 ? h + 2 * kv : 0);
        long mlp = 3 * h * f * e + (e > 1 ? e * h : 0);
        long layer = attention + mlp + 2 * h;
        long embeddings = (m.tiedEmbeddings() ? 1 : 2) * (long) m.vocab() * h;
        assertEquals(m.layers() * layer + embeddings + h, m.parameters());
    }

    @Test
    void mixtralActiveParameters() {
        ModelSpec m = ModelCatalog.get("mixtral-8x7b");
        // Two of eight experts per token: 46.7B total, about 12.9B active (Mistral AI's announcement).
        long expertMlp = 3L * 4096 * 14336;
        assertEquals(m.parameters() - 6 * expertMlp * 32, m.activeParameters());
        assertTrue(m.activeParameters() > 12_800_000_000L && m.activeParameters() < 13_000_000_000L);
    }

    @Test
    void tensorParallelShardsSumToTheWhole() {
        ModelSpec m = ModelCatalog.get("llama-2-7b");
        for (int tp : new int[] {2, 4, 8}) {
            long sum = 0;
            for (ModelSpec.Tensor x : m.tensors()) {
                long per = m.elementsPerTpRank(x, tp) * (x.place() == ModelSpec.Place.LAYER ? m.layers() : 1);
                long whole = x.elements() * (x.place() == ModelSpec.Place.LAYER ? m.layers() : 1);
                sum += x.split() == ModelSpec.Split.NONE ? whole : per * tp;
            }
            assertEquals(m.parameters(), sum, "tp=" + tp);
        }
    }

    @Test
    void readsHfConfig(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("Llama-2-7b-hf").resolve("config.json");
        Files.createDirectories(cfg.getParent());
        Files.writeString(cfg, """
                {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                 "vocab_size": 32000, "max_position_embeddings": 4096, "tie_word_embeddings": false}""");
        ModelSpec m = HfConfig.read(cfg);
        assertEquals(6_738_415_616L, m.parameters());
        assertEquals("Llama-2-7b-hf", m.name());

        Path gpt = dir.resolve("gpt2.json");
        Files.writeString(gpt, """
                {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null,
                 "vocab_size": 50257, "n_positions": 1024}""");
        assertEquals(124_439_808L, HfConfig.read(gpt).parameters());

        Path moe = dir.resolve("mixtral.json");
        Files.writeString(moe, """
                {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
                 "max_position_embeddings": 32768, "num_local_experts": 8, "num_experts_per_tok": 2}""");
        assertEquals(ModelCatalog.get("mixtral-8x7b").parameters(), HfConfig.read(moe).parameters());
    }

    @Test
    void configMissingFieldsIsOneLine(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\": \"llama\", \"hidden_size\": 4096, \"num_hidden_layers\": 32}");
        UserError e = assertThrows(UserError.class, () -> HfConfig.read(cfg));
        assertTrue(e.getMessage().contains("lacks num_attention_heads"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"));

        Files.writeString(cfg, "{\"hidden_size\": 4096}");
        assertTrue(assertThrows(UserError.class, () -> HfConfig.read(cfg)).getMessage().contains("lacks model_type"));
        Files.writeString(cfg, "{not json");
        assertTrue(assertThrows(UserError.class, () -> HfConfig.read(cfg)).getMessage().contains("not valid JSON"));
        assertTrue(assertThrows(UserError.class, () -> HfConfig.read(dir.resolve("nope.json"))).getMessage().contains("no config file"));
    }

    @Test
    void badShapesAndNames() {
        assertTrue(assertThrows(UserError.class, () -> ModelCatalog.get("llama-2-8b")).getMessage().contains("Did you mean"));
        assertTrue(assertThrows(UserError.class, () -> new ModelSpec("x", ModelSpec.Arch.LLAMA, 0, 64, 4, 4, 256, 100, 64, 1, 1, false))
                .getMessage().contains("layers must be a positive number"));
        assertTrue(assertThrows(UserError.class, () -> new ModelSpec("x", ModelSpec.Arch.LLAMA, 2, -64, 4, 4, 256, 100, 64, 1, 1, false))
                .getMessage().contains("hidden must be a positive number"));
        assertTrue(assertThrows(UserError.class, () -> ModelCatalog.get("llama-2-7b").checkTensorParallel(3))
                .getMessage().contains("does not divide the 32 attention heads"));
    }
}
