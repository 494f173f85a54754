package parallax.engine.numerics;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The SIMD path ({@link CodecPath#VECTOR}): the same integer rounding as {@link ScalarLoops},
 * lane by lane with the incubating Vector API of Java 17+ ({@code jdk.incubator.vector}, JEP 414),
 * whose operations the JIT turns into AVX2/AVX-512 (or NEON) instructions. Both branches of
 * the scalar code (normal and subnormal results, overflow, NaN) are computed for every lane
 * and picked with masks; the 32-bit lanes are then narrowed to 16 or 8 bits.
 *
 * <p>This class is loaded only when the JVM was started with
 * {@code --add-modules jdk.incubator.vector} ({@link CodecPath}); it is the only class that
 * names the module. FP8 decoding stays a table lookup (already faster than libtorch's).
 */
final class VectorLoops implements BulkLoops {

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, I.vectorShape());
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(I.vectorBitSize() / 2));
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(I.vectorBitSize() / 4));
    private static final float TWO_POW_MINUS_24 = 0x1p-24f;

    /** Bits of the lanes the JIT uses (256 on AVX2, 512 where the JVM enables AVX-512). */
    static int laneBits() { return I.vectorBitSize(); }

    /** Created reflectively by {@link CodecPath}; fails when the module is not in the boot layer. */
    VectorLoops() {
        if (I.vectorBitSize() < 256) throw new IllegalStateException("vectors of " + I.vectorBitSize() + " bits");
    }

    @Override
    public boolean handles(FloatFormat f, boolean encode) {
        return encode || f.bits() == 16; // FP8 decoding: the scalar table lookup
    }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, short[] dst, int dstPos, int n, boolean sat) {
        int i = 0, bound = I.loopBound(n);
        if (f == FloatFormat.BF16) {
            for (; i < bound; i += I.length()) {
                IntVector b = FloatVector.fromArray(F, src, srcPos + i).reinterpretAsInts();
                IntVector high = b.lanewise(VectorOperators.LSHR, 16);
                // round to nearest even: add 0x7FFF plus the lowest kept bit, drop 16 bits
                IntVector r = b.add(high.and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
                if (sat) r = r.blend(r.and(0x8000).or(0x7F7F), r.and(0x7FFF).compare(VectorOperators.EQ, 0x7F80));
                r = r.blend(high.and(0x8000).or(0x7FC0), b.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000));
                ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoArray(dst, dstPos + i);
            }
        } else {
            Narrowing c = new Narrowing(f, sat, 15);
            for (; i < bound; i += I.length()) {
                IntVector r = c.round(FloatVector.fromArray(F, src, srcPos + i).reinterpretAsInts());
                ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoArray(dst, dstPos + i);
            }
        }
        ScalarLoops.INSTANCE.encode(f, src, srcPos + i, dst, dstPos + i, n - i, sat);
    }

    @Override
    public void encode(FloatFormat f, float[] src, int srcPos, byte[] dst, int dstPos, int n, boolean sat) {
        int i = 0, bound = I.loopBound(n);
        Narrowing c = new Narrowing(f, sat, 7);
        for (; i < bound; i += I.length()) {
            IntVector r = c.round(FloatVector.fromArray(F, src, srcPos + i).reinterpretAsInts());
            ((ByteVector) r.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, dstPos + i);
        }
        ScalarLoops.INSTANCE.encode(f, src, srcPos + i, dst, dstPos + i, n - i, sat);
    }

    /** {@link FloatFormat#encodeBits} for all lanes: both branches, then masks pick. */
    private static final class Narrowing {
        final int shift, adjustAndHalf, minNormal, max, overflow, nan, magicBits, signShift;
        final float magic;
        final boolean fnuz;

        Narrowing(FloatFormat f, boolean sat, int signShift) {
            shift = 23 - f.mantissaBits();
            adjustAndHalf = f.biasAdjust() + (1 << (shift - 1)) - 1;
            minNormal = f.minNormalFloatBits();
            max = f.maxFiniteBits();
            overflow = sat ? f.maxFiniteBits() : f.overflowBits();
            nan = f.nanBits();
            magic = f.magic();
            magicBits = Float.floatToRawIntBits(magic);
            fnuz = f.specials() == FloatFormat.Specials.FNUZ;
            this.signShift = signShift;
        }

        IntVector round(IntVector b) {
            IntVector a = b.and(0x7FFFFFFF);
            // normal results: re-bias, add half an ulp minus one plus the lowest kept bit, shift
            IntVector normal = a.add(adjustAndHalf).add(a.lanewise(VectorOperators.LSHR, shift).and(1))
                    .lanewise(VectorOperators.LSHR, shift);
            normal = normal.blend(overflow, normal.compare(VectorOperators.GT, max));
            normal = normal.blend(nan, a.compare(VectorOperators.GT, 0x7F800000));
            // subnormal results: the FPU rounds when the magic number is added
            IntVector sub = ((FloatVector) a.reinterpretAsFloats()).add(magic).reinterpretAsInts().sub(magicBits);
            VectorMask<Integer> isNormal = a.compare(VectorOperators.GE, minNormal);
            IntVector r = sub.blend(normal, isNormal);
            IntVector signed = r.or(b.lanewise(VectorOperators.LSHR, 31).lanewise(VectorOperators.LSHL, signShift));
            return fnuz ? signed.blend(0, r.compare(VectorOperators.EQ, 0)) : signed;
        }
    }

    @Override
    public void decode(FloatFormat f, short[] src, int srcPos, float[] dst, int dstPos, int n) {
        int i = 0, bound = I.loopBound(n);
        if (f == FloatFormat.BF16) {
            for (; i < bound; i += I.length()) {
                IntVector v = (IntVector) ShortVector.fromArray(S, src, srcPos + i).convertShape(VectorOperators.S2I, I, 0);
                v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstPos + i);
            }
        } else {
            // FP16 from its fields: re-bias normal exponents, move inf/NaN to FP32's top exponent
            // (NaN with the quiet bit, as the decode table), and scale subnormals by 2^-24.
            for (; i < bound; i += I.length()) {
                IntVector h = ((IntVector) ShortVector.fromArray(S, src, srcPos + i).convertShape(VectorOperators.S2I, I, 0)).and(0xFFFF);
                IntVector mag = h.and(0x7FFF);
                IntVector m = mag.lanewise(VectorOperators.LSHL, 13);
                IntVector normal = m.add((127 - 15) << 23);
                IntVector special = m.add((255 - 31) << 23);
                special = special.blend(special.or(0x00400000), mag.compare(VectorOperators.GT, 0x7C00));
                IntVector sub = ((FloatVector) mag.convert(VectorOperators.I2F, 0)).mul(TWO_POW_MINUS_24).reinterpretAsInts();
                IntVector bits = normal.blend(special, mag.compare(VectorOperators.GE, 0x7C00))
                        .blend(sub, mag.compare(VectorOperators.LT, 0x0400));
                bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().intoArray(dst, dstPos + i);
            }
        }
        ScalarLoops.INSTANCE.decode(f, src, srcPos + i, dst, dstPos + i, n - i);
    }

    @Override
    public void decode(FloatFormat f, byte[] src, int srcPos, float[] dst, int dstPos, int n) {
        ScalarLoops.INSTANCE.decode(f, src, srcPos, dst, dstPos, n);
    }
}
