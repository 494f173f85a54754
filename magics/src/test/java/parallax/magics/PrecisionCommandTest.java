package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.formats.GptOnnxExporter;
import parallax.engine.formats.SampleModels;
import parallax.engine.numerics.FloatFormat;

class PrecisionCommandTest {

    static String run(String args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        TextOutput o = new TextOutput(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8), null);
        MagicRunner.run("precision", args, null, new MagicContext(o, null));
        return out.toString(StandardCharsets.UTF_8);
    }

    static String error(String args) {
        return assertThrows(MagicError.class, () -> run(args)).getMessage();
    }

    @Test
    void formatsAsJsonListsEveryFormat() throws Exception {
        JsonObject j = JsonParser.parseString(run("formats --json")).getAsJsonObject();
        assertEquals(FloatFormat.values().length, j.getAsJsonArray("formats").size());
        JsonObject e4m3 = j.getAsJsonArray("formats").get(3).getAsJsonObject();
        assertEquals(448.0, e4m3.get("maxFinite").getAsDouble());
    }

    @Test
    void explainShowsTheE4m3Surprise() throws Exception {
        String text = run("explain 464 465 --as e4m3");
        assertTrue(text.contains("448"), text);
        assertTrue(text.contains("overflowed to NaN"), text);
        String sat = run("explain 465 --as e4m3 --saturate");
        assertTrue(sat.contains("saturated to max 448"), sat);
    }

    @Test
    void castReadsASafetensorsFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("w.safetensors");
        float[] v = new float[2048];
        for (int i = 0; i < v.length; i++) v[i] = (float) Math.sin(i) * 0.05f;
        Map<String, GptOnnxExporter.Weight> w = new LinkedHashMap<>();
        w.put("layer.weight", new GptOnnxExporter.Weight(new long[] {32, 64}, v));
        w.put("layer.bias", new GptOnnxExporter.Weight(new long[] {32}, java.util.Arrays.copyOf(v, 32)));
        SampleModels.writeSafetensors(w, f);
        JsonObject j = JsonParser.parseString(run("cast --from " + f + " --to bf16,e4m3 --scaling per-channel --json")).getAsJsonObject();
        // 2 tensors x 2 formats + one "(all)" row per format.
        assertEquals(6, j.getAsJsonArray("stats").size());
        assertEquals("per-channel", j.get("scaling").getAsString());
    }

    @Test
    void castFromModelTakesTheTinyGptWhenNoParallelRunExists() throws Exception {
        Session.remember(List.of());
        String text = run("cast --from model --to bf16");
        assertTrue(text.contains("no %parallel run") && text.contains("tiny GPT"), text);
        JsonObject j = JsonParser.parseString(run("cast --from model --to bf16,e4m3 --json")).getAsJsonObject();
        parallax.engine.model.Gpt g = new parallax.engine.model.Gpt(parallax.engine.model.GptConfig.tiny());
        int params = 0;
        for (int u = 0; u < g.units(); u++) params += g.params(u).size();
        assertEquals(2 * (params + 1), j.getAsJsonArray("stats").size(), "one row per GPT tensor and one (all) row, per format");
    }

    @Test
    void badInputIsOneLine() {
        assertTrue(error("explain 1 --as fp17").contains("Did you mean fp16"));
        assertTrue(error("explain 1e-8x").contains("cannot read '1e-8x' as a number"));
        assertTrue(error("cast --from /no/such.safetensors").contains("no such file"));
        assertTrue(error("cast --from random --scaling per-tensr").contains("Did you mean per-tensor"));
        assertTrue(error("train --dtypes fp32,bf61 --steps 2").contains("unknown training dtype"));
        assertTrue(error("cast --from weights.gguf").contains("no such file"));
        assertTrue(error("cast --from modle").contains("Did you mean model"));
        assertTrue(error("explian 1").contains("Did you mean explain"));
        assertTrue(error("bench --values 10").contains("at least 1024"));
        for (String msg : List.of(error("explain 1 --as fp17"), error("cast --from random --count 0"))) {
            assertTrue(!msg.contains("\n"), "one line: " + msg);
        }
    }

    @Test
    void trainAndBenchRunQuickly() throws Exception {
        JsonObject t = JsonParser.parseString(run("train --dtypes fp32,fp16-noscale --steps 5 --json")).getAsJsonObject();
        assertEquals(2, t.getAsJsonArray("runs").size());
        JsonObject b = JsonParser.parseString(run("bench --formats bf16,e4m3 --values 65536 --reps 3 --json")).getAsJsonObject();
        assertEquals(4, b.getAsJsonArray("results").size());
        assertTrue(b.getAsJsonArray("results").get(0).getAsJsonObject().get("oursPerSecond").getAsDouble() > 0);
    }

    @Test
    void formatsListTheBlockFormatsAndTheirElements() throws Exception {
        JsonObject j = JsonParser.parseString(run("formats --json")).getAsJsonObject();
        assertEquals(parallax.engine.numerics.BlockFormat.values().length, j.getAsJsonArray("blockFormats").size());
        JsonObject mxfp4 = j.getAsJsonArray("blockFormats").get(4).getAsJsonObject();
        assertEquals("mxfp4", mxfp4.get("name").getAsString());
        assertEquals(32, mxfp4.get("blockSize").getAsInt());
        assertEquals(4.25, mxfp4.get("bitsPerValue").getAsDouble(), 1e-12, "4 bits + 8 scale bits / 32");
        // smallest: E2M1's 0.5 x 2^-127; largest: 6 x 2^127
        assertEquals(0.5 * Math.pow(2, -127), mxfp4.get("smallestPositive").getAsDouble(), 0);
        assertEquals(6 * Math.pow(2, 127), mxfp4.get("largest").getAsDouble(), 0);
        JsonObject e2m3 = j.getAsJsonArray("elementTypes").get(3).getAsJsonObject();
        assertEquals("FP6 E2M3", e2m3.get("type").getAsString());
        assertEquals(7.5, e2m3.get("maxFinite").getAsDouble(), 0);
        String text = run("formats");
        assertTrue(text.contains("Block-scaled formats") && text.contains("NVFP4"), text);
    }

    @Test
    void explainShowsABlocksScaleAndEachElementsBits() throws Exception {
        JsonObject j = JsonParser.parseString(run("explain 1.0 -0.75 6.5 0.1 --as fp16,mxfp4,nvfp4 --json")).getAsJsonObject();
        com.google.gson.JsonArray blocks = j.getAsJsonArray("blocks");
        assertEquals(2, blocks.size());
        JsonObject mx = blocks.get(0).getAsJsonObject();
        assertEquals("01111111", mx.get("scaleBits").getAsString(), "floor(log2 6.5) - 2 = 0: 2^0");
        List<String> bits = new java.util.ArrayList<>();
        for (var e : mx.getAsJsonArray("elements")) bits.add(e.getAsJsonObject().get("bits").getAsString());
        assertEquals(List.of("0.01.0", "1.01.0", "0.11.1", "0.00.0"), bits);
        assertTrue(mx.getAsJsonArray("elements").get(2).getAsJsonObject().get("outcome").getAsString().startsWith("clamped"));
        assertTrue(mx.getAsJsonArray("elements").get(3).getAsJsonObject().get("outcome").getAsString().startsWith("flushed"));
        JsonObject nv = blocks.get(1).getAsJsonObject();
        assertEquals(6.5 / 2688, nv.get("tensorScale").getAsDouble(), 1e-9, "t = amax / (448 x 6)");
        // --block splits the values: 4 values in blocks of 2 are 2 blocks per format
        JsonObject two = JsonParser.parseString(run("explain 1 2 3 4 --as mxfp8 --block 2 --json")).getAsJsonObject();
        assertEquals(2, two.getAsJsonArray("blocks").size());
        String text = run("explain 1.0 -0.75 6.5 0.1 --as mxfp4");
        assertTrue(text.contains("Block elements") && text.contains("floor(log2 amax) = 2"), text);
    }

    @Test
    void castMeasuresBlockFormatsWithTheBlockSizeAsAParameter() throws Exception {
        JsonObject a = JsonParser.parseString(run("cast --from random --count 65536 --to mxfp4,nvfp4,mxfp8 --json")).getAsJsonObject();
        assertEquals(3, a.getAsJsonArray("stats").size());
        double mxfp4 = a.getAsJsonArray("stats").get(0).getAsJsonObject().get("underflowShare").getAsDouble();
        JsonObject b = JsonParser.parseString(run("cast --from random --count 65536 --to mxfp4 --block 8 --json")).getAsJsonObject();
        JsonObject small = b.getAsJsonArray("stats").get(0).getAsJsonObject();
        assertEquals("MXFP4 (E2M1), blocks of 8", small.get("format").getAsString());
        // fewer small values share a block with a 1% outlier, so fewer flush to zero
        assertTrue(small.get("underflowShare").getAsDouble() < mxfp4 / 2, "blocks of 8: " + small + ", of 32: " + mxfp4);
        String text = run("cast --from random --count 4096 --to mxfp4");
        assertTrue(text.contains("blocks run along each row"), text);
    }

    @Test
    void rangeDrawsTheElementTypesOfBlockFormats() throws Exception {
        JsonObject j = JsonParser.parseString(run("range --formats fp16,mxfp4,mxfp6 --json")).getAsJsonObject();
        assertEquals(3, j.getAsJsonArray("formats").size(), "FP16 and the E2M1, E3M2 elements");
        assertEquals(2, j.getAsJsonArray("blockFormats").size());
        JsonObject fp4 = j.getAsJsonArray("formats").get(1).getAsJsonObject();
        assertEquals(Math.log10(6 / 0.5), fp4.get("decades").getAsDouble(), 1e-12);
    }

    @Test
    void badBlockInputIsOneLine() {
        assertTrue(error("explain 1 --as mxfp5").contains("Did you mean"), error("explain 1 --as mxfp5"));
        assertTrue(error("cast --from random --to mxfp4 --block 0").contains("--block must be at least 1"));
        assertTrue(error("explain 1 --as mxfp4 --block 0").contains("--block must be at least 1"));
    }

    @Test
    void trainRunsTheGptInEveryPrecisionWithModel() throws Exception {
        JsonObject j = JsonParser.parseString(run("train --model tiny --dtypes bf16,fp8,fp8-noscale --steps 3 --json")).getAsJsonObject();
        com.google.gson.JsonArray runs = j.getAsJsonArray("runs");
        assertEquals(3, runs.size());
        assertEquals("fp8", runs.get(1).getAsJsonObject().get("dtype").getAsString());
        JsonObject fp8 = runs.get(1).getAsJsonObject().getAsJsonObject("fp8");
        assertEquals("DELAYED", fp8.getAsJsonObject("recipe").get("scaling").getAsString());
        // 4 blocks x 6 linear layers x (x, W, dy)
        assertEquals(4 * 6 * 3, fp8.getAsJsonObject("trace").getAsJsonArray("slots").size());
        assertTrue(!runs.get(0).getAsJsonObject().has("fp8"), "bf16 has no FP8 trace");
        String text = run("train --model tiny --dtypes fp8 --steps 2");
        assertTrue(text.contains("FP8 casts") && text.contains("E5M2"), text);
        assertTrue(error("train --dtypes fp8 --steps 2").contains("add --model"));
        assertTrue(error("train --model tiny --dtypes fp8-nosale --steps 2").contains("Did you mean fp8-noscale"));
    }
}
