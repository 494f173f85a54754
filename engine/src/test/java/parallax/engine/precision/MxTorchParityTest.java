package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.E8M0;
import parallax.engine.torch.Device;

/**
 * The block formats against libtorch 2.10 where it has the dtypes. What libtorch (CPU)
 * implements, found by trying: {@code float8_e8m0fnu} casts both ways; {@code
 * float4_e2m1fn_x2} only as storage ({@code to()} from or to it fails: "copy_kernel not
 * implemented"), so FP4/FP6 are checked against the spec in numerics/BlockFormatTest.
 */
class MxTorchParityTest {

    @BeforeAll
    static void oneThread() {
        TorchCast.oneThread();
    }

    @Test
    void everyE8m0CodeDecodesAsLibtorch() {
        byte[] codes = new byte[256];
        for (int i = 0; i < 256; i++) codes[i] = (byte) i;
        try (PointerScope s = new PointerScope()) {
            float[] torch = Device.hostFloats(Device.cpu().fromBytes(codes).view(ScalarType.Float8_e8m0fnu).to(ScalarType.Float));
            for (int i = 0; i < 256; i++) {
                float ours = E8M0.decode(i);
                if (Float.isNaN(torch[i])) assertTrue(Float.isNaN(ours), "code " + i);
                else assertEquals(Float.floatToRawIntBits(torch[i]), Float.floatToRawIntBits(ours), "code " + i);
            }
        }
    }

    @Test
    void e8m0CastRoundsAsLibtorch() {
        SplittableRandom rnd = new SplittableRandom(8);
        List<Float> xs = new ArrayList<>();
        for (int i = 0; i < 200_000; i++) xs.add(Float.intBitsToFloat(rnd.nextInt()));
        for (int e = -149; e < 128; e++) {
            float p = Math.scalb(1f, e);
            for (float v : new float[] {p, Math.nextUp(p), Math.nextDown(p), 1.5f * p, Math.nextUp(1.5f * p), Math.nextDown(1.5f * p)}) {
                xs.add(v);
                xs.add(-v);
            }
        }
        for (float v : new float[] {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MAX_VALUE}) xs.add(v);
        float[] x = new float[xs.size()];
        for (int i = 0; i < x.length; i++) x[i] = xs.get(i);
        byte[] torch = new byte[x.length];
        try (PointerScope s = new PointerScope()) {
            Tensor t = Device.cpu().fromFloats(x, x.length).to(ScalarType.Float8_e8m0fnu).view(ScalarType.Byte).contiguous();
            new BytePointer(t.data_ptr()).capacity(x.length).get(torch);
        }
        for (int i = 0; i < x.length; i++) {
            if ((torch[i] & 0xFF) != E8M0.nearest(x[i]))
                fail(x[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(x[i])) + "): libtorch 0x" + Integer.toHexString(torch[i] & 0xFF)
                        + ", ours 0x" + Integer.toHexString(E8M0.nearest(x[i])));
        }
    }

    @Test
    void fp4IsStorageOnlyInLibtorch() {
        try (PointerScope s = new PointerScope()) {
            Tensor t = Device.cpu().fromFloats(new float[] {1f, 2f}, 2);
            assertThrows(RuntimeException.class, () -> t.to(ScalarType.Float4_e2m1fn_x2),
                    "libtorch now casts to FP4: compare MXFP4 with it here");
        }
    }

    /**
     * MXFP8 blocks against libtorch's own FP8 casts: each block divided by 2^(floor(log2 amax) − emax)
     * (the exponent read with Math.getExponent), clamped to the element's max, cast with
     * to(float8), back to FP32 and multiplied by the scale.
     */
    @Test
    void mxfp8BlocksMatchLibtorchsFp8Casts() {
        SplittableRandom rnd = new SplittableRandom(12);
        int blocks = 400, n = 32 * blocks;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            int b = i / 32;
            // heavy tails and every range, including blocks near powers of two and at FP32's edges
            double scale = Math.pow(2, (b % 80) - 40) * (b % 7 == 0 ? 1000 : 1);
            x[i] = b % 13 == 0 && i % 32 == 0 ? Math.scalb(1f, (b % 60) - 30) : (float) (rnd.nextGaussian() * scale);
        }
        for (BlockFormat f : new BlockFormat[] {BlockFormat.MXFP8_E4M3, BlockFormat.MXFP8_E5M2}) {
            float[] ours = x.clone();
            f.roundInPlace(ours, n, 32);
            float[] scales = new float[n];
            float max = f.element().maxFinite();
            for (int b = 0; b < blocks; b++) {
                float amax = 0;
                for (int i = 32 * b; i < 32 * b + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
                int e = Math.max(-127, Math.getExponent(amax) - Math.getExponent(max));
                for (int i = 32 * b; i < 32 * b + 32; i++) scales[i] = Math.scalb(1f, e);
            }
            float[] torch;
            try (PointerScope s = new PointerScope()) {
                Tensor sc = Device.cpu().fromFloats(scales, n);
                Tensor q = Device.cpu().fromFloats(x, n).div(sc).clamp(new org.bytedeco.pytorch.ScalarOptional(new org.bytedeco.pytorch.Scalar(-max)),
                        new org.bytedeco.pytorch.ScalarOptional(new org.bytedeco.pytorch.Scalar(max)));
                torch = Device.hostFloats(q.to(TorchCast.scalarType(f.element().fp8())).to(ScalarType.Float).mul(sc));
            }
            for (int i = 0; i < n; i++) {
                if (Float.floatToRawIntBits(torch[i]) != Float.floatToRawIntBits(ours[i]))
                    fail(f + " value " + i + " = " + x[i] + ": libtorch " + torch[i] + ", ours " + ours[i]);
            }
        }
    }
}
