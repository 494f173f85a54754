package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;

/**
 * {@code %plan --config config.json} on the MoE models of the catalog: each config holds the
 * fields of the model's published config.json that the planner reads (the catalog's entries
 * were copied from the same files), and must give the catalog's shape, parameter for parameter.
 */
class HfConfigMoeTest {

    static final String QWEN3_30B = """
            {"model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48, "num_attention_heads": 32,
             "num_key_value_heads": 4, "head_dim": 128, "intermediate_size": 6144, "moe_intermediate_size": 768,
             "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
             "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": false}""";
    static final String QWEN3_235B = """
            {"model_type": "qwen3_moe", "hidden_size": 4096, "num_hidden_layers": 94, "num_attention_heads": 64,
             "num_key_value_heads": 4, "head_dim": 128, "intermediate_size": 12288, "moe_intermediate_size": 1536,
             "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
             "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": false}""";
    static final String DEEPSEEK_V3 = """
            {"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
             "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1,
             "n_routed_experts": 256, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
             "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
             "num_nextn_predict_layers": 1, "vocab_size": 129280, "max_position_embeddings": 163840, "tie_word_embeddings": false}""";
    static final String GPT_OSS_20B = """
            {"model_type": "gpt_oss", "hidden_size": 2880, "num_hidden_layers": 24, "num_attention_heads": 64,
             "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880, "num_local_experts": 32,
             "experts_per_token": 4, "vocab_size": 201088, "max_position_embeddings": 131072, "tie_word_embeddings": false}""";
    static final String GPT_OSS_120B = GPT_OSS_20B.replace("\"num_hidden_layers\": 24", "\"num_hidden_layers\": 36")
            .replace("\"num_local_experts\": 32", "\"num_local_experts\": 128");
    static final String MIXTRAL_8X22B = """
            {"model_type": "mixtral", "hidden_size": 6144, "num_hidden_layers": 56, "num_attention_heads": 48,
             "num_key_value_heads": 8, "intermediate_size": 16384, "num_local_experts": 8, "num_experts_per_tok": 2,
             "vocab_size": 32768, "max_position_embeddings": 65536, "tie_word_embeddings": false}""";

    static ModelSpec parse(String json, String name) {
        return HfConfig.parse(JsonParser.parseString(json).getAsJsonObject(), name, name + "/config.json");
    }

    @Test
    void theCatalogsMoeConfigsGiveTheCatalogsShapes() {
        String[][] cases = {{QWEN3_30B, "qwen3-30b-a3b"}, {QWEN3_235B, "qwen3-235b-a22b"}, {DEEPSEEK_V3, "deepseek-v3"},
                {GPT_OSS_20B, "gpt-oss-20b"}, {GPT_OSS_120B, "gpt-oss-120b"}, {MIXTRAL_8X22B, "mixtral-8x22b"}};
        for (String[] c : cases) {
            ModelSpec want = ModelCatalog.get(c[1]);
            ModelSpec got = parse(c[0], c[1]);
            assertEquals(want, got, c[1]);
            assertEquals(want.parameters(), got.parameters(), c[1]);
            assertEquals(want.activeParameters(), got.activeParameters(), c[1]);
        }
        // DeepSeek-V3's published 671B total (without the multi-token-prediction module)
        assertEquals(671, Math.round(parse(DEEPSEEK_V3, "deepseek-v3").parameters() / 1e9));
    }

    @Test
    void readsAFileAndRefusesWhatItCannotCount(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("Qwen3-30B-A3B").resolve("config.json");
        Files.createDirectories(f.getParent());
        Files.writeString(f, QWEN3_30B);
        ModelSpec m = HfConfig.read(f);
        assertEquals("Qwen3-30B-A3B", m.name());
        assertEquals(128, m.headDim());
        assertEquals(768, m.ffn());

        UserError sparse = assertThrows(UserError.class, () -> parse(QWEN3_30B.replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [0, 1]"), "x"));
        assertTrue(sparse.getMessage().contains("mlp_only_layers"), sparse.getMessage());
        UserError freq = assertThrows(UserError.class, () -> parse(DEEPSEEK_V3.replace("\"moe_layer_freq\": 1", "\"moe_layer_freq\": 2"), "x"));
        assertTrue(freq.getMessage().contains("moe_layer_freq"), freq.getMessage());
        UserError mla = assertThrows(UserError.class, () -> parse(DEEPSEEK_V3.replace("\"kv_lora_rank\": 512,", ""), "x"));
        assertTrue(mla.getMessage().contains("kv_lora_rank"), mla.getMessage());
        UserError width = assertThrows(UserError.class, () -> parse(QWEN3_30B.replace("\"moe_intermediate_size\": 768,", ""), "x"));
        assertTrue(width.getMessage().contains("moe_intermediate_size"), width.getMessage());
        // a separate head size is still refused where the planner's shapes have none
        JsonObject llama = JsonParser.parseString(MIXTRAL_8X22B).getAsJsonObject();
        llama.addProperty("head_dim", 64);
        UserError head = assertThrows(UserError.class, () -> HfConfig.parse(llama, "x", "x/config.json"));
        assertTrue(head.getMessage().contains("head_dim"), head.getMessage());
    }
}
