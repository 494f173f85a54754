package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parallax.engine.numerics.CodecPath;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;

/**
 * Bit-exact parity of our codecs with libtorch's own {@code to(dtype)} casts, on every
 * {@link CodecPath} this JVM offers (the engine's tests run with the Vector API module, so
 * the Java 17 scalar loops and the SIMD loops are both checked; FLOAT16 on Java 20+).
 * NaN is compared as "is NaN" only: libtorch's scalar and vectorised paths write
 * different NaN payloads (BF16 0x7FC0 vs 0xFFFF), so the payload is not a contract.
 */
class TorchParityTest {

    static final FloatFormat[] NARROW = {FloatFormat.FP16, FloatFormat.BF16, FloatFormat.E4M3FN,
            FloatFormat.E5M2, FloatFormat.E4M3FNUZ, FloatFormat.E5M2FNUZ};

    @BeforeAll
    static void oneThread() {
        TorchCast.oneThread();
    }

    @Test
    void decodesEveryPatternLikeLibtorch() {
        for (FloatFormat f : NARROW) {
            int count = 1 << f.bits();
            byte[] raw = new byte[count * f.bytesPerValue()];
            ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < count; i++) {
                if (f.bytesPerValue() == 2) bb.putShort((short) i); else bb.put((byte) i);
            }
            float[] torch = TorchCast.decode(raw, f);
            float[] viaBuffer = new float[count];
            f.decode(ByteBuffer.wrap(raw), viaBuffer);
            for (CodecPath path : CodecPath.values()) {
                if (!path.handles(f, false)) continue;
                float[] ours = new float[count];
                if (f.bytesPerValue() == 2) {
                    short[] patterns = new short[count];
                    for (int i = 0; i < count; i++) patterns[i] = (short) i;
                    path.decode(f, patterns, 0, ours, 0, count);
                } else {
                    path.decode(f, raw, 0, ours, 0, count);
                }
                int nans = 0;
                for (int i = 0; i < count; i++) {
                    float t = torch[i];
                    float o = ours[i];
                    if (Float.isNaN(t)) {
                        nans++;
                        assertTrue(Float.isNaN(o), f + " " + path + " pattern 0x" + Integer.toHexString(i) + ": libtorch NaN, ours " + o);
                        assertTrue(Float.isNaN(f.decode(i)) && Float.isNaN(viaBuffer[i]), "scalar and buffer decode of " + i);
                    } else if (Float.floatToRawIntBits(t) != Float.floatToRawIntBits(o)) {
                        fail(f + " " + path + " pattern 0x" + Integer.toHexString(i) + ": libtorch " + t + ", ours " + o);
                    } else {
                        assertEquals(Float.floatToRawIntBits(o), Float.floatToRawIntBits(f.decode(i)), "scalar decode of " + i);
                        assertEquals(Float.floatToRawIntBits(o), Float.floatToRawIntBits(viaBuffer[i]), "buffer decode of " + i);
                    }
                }
                int expectedNans = f.hasInfinity() ? 2 * ((1 << f.mantissaBits()) - 1)
                        : f.specials() == FloatFormat.Specials.FN ? 2 : 1;
                assertEquals(expectedNans, nans, f + " " + path + ": number of NaN patterns");
            }
        }
    }

    @Test
    void encodesBoundariesLikeLibtorch() {
        for (FloatFormat f : NARROW) {
            assertEncodesLikeTorch(f, boundaries(f), "boundaries");
        }
    }

    @Test
    void encodesRandomFloatsAcrossAllExponentsLikeLibtorch() {
        SplittableRandom rnd = new SplittableRandom(20240605);
        int n = 1 << 20;
        float[] values = new float[n];
        for (FloatFormat f : NARROW) {
            for (int i = 0; i < n; i++) {
                if (i % 2 == 0) {
                    values[i] = Float.intBitsToFloat(rnd.nextInt()); // every exponent, NaNs included
                } else {
                    // concentrated on the target's own range, where rounding decisions happen
                    int e = rnd.nextInt(1 - f.bias() - f.mantissaBits() - 2, Math.getExponent(f.maxFinite()) + 3);
                    values[i] = Math.scalb(1f + rnd.nextFloat(), e) * (rnd.nextBoolean() ? 1 : -1);
                }
            }
            assertEncodesLikeTorch(f, values, "random");
        }
    }

    /** Values where rounding and range decisions change: the edges of every binade and the ties. */
    static float[] boundaries(FloatFormat f) {
        List<Float> v = new ArrayList<>();
        float[] specials = {0f, -0f, Float.NaN, Float.intBitsToFloat(0xFFC00000), Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, -Float.MIN_VALUE,
                Float.MIN_NORMAL, 1f, -1f, 464f, 465f, 448f, 449f, 480f, 240f, 247f, 248f, 249f, 256f,
                65504f, 65519f, 65520f, 65536f, 57344f, 61439f, 61440f, 61441f, 0.1f, 1e-8f, -1e-8f};
        for (float s : specials) v.add(s);
        int count = 1 << f.bits();
        for (int bits = 0; bits < count; bits++) {
            float x = f.decode(bits);
            if (Float.isNaN(x) || Float.isInfinite(x)) continue;
            float next = f.decode(bits + 1);
            v.add(x);
            v.add(Math.nextUp(x));
            v.add(Math.nextDown(x));
            if (!Float.isNaN(next) && !Float.isInfinite(next) && Math.signum(next) == Math.signum(x) && bits + 1 < count) {
                float mid = (float) ((x + (double) next) / 2); // exact in FP32: one more bit than the format
                v.add(mid);
                v.add(Math.nextUp(mid));
                v.add(Math.nextDown(mid));
            }
        }
        double thr = f.overflowThreshold();
        v.add((float) thr);
        v.add(Math.nextUp((float) thr));
        v.add(Math.nextDown((float) thr));
        float half = f.minSubnormal() / 2;
        v.add(half);
        v.add(Math.nextUp(half));
        v.add(Math.nextDown(half));
        v.add(half * 3);
        int size = v.size();
        float[] out = new float[2 * size];
        for (int i = 0; i < size; i++) {
            out[i] = v.get(i);
            out[size + i] = -v.get(i);
        }
        return out;
    }

    static void assertEncodesLikeTorch(FloatFormat f, float[] values, String what) {
        byte[] torch = TorchCast.encode(values, f);
        ByteBuffer viaBuffer = ByteBuffer.allocateDirect(torch.length).order(ByteOrder.LITTLE_ENDIAN);
        f.encode(values, viaBuffer, Rounding.NON_SATURATING);
        assertSameBits(f, values, torch, viaBuffer, what + ", ByteBuffer");
        for (CodecPath path : CodecPath.values()) {
            if (!path.handles(f, true)) continue;
            ByteBuffer ours = ByteBuffer.allocate(torch.length).order(ByteOrder.LITTLE_ENDIAN);
            if (f.bytesPerValue() == 2) {
                short[] s = new short[values.length];
                path.encode(f, values, 0, s, 0, values.length, Rounding.NON_SATURATING);
                ours.asShortBuffer().put(s);
            } else {
                byte[] b = new byte[values.length];
                path.encode(f, values, 0, b, 0, values.length, Rounding.NON_SATURATING);
                ours.put(b);
            }
            assertSameBits(f, values, torch, ours, what + ", " + path);
        }
    }

    static void assertSameBits(FloatFormat f, float[] values, byte[] torch, ByteBuffer ours, String what) {
        ByteBuffer t = ByteBuffer.wrap(torch).order(ByteOrder.LITTLE_ENDIAN);
        ours.order(ByteOrder.LITTLE_ENDIAN);
        int w = f.bytesPerValue();
        for (int i = 0; i < values.length; i++) {
            int tb = w == 2 ? t.getShort(2 * i) & 0xFFFF : t.get(i) & 0xFF;
            int ob = w == 2 ? ours.getShort(2 * i) & 0xFFFF : ours.get(i) & 0xFF;
            int scalar = f.encode(values[i]);
            if (scalar != ob && !(f.isNaN(scalar) && f.isNaN(ob)))
                fail(f + " " + what + ": scalar encode " + hex(scalar) + " != bulk " + hex(ob) + " for " + values[i]);
            if (f.isNaN(tb)) {
                if (!f.isNaN(ob)) fail(f + " " + what + ": " + values[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(values[i]))
                        + ") libtorch NaN " + hex(tb) + ", ours " + hex(ob));
            } else if (tb != ob) {
                fail(f + " " + what + ": " + values[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(values[i]))
                        + ") libtorch " + hex(tb) + " = " + f.decode(tb) + ", ours " + hex(ob) + " = " + f.decode(ob));
            }
        }
    }

    static String hex(int b) {
        return "0x" + Integer.toHexString(b);
    }
}
