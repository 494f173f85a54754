package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;

class ConvertInspectCommandTest {

    @TempDir
    Path dir;

    static String run(String magic, String args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        TextOutput o = new TextOutput(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8), null);
        MagicRunner.run(magic, args, null, new MagicContext(o, null));
        return out.toString(StandardCharsets.UTF_8);
    }

    Path model() {
        Path f = dir.resolve("m.safetensors");
        List<TensorSpec> specs = List.of(new TensorSpec("h.0.attn.c_attn.weight", DType.F32, new long[] {96, 32}),
                new TensorSpec("h.0.ln_1.weight", DType.F32, new long[] {32}), new TensorSpec("wte.weight", DType.F32, new long[] {64, 32}));
        java.util.Random r = new java.util.Random(1);
        try (TensorWriter w = Safetensors.writer(f, Map.of("format", "pt"), specs)) {
            for (TensorSpec s : specs) {
                w.beginTensor();
                ByteBuffer b = ByteBuffer.allocate((int) s.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                while (b.hasRemaining()) b.putFloat((float) r.nextGaussian() * 0.02f);
                b.flip();
                w.write(b);
            }
            w.commit();
        }
        return f;
    }

    @Test
    void inspectShowsTablesAndJson() throws Exception {
        Path f = model();
        String text = run("inspect", f.toString());
        assertTrue(text.contains("h.0.attn.c_attn.weight") && text.contains("attention") && text.contains("Tensor bytes by dtype"), text);
        JsonObject j = JsonParser.parseString(run("inspect", f + " --json")).getAsJsonObject();
        assertEquals("safetensors", j.get("format").getAsString());
        assertEquals(3, j.getAsJsonArray("tensors").size());
        assertEquals(96 * 32 + 32 + 64 * 32, j.get("totalParams").getAsLong());
    }

    @Test
    void convertQuantizesAndReportsErrors() throws Exception {
        Path f = model();
        Path g = dir.resolve("m-Q4_0.gguf");
        JsonObject j = JsonParser.parseString(run("convert", f + " " + g + " --to q4_0 --json")).getAsJsonObject();
        assertEquals(3, j.get("tensors").getAsInt());
        assertTrue(j.get("bytesOut").getAsLong() < j.get("bytesIn").getAsLong() / 5, j.toString());
        JsonObject attn = j.getAsJsonArray("perTensor").get(0).getAsJsonObject();
        assertEquals("Q4_0", attn.get("to").getAsString());
        assertTrue(attn.get("rmsError").getAsDouble() > 0);
        assertEquals(96 * 32 / 32 * 18, attn.get("bytesOut").getAsLong(), "18 bytes per block of 32");
        String text = run("inspect", g.toString());
        assertTrue(text.contains("Q4_0") && text.contains("general.file_type"), text);
    }

    @Test
    void userMistakesAreOneLine() throws Exception {
        Path f = model();
        String e = assertThrows(MagicError.class, () -> run("convert", f + " " + dir.resolve("x.gguf") + " --to q3")).getMessage();
        assertTrue(e.contains("unknown --to q3"), e);
        e = assertThrows(MagicError.class, () -> run("convert", f + " " + dir.resolve("x.bin"))).getMessage();
        assertTrue(e.contains(".safetensors, .gguf or .onnx"), e);
        e = assertThrows(MagicError.class, () -> run("inspect", dir.resolve("missing.gguf").toString())).getMessage();
        assertTrue(e.contains("no such file"), e);
        assertFalse(Files.exists(dir.resolve("x.gguf")));
    }

    /** The CLI in a JVM with a 256 MB heap: a broken GGUF gives exit 2, one line, and no destination. */
    @Test
    void cliWithSmallHeapRefusesABrokenFile() throws Exception {
        Path bad = dir.resolve("bad.gguf");
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.put("GGUF".getBytes()).putInt(3).putLong(1L << 40).putLong(0);
        Files.write(bad, b.array());
        Path dst = dir.resolve("out.safetensors");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"), Cli.class.getName(),
                "convert", bad.toString(), dst.toString()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue(), out + err);
        String[] lines = err.strip().split("\n");
        assertEquals(1, lines.length, err);
        assertTrue(lines[0].contains("bad.gguf") && lines[0].contains("tensor count"), err);
        try (var s = Files.list(dir)) {
            assertEquals(List.of("bad.gguf"), s.map(x -> x.getFileName().toString()).toList());
        }
    }
}
