package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

/** %plan's MoE flags from the command line: --ep, the new catalog and GPUs, --infer's decode column, --hbm-gbs. */
class PlanMoeCommandTest {

    @Test
    void expertParallelPlan() throws Exception {
        String text = PlanCommandTest.run("plan", "qwen3-30b-a3b --gpus 16 --ep 8 --zero 1 --global-batch 64");
        for (String s : new String[] {"expert parallel (all-to-all)", "ep=8 (routed experts / 8; their data-parallel group dp/ep = 2)", "GShard", "dp/ep = 2 ranks"})
            assertTrue(text.contains(s), "missing " + s + " in\n" + text);
        assertTrue(PlanCommandTest.error("plan", "llama-2-7b --gpus 8 --ep 2").contains("dense"));
        assertTrue(PlanCommandTest.error("plan", "qwen3-30b-a3b --gpus 24 --ep 16").contains("must divide dp"));
        assertTrue(PlanCommandTest.error("plan", "mixtral-8x7b --gpus 16 --ep 16").contains("does not divide the 8 experts"));
        assertTrue(PlanCommandTest.error("plan", "qwen3-30b-a3b --gpus 8 --ep 0").contains("--ep"));
    }

    @Test
    void inferShowsDecodeThroughputPerGpu() throws Exception {
        JsonObject j = JsonParser.parseString(PlanCommandTest.run("plan", "llama-2-7b --infer --context 4096 --json")).getAsJsonObject();
        double bytes = j.get("bytes_read_per_step").getAsDouble();
        boolean sawB200 = false, sawMi300x = false;
        for (JsonElement e : j.getAsJsonArray("gpus")) {
            JsonObject g = e.getAsJsonObject();
            double expect = g.get("gpus_needed").getAsInt() * g.get("hbm_bytes_per_s").getAsDouble() / bytes;
            assertEquals(expect, g.get("decode_tokens_per_s").getAsDouble(), 1e-9 * expect, g.get("gpu").getAsString());
            sawB200 |= g.get("gpu").getAsString().equals("b200-180gb");
            sawMi300x |= g.get("gpu").getAsString().equals("mi300x-192gb");
        }
        assertTrue(sawB200 && sawMi300x);
        JsonObject c = JsonParser.parseString(PlanCommandTest.run("plan", "llama-2-7b --infer --context 4096 --gpu h100 --hbm-gbs 1000 --json"))
                .getAsJsonObject().getAsJsonArray("gpus").get(0).getAsJsonObject();
        assertEquals(1e12 / bytes, c.get("decode_tokens_per_s").getAsDouble(), 1e-6);
        String text = PlanCommandTest.run("plan", "deepseek-v3 --infer --encoding fp8 --context 32768");
        assertTrue(text.contains("latent 512 + RoPE key 64"), text);
        assertTrue(PlanCommandTest.error("plan", "llama-2-7b --infer --hbm-gbs 0").contains("--hbm-gbs"));
    }
}
