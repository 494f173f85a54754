package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.precision.CastAnalysis.NamedTensor;
import parallax.engine.precision.CastAnalysis.Scaling;
import parallax.engine.precision.CastAnalysis.Stats;

class CastAnalysisTest {

    @SuppressWarnings("unchecked")
    static List<Stats> stats(parallax.engine.report.Report r) {
        return (List<Stats>) ((Map<String, Object>) r.data()).get("stats");
    }

    static Stats find(List<Stats> all, String tensor, FloatFormat f) {
        return all.stream().filter(s -> s.tensor().equals(tensor) && s.format().equals(f.label())).findFirst().orElseThrow();
    }

    @Test
    void overflowSharesMatchACountOfValuesBeyondTheMax() {
        NamedTensor t = CastAnalysis.random(65536, 3);
        List<Stats> s = stats(CastAnalysis.analyse("random", List.of(t), CastTarget.of(FloatFormat.E4M3FN, FloatFormat.BF16),
                Scaling.NONE, Rounding.NON_SATURATING));
        long beyond = 0;
        for (float v : t.values()) if (!Float.isFinite(FloatFormat.E4M3FN.round(v))) beyond++;
        assertTrue(beyond > 0, "the random tensor has outliers beyond 448");
        Stats e4 = find(s, "random", FloatFormat.E4M3FN);
        assertEquals((double) beyond / t.values().length, e4.overflowShare(), 1e-12);
        assertEquals(e4.overflowShare(), e4.nanShare(), 1e-12, "E4M3FN has no inf: overflow is NaN");
        assertEquals(0, find(s, "random", FloatFormat.BF16).overflowShare());
        assertTrue(find(s, "random", FloatFormat.BF16).maxRelError() <= Math.scalb(1.0, -8) * 1.0000001, "BF16 relative error <= 2^-8");
    }

    @Test
    void perTensorScalingRemovesOverflowAndSaturationClamps() {
        NamedTensor t = CastAnalysis.random(65536, 3);
        Stats scaled = find(stats(CastAnalysis.analyse("r", List.of(t), CastTarget.of(FloatFormat.E4M3FN), Scaling.PER_TENSOR,
                Rounding.NON_SATURATING)), "random", FloatFormat.E4M3FN);
        assertEquals(0, scaled.overflowShare());
        Stats sat = find(stats(CastAnalysis.analyse("r", List.of(t), CastTarget.of(FloatFormat.E4M3FN), Scaling.NONE,
                Rounding.SATURATE)), "random", FloatFormat.E4M3FN);
        assertEquals(0, sat.nanShare(), "saturating casts make no NaN");
        assertTrue(sat.overflowShare() > 0, "clamped values still count as overflowed");
    }

    @Test
    void perChannelScalingIsNoWorseThanPerTensorOnRowsOfDifferentSizes() {
        float[] v = new float[4 * 256];
        for (int r = 0; r < 4; r++) for (int i = 0; i < 256; i++) v[r * 256 + i] = (float) (Math.pow(10, -r * 2) * Math.sin(i + 1));
        NamedTensor t = new NamedTensor("w", new long[] {4, 256}, v);
        double perTensor = find(stats(CastAnalysis.analyse("x", List.of(t), CastTarget.of(FloatFormat.E4M3FN), Scaling.PER_TENSOR,
                Rounding.NON_SATURATING)), "w", FloatFormat.E4M3FN).underflowShare();
        double perChannel = find(stats(CastAnalysis.analyse("x", List.of(t), CastTarget.of(FloatFormat.E4M3FN), Scaling.PER_CHANNEL,
                Rounding.NON_SATURATING)), "w", FloatFormat.E4M3FN).underflowShare();
        assertTrue(perTensor > 0.2, "rows 1e-4 and 1e-6 below the largest underflow with one scale: " + perTensor);
        assertEquals(0, perChannel, "each row gets its own scale");
    }

    @Test
    void badTensorsAreOneLineUserErrors() {
        NamedTensor nan = new NamedTensor("bad", new long[] {2}, new float[] {1f, Float.NaN});
        String msg = assertThrows(UserError.class, () -> CastAnalysis.analyse("x", List.of(nan), CastTarget.of(FloatFormat.FP16),
                Scaling.NONE, Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("'bad'") && msg.contains("non-finite"), msg);

        NamedTensor empty = new NamedTensor("e", new long[] {0}, new float[0]);
        msg = assertThrows(UserError.class, () -> CastAnalysis.analyse("x", List.of(empty), CastTarget.of(FloatFormat.FP16),
                Scaling.NONE, Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("empty"), msg);
        assertThrows(UserError.class, () -> CastAnalysis.Scaling.parse("per-row"));
        assertThrows(UserError.class, () -> CastAnalysis.random(0, 1));
    }
}
