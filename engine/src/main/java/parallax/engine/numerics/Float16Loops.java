package parallax.engine.numerics;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * FP16 through the JDK's own conversions ({@link CodecPath#FLOAT16}):
 * {@code Float.floatToFloat16} and {@code Float.float16ToFloat}, added in Java 20 and
 * compiled by the JIT to the x86 F16C instructions (vcvtps2ph / vcvtph2ps), which it also
 * vectorises in loops. They round to nearest, ties to even, and overflow to infinity, as
 * PyTorch's cast does. The baseline is Java 17, where these methods do not exist, so they
 * are reached through constant method handles (which the JIT inlines like a direct call).
 */
final class Float16Loops implements BulkLoops {

    private static final MethodHandle TO_HALF = find("floatToFloat16", short.class, float.class);
    private static final MethodHandle FROM_HALF = find("float16ToFloat", float.class, short.class);
    private static final float MAX = 65504f;

    private static MethodHandle find(String name, Class<?> result, Class<?> argument) {
        try {
            return MethodHandles.publicLookup().findStatic(Float.class, name, MethodType.methodType(result, argument));
        } catch (ReflectiveOperationException e) {
            return null; // before Java 20
        }
    }

    /** Whether this JVM has the conversions (Java 20+). */
    static boolean available() { return TO_HALF != null && FROM_HALF != null; }

    @Override
    public boolean handles(FloatFormat f, boolean encode) { return f == FloatFormat.FP16; }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, short[] dst, int dstPos, int n, boolean sat) {
        try {
            if (sat) saturating(src, srcPos, dst, dstPos, n);
            else nearest(src, srcPos, dst, dstPos, n);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // One loop per method: each is compiled (and vectorised) on its own, not as part of a larger on-stack-replaced body.

    private static void nearest(float[] src, int srcPos, short[] dst, int dstPos, int n) throws Throwable {
        for (int i = 0; i < n; i++) dst[dstPos + i] = (short) TO_HALF.invokeExact(src[srcPos + i]);
    }

    private static void saturating(float[] src, int srcPos, short[] dst, int dstPos, int n) throws Throwable {
        // Clamping first is saturation: everything past 65504 rounds to it, NaN stays NaN.
        for (int i = 0; i < n; i++) dst[dstPos + i] = (short) TO_HALF.invokeExact(Math.max(-MAX, Math.min(MAX, src[srcPos + i])));
    }

    @Override
    public void decode(FloatFormat f, short[] src, int srcPos, float[] dst, int dstPos, int n) {
        try {
            for (int i = 0; i < n; i++) dst[dstPos + i] = (float) FROM_HALF.invokeExact(src[srcPos + i]);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, byte[] dst, int dstPos, int n, boolean sat) {
        throw new UnsupportedOperationException(f + " is not FP16");
    }

    @Override
    public void decode(FloatFormat f, byte[] src, int srcPos, float[] dst, int dstPos, int n) {
        throw new UnsupportedOperationException(f + " is not FP16");
    }
}
