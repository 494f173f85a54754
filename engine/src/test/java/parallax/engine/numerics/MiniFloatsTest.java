package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The private FP16/BF16/FP8 casts: exact round trips and the rounding/overflow facts of docs/reference.md#rounding-and-overflow. */
class MiniFloatsTest {

    @Test
    void everyHalfRoundTripsAndTiesGoToEven() {
        for (int h = 0; h < 65536; h++) {
            float f = MiniFloats.halfToFloat((short) h);
            if (Float.isNaN(f)) continue;
            assertEquals((short) h, MiniFloats.floatToHalf(f), "half 0x" + Integer.toHexString(h));
        }
        assertEquals(65504f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(65519f)));
        assertTrue(Float.isInfinite(MiniFloats.halfToFloat(MiniFloats.floatToHalf(65520f))));
        assertEquals(0x1p-24f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(0x1.8p-25f)), "past the midpoint rounds up");
        assertEquals(0f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(0x1p-25f)), "tie to even: 0");
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1)
        assertEquals(1f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(1f + 0x1p-11f)));
        assertEquals(1f + 0x1p-9f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(1f + 0x1.8p-10f)), "tie goes to the even 1+2^-9");
    }

    @Test
    void bf16RoundsToNearestEvenAndCanonicalNaN() {
        for (int b = 0; b < 65536; b++) {
            float f = MiniFloats.bf16ToFloat((short) b);
            if (Float.isNaN(f)) continue;
            assertEquals((short) b, MiniFloats.floatToBf16(f));
        }
        assertEquals((short) 0x7fc0, MiniFloats.floatToBf16(Float.NaN));
        assertEquals(1f, MiniFloats.bf16ToFloat(MiniFloats.floatToBf16(1f + 0x1p-8f)), "tie to even");
    }

    @Test
    void fp8ExtremesAsPyTorchCasts() {
        assertEquals(448f, MiniFloats.fp8ToFloat(DType.F8_E4M3, MiniFloats.floatToFp8(DType.F8_E4M3, 464f)));
        assertTrue(Float.isNaN(MiniFloats.fp8ToFloat(DType.F8_E4M3, MiniFloats.floatToFp8(DType.F8_E4M3, 465f))), "E4M3FN does not saturate");
        assertEquals(0x1p-9f, MiniFloats.fp8ToFloat(DType.F8_E4M3, (byte) 1), "min subnormal 2^-9");
        assertEquals(57344f, MiniFloats.fp8ToFloat(DType.F8_E5M2, (byte) 0x7b));
        assertTrue(Float.isInfinite(MiniFloats.fp8ToFloat(DType.F8_E5M2, MiniFloats.floatToFp8(DType.F8_E5M2, 61440f))), "E5M2 overflows to inf");
        assertEquals(0x1p-16f, MiniFloats.fp8ToFloat(DType.F8_E5M2, (byte) 1));
        assertEquals(240f, MiniFloats.fp8ToFloat(DType.F8_E4M3FNUZ, (byte) 0x7f));
        for (DType t : new DType[] {DType.F8_E4M3, DType.F8_E5M2}) {
            for (int b = 0; b < 256; b++) {
                float f = MiniFloats.fp8ToFloat(t, (byte) b);
                if (Float.isNaN(f)) continue;
                assertEquals((byte) b, MiniFloats.floatToFp8(t, f), t + " 0x" + Integer.toHexString(b));
                assertEquals(f, MiniFloats.halfToFloat(MiniFloats.floatToHalf(f)), "exact in FP16");
            }
        }
    }
}
