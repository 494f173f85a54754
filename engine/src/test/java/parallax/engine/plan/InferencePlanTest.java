package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.plan.InferencePlan.Encoding;

class InferencePlanTest {

    @Test
    void kvCacheIsGqaAware() {
        // 2 x layers x kv_heads x head_dim x 2 bytes
        assertEquals(2.0 * 32 * 32 * 128 * 2, InferencePlan.kvBytesPerToken(ModelCatalog.get("llama-2-7b"), 2));
        assertEquals(2.0 * 80 * 8 * 128 * 2, InferencePlan.kvBytesPerToken(ModelCatalog.get("llama-2-70b"), 2));
        assertEquals(2.0 * 32 * 8 * 128 * 2, InferencePlan.kvBytesPerToken(ModelCatalog.get("mistral-7b"), 2));
    }

    @Test
    void weightsByEncoding() {
        ModelSpec m = ModelCatalog.get("llama-2-7b");
        assertEquals(2.0 * m.parameters(), InferencePlan.weightBytes(m, Encoding.F16));
        assertEquals(4.0 * m.parameters(), InferencePlan.weightBytes(m, Encoding.F32));
        long vectors = 0;
        for (ModelSpec.Tensor t : m.tensors()) if (t.cols() == 1) vectors += t.elements() * (t.place() == ModelSpec.Place.LAYER ? m.layers() : 1);
        assertEquals((m.parameters() - vectors) * 34.0 / 32 + vectors * 4.0, InferencePlan.weightBytes(m, Encoding.Q8_0), 1.0);
        // Published llama.cpp files of Llama-2-7B: Q4_0 3.83 GB, Q4_K_M 4.08 GB, Q8_0 7.16 GB (TheBloke/Llama-2-7B-GGUF).
        assertEquals(3.83e9, InferencePlan.weightBytes(m, Encoding.Q4_0), 0.03 * 3.83e9);
        assertEquals(4.08e9, InferencePlan.weightBytes(m, Encoding.Q4_K_M), 0.03 * 4.08e9);
        assertEquals(7.16e9, InferencePlan.weightBytes(m, Encoding.Q8_0), 0.03 * 7.16e9);
    }

    @Test
    void fitsAndMaxContext() {
        ModelSpec m = ModelCatalog.get("llama-2-70b");
        List<GpuProfile> gpus = List.of(GpuProfile.get("h100-80gb"), GpuProfile.get("h200-141gb"));
        InferencePlan.Result r = InferencePlan.plan(m, Encoding.F16, 4096, 1, 2, 0.1, gpus);
        assertEquals(2, r.fits().get(0).gpusNeeded());            // 138 GB of weights: two H100s
        assertEquals(2, r.fits().get(1).gpusNeeded());            // 126.9 GiB usable on an H200: just short
        InferencePlan.Result q = InferencePlan.plan(m, Encoding.Q4_K_M, 4096, 1, 2, 0.1, gpus);
        assertEquals(1, q.fits().get(0).gpusNeeded());
        InferencePlan.Fit f = q.fits().get(0);
        long expected = (long) ((f.usableBytes() - q.weightBytes()) / q.kvBytesPerToken());
        assertEquals(expected, f.maxContext());
        assertTrue(f.maxContext() > 4096);
        assertTrue(assertThrows(UserError.class, () -> Encoding.of("q4_k_s")).getMessage().contains("Did you mean"));
        assertThrows(UserError.class, () -> InferencePlan.plan(m, Encoding.F16, 0, 1, 2, 0.1, gpus));
    }
}
