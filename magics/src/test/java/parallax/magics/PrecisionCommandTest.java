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
}
