package parallax.engine.numerics;

/**
 * Scalar FP16 / BF16 / FP8 casts for the file codecs, delegating to the bit-exact
 * codecs ({@link FloatFormat}, non-saturating: PyTorch's casts, facts in
 * docs/reference.md#rounding-and-overflow): round to nearest, ties to even; E4M3FN overflow gives NaN, E5M2 overflow
 * infinity; BF16 NaN becomes 0x7FC0.
 */
final class MiniFloats {

    private MiniFloats() {}

    static float halfToFloat(short h) { return FloatFormat.FP16.decode(h & 0xffff); }

    static short floatToHalf(float f) { return (short) FloatFormat.FP16.encode(f); }

    static float bf16ToFloat(short b) { return FloatFormat.BF16.decode(b & 0xffff); }

    static short floatToBf16(float f) { return (short) FloatFormat.BF16.encode(f); }

    static FloatFormat fp8(DType t) {
        switch (t) {
            case F8_E4M3: return FloatFormat.E4M3FN;
            case F8_E5M2: return FloatFormat.E5M2;
            case F8_E4M3FNUZ: return FloatFormat.E4M3FNUZ;
            case F8_E5M2FNUZ: return FloatFormat.E5M2FNUZ;
            default: throw new IllegalArgumentException(t.name());
        }
    }

    static float fp8ToFloat(DType t, byte b) { return fp8(t).decode(b & 0xff); }

    static byte floatToFp8(DType t, float f) { return (byte) fp8(t).encode(f); }
}
