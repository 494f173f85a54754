package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;

/**
 * The element types, the E8M0 scale and the block formats against the OCP MX v1.0 spec's
 * definitions, worked by hand; every code point decoded; rounding against a brute-force
 * nearest-even search; MXFP4 against ggml's MXFP4 reader. libtorch's E8M0 and FP8 are
 * checked in precision/MxTorchParityTest.
 */
class BlockFormatTest {

    @Test
    void everyFp4CodeIsTheSpecsValue() {
        // OCP MX v1.0 table of FP4 E2M1 values; code 8 is -0.
        float[] spec = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
        for (int c = 0; c < 16; c++) {
            assertEquals(Float.floatToRawIntBits(spec[c]), Float.floatToRawIntBits(MxElement.FP4_E2M1.decode(c)), "code " + c);
            assertEquals(E2M1.value(c), MxElement.FP4_E2M1.decode(c), 0f, "the GGUF reader's table agrees");
        }
        assertEquals(6f, MxElement.FP4_E2M1.maxFinite(), 0f);
        assertEquals(2, MxElement.FP4_E2M1.emax());
    }

    @Test
    void everyFp6CodeFollowsTheSpecsLayout() {
        // E2M3 (bias 1): subnormals m/8, then [1, 2) in steps of 1/8, [2, 4) in 1/4, [4, 8) in 1/2 up to 7.5.
        List<Float> e2m3 = new ArrayList<>();
        for (int m = 0; m < 8; m++) e2m3.add(m / 8f);
        for (int m = 0; m < 8; m++) e2m3.add(1 + m / 8f);
        for (int m = 0; m < 8; m++) e2m3.add(2 + m / 4f);
        for (int m = 0; m < 8; m++) e2m3.add(4 + m / 2f);
        // E3M2 (bias 3): subnormals m/16, then (1 + m/4) * 2^(e - 3) for e = 1..7, up to 28.
        List<Float> e3m2 = new ArrayList<>();
        for (int m = 0; m < 4; m++) e3m2.add(m / 16f);
        for (int e = 1; e < 8; e++) for (int m = 0; m < 4; m++) e3m2.add((1 + m / 4f) * (float) Math.pow(2, e - 3));
        assertCodes(MxElement.FP6_E2M3, e2m3);
        assertCodes(MxElement.FP6_E3M2, e3m2);
        assertEquals(7.5f, MxElement.FP6_E2M3.maxFinite(), 0f);
        assertEquals(28f, MxElement.FP6_E3M2.maxFinite(), 0f);
        assertEquals(0.125f, MxElement.FP6_E2M3.minSubnormal(), 0f);
        assertEquals(0.0625f, MxElement.FP6_E3M2.minSubnormal(), 0f);
        assertEquals(2, MxElement.FP6_E2M3.emax());
        assertEquals(4, MxElement.FP6_E3M2.emax());
        assertEquals("0.10.111", MxElement.FP6_E2M3.bitString(MxElement.FP6_E2M3.encode(3.75f)));
    }

    private static void assertCodes(MxElement e, List<Float> positive) {
        assertEquals(32, positive.size());
        for (int c = 0; c < 64; c++) {
            float want = c < 32 ? positive.get(c) : -positive.get(c - 32);
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(e.decode(c)), e + " code " + c);
        }
    }

    @Test
    void everyInt8CodeIsTwosComplementTimesTwoToTheMinusSix() {
        for (int c = 0; c < 256; c++) assertEquals(((byte) c) / 64.0, MxElement.INT8.decode(c), 0, "code " + c);
        assertEquals(127 / 64f, MxElement.INT8.maxFinite(), 0f);
        assertEquals(0, MxElement.INT8.emax());
        assertEquals(127, MxElement.INT8.encode(5f), "clamped to +127/64");
        assertEquals(0x81, MxElement.INT8.encode(-5f), "clamped symmetric to -127/64, not -2");
        assertEquals(2, MxElement.INT8.encode(2.5f / 64), "2.5 ties to even 2");
        assertEquals(4, MxElement.INT8.encode(3.5f / 64), "3.5 ties to even 4");
    }

    @Test
    void everyE8m0CodeIsAPowerOfTwoAndFfIsNan() {
        for (int c = 0; c < 255; c++) {
            assertEquals(Math.pow(2, c - 127), E8M0.decode(c), 0, "code " + c);
            assertEquals(c - 127, E8M0.exponent(c));
        }
        assertTrue(Float.isNaN(E8M0.decode(0xFF)));
        assertEquals(0, E8M0.ofExponent(-500));
        assertEquals(254, E8M0.ofExponent(500));
        assertEquals("01111111", E8M0.bitString(127));
        assertEquals(-149, E8M0.floorLog2(Float.MIN_VALUE));
        assertEquals(-127, E8M0.floorLog2(Math.scalb(1.75f, -127)));
        assertEquals(2, E8M0.floorLog2(-6.5f));
    }

    /** Nearest value of the element by exhaustive search; ties to the even code; beyond max, max. */
    static int bruteForce(MxElement e, float x) {
        int best = -1;
        double bestDist = Double.POSITIVE_INFINITY;
        for (int c = 0; c < e.codes(); c++) {
            float v = e.decode(c);
            if (e.isInteger() && c == 0x80) continue; // -2 is never produced
            double d = Math.abs((double) v - x);
            boolean signOk = v != 0 || (Math.copySign(1f, v) == Math.copySign(1f, x)) || e.isInteger();
            if (!signOk) continue;
            if (d < bestDist || (d == bestDist && even(e, c) && !even(e, best))) {
                best = c;
                bestDist = d;
            }
        }
        return best;
    }

    private static boolean even(MxElement e, int c) {
        return e.isInteger() ? (((byte) c) & 1) == 0 : (c & 1) == 0;
    }

    @Test
    void elementsRoundToNearestEvenAndSaturate() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (MxElement e : new MxElement[] {MxElement.FP4_E2M1, MxElement.FP6_E2M3, MxElement.FP6_E3M2, MxElement.INT8, MxElement.FP8_E4M3}) {
            List<Float> xs = new ArrayList<>();
            // every value, its neighbours, every midpoint (a tie) and its neighbours, and beyond max
            for (int c = 0; c < e.codes(); c++) {
                float v = e.decode(c);
                if (Float.isNaN(v)) continue;
                xs.add(v);
                xs.add(Math.nextUp(v));
                xs.add(Math.nextDown(v));
                float w = e.decode(c + 1);
                if ((c + 1) % (e.codes() / 2) != 0 && !e.isInteger() && !Float.isNaN(w)) {
                    float mid = (v + w) / 2;
                    xs.add(mid);
                    xs.add(Math.nextUp(mid));
                    xs.add(Math.nextDown(mid));
                }
            }
            for (int i = 0; i < 2000; i++) xs.add((float) (rnd.nextGaussian() * e.maxFinite()));
            xs.add(1e9f);
            xs.add(-1e9f);
            xs.add(e.maxFinite() * 1.01f);
            for (float x : xs) {
                int want = bruteForce(e, x), got = e.encode(x);
                if (Float.floatToRawIntBits(e.decode(want)) != Float.floatToRawIntBits(e.decode(got)))
                    fail(e + ": " + x + " encodes to " + e.decode(got) + " (" + e.bitString(got) + "), nearest-even is " + e.decode(want));
            }
        }
    }

    @Test
    void mxfp4BlockOfTheSpecRule() {
        // amax 6.5: floor(log2 6.5) = 2, minus E2M1's emax 2 = 0, so the scale is 2^0 (code 127).
        float[] x = {1.0f, -0.75f, 6.5f, 0.1f};
        BlockFormat.Block b = BlockFormat.MXFP4.quantize(x, 0, 4, 1f);
        assertEquals(127, b.scaleCode());
        assertEquals("01111111", b.scaleBits());
        assertArrayEquals(new int[] {0b0010, 0b1010, 0b0111, 0b0000}, b.codes());
        // -0.75 is a tie between 0.5 (0.00.1, odd) and 1 (0.01.0, even); 6.5 clamps to 6; 0.1 is below 0.25 and flushes.
        assertArrayEquals(new float[] {1f, -1f, 6f, 0f}, b.values(), 0f);
        assertArrayEquals(new boolean[] {false, false, true, false}, b.clamped());
    }

    @Test
    void mxfp8BlockFloorsTheExponentSoItsLargestValueClamps() {
        // amax 1000: floor(log2) 9 - emax 8 = 1: scale 2. 1000/2 = 500 > 448 clamps: 896 comes back.
        float[] x = {1000f, 1f, 0.001f};
        BlockFormat.Block b = BlockFormat.MXFP8_E4M3.quantize(x, 0, 3, 1f);
        assertEquals(128, b.scaleCode());
        assertEquals(2f, b.scale(), 0f);
        assertArrayEquals(new float[] {896f, 1f, 0f}, b.values(), 0f);
        assertEquals(0x7E, b.codes()[0], "E4M3's max, 448");
    }

    @Test
    void mxint8BlockScalesByTheFlooredExponent() {
        float[] x = {0.3f, -1f, 1.99f};
        BlockFormat.Block b = BlockFormat.MXINT8.quantize(x, 0, 3, 1f);
        assertEquals(127, b.scaleCode());
        assertArrayEquals(new float[] {19 / 64f, -1f, 127 / 64f}, b.values(), 0f);
    }

    @Test
    void nvfp4ScalesEachBlockSoItsMaxLandsNearSix() {
        // A tensor whose amax is 448 * 6 has t = 1 exactly.
        float[] tensor = {2688f, 1f, -3f, 0f, 10f, 5f, -1f, 0f};
        float t = BlockFormat.NVFP4.tensorScale(tensor);
        assertEquals(1f, t, 0f);
        BlockFormat.Block first = BlockFormat.NVFP4.quantize(tensor, 0, 4, t);
        assertEquals(448f, first.scale(), 0f, "2688 / 6 = 448, E4M3's max");
        assertArrayEquals(new float[] {2688f, 0f, 0f, 0f}, first.values(), 0f);
        // 10 / 6 = 1.667 rounds to the E4M3 value 1.625 (1.101): 10 / 1.625 = 6.15 clamps to 6,
        // 5 / 1.625 = 3.08 -> 3, -1 / 1.625 = -0.62 -> -0.5.
        BlockFormat.Block second = BlockFormat.NVFP4.quantize(tensor, 4, 4, t);
        assertEquals(1.625f, second.scale(), 0f);
        assertEquals("0.0111.101", second.scaleBits());
        assertArrayEquals(new float[] {9.75f, 4.875f, -0.8125f, 0f}, second.values(), 0f);
        assertTrue(second.clamped()[0]);
        // t scales with the tensor: the same block in a tensor 1000x larger gets the same codes.
        float[] big = tensor.clone();
        for (int i = 0; i < big.length; i++) big[i] *= 1024;
        BlockFormat.Block scaled = BlockFormat.NVFP4.quantize(big, 4, 4, BlockFormat.NVFP4.tensorScale(big));
        assertArrayEquals(second.codes(), scaled.codes());
    }

    @Test
    void zeroAndNonFiniteBlocks() {
        for (BlockFormat f : BlockFormat.values()) {
            float[] zeros = new float[5];
            BlockFormat.Block z = f.quantize(zeros, 0, 5, f.tensorScale(zeros));
            assertArrayEquals(zeros, z.values(), 0f, f + " zeros");
            float[] bad = {1f, Float.NaN, 2f};
            BlockFormat.Block n = f.quantize(bad, 0, 3, 1f);
            for (float v : n.values()) assertTrue(Float.isNaN(v), f + ": a NaN makes the block's scale NaN");
            assertTrue(Float.isNaN(n.scale()));
        }
        assertEquals(0, BlockFormat.MXFP4.quantize(new float[4], 0, 4, 1f).scaleCode(), "a zero block takes the smallest scale");
    }

    /** Our MXFP4 blocks, packed as ggml packs them, read back by the GGUF reader (an independent decoder). */
    @Test
    void mxfp4AgreesWithGgmlsReader() {
        SplittableRandom rnd = new SplittableRandom(5);
        int blocks = 200;
        float[] x = new float[32 * blocks];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * Math.pow(2, (i / 32) % 60 - 30));
        ByteBuffer packed = ByteBuffer.allocate(17 * blocks).order(ByteOrder.LITTLE_ENDIAN);
        float[] ours = new float[x.length];
        for (int b = 0; b < blocks; b++) {
            BlockFormat.Block q = BlockFormat.MXFP4.quantize(x, 32 * b, 32, 1f);
            System.arraycopy(q.values(), 0, ours, 32 * b, 32);
            packed.put((byte) q.scaleCode());
            for (int j = 0; j < 16; j++) packed.put((byte) (q.codes()[j] | q.codes()[j + 16] << 4));
        }
        packed.flip();
        float[] ggml = new float[x.length];
        GgmlQuants.dequantize(DType.MXFP4, packed, ggml, x.length);
        assertArrayEquals(ours, ggml, 0f);
    }

    @Test
    void smallerBlocksLoseLessOnHeavyTailedRows() {
        SplittableRandom rnd = new SplittableRandom(9);
        float[] x = new float[64 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 50 : 1));
        double prev = Double.POSITIVE_INFINITY;
        for (int block : new int[] {64, 32, 16, 8}) {
            float[] y = x.clone();
            BlockFormat.MXFP4.roundInPlace(y, 64, block);
            double se = 0;
            for (int i = 0; i < x.length; i++) se += (y[i] - x[i]) * (double) (y[i] - x[i]);
            assertTrue(se < prev, "block " + block + ": squared error " + se + " not below " + prev);
            prev = se;
        }
        float[] partial = {1, 2, 3, 4, 5, 6, 7};
        BlockFormat.MXFP8_E4M3.roundInPlace(partial, 7, 4);
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7}, partial, 0f, "small integers are exact in E4M3 blocks, the last block short");
        assertThrows(UserError.class, () -> BlockFormat.MXFP4.roundInPlace(new float[4], 4, 0));
    }

    @Test
    void namesParseWithSuggestions() {
        assertEquals(BlockFormat.MXFP8_E4M3, BlockFormat.parse("MXFP8"));
        assertEquals(BlockFormat.NVFP4, BlockFormat.parse("nvfp4"));
        UserError e = assertThrows(UserError.class, () -> BlockFormat.parse("mxfp5"));
        assertTrue(e.getMessage().contains("Did you mean"), e.getMessage());
        assertFalse(BlockFormat.find("fp16").isPresent());
        assertEquals(4.25, BlockFormat.MXFP4.bitsPerValue(32), 1e-12);
        assertEquals(4.5, BlockFormat.NVFP4.bitsPerValue(16), 1e-12);
    }
}
