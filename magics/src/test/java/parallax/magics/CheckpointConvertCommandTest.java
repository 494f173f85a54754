package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.model.Checkpoint;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;

/** %convert of an engine checkpoint: the ONNX graph with --check, and --check's one-line refusals. */
class CheckpointConvertCommandTest {

    @TempDir
    Path dir;

    static final GptConfig CFG = new GptConfig("t", 2, 16, 2, 40, 8, 0);

    Path checkpoint() {
        Random r = new Random(3);
        Map<String, float[]> p = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : Checkpoint.shapes(CFG).entrySet()) {
            float[] v = new float[(int) DType.elements(e.getValue())];
            boolean gain = e.getKey().endsWith("ln1.w") || e.getKey().endsWith("ln2.w") || e.getKey().equals("lnf.w");
            for (int i = 0; i < v.length; i++) v[i] = (float) ((gain ? 1 : 0) + 0.1 * r.nextGaussian());
            p.put(e.getKey(), v);
        }
        Path f = dir.resolve("ckpt.safetensors");
        Checkpoint.save(CFG, p, Map.of("parallax.run.steps", "0"), f);
        return f;
    }

    @Test
    void checkpointToOnnxGraphPassesTheCheck() throws Exception {
        Path c = checkpoint();
        Path onnx = dir.resolve("m.onnx");
        JsonObject j = JsonParser.parseString(ConvertInspectCommandTest.run("convert", c + " " + onnx + " --check --json")).getAsJsonObject();
        JsonObject check = j.getAsJsonObject("check");
        assertTrue(check.get("passed").getAsBoolean(), check.toString());
        assertTrue(check.get("maxAbsDiff").getAsDouble() <= 1e-5 * Math.max(1, check.get("logitScale").getAsDouble()));
        assertEquals(3, check.getAsJsonArray("rows").size());
        try (Onnx o = Onnx.open(onnx)) {
            assertTrue(o.tensors().stream().anyMatch(t -> t.name().equals("h.0.attn.c_attn.weight.T")), "graph initializers");
        }
        String text = ConvertInspectCommandTest.run("convert", c + " " + dir.resolve("m2.onnx") + " --check");
        assertTrue(text.contains("--check passed"), text);
    }

    @Test
    void checkRefusalsAreOneLine() throws Exception {
        Path c = checkpoint();
        String e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("convert", c + " " + dir.resolve("x.safetensors") + " --check")).getMessage();
        assertTrue(e.contains("--check runs an exported model"), e);
        assertFalse(e.contains("\n"), e);
        Path plain = dir.resolve("plain.safetensors");
        try (TensorWriter w = Safetensors.writer(plain, Map.of(), List.of(new TensorSpec("w", DType.F32, new long[] {2})))) {
            w.beginTensor();
            w.write(java.nio.ByteBuffer.allocate(8));
            w.commit();
        }
        e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("convert", plain + " " + dir.resolve("x.onnx") + " --check")).getMessage();
        assertTrue(e.contains("--check needs an engine checkpoint"), e);
        e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("convert", c + " " + dir.resolve("x.onnx") + " --to f16")).getMessage();
        assertTrue(e.contains("ONNX inference graph is float32"), e);
        assertFalse(Files.exists(dir.resolve("x.safetensors")));
        assertFalse(Files.exists(dir.resolve("x.onnx")));
    }

    /**
     * A checkpoint to GGUF is the gpt2 architecture; --check reads the written file back and
     * reports the KL divergence and top-1 agreement against the F32 checkpoint: zero for
     * F32, small and positive for Q8_0, larger for Q4_0.
     */
    @Test
    void ggufCheckReportsKlDivergenceAndTopOneAgreement() throws Exception {
        Path c = checkpoint();
        java.util.Map<String, Double> kl = new java.util.LinkedHashMap<>();
        for (String t : List.of("f32", "q8_0", "q4_0")) {
            Path out = dir.resolve("m-" + t + ".gguf");
            JsonObject j = JsonParser.parseString(ConvertInspectCommandTest.run("convert", c + " " + out + " --to " + t + " --check --json"))
                    .getAsJsonObject();
            JsonObject check = j.getAsJsonObject("check");
            kl.put(t, check.get("meanKl").getAsDouble());
            assertTrue(check.get("tokens").getAsInt() > 100);
            assertTrue(check.get("top1Agreement").getAsDouble() >= (t.equals("f32") ? 1.0 : 0.8), t + ": " + check);
            try (parallax.engine.formats.ModelFile f = parallax.engine.formats.ModelFiles.open(out)) {
                assertEquals("gpt2", f.metadata().get("general.architecture"));
                assertTrue(f.tensors().stream().anyMatch(x -> x.name().equals("blk.0.attn_qkv.weight")));
            }
        }
        assertEquals(0.0, kl.get("f32"), 1e-9, "F32 reads back exactly");
        assertTrue(kl.get("q8_0") > 0 && kl.get("q8_0") < kl.get("q4_0"), "KL grows as bits shrink: " + kl);
    }

    /** --save mistakes are caught before any worker starts. */
    @Test
    void saveMistakesAreOneLine() {
        String e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("parallel", "--dp 2 --steps 1 --save " + dir.resolve("m.bin"))).getMessage();
        assertTrue(e.contains("--save writes a safetensors checkpoint"), e);
        e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("parallel", "--dp 2 --steps 1 --save " + dir.resolve("no/such/m.safetensors"))).getMessage();
        assertTrue(e.contains("does not exist"), e);
        e = assertThrows(MagicError.class, () -> ConvertInspectCommandTest.run("parallel",
                "--dp 2 --steps 1 --compare dp=2 dp=1 --save " + dir.resolve("m.safetensors"))).getMessage();
        assertTrue(e.contains("drop --compare"), e);
        assertFalse(e.contains("\n"), e);
    }

    /**
     * End to end: %parallel --save over real worker JVMs (dp 2), the file equals the run's
     * gathered parameters bit for bit, then the CLI in a fresh JVM (ONNX Runtime's native
     * library loaded from its jar) converts it with --check and exits 0.
     */
    @Test
    void saveFromRealRanksThenCheckFromTheCli() throws Exception {
        Path f = dir.resolve("trained.safetensors");
        try {
            String out = ConvertInspectCommandTest.run("parallel", "--dp 2 --model tiny --steps 3 --save " + f);
            assertTrue(out.contains("Saved the trained model to"), out);
        } finally {
            parallax.engine.cluster.Cluster.session().stop();
        }
        Checkpoint.Loaded c = Checkpoint.load(f);
        Map<String, float[]> trained = Session.lastRun().parameters();
        assertEquals(trained.keySet(), c.tensors().keySet());
        for (String n : trained.keySet()) assertTrue(java.util.Arrays.equals(trained.get(n), c.tensors().get(n)), n);
        assertEquals("dp=2,tp=1,pp=1", c.metadata().get("parallax.run.layout"));

        Path onnx = dir.resolve("trained.onnx");
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(javaBin, "-Xmx256m", "-cp", System.getProperty("java.class.path"), Cli.class.getName(),
                "convert", f.toString(), onnx.toString(), "--check", "--json")
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        JsonObject check = JsonParser.parseString(out).getAsJsonObject().getAsJsonObject("check");
        assertTrue(check.get("passed").getAsBoolean(), check.toString());
        assertTrue(check.get("runtime").getAsString().startsWith("ONNX Runtime 1.20"), check.toString());
    }
}
