package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.formats.Converter;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.model.Checkpoint;
import parallax.engine.model.CheckpointOnnx;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/**
 * Engine checkpoints from a real (in-process, tp 2 so that shards are gathered) training
 * run: save/load is bit-exact, the ONNX graph of the checkpoint runs in ONNX Runtime and
 * matches the engine's libtorch forward, a GGUF F32 round trip is bit-exact, and files
 * that are not checkpoints are refused in one line.
 */
class CheckpointTest {

    static TrainingRun run;

    @TempDir
    static Path dir;

    static Path saved;

    @BeforeAll
    static void train() throws Exception {
        torch.set_num_threads(1);
        TrainSpec spec = TrainSpec.defaults(GptConfig.tiny()).withSteps(3).withBatch(4).withLayout(1, 2, 1).withExport(true);
        List<RankResult> ranks = LocalGroups.run(spec);
        run = TrainingRun.of(spec, ranks);
        saved = dir.resolve("tiny.safetensors");
        run.saveCheckpoint(saved);
    }

    static void assertBitExact(Map<String, float[]> want, Map<String, float[]> got) {
        assertEquals(want.keySet(), got.keySet());
        for (Map.Entry<String, float[]> e : want.entrySet()) {
            float[] a = e.getValue(), b = got.get(e.getKey());
            assertEquals(a.length, b.length, e.getKey());
            for (int i = 0; i < a.length; i++)
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), e.getKey() + "[" + i + "]");
        }
    }

    @Test
    void saveLoadRoundTripIsBitExact() {
        Checkpoint.Loaded c = Checkpoint.load(saved);
        assertEquals(GptConfig.tiny(), c.config());
        Map<String, float[]> trained = run.parameters();
        assertBitExact(trained, c.tensors());
        // the trained weights differ from the initial ones (3 AdamW steps were taken)
        assertTrue(trained.get("h0.attn.wq")[0] != 0);
        assertEquals("dp=1,tp=2,pp=1", c.metadata().get("parallax.run.layout"));
        assertEquals("3", c.metadata().get("parallax.run.steps"));
        assertEquals(Double.toString(run.loss()[2]), c.metadata().get("parallax.run.final_loss"));
        assertEquals("4", c.metadata().get("parallax.model.layers"));
        assertFalse(Files.exists(dir.resolve("tiny.safetensors.tmp")));
    }

    @Test
    void onnxGraphMatchesLibtorch() {
        Checkpoint.Loaded c = Checkpoint.load(saved);
        Path onnx = dir.resolve("tiny.onnx");
        Converter.Result r = CheckpointOnnx.convert(saved, onnx, Converter.Options.defaults(), Progress.NONE);
        assertEquals(c.tensors().size(), r.tensors());
        CheckpointOnnx.Check check = CheckpointOnnx.check(c, onnx);
        System.out.printf("checkpoint ONNX: max |ORT - libtorch| = %.3g, logit scale %.3g%n", check.maxAbsDiff(), check.logitScale());
        assertTrue(check.passed(), "relative difference " + check.relative());
        assertTrue(check.maxAbsDiff() <= CheckpointOnnx.TOLERANCE * Math.max(1, check.logitScale()));
        assertTrue(check.logitScale() > 1e-3, "logits should not be trivially zero");
        assertEquals(3, check.rows().size());
        assertEquals(GptConfig.tiny().sequence(), check.rows().get(2).tokens());

        // the check can fail: the same graph against weights with one changed value
        float[] head = c.tensors().get("head.w");
        head[0] += 0.5f;
        CheckpointOnnx.Check bad = CheckpointOnnx.check(c, onnx);
        assertFalse(bad.passed(), "a changed weight must be detected, max diff " + bad.maxAbsDiff());
    }

    @Test
    void ggufF32AndBackIsBitExact() {
        Path gguf = dir.resolve("tiny-f32.gguf");
        Path back = dir.resolve("back.safetensors");
        Converter.convert(saved, gguf, new Converter.Options(DType.F32, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD), Progress.NONE);
        Converter.convert(gguf, back, Converter.Options.defaults(), Progress.NONE);
        Checkpoint.Loaded original = Checkpoint.load(saved);
        assertBitExact(original.tensors(), Checkpoint.load(back).tensors());
        assertBitExact(original.tensors(), Checkpoint.load(gguf).tensors());
        assertEquals(original.metadata(), Checkpoint.load(back).metadata());
    }

    @Test
    void notACheckpointIsRefusedInOneLine() {
        Path plain = dir.resolve("plain.safetensors");
        try (TensorWriter w = Safetensors.writer(plain, Map.of("format", "pt"), List.of(new TensorSpec("w", DType.F32, new long[] {2})))) {
            w.beginTensor();
            w.write(java.nio.ByteBuffer.allocate(8));
            w.commit();
        }
        String m = assertThrows(UserError.class, () -> Checkpoint.load(plain)).getMessage();
        assertTrue(m.contains("plain.safetensors is not an engine checkpoint"), m);
        assertFalse(m.contains("\n"), m);
        m = assertThrows(UserError.class, () -> CheckpointOnnx.convert(plain, dir.resolve("plain.onnx"), Converter.Options.defaults(), Progress.NONE)).getMessage();
        assertTrue(m.contains("not an engine checkpoint"), m);
        assertFalse(Files.exists(dir.resolve("plain.onnx")));
    }

    @Test
    void runWithoutExportCannotBeSaved() {
        TrainingRun noExport = new TrainingRun(run.spec(), run.loss(), List.of());
        String m = assertThrows(UserError.class, () -> noExport.saveCheckpoint(dir.resolve("x.safetensors"))).getMessage();
        assertTrue(m.contains("did not export its parameters"), m);
        assertFalse(Files.exists(dir.resolve("x.safetensors")));
    }
}
