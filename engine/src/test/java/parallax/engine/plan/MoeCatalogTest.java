package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The MoE-era catalog entries (docs/reference.md#moe-models): totals and active counts summed
 * from our tensor lists against the figures their publishers give, and DeepSeek-V3's parts by hand.
 */
class MoeCatalogTest {

    /**
     * Published totals and active-per-token counts. Publishers differ on whether the input
     * embedding counts as active (a lookup, no FLOPs): DeepSeek (36.6B incl. the 0.9B head) and
     * OpenAI's gpt-oss card leave it out; Mistral and Qwen keep it. {@code activeWithoutEmbedding}
     * says which; the tolerance is the rounding of the published figure plus 1%.
     */
    @ParameterizedTest
    @CsvSource({
            "mixtral-8x22b,   141e9,    39e9,   false, 0.02",
            "deepseek-v3,     671e9,    36.6e9, true,  0.015",
            "qwen3-30b-a3b,   30.5e9,   3.3e9,  false, 0.03",
            "qwen3-235b-a22b, 235e9,    22e9,   false, 0.03",
            "gpt-oss-20b,     20.91e9,  3.61e9, true,  0.01",
            "gpt-oss-120b,    116.83e9, 5.13e9, true,  0.01",
            "llama-3.1-405b,  405e9,    405e9,  false, 0.01"})
    void publishedTotalsAndActive(String name, double total, double active, boolean activeWithoutEmbedding, double tol) {
        ModelSpec m = ModelCatalog.get(name);
        assertEquals(total, m.parameters(), tol * total, name + " total");
        double ours = m.activeParameters() - (activeWithoutEmbedding ? (double) m.vocab() * m.hidden() : 0);
        assertEquals(active, ours, tol * active, name + " active");
    }

    /** DeepSeek-V3 counted by hand from its config: MLA, 3 dense layers, 58 MoE layers of 1 shared + 256 routed experts. */
    @Test
    void deepSeekV3ByHand() {
        ModelSpec m = ModelCatalog.get("deepseek-v3");
        long h = 7168, a = 128, qr = 1536, kr = 512, nope = 128, rope = 64, v = 128, f = 2048, e = 256, vocab = 129280;
        long attention = h * qr + qr + qr * a * (nope + rope) + h * (kr + rope) + kr + kr * a * (nope + v) + a * v * h;
        long norms = 2 * h;
        long dense = 3 * h * 18432;
        long moe = 3 * h * f * e + 3 * h * f + e * h + e;
        long total = 61 * (attention + norms) + 3 * dense + 58 * moe + 2 * vocab * h + h;
        assertEquals(total, m.parameters());
        long active = 61 * (attention + norms) + 3 * dense + 58 * (3 * h * f * 8 + 3 * h * f + e * h + e) + 2 * vocab * h + h;
        assertEquals(active, m.activeParameters());
        assertEquals(58L * 3 * h * f * e, m.routedParameters());
        // MLA caches the latent and the RoPE key: 576 elements per token and layer, against 2·128·128 for plain MHA.
        assertEquals(512 + 64, m.kvCacheElementsPerLayer());
    }

    /** Explicit head sizes: Qwen3's q is 32 x 128 = 4096 wide on a 2048 hidden. */
    @Test
    void explicitHeadDim() {
        ModelSpec m = ModelCatalog.get("qwen3-30b-a3b");
        assertEquals(128, m.headDim());
        long h = 2048, q = 32 * 128, kv = 4 * 128;
        long attention = h * q * 2 + 2 * h * kv + 2 * 128;
        long layer = attention + 2 * h + 128L * 3 * h * 768 + 128 * h;
        assertEquals(48 * layer + 2 * 151936L * h + h, m.parameters());
        assertEquals(2L * 4 * 128, m.kvCacheElementsPerLayer());
    }

    /** The catalog names and the spellings of their repositories. */
    @ParameterizedTest
    @CsvSource({"mistralai/Mixtral-8x22B-Instruct-v0.1, mixtral-8x22b", "deepseek-ai/DeepSeek-V3, deepseek-v3",
            "Qwen/Qwen3-235B-A22B, qwen3-235b-a22b", "openai/gpt-oss-120b, gpt-oss-120b", "meta-llama/Llama-3.1-405B, llama-3.1-405b"})
    void namesResolve(String repo, String name) {
        assertEquals(name, ModelCatalog.get(repo).name());
    }

    /** %model reads each repository name to its catalog shape. */
    @ParameterizedTest
    @CsvSource({"Mixtral-8x22B-Instruct-v0.1, mixtral-8x22b", "DeepSeek-V3, deepseek-v3", "Qwen3-30B-A3B, qwen3-30b-a3b",
            "Qwen3-235B-A22B-Instruct-2507, qwen3-235b-a22b", "gpt-oss-20b, gpt-oss-20b", "gpt-oss-120b, gpt-oss-120b",
            "Llama-3.1-405B-Instruct, llama-3.1-405b", "Meta-Llama-3.1-405B, llama-3.1-405b"})
    void modelNamesDecodeToTheCatalog(String input, String name) {
        ModelName.Decoded d = ModelName.decode(input);
        assertTrue(d.catalog().isPresent(), input + " has no catalog shape: " + d.tokens());
        assertEquals(name, d.catalog().get().name(), input);
    }
}
