package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.precision.CastAnalysis;
import parallax.engine.precision.CastSources;
import parallax.engine.precision.CastTarget;
import parallax.engine.report.Report;

/** %precision cast reads PyTorch checkpoints through the safe unpickler, like %inspect. */
class CastFromCheckpointTest {

    @TempDir
    Path dir;

    static final List<CastTarget> TO = CastTarget.of(FloatFormat.BF16, FloatFormat.E4M3FN);

    @SuppressWarnings("unchecked")
    static Object stats(Report r) {
        return ((Map<String, Object>) r.data()).get("stats");
    }

    @Test
    void aTorchCheckpointGivesTheSameStatisticsAsSafetensors() throws Exception {
        float[] x = TestData.gaussian(12, 0.5, 3);
        x[5] = 600f; // beyond E4M3's 448
        Path bin = dir.resolve("pytorch_model.bin");
        PickleBytes.zip(bin, PickleBytes.stateDict("w", 3, 4, 12, new int[] {4, 1}).bytes(), Map.of("0", TestData.floats(x)));
        Path st = SampleModels.writeSafetensors(Map.of("w", new GptOnnxExporter.Weight(new long[] {3, 4}, x)), dir.resolve("w.safetensors"));
        Report fromBin = CastSources.file(bin, TO, CastAnalysis.Scaling.NONE, Rounding.NON_SATURATING);
        assertTrue(fromBin.toText().contains("PyTorch"), fromBin.toText());
        assertEquals(stats(CastSources.file(st, TO, CastAnalysis.Scaling.NONE, Rounding.NON_SATURATING)), stats(fromBin));
    }

    @Test
    void aMaliciousCheckpointIsRefusedInOneLine() {
        Path marker = dir.resolve("owned");
        Path evil = SampleModels.maliciousCheckpoint(dir.resolve("evil.bin"), "touch " + marker);
        String msg = assertThrows(UserError.class, () -> CastSources.file(evil, TO, CastAnalysis.Scaling.NONE,
                Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("os.system") && !msg.contains("\n"), msg);
        assertFalse(Files.exists(marker), "nothing was executed");
    }
}
