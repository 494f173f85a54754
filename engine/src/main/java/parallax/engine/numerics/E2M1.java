package parallax.engine.numerics;

/**
 * FP4 E2M1, the element type of the OCP Microscaling formats (OCP MX v1.0, section 5.3.3):
 * one sign bit, two exponent bits (bias 1), one mantissa bit, no infinities and no NaN.
 * The sixteen codes decode to 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (code 8 is
 * -0). MXFP4 (a shared E8M0 scale per 32 elements) and NVFP4 (a UE4M3 scale per 16) both
 * store these codes; this table is their one definition.
 */
public final class E2M1 {

    private E2M1() {}

    /** The value of each 4-bit code, by code. */
    private static final float[] VALUES = {
        0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f,
        -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f,
    };

    /** The value of a 4-bit code (only the low four bits are read). */
    public static float value(int code) { return VALUES[code & 0xf]; }

    /**
     * Twice the value of a code, an integer in -12..12. ggml multiplies these integers by
     * half the block scale, which gives the same products exactly.
     */
    public static int doubled(int code) { return (int) (2 * VALUES[code & 0xf]); }

    /** Largest finite magnitude, 6. */
    public static final float MAX = 6f;
}
