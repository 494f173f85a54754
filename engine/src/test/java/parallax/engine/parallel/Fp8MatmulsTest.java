package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.torch.Device;
import parallax.engine.torch.Torch;

/**
 * The FP8 emulation against a quantize–dequantize computed here, value by value, with the
 * project's Java codecs (not libtorch's float8 casts): x and W in E4M3, dy in E5M2, each
 * scaled, clamped to the format's max and scaled back; and the delayed-scaling rule.
 */
class Fp8MatmulsTest {

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** What a cast must give: FP8(clamp(x * s, +-max)) * (1/s), in FP32, with Java's float arithmetic. */
    static float[] reference(float[] x, float s, FloatFormat f) {
        float max = f.maxFinite(), inv = 1f / s;
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float c = Math.max(-max, Math.min(max, x[i] * s));
            out[i] = f.round(c, Rounding.NON_SATURATING) * inv;
        }
        return out;
    }

    static float[] random(SplittableRandom r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * std);
        return v;
    }

    static Fp8Scaling scaling(Fp8Recipe.Scaling mode) {
        return new Fp8Scaling(Fp8Recipe.defaults().withScaling(mode).withBase(DType.F32), Device.cpu(), Comm.single(), Comm.single());
    }

    static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i]))
                fail(what + "[" + i + "]: reference " + want[i] + ", emulation " + got[i]);
        }
    }

    @Test
    void castsAreTheReferenceQuantizeDequantize() {
        SplittableRandom r = new SplittableRandom(1);
        Fp8Matmuls mm = new Fp8Matmuls(scaling(Fp8Recipe.Scaling.DELAYED));
        Fp8Scaling.Slot x = mm.scaling().slot("l", Fp8Scaling.Role.X), dy = mm.scaling().slot("l", Fp8Scaling.Role.DY);
        // scales that are not powers of two, values that saturate and values that flush
        x.scale = 37.3f;
        dy.scale = 9.1e8f;
        float[] v = random(r, 4096, 1);
        v[0] = 100f;          // 100 * 37.3 > 448: clamps
        v[1] = 1e-5f;         // below E4M3's smallest subnormal once scaled: flushes
        float[] g = random(r, 4096, 1e-6);
        g[0] = 1e-3f;         // 1e-3 * 9.1e8 > 57344: clamps
        try (PointerScope s = new PointerScope()) {
            assertBits(reference(v, 37.3f, FloatFormat.E4M3FN), Device.hostFloats(mm.cast(x, Device.cpu().fromFloats(v, v.length))), "x");
            assertBits(reference(g, 9.1e8f, FloatFormat.E5M2), Device.hostFloats(mm.cast(dy, Device.cpu().fromFloats(g, g.length))), "dy");
            mm.scaling().endStep(); // within the step's scope, as the training loop calls it
        }
        Fp8Scaling.Trace t = mm.scaling().trace();
        assertEquals(1.0 / 4096, t.saturatedShare()[0][0], 1e-12, "one of 4096 values of x saturated");
        long flushed = 0;
        for (float f : v) if (f != 0 && FloatFormat.E4M3FN.round(f * 37.3f, Rounding.SATURATE) == 0) flushed++;
        assertTrue(flushed >= 1);
        assertEquals((double) flushed / 4096, t.flushedShare()[0][0], 1e-12);
        assertEquals(100.0, t.amax()[0][0], 0, "amax of x");
    }

    /**
     * A whole layer: forward x·Wᵀ on the quantized x and W, and backward dgrad and wgrad on
     * the E5M2 gradient: against the reference casts and a matmul in double.
     */
    @Test
    void aLayerMultipliesOnlyFp8Values() {
        SplittableRandom r = new SplittableRandom(2);
        int b = 6, in = 16, out = 12;
        float[] xv = random(r, b * in, 1), wv = random(r, out * in, 0.05), gv = random(r, b * out, 1e-5);
        Fp8Matmuls mm = new Fp8Matmuls(scaling(Fp8Recipe.Scaling.DELAYED));
        float sx = 100f, sw = 3000f, sdy = 3e8f;
        mm.scaling().slot("l", Fp8Scaling.Role.X).scale = sx;
        mm.scaling().slot("l", Fp8Scaling.Role.W).scale = sw;
        mm.scaling().slot("l", Fp8Scaling.Role.DY).scale = sdy;
        float[] xq = reference(xv, sx, FloatFormat.E4M3FN), wq = reference(wv, sw, FloatFormat.E4M3FN),
                gq = reference(gv, sdy, FloatFormat.E5M2);
        try (PointerScope s = new PointerScope()) {
            Tensor x = Device.cpu().fromFloats(xv, b, in).set_requires_grad(true);
            Tensor w = Device.cpu().fromFloats(wv, out, in).set_requires_grad(true);
            Tensor y = mm.linear("l", x, w, null);
            // forward: bit for bit the same linear on the reference's FP8 values
            Tensor want = torch.linear(Device.cpu().fromFloats(xq, b, in), Device.cpu().fromFloats(wq, out, in), new TensorOptional());
            assertBits(Device.hostFloats(want), Device.hostFloats(y), "y");
            y.mul(Device.cpu().fromFloats(gv, b, out)).sum().backward(); // upstream gradient gv
            float[] dx = Device.hostFloats(x.grad()), dw = Device.hostFloats(w.grad());
            double worstPlain = 0;
            for (int i = 0; i < b; i++) {
                for (int k = 0; k < in; k++) {
                    double ref = 0, plain = 0;
                    for (int o = 0; o < out; o++) {
                        ref += (double) gq[i * out + o] * wq[o * in + k];
                        plain += (double) gv[i * out + o] * wv[o * in + k];
                    }
                    assertEquals(ref, dx[i * in + k], 1e-6 * Math.abs(ref) + 1e-12, "dgrad = dy_e5m2 . W_e4m3 at " + i + "," + k);
                    worstPlain = Math.max(worstPlain, Math.abs(plain - ref) / (Math.abs(plain) + 1e-12));
                }
            }
            assertTrue(worstPlain > 1e-3, "the FP8 gradient differs visibly from the unquantized one: " + worstPlain);
            for (int o = 0; o < out; o++) {
                for (int k = 0; k < in; k++) {
                    double ref = 0;
                    for (int i = 0; i < b; i++) ref += (double) gq[i * out + o] * xq[i * in + k];
                    assertEquals(ref, dw[o * in + k], 1e-6 * Math.abs(ref) + 1e-12, "wgrad = dy_e5m2^T . x_e4m3 at " + o + "," + k);
                }
            }
        }
    }

    @Test
    void delayedScalesFollowTheAmaxHistory() {
        Fp8Scaling sc = new Fp8Scaling(Fp8Recipe.defaults().withHistory(2).withBase(DType.F32), Device.cpu(), Comm.single(), Comm.single());
        Fp8Matmuls mm = new Fp8Matmuls(sc);
        Fp8Scaling.Slot x = sc.slot("l", Fp8Scaling.Role.X);
        assertEquals(1f, x.scale, "every scale starts at 1");
        float[] amaxes = {2f, 8f, 1f, 1f, 0f};
        // history of 2, "max" rule: after 2 -> 448/2; after 8 -> 448/8; after 1 the 8 is still in the window; then 448/1,
        // and the 1 is still in the window after an all-zero step
        float[] want = {224f, 56f, 56f, 448f, 448f};
        for (int step = 0; step < amaxes.length; step++) {
            try (PointerScope s = new PointerScope()) {
                mm.cast(x, Device.cpu().fromFloats(new float[] {amaxes[step] / 2, -amaxes[step]}, 2));
                mm.cast(x, Device.cpu().fromFloats(new float[] {amaxes[step] / 4}, 1)); // a second micro-batch: the max counts
                sc.endStep();
            }
            assertEquals(want[step], x.scale, 0f, "after step " + step);
        }
        Fp8Scaling.Trace t = sc.trace();
        assertEquals(1.0, t.scale()[0][0], "step 0 ran with scale 1");
        assertEquals(224.0, t.scale()[0][1], "step 1 with the scale step 0 left");

        Fp8Scaling one = new Fp8Scaling(Fp8Recipe.defaults().withHistory(1).withBase(DType.F32), Device.cpu(), Comm.single(), Comm.single());
        Fp8Scaling.Slot o = one.slot("l", Fp8Scaling.Role.W);
        for (float a : new float[] {4f, 0f}) {
            try (PointerScope s = new PointerScope()) {
                new Fp8Matmuls(one).cast(o, Device.cpu().fromFloats(new float[] {a}, 1));
                one.endStep();
            }
            assertEquals(112f, o.scale, 0f, "448/4, kept through an all-zero step");
        }

        Fp8Scaling margin = new Fp8Scaling(new Fp8Recipe(Fp8Recipe.Scaling.DELAYED, 4, 2, DType.F32), Device.cpu(), Comm.single(), Comm.single());
        Fp8Scaling.Slot m = margin.slot("l", Fp8Scaling.Role.DY);
        try (PointerScope s = new PointerScope()) {
            new Fp8Matmuls(margin).cast(m, Device.cpu().fromFloats(new float[] {3f}, 1));
            margin.endStep();
        }
        assertEquals(57344f / 3f / 4f, m.scale, 0f, "E5M2's max / amax / 2^margin");
    }

    @Test
    void currentScalingPutsTheLargestValueOnTheMax() {
        Fp8Matmuls mm = new Fp8Matmuls(scaling(Fp8Recipe.Scaling.CURRENT));
        Fp8Scaling.Slot x = mm.scaling().slot("l", Fp8Scaling.Role.X);
        float[] v = {0.3f, -7.7f, 1e-3f};
        try (PointerScope s = new PointerScope()) {
            float[] got = Device.hostFloats(mm.cast(x, Device.cpu().fromFloats(v, 3)));
            assertBits(reference(v, 448f / 7.7f, FloatFormat.E4M3FN), got, "current scaling");
            float[] zeros = Device.hostFloats(mm.cast(x, Device.cpu().fromFloats(new float[3], 3)));
            assertBits(new float[3], zeros, "an all-zero tensor");
            mm.scaling().endStep();
        }
        assertEquals(0.0, mm.scaling().trace().saturatedShare()[0][0], "nothing saturates when the scale comes from the tensor itself");

        Fp8Matmuls none = new Fp8Matmuls(scaling(Fp8Recipe.Scaling.NONE));
        Fp8Scaling.Slot d = none.scaling().slot("l", Fp8Scaling.Role.DY);
        try (PointerScope s = new PointerScope()) {
            float[] tiny = {1e-6f, -3e-6f, 2e-5f};
            assertBits(reference(tiny, 1f, FloatFormat.E5M2), Device.hostFloats(none.cast(d, Device.cpu().fromFloats(tiny, 3))), "no scaling");
            none.scaling().endStep();
        }
        assertEquals(2.0 / 3, none.scaling().trace().flushedShare()[0][0], 1e-12, "unscaled, 1e-6 and 3e-6 are below E5M2's 2^-17: zero");
    }
}
