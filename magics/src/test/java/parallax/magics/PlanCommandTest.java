package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlanCommandTest {

    static String run(String magic, String args) throws Exception {
        return run(magic, args, null);
    }

    static String run(String magic, String args, Path charts) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        MagicRunner.run(magic, args, null, new MagicContext(new TextOutput(ps, ps, charts), null));
        return out.toString(StandardCharsets.UTF_8);
    }

    static String error(String magic, String args) {
        MagicError e = assertThrows(MagicError.class, () -> run(magic, args));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void singlePlanShowsEveryComponentAndConvention() throws Exception {
        String text = run("plan", "llama-2-70b --gpus 64 --tp 8 --pp 2 --zero 1 --global-batch 512 --recompute selective --tokens 2T");
        for (String s : new String[] {"parameters", "gradients", "optimizer states", "activations", "communication buffers", "headroom",
                "GiB (2^30 bytes)", "16 bytes per parameter", "tensor parallel", "pipeline parallel", "data parallel (ZeRO-1)",
                "NVLink", "network", "pipeline bubble", "MFU", "training time", "[1] Rajbhandari", "[2] Korthikanti"}) {
            assertTrue(text.contains(s), "missing " + s + " in\n" + text);
        }
        JsonObject j = JsonParser.parseString(run("plan", "llama-2-7b --gpus 1 --recompute full --offload optimizer --json")).getAsJsonObject();
        assertTrue(j.getAsJsonObject("memory").get("fits").getAsBoolean());
        assertEquals(0.0, j.getAsJsonObject("memory").get("optimizer_states_bytes").getAsDouble());
        assertEquals(6_738_415_616L, j.get("parameters").getAsLong());
    }

    @Test
    void unitsAndEighteenByteSwitch() throws Exception {
        String gb = run("plan", "gpt2 --gpus 1 --units gb --bytes-per-param 18");
        assertTrue(gb.contains("GB (10^9 bytes)") && gb.contains("18 bytes per parameter"), gb);
    }

    @Test
    void searchWritesTableAndChart(@TempDir Path dir) throws Exception {
        String text = run("plan", "llama-2-70b --gpus 1024 --search --top 5", dir);
        assertTrue(text.contains("Pareto"), text);
        try (var files = Files.list(dir)) {
            assertTrue(files.anyMatch(f -> f.toString().endsWith(".png")));
        }
        JsonObject j = JsonParser.parseString(run("plan", "llama-2-70b --gpus 1024 --search --top 3 --json")).getAsJsonObject();
        assertEquals(3, j.getAsJsonArray("top").size());
        assertTrue(j.get("fitting").getAsInt() > 0);
    }

    @Test
    void inference() throws Exception {
        JsonObject j = JsonParser.parseString(run("plan", "llama-3-8b --infer --encoding q4_k_m --context 8192 --json")).getAsJsonObject();
        assertEquals(2.0 * 32 * 8 * 128 * 2, j.get("kv_bytes_per_token").getAsDouble());
        assertEquals(1, j.getAsJsonArray("gpus").get(0).getAsJsonObject().get("gpus_needed").getAsInt());
    }

    @Test
    void configFileAndExplicitShapes(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\": \"gpt2\", \"n_embd\": 768, \"n_layer\": 12, \"n_head\": 12, \"vocab_size\": 50257, \"n_positions\": 1024}");
        JsonObject j = JsonParser.parseString(run("plan", "--config " + cfg + " --gpus 1 --json")).getAsJsonObject();
        assertEquals(124_439_808L, j.get("parameters").getAsLong());
        JsonObject e = JsonParser.parseString(run("plan", "--arch gpt2 --layers 12 --hidden 768 --heads 12 --vocab 50257 --max-seq 1024 --gpus 1 --json"))
                .getAsJsonObject();
        assertEquals(124_439_808L + 38_597_376L, e.get("parameters").getAsLong());   // explicit shapes default to an untied head
    }

    @Test
    void badInputIsOneLineEach(@TempDir Path dir) throws Exception {
        assertTrue(error("plan", "llama-2-8b --gpus 8").contains("Did you mean"));
        assertTrue(error("plan", "llama-2-7b --gpu h10 --gpus 8").contains("Did you mean h100-80gb"));
        assertTrue(error("plan", "llama-2-7b --gpus 24 --tp 3").contains("does not divide the 32 attention heads"));
        assertTrue(error("plan", "llama-2-7b --gpus 64 --pp 64").contains("more pipeline stages than the 32 layers"));
        assertTrue(error("plan", "llama-2-7b --gpus 0").contains("must be positive"));
        assertTrue(error("plan", "llama-2-7b --gpus 8 --micro-batch -1").contains("micro-batch must be a positive number"));
        assertTrue(error("plan", "llama-2-7b --gpus 8 --zero 4").contains("ZeRO stage must be 0, 1, 2 or 3"));
        assertTrue(error("plan", "llama-2-7b --gpus 8 --tokens -5B").contains("token budget must be positive"));
        assertTrue(error("plan", "--layers 0 --hidden 64 --heads 4 --vocab 10").contains("layers must be a positive number"));
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\": \"llama\", \"hidden_size\": 4096}");
        assertTrue(error("plan", "--config " + cfg).contains("lacks num_hidden_layers"));
        assertTrue(error("plan", "llama-2-7b --infer --encoding q3").contains("unknown encoding"));
        assertTrue(error("model", "' '").contains("give a model name"));
    }

    @Test
    void zeroOrNegativeLayoutFlagsNameTheFlag() {
        assertEquals("%plan: --tp must be a positive number, got 0", error("plan", "llama-2-7b --gpus 8 --tp 0"));
        assertEquals("%plan: --pp must be a positive number, got 0", error("plan", "llama-2-7b --gpus 8 --pp 0"));
        assertEquals("%plan: --micro-batch must be a positive number, got 0", error("plan", "llama-2-7b --gpus 8 --micro-batch 0"));
        assertEquals("%plan: --seq must be a positive number, got 0", error("plan", "llama-2-7b --gpus 8 --search --seq 0"));
        assertEquals("%plan: --top must be a positive number, got 0", error("plan", "llama-2-7b --gpus 8 --search --top 0"));
        assertEquals("%plan: --global-batch must be a positive number, got -2147483649",
                error("plan", "--layers 2 --hidden 64 --heads 4 --vocab 100 --gpus 1 --global-batch -2147483649"));
        assertEquals("%plan: compute efficiency must be in (0, 1], got NaN", error("plan", "llama-2-7b --gpus 8 --compute-eff NaN"));
        assertEquals("%plan: --tflops must be a positive number, got Infinity", error("plan", "llama-2-7b --gpus 8 --tflops Infinity"));
        assertEquals("%plan: --gpu-mem-gib must be a positive number of GiB below 2^33, got 1.0E12",
                error("plan", "llama-2-7b --gpus 8 --gpu-mem-gib 1e12"));
        assertTrue(error("plan", "llama-2-7b --gpus 8 --arch nonsense").startsWith("%plan: unknown --arch 'nonsense'"));
    }

    /** The flags lesson 10 relies on: --seq 131072 with --cp, --sp, --vpp and --schedule zb-h1 reach the plan. */
    @Test
    void longContextFlagsReachThePlan() throws Exception {
        JsonObject j = JsonParser.parseString(run("plan",
                "llama-3-8b --gpus 64 --seq 131072 --cp 8 --tp 8 --recompute selective --json")).getAsJsonObject();
        JsonObject l = j.getAsJsonObject("layout");
        assertEquals(8, l.get("cp").getAsInt());
        assertEquals(1, l.get("dp").getAsInt());
        assertTrue(l.get("sequence_parallel").getAsBoolean(), "SP on by default with tp > 1");
        assertTrue(j.getAsJsonObject("memory").get("fits").getAsBoolean());
        boolean ring = false;
        for (var c : j.getAsJsonArray("communication")) {
            JsonObject o = c.getAsJsonObject();
            if (o.get("dimension").getAsString().equals("context parallel (ring)")) {
                ring = true;
                assertEquals(8, o.get("group").getAsInt());
                assertTrue(o.get("link").getAsString().startsWith("network"), "tp x cp = 64 spans nodes");
            }
            if (o.get("dimension").getAsString().startsWith("data parallel")) assertEquals(8, o.get("group").getAsInt(), "dp x cp");
        }
        assertTrue(ring, j.toString());
        String text = run("plan", "llama-3-8b --gpus 8 --seq 131072 --tp 8 --recompute selective");
        assertTrue(text.contains("Activations dominate") && text.contains("--cp 2"), text);

        JsonObject zb = JsonParser.parseString(run("plan", "llama-2-13b --gpus 32 --tp 8 --pp 4 --accum 8 --schedule zb-h1 --json")).getAsJsonObject();
        JsonObject one = JsonParser.parseString(run("plan", "llama-2-13b --gpus 32 --tp 8 --pp 4 --accum 8 --json")).getAsJsonObject();
        assertEquals("zb-h1", zb.getAsJsonObject("layout").get("schedule").getAsString());
        assertEquals(3.0 / 24, zb.get("bubble_fraction").getAsDouble(), 1e-12);
        assertEquals(3.0 / 8, one.get("bubble_fraction").getAsDouble(), 1e-12);
        JsonObject v = JsonParser.parseString(run("plan", "llama-2-13b --gpus 32 --tp 8 --pp 4 --vpp 2 --accum 8 --json")).getAsJsonObject();
        assertEquals("interleaved", v.getAsJsonObject("layout").get("schedule").getAsString());
        assertEquals(3.0 / 16, v.get("bubble_fraction").getAsDouble(), 1e-12);

        assertEquals("%plan: --cp must be a positive number, got 0", error("plan", "llama-3-8b --gpus 8 --cp 0"));
        assertTrue(error("plan", "llama-3-8b --gpus 6 --cp 3 --seq 4096").contains("not divisible by 2 x cp = 6"));
        assertTrue(error("plan", "llama-3-8b --gpus 8 --sp").contains("--sp shards the sequence over the tensor-parallel ranks"));
        assertTrue(error("plan", "llama-3-8b --gpus 8 --pp 2 --schedule zb").contains("unknown --schedule 'zb'"));
        assertTrue(error("plan", "llama-3-8b --gpus 8 --vpp 2").contains("virtual pipeline stages need pp > 1"));
        assertTrue(error("plan", "llama-3-8b --gpus 8 --schedule zb-h1").contains("needs pp 2 or more"));
        assertTrue(error("plan", "llama-3-8b --gpus 8 --cp 3 --seq 4096").contains("not divisible by cp x tp x pp = 3"));
    }

    @Test
    void validateAgainstARecord(@TempDir Path dir) throws Exception {
        // The record format ValidationRuns.save writes; numbers counted by hand for the engine's tiny GPT under
        // plain DP on 2 ranks (units padded to a multiple of 2, fp32, AdamW), so the states must read as exact.
        long emb = 256 * 32 + 32 * 32, block = 4 * 32 * 32 + 2 * 32 * 128 + 3 * 32 + 128 + 6 * 32, head = 2 * 32 + 256 * 32;
        long numel = emb + 4 * block + head;
        String rec = String.format("{\"runs\": [{\"strategy\": \"DP\", \"rank\": 0, \"dp\": 2, \"tp\": 1, \"pp\": 1, \"zero\": 0, "
                + "\"dtype\": \"fp32\", \"optimizer\": \"adamw\", \"micro_batch\": 4, \"seq\": 32, \"param_bytes\": %d, "
                + "\"grad_bytes\": %d, \"optimizer_bytes\": %d, \"activation_bytes\": 1500000}]}", numel * 4, numel * 4, numel * 8);
        Path f = dir.resolve("measured.json");
        Files.writeString(f, rec);
        JsonObject j = JsonParser.parseString(run("plan", "--validate --measured " + f + " --json")).getAsJsonObject();
        assertEquals(1, j.get("states_exact").getAsInt());
        assertTrue(error("plan", "--validate --measured " + dir.resolve("none.json")).contains("no measurement record"));

        // A record of moe-tiny (4 experts of the dense MLP and a 4 x 32 router per block; dp 2, nothing padded) names
        // its model: read against it the states are exact; against tiny, named on the line, they are not.
        long moe = numel + 4 * (3 * (32 * 128 + 128 + 128 * 32 + 32) + 4 * 32);
        String moeRec = String.format("{\"model\": \"moe-tiny-gpt\", \"runs\": [{\"strategy\": \"DP\", \"rank\": 0, \"dp\": 2, \"tp\": 1, "
                + "\"pp\": 1, \"zero\": 0, \"dtype\": \"fp32\", \"optimizer\": \"adamw\", \"micro_batch\": 4, \"seq\": 32, "
                + "\"param_bytes\": %d, \"grad_bytes\": %d, \"optimizer_bytes\": %d, \"activation_bytes\": 2500000}]}", moe * 4, moe * 4, moe * 8);
        Path g = dir.resolve("moe.json");
        Files.writeString(g, moeRec);
        assertEquals(1, JsonParser.parseString(run("plan", "--validate --measured " + g + " --json")).getAsJsonObject().get("states_exact").getAsInt());
        assertEquals(0, JsonParser.parseString(run("plan", "tiny-gpt --validate --measured " + g + " --json")).getAsJsonObject().get("states_exact").getAsInt());
    }

    @Test
    void modelNames() throws Exception {
        String text = run("model", "Mixtral-8x7B-Instruct-v0.1");
        assertTrue(text.contains("mixture of experts: 8 experts") && text.contains("%plan mixtral-8x7b"), text);
        JsonObject j = JsonParser.parseString(run("model", "mistral-7b-instruct-v0.2.Q4_K_M.gguf --json")).getAsJsonObject();
        assertEquals("Q4_K_M", j.get("encoding").getAsString());
        assertEquals("mistral-7b", j.get("catalog").getAsString());
    }
}
