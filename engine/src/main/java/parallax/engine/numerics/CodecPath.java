package parallax.engine.numerics;

import java.util.Locale;

/**
 * How {@link FloatFormat}'s array codecs run, picked once per JVM from what it offers:
 * <ul>
 * <li>{@link #SCALAR}: Java 17 loops, one value at a time; always there, and the reference
 *     the others are tested against;</li>
 * <li>{@link #VECTOR}: the incubating Vector API, when the JVM was started with
 *     {@code --add-modules jdk.incubator.vector} (Java 17 or newer);</li>
 * <li>{@link #FLOAT16}: FP16 only, {@code Float.floatToFloat16}/{@code float16ToFloat}
 *     (Java 20 or newer, no flag needed).</li>
 * </ul>
 * Every path gives the same bits (NaN payloads aside). {@link #chosen} prefers FLOAT16 for
 * FP16, then VECTOR, then SCALAR; the system property {@code parallax.codec}
 * ({@code scalar}, {@code vector}, {@code float16}) pins one where it applies.
 */
public enum CodecPath {

    SCALAR("Java 17 loops, one value at a time"),
    VECTOR("jdk.incubator.vector SIMD lanes"),
    FLOAT16("Float.floatToFloat16 / float16ToFloat (Java 20+ intrinsics)");

    private final String description;

    CodecPath(String description) { this.description = description; }

    /** What this path is, in a few words (with the lane width for VECTOR). */
    public String description() {
        return this == VECTOR && available() ? description + " (" + Loaded.vectorBits + "-bit)" : description;
    }

    /** Whether this JVM offers the path. */
    public boolean available() { return loops() != null; }

    /** Whether the path has its own loop for {@code f} in this direction. */
    public boolean handles(FloatFormat f, boolean encode) {
        BulkLoops l = loops();
        return l != null && f.bits() <= 16 && f != FloatFormat.FP32 && l.handles(f, encode);
    }

    /** The path {@link FloatFormat}'s bulk codecs use for {@code f} in this direction. */
    public static CodecPath chosen(FloatFormat f, boolean encode) {
        String pinned = System.getProperty("parallax.codec", "auto").trim().toLowerCase(Locale.ROOT);
        for (CodecPath p : values()) {
            if (p.name().toLowerCase(Locale.ROOT).equals(pinned)) return p.handles(f, encode) ? p : SCALAR;
        }
        if (FLOAT16.handles(f, encode)) return FLOAT16;
        if (VECTOR.handles(f, encode)) return VECTOR;
        return SCALAR;
    }

    // ---- the loops of this path, for benchmarks and tests; FloatFormat's bulk methods use chosen() ----

    public void encode(FloatFormat f, float[] src, int srcPos, short[] dst, int dstPos, int n, Rounding rounding) {
        check(f, true, 16, src.length, srcPos, dst.length, dstPos, n);
        loops().encode(f, src, srcPos, dst, dstPos, n, rounding == Rounding.SATURATE);
    }

    public void encode(FloatFormat f, float[] src, int srcPos, byte[] dst, int dstPos, int n, Rounding rounding) {
        check(f, true, 8, src.length, srcPos, dst.length, dstPos, n);
        loops().encode(f, src, srcPos, dst, dstPos, n, rounding == Rounding.SATURATE);
    }

    public void decode(FloatFormat f, short[] src, int srcPos, float[] dst, int dstPos, int n) {
        check(f, false, 16, src.length, srcPos, dst.length, dstPos, n);
        loops().decode(f, src, srcPos, dst, dstPos, n);
    }

    public void decode(FloatFormat f, byte[] src, int srcPos, float[] dst, int dstPos, int n) {
        check(f, false, 8, src.length, srcPos, dst.length, dstPos, n);
        loops().decode(f, src, srcPos, dst, dstPos, n);
    }

    private void check(FloatFormat f, boolean encode, int width, int srcLength, int srcPos, int dstLength, int dstPos, int n) {
        if (f.bits() != width) throw new IllegalArgumentException(f.label() + " values are " + f.bits() + " bits wide, not " + width);
        if (!handles(f, encode)) throw new IllegalStateException(this + " has no " + (encode ? "encoder" : "decoder") + " for " + f.label()
                + (available() ? "" : " (not available in this JVM)"));
        // Vector loads and stores check bounds per lane group; check the whole range once, as the scalar loop would fail.
        if (n < 0 || srcPos < 0 || dstPos < 0 || srcPos > srcLength - n || dstPos > dstLength - n)
            throw new ArrayIndexOutOfBoundsException("range [" + srcPos + ", +" + n + ") of " + srcLength + " into [" + dstPos + ", +" + n
                    + ") of " + dstLength);
    }

    BulkLoops loops() {
        switch (this) {
            case SCALAR: return ScalarLoops.INSTANCE;
            case VECTOR: return Loaded.vector;
            default: return Loaded.float16;
        }
    }

    /** The optional paths, probed on first use. */
    private static final class Loaded {
        static final BulkLoops vector;
        static final int vectorBits;
        static final BulkLoops float16 = Float16Loops.available() ? new Float16Loops() : null;

        static {
            BulkLoops v = null;
            int bits = 0;
            // Only a JVM started with --add-modules jdk.incubator.vector has the module in its boot
            // layer; VectorLoops is not even loaded otherwise.
            if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
                try {
                    Class<?> c = Class.forName("parallax.engine.numerics.VectorLoops");
                    v = (BulkLoops) c.getDeclaredConstructor().newInstance();
                    bits = (int) c.getDeclaredMethod("laneBits").invoke(null);
                } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
                    v = null; // too narrow a machine, or an API this JVM lacks: the scalar loops stay
                }
            }
            vector = v;
            vectorBits = bits;
        }
    }
}
