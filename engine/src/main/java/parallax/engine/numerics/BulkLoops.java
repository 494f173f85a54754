package parallax.engine.numerics;

/**
 * The bulk loops behind {@link FloatFormat}'s array codecs, one implementation per
 * {@link CodecPath}. Every implementation gives the bits of {@link FloatFormat#encode(float, Rounding)}
 * and {@link FloatFormat#decode(int)} for every input; only NaN payloads may differ
 * (docs/precision.md: the payload is not a contract, libtorch's own paths disagree on it).
 */
interface BulkLoops {

    /** 16-bit encode (FP16, BF16). */
    void encode(FloatFormat f, float[] src, int srcPos, short[] dst, int dstPos, int n, boolean saturate);

    /** 8-bit encode (the FP8 formats). */
    void encode(FloatFormat f, float[] src, int srcPos, byte[] dst, int dstPos, int n, boolean saturate);

    /** 16-bit decode. */
    void decode(FloatFormat f, short[] src, int srcPos, float[] dst, int dstPos, int n);

    /** 8-bit decode. */
    void decode(FloatFormat f, byte[] src, int srcPos, float[] dst, int dstPos, int n);

    /** Whether this implementation has a loop of its own for {@code f} in this direction (else it is not asked). */
    boolean handles(FloatFormat f, boolean encode);
}
