package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Every codec path this JVM offers gives the scalar codec's bits, in both rounding modes,
 * for every length and offset (the SIMD loops hand their tails to the scalar loop). Parity
 * with libtorch itself is TorchParityTest's, path by path.
 */
class CodecPathTest {

    static final FloatFormat[] NARROW = {FloatFormat.FP16, FloatFormat.BF16, FloatFormat.E4M3FN,
            FloatFormat.E5M2, FloatFormat.E4M3FNUZ, FloatFormat.E5M2FNUZ};

    @Test
    void theEngineTestsRunTheVectorPath() {
        // engine/pom.xml starts the test JVMs with --add-modules jdk.incubator.vector; without
        // it this file would test the scalar loops only.
        assertTrue(CodecPath.VECTOR.available(), "the Vector API module is not in this JVM");
        assertTrue(CodecPath.SCALAR.available());
        assertEquals(Float16Loops.available(), CodecPath.FLOAT16.available());
        assertEquals(Runtime.version().feature() >= 20, CodecPath.FLOAT16.available(), "Float.floatToFloat16 exists from Java 20");
        // The path FloatFormat uses: FP16 on the intrinsics where they exist, else SIMD.
        assertEquals(CodecPath.FLOAT16.available() ? CodecPath.FLOAT16 : CodecPath.VECTOR, FloatFormat.FP16.codecPath(true));
        assertEquals(CodecPath.VECTOR, FloatFormat.BF16.codecPath(true));
        assertEquals(CodecPath.VECTOR, FloatFormat.E4M3FN.codecPath(true));
        assertEquals(CodecPath.SCALAR, FloatFormat.E4M3FN.codecPath(false), "FP8 decoding is a table lookup on every path");
    }

    @Test
    void everyPathEncodesAsTheScalarCodecInBothModes() {
        SplittableRandom rnd = new SplittableRandom(11);
        int n = 100_003; // not a multiple of any lane count: the tail goes through the scalar loop
        float[] x = new float[n];
        for (FloatFormat f : NARROW) {
            for (int i = 0; i < n; i++) {
                x[i] = switch (i % 3) {
                    case 0 -> Float.intBitsToFloat(rnd.nextInt()); // every exponent, NaN and inf included
                    case 1 -> Math.scalb(1f + rnd.nextFloat(), rnd.nextInt(-28, 20)) * (rnd.nextBoolean() ? 1 : -1);
                    default -> f.decode(rnd.nextInt(1 << f.bits())) + (rnd.nextBoolean() ? 0f : Math.ulp(f.decode(rnd.nextInt(1 << f.bits()))));
                };
            }
            for (Rounding r : Rounding.values()) {
                int[] want = new int[n];
                for (int i = 0; i < n; i++) want[i] = f.encode(x[i], r);
                for (CodecPath p : CodecPath.values()) {
                    if (!p.handles(f, true)) continue;
                    for (int offset : new int[] {0, 3}) {
                        int len = n - offset - 5;
                        int[] got = new int[len];
                        if (f.bits() == 16) {
                            short[] d = new short[len + 7];
                            p.encode(f, x, offset, d, 7, len, r);
                            for (int i = 0; i < len; i++) got[i] = d[7 + i] & 0xFFFF;
                        } else {
                            byte[] d = new byte[len + 7];
                            p.encode(f, x, offset, d, 7, len, r);
                            for (int i = 0; i < len; i++) got[i] = d[7 + i] & 0xFF;
                        }
                        for (int i = 0; i < len; i++) {
                            int w = want[offset + i];
                            if (got[i] != w && !(f.isNaN(w) && f.isNaN(got[i]))) {
                                fail(f + " " + r + " " + p + ": " + x[offset + i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(x[offset + i]))
                                        + ") gives 0x" + Integer.toHexString(got[i]) + ", scalar 0x" + Integer.toHexString(w));
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void everyPathDecodesEveryPatternAsTheScalarCodec() {
        for (FloatFormat f : NARROW) {
            int count = 1 << f.bits();
            for (CodecPath p : CodecPath.values()) {
                if (!p.handles(f, false)) continue;
                float[] got = new float[count + 1];
                if (f.bits() == 16) {
                    short[] s = new short[count + 1];
                    for (int i = 0; i < count; i++) s[i + 1] = (short) i;
                    p.decode(f, s, 1, got, 1, count);
                } else {
                    byte[] b = new byte[count + 1];
                    for (int i = 0; i < count; i++) b[i + 1] = (byte) i;
                    p.decode(f, b, 1, got, 1, count);
                }
                for (int i = 0; i < count; i++) {
                    float want = f.decode(i);
                    boolean same = Float.isNaN(want) ? Float.isNaN(got[i + 1])
                            : Float.floatToRawIntBits(want) == Float.floatToRawIntBits(got[i + 1]);
                    if (!same) fail(f + " " + p + " pattern 0x" + Integer.toHexString(i) + ": " + got[i + 1] + ", scalar " + want);
                }
            }
        }
    }

    @Test
    void aPathRefusesWhatItHasNoLoopFor() {
        assertThrows(IllegalStateException.class,
                () -> CodecPath.FLOAT16.encode(FloatFormat.BF16, new float[1], 0, new short[1], 0, 1, Rounding.SATURATE));
        assertThrows(IllegalArgumentException.class,
                () -> CodecPath.SCALAR.encode(FloatFormat.BF16, new float[1], 0, new byte[1], 0, 1, Rounding.SATURATE));
        assertThrows(ArrayIndexOutOfBoundsException.class,
                () -> CodecPath.VECTOR.encode(FloatFormat.BF16, new float[64], 8, new short[64], 0, 60, Rounding.SATURATE));
    }
}
