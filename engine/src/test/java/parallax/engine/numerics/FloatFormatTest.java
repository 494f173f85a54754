package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;

class FloatFormatTest {

    @Test
    void factsMatchTheReferenceTable() {
        // docs/reference.md#float-layouts: max finite, min normal, min subnormal, epsilon.
        assertFacts(FloatFormat.FP32, 3.4028235e38f, -126, -149, -23);
        assertFacts(FloatFormat.FP16, 65504f, -14, -24, -10);
        assertFacts(FloatFormat.BF16, 3.3895314e38f, -126, -133, -7);
        assertFacts(FloatFormat.E4M3FN, 448f, -6, -9, -3);
        assertFacts(FloatFormat.E5M2, 57344f, -14, -16, -2);
        assertFacts(FloatFormat.E4M3FNUZ, 240f, -7, -10, -3);
        assertFacts(FloatFormat.E5M2FNUZ, 57344f, -15, -17, -2);
    }

    static void assertFacts(FloatFormat f, float max, int minNormalExp, int minSubExp, int epsExp) {
        assertEquals(max, f.maxFinite(), 0f, f + " max");
        assertEquals(Math.scalb(1f, minNormalExp), f.minNormal(), 0f, f + " min normal");
        assertEquals(Math.scalb(1f, minSubExp), f.minSubnormal(), 0f, f + " min subnormal");
        assertEquals(Math.scalb(1f, epsExp), f.epsilon(), 0f, f + " eps");
        // The smallest subnormal pattern decodes to minSubnormal, the max pattern to max.
        assertEquals(f.minSubnormal(), f.decode(1), 0f);
        assertEquals(f.maxFinite(), f.decode(f.maxFiniteBits()), 0f);
        // 1 + eps is the next value after 1.
        assertEquals(1f + f.epsilon(), f.decode(f.encode(1f) + 1), 0f, f + " next after 1");
    }

    @Test
    void e4m3SurpriseRoundsTiesToEvenThenOverflowsToNaN() {
        FloatFormat f = FloatFormat.E4M3FN;
        assertEquals(448f, f.round(464f), 0f, "464 is a tie between 448 (even) and 480");
        assertTrue(Float.isNaN(f.round(465f)), "465 rounds to 480, past the max: NaN, not 448");
        assertEquals(0x7F, f.encode(465f));
        assertEquals(0xFF, f.encode(-465f));
        assertEquals(448f, f.round(465f, Rounding.SATURATE), 0f);
        assertEquals(-448f, f.round(Float.NEGATIVE_INFINITY, Rounding.SATURATE), 0f);
        assertTrue(Float.isNaN(f.round(Float.NaN, Rounding.SATURATE)));
    }

    @Test
    void overflowBecomesInfinityOrNaNOrMaxByMode() {
        assertEquals(Float.POSITIVE_INFINITY, FloatFormat.FP16.round(65520f), 0f);
        assertEquals(65504f, FloatFormat.FP16.round(65519.99f), 0f);
        assertEquals(65504f, FloatFormat.FP16.round(1e6f, Rounding.SATURATE), 0f);
        assertEquals(Float.NEGATIVE_INFINITY, FloatFormat.E5M2.round(-61440f), 0f);
        assertEquals(-57344f, FloatFormat.E5M2.round(-61440f, Rounding.SATURATE), 0f);
        assertTrue(Float.isNaN(FloatFormat.E4M3FNUZ.round(248f)));
        assertEquals(240f, FloatFormat.E4M3FNUZ.round(247.9f), 0f);
        assertEquals(FloatFormat.BF16.maxFinite(), FloatFormat.BF16.round(Float.MAX_VALUE, Rounding.SATURATE), 0f);
        assertEquals(Float.POSITIVE_INFINITY, FloatFormat.BF16.round(Float.MAX_VALUE), 0f);
        // Overflow threshold: the tie just above the max overflows (max's mantissa is odd).
        for (FloatFormat f : FloatFormat.values()) {
            if (f == FloatFormat.FP32) continue;
            float thr = (float) f.overflowThreshold();
            assertEquals(f.maxFinite(), f.round(Math.nextDown(thr)), 0f, f + " below threshold");
            float over = f.round(Math.nextUp(thr));
            assertTrue(Float.isNaN(over) || Float.isInfinite(over), f + " above threshold: " + over);
            boolean maxIsEven = (f.maxFiniteBits() & 1) == 0;
            float tie = f.round(thr);
            assertEquals(maxIsEven, tie == f.maxFinite(), f + " at the tie: " + tie);
        }
    }

    @Test
    void fnuzHasNoNegativeZeroAndSaturatingKeepsSigns() {
        assertEquals(0, FloatFormat.E4M3FNUZ.encode(-0f));
        assertEquals(0, FloatFormat.E5M2FNUZ.encode(-1e-30f));
        assertEquals(0x80, FloatFormat.E4M3FN.encode(-0f));
        assertEquals(0x8000, FloatFormat.FP16.encode(-0f));
        assertEquals(-240f, FloatFormat.E4M3FNUZ.round(-1e9f, Rounding.SATURATE), 0f);
    }

    @Test
    void subnormalsRoundToNearestEven() {
        FloatFormat f = FloatFormat.FP16;
        float unit = f.minSubnormal();
        assertEquals(0f, f.round(unit / 2), 0f, "half the smallest subnormal ties to zero (even)");
        assertEquals(unit, f.round(Math.nextUp(unit / 2)), 0f);
        assertEquals(2 * unit, f.round(1.5f * unit), 0f, "1.5 units ties to 2 (even)");
        assertEquals(2 * unit, f.round(2.5f * unit), 0f, "2.5 units ties to 2 (even)");
        assertEquals(f.minNormal(), f.round(Math.nextDown(f.minNormal())), 0f, "carry into the normal range");
    }

    @Test
    void bulkFormsAgreeWithScalar() {
        SplittableRandom rnd = new SplittableRandom(7);
        float[] x = new float[10_000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(-12, 8)));
        for (FloatFormat f : FloatFormat.values()) {
            for (Rounding r : Rounding.values()) {
                float[] expected = new float[x.length];
                for (int i = 0; i < x.length; i++) expected[i] = f.round(x[i], r);
                float[] viaBuffer = new float[x.length];
                ByteBuffer bb = ByteBuffer.allocateDirect(x.length * f.bytesPerValue());
                f.encode(x, bb, r);
                assertEquals(bb.capacity(), bb.position());
                bb.flip();
                f.decode(bb, viaBuffer);
                assertArrayEquals(expected, viaBuffer, f + " " + r + " via ByteBuffer");
                float[] inPlace = x.clone();
                f.roundInPlace(inPlace, r);
                assertArrayEquals(expected, inPlace, f + " " + r + " in place");
            }
        }
    }

    @Test
    void parsesNamesAndSuggestsCloseOnes() {
        assertEquals(FloatFormat.E4M3FN, FloatFormat.parse("E4M3"));
        assertEquals(FloatFormat.BF16, FloatFormat.parse("bfloat16"));
        assertEquals(FloatFormat.FP16, FloatFormat.parse("half"));
        UserError e = assertThrows(UserError.class, () -> FloatFormat.parse("e4m2"));
        assertTrue(e.getMessage().contains("Did you mean"), e.getMessage());
        assertTrue(e.getMessage().contains("e4m3"), e.getMessage());
        assertEquals(3, FloatFormat.parseList("fp16, bf16,fp16,e5m2").size());
        assertThrows(UserError.class, () -> FloatFormat.parseList(" , "));
    }

    @Test
    void bitStringSeparatesFields() {
        assertEquals("0.1111.110", FloatFormat.E4M3FN.bitString(FloatFormat.E4M3FN.encode(448f)));
        assertEquals("0.01111.0000000000", FloatFormat.FP16.bitString(FloatFormat.FP16.encode(1f)));
    }
}
