package parallax.engine.numerics;

/**
 * The Java 17 path: plain loops, one value at a time ({@link CodecPath#SCALAR}). Each loop
 * writes {@link FloatFormat}'s scalar rounding out with the format's constants, so that the
 * loop does not depend on the JIT's inlining decision. Decoding of every format but BF16 is
 * a table lookup (one float per bit pattern).
 */
final class ScalarLoops implements BulkLoops {

    static final ScalarLoops INSTANCE = new ScalarLoops();

    private ScalarLoops() {}

    @Override
    public boolean handles(FloatFormat f, boolean encode) { return true; }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, short[] dst, int dstPos, int n, boolean sat) {
        if (f == FloatFormat.BF16) {
            for (int i = 0; i < n; i++) {
                int b = Float.floatToRawIntBits(src[srcPos + i]);
                int r;
                if ((b & 0x7FFFFFFF) > 0x7F800000) {
                    r = ((b >>> 16) & 0x8000) | 0x7FC0;
                } else {
                    r = (b + 0x7FFF + ((b >>> 16) & 1)) >>> 16;
                    if (sat && (r & 0x7FFF) == 0x7F80) r = (r & 0x8000) | 0x7F7F;
                }
                dst[dstPos + i] = (short) r;
            }
            return;
        }
        // FP16: FloatFormat.encodeBits with FP16's constants.
        final float magic = f.magic();
        final int magicBits = Float.floatToRawIntBits(magic);
        for (int i = 0; i < n; i++) {
            int b = Float.floatToRawIntBits(src[srcPos + i]);
            int a = b & 0x7FFFFFFF;
            int r;
            if (a >= (127 - 14) << 23) {
                r = (a + ((15 - 127) << 23) + 0xFFF + ((a >>> 13) & 1)) >>> 13;
                if (r > 0x7BFF) r = a > 0x7F800000 ? 0x7E00 : sat ? 0x7BFF : 0x7C00;
            } else {
                r = Float.floatToRawIntBits(Float.intBitsToFloat(a) + magic) - magicBits;
            }
            dst[dstPos + i] = (short) (r | ((b >>> 16) & 0x8000));
        }
    }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, byte[] dst, int dstPos, int n, boolean sat) {
        boolean fnuz = f.specials() == FloatFormat.Specials.FNUZ;
        int shift = 23 - f.mantissaBits(), adj = f.biasAdjust(), mn = f.minNormalFloatBits(), mx = f.maxFiniteBits(),
                ov = f.overflowBits(), nan = f.nanBits();
        float mg = f.magic();
        final int magicBits = Float.floatToRawIntBits(mg), half = (1 << (shift - 1)) - 1;
        for (int i = 0; i < n; i++) {
            int b = Float.floatToRawIntBits(src[srcPos + i]);
            int a = b & 0x7FFFFFFF;
            int r;
            if (a >= mn) {
                r = (a + adj + half + ((a >>> shift) & 1)) >>> shift;
                if (r > mx) r = a > 0x7F800000 ? nan : sat ? mx : ov;
            } else {
                r = Float.floatToRawIntBits(Float.intBitsToFloat(a) + mg) - magicBits;
                if (fnuz && r == 0) {
                    dst[dstPos + i] = 0;
                    continue;
                }
            }
            dst[dstPos + i] = (byte) (r | ((b >>> 24) & 0x80));
        }
    }

    @Override
    public void decode(FloatFormat f, short[] src, int srcPos, float[] dst, int dstPos, int n) {
        if (f == FloatFormat.BF16) {
            for (int i = 0; i < n; i++) dst[dstPos + i] = Float.intBitsToFloat(src[srcPos + i] << 16);
        } else {
            float[] t = f.table();
            for (int i = 0; i < n; i++) dst[dstPos + i] = t[src[srcPos + i] & 0xFFFF];
        }
    }

    @Override
    public void decode(FloatFormat f, byte[] src, int srcPos, float[] dst, int dstPos, int n) {
        float[] t = f.table();
        for (int i = 0; i < n; i++) dst[dstPos + i] = t[src[srcPos + i] & 0xFF];
    }
}
