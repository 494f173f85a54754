package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.plan.InferencePlan.Encoding;

/** HBM bandwidth in the GPU profiles and the memory-bound decode estimate of %plan --infer (docs/plan.md#decode-throughput). */
class DecodeThroughputTest {

    /** The datasheet figures of the two new profiles, and a bandwidth on every profile. */
    @Test
    void datasheetFigures() {
        GpuProfile b200 = GpuProfile.get("b200");
        assertEquals(180L << 30, b200.memoryBytes());
        assertEquals(2250e12, b200.flopsFor(DType.BF16), 1);
        assertEquals(4500e12, b200.flopsFor(DType.F8_E4M3), 1);
        assertEquals(8e12, b200.hbmBytesPerS(), 1);
        GpuProfile mi = GpuProfile.get("MI300X");
        assertEquals(192L << 30, mi.memoryBytes());
        assertEquals(1307.4e12, mi.flopsFor(DType.BF16), 1);
        assertEquals(2614.9e12, mi.flopsFor(DType.F8_E4M3), 1);
        assertEquals(5.3e12, mi.hbmBytesPerS(), 1);
        assertEquals(3.35e12, GpuProfile.get("h100").hbmBytesPerS(), 1);
        for (GpuProfile g : GpuProfile.all()) assertTrue(g.hbmBytesPerS() > 0, g.name() + " has no bandwidth");
        assertTrue(assertThrows(UserError.class, () -> GpuProfile.get("h100").withHbm(-1.0)).getMessage().contains("memory bandwidth"));
    }

    /** Dense, batch 1: tokens/s = bandwidth / (weights + KV cache at the context), by hand. */
    @Test
    void denseByHand() {
        ModelSpec m = ModelCatalog.get("llama-2-7b");
        GpuProfile h100 = GpuProfile.get("h100");
        InferencePlan.Result r = InferencePlan.plan(m, Encoding.F16, 4096, 1, 2, 0.1, List.of(h100));
        double bytes = 2.0 * m.parameters() + 2.0 * 32 * 32 * 128 * 2 * 4096;
        assertEquals(bytes, r.bytesReadPerStep(), 1);
        assertEquals(3.35e12 / bytes, r.fits().get(0).decodeTokensPerSecond(), 1e-9);
    }

    /** MoE, batch 1: only the active parameters are read; two H100s each read half at their own bandwidth. */
    @Test
    void moeReadsActiveParameters() {
        ModelSpec m = ModelCatalog.get("mixtral-8x7b");
        assertEquals(m.activeParameters(), InferencePlan.parametersReadPerStep(m, 1), 1e-3);
        InferencePlan.Result r = InferencePlan.plan(m, Encoding.F16, 4096, 1, 2, 0.1, List.of(GpuProfile.get("h100")));
        double bytes = 2.0 * m.activeParameters() + 2.0 * 32 * 8 * 128 * 2 * 4096;
        assertEquals(bytes, r.bytesReadPerStep(), 1);
        InferencePlan.Fit f = r.fits().get(0);
        assertEquals(2, f.gpusNeeded());   // 93 GB of f16 weights
        assertEquals(2 * 3.35e12 / bytes, f.decodeTokensPerSecond(), 1e-9);
    }

    /** Batches touch more experts: E(1 − (1 − k/E)^B) of them, all of them in the limit. */
    @Test
    void batchesReadMoreExperts() {
        ModelSpec m = ModelCatalog.get("deepseek-v3");
        double dense = m.parameters() - m.routedParameters();
        double perExpert = m.routedParameters() / 256.0;
        double touched16 = 256 * (1 - Math.pow(1 - 8 / 256.0, 16));
        assertEquals(dense + perExpert * touched16, InferencePlan.parametersReadPerStep(m, 16), 1);
        assertEquals(m.parameters(), InferencePlan.parametersReadPerStep(m, 100_000), 1e-6 * m.parameters());
        // Latent attention: (512 + 64) elements per layer and token.
        assertEquals(61.0 * 576 * 2, InferencePlan.kvBytesPerToken(m, 2));
    }

    /** Without a bandwidth figure there is no estimate rather than a wrong one. */
    @Test
    void unknownBandwidth() {
        GpuProfile g = new GpuProfile("x", "x", 80L << 30, 0, 100e12, 100e12, 0, 100e9, 10e9, 32e9, 8, 1L << 40);
        InferencePlan.Result r = InferencePlan.plan(ModelCatalog.get("llama-2-7b"), Encoding.F16, 1024, 1, 2, 0.1, List.of(g));
        assertTrue(Double.isNaN(r.fits().get(0).decodeTokensPerSecond()));
    }
}
