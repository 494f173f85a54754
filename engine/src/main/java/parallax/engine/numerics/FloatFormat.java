package parallax.engine.numerics;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;

/**
 * The floating-point formats of model training and inference, each with a bit-exact codec
 * from and to FP32.
 *
 * <p>Every format is sign / exponent / mantissa with an exponent bias; they differ in how
 * the top exponent is spent (docs/reference.md#float-layouts):
 * <ul>
 * <li>IEEE 754 style (FP32, FP16, BF16, E5M2): the all-ones exponent holds infinity and NaN.</li>
 * <li>FN, "finite" (E4M3FN, OCP OFP8 spec 2023): no infinity; only S.1111.111 is NaN, so the
 *     top binade holds numbers and the maximum is 448.</li>
 * <li>FNUZ, "finite, no negative zero" (E4M3FNUZ, E5M2FNUZ; Graphcore/AMD): 0x80 is the only
 *     NaN, there is no -0 and no infinity, and the bias is one larger.</li>
 * </ul>
 *
 * <p>Encoding rounds to nearest, ties to even, and follows {@link Rounding} at the top of
 * the range. {@link Rounding#NON_SATURATING} reproduces PyTorch's {@code to(dtype)} bit for
 * bit, NaN payloads aside: a NaN input encodes as this format's canonical NaN ({@link #nanBits()},
 * with the input's sign where the format has signed NaNs). Decoding is exact (every value
 * of these formats is an FP32 value).
 *
 * <p>Bulk forms take {@code float[]} and {@code short[]} (16-bit formats), {@code byte[]}
 * (8-bit formats) or a {@link ByteBuffer} of little-endian file data.
 */
public enum FloatFormat {

    FP32("FP32", 8, 23, 127, Specials.IEEE, 0x7FC00000, List.of("fp32", "float32", "float", "f32"),
            "every CPU and GPU; the master-weight and accumulation format of mixed precision"),
    FP16("FP16", 5, 10, 15, Specials.IEEE, 0x7E00, List.of("fp16", "float16", "half", "f16"),
            "NVIDIA tensor cores since Volta (V100), AMD GPUs, ARMv8.2 CPUs, x86 AVX512-FP16; F16C converts on x86"),
    BF16("BF16", 8, 7, 127, Specials.IEEE, 0x7FC0, List.of("bf16", "bfloat16"),
            "Google TPU v2+, NVIDIA Ampere (A100) and newer, AMD MI200+, Intel AVX512_BF16/AMX, ARMv8.6"),
    E4M3FN("FP8 E4M3FN", 4, 3, 7, Specials.FN, 0x7F, List.of("e4m3", "e4m3fn", "fp8", "fp8_e4m3", "fp8_e4m3fn", "float8_e4m3fn", "f8_e4m3"),
            "NVIDIA Hopper (H100), Ada (L40, RTX 40) and Blackwell, Intel Gaudi 2/3, AMD MI350 (OCP FP8)"),
    E5M2("FP8 E5M2", 5, 2, 15, Specials.IEEE, 0x7F, List.of("e5m2", "fp8_e5m2", "float8_e5m2", "f8_e5m2"),
            "NVIDIA Hopper, Ada and Blackwell, Intel Gaudi 2/3, AMD MI350 (OCP FP8)"),
    E4M3FNUZ("FP8 E4M3FNUZ", 4, 3, 8, Specials.FNUZ, 0x80, List.of("e4m3fnuz", "fp8_e4m3fnuz", "float8_e4m3fnuz", "f8_e4m3fnuz"),
            "AMD Instinct MI300 (CDNA 3), Graphcore IPU"),
    E5M2FNUZ("FP8 E5M2FNUZ", 5, 2, 16, Specials.FNUZ, 0x80, List.of("e5m2fnuz", "fp8_e5m2fnuz", "float8_e5m2fnuz", "f8_e5m2fnuz"),
            "AMD Instinct MI300 (CDNA 3), Graphcore IPU");

    /** How a format spends its all-ones exponent and its negative zero. */
    public enum Specials {
        /** IEEE 754: all-ones exponent = infinity (mantissa 0) or NaN; -0 exists. */
        IEEE,
        /** No infinity; only all-ones exponent and mantissa is NaN; -0 exists. */
        FN,
        /** No infinity, no -0; the pattern of -0 (sign bit alone) is the only NaN. */
        FNUZ
    }

    private final String label;
    private final int exponentBits;
    private final int mantissaBits;
    private final int bias;
    private final Specials specials;
    private final int nanBits;
    private final List<String> names;
    private final String hardware;
    // Derived encoder constants, as bit patterns without the sign.
    private final int signBit;
    private final int maxBits;
    private final int overflowBits;
    private final int minNormalFloatBits;
    // A float whose ulp is this format's smallest subnormal (see encodeBits).
    private final float magic;
    // Decode table for the 8- and 16-bit formats (BF16 decodes by a shift and ignores it).
    private final float[] table;

    FloatFormat(String label, int exponentBits, int mantissaBits, int bias, Specials specials, int nanBits,
                List<String> names, String hardware) {
        this.label = label;
        this.exponentBits = exponentBits;
        this.mantissaBits = mantissaBits;
        this.bias = bias;
        this.specials = specials;
        this.nanBits = nanBits;
        this.names = names;
        this.hardware = hardware;
        int expOnes = (1 << exponentBits) - 1;
        int mantOnes = (1 << mantissaBits) - 1;
        this.signBit = 1 << (exponentBits + mantissaBits);
        // (if/else, not a switch: a switch on an enum here would run before the enum exists)
        if (specials == Specials.IEEE) {
            maxBits = ((expOnes - 1) << mantissaBits) | mantOnes;
            overflowBits = expOnes << mantissaBits; // infinity
        } else if (specials == Specials.FN) {
            maxBits = (expOnes << mantissaBits) | (mantOnes - 1);
            overflowBits = nanBits;
        } else {
            maxBits = (expOnes << mantissaBits) | mantOnes;
            overflowBits = nanBits;
        }
        this.minNormalFloatBits = (127 + 1 - bias) << 23;
        this.magic = Float.intBitsToFloat(((127 - bias) + (23 - mantissaBits) + 1) << 23);
        this.table = bits() <= 16 ? buildTable() : null;
    }

    // ---------------------------------------------------------------- facts

    /** Display name, e.g. "FP8 E4M3FN". */
    public String label() { return label; }

    /** The short name used on command lines, e.g. "e4m3" or "bf16". */
    public String shortName() { return names.get(0); }

    /** Accepted spellings of this format's name (lower case). */
    public List<String> names() { return names; }

    public int bits() { return 1 + exponentBits + mantissaBits; }

    public int bytesPerValue() { return bits() / 8; }

    public int exponentBits() { return exponentBits; }

    public int mantissaBits() { return mantissaBits; }

    public int bias() { return bias; }

    public Specials specials() { return specials; }

    public boolean hasInfinity() { return specials == Specials.IEEE; }

    public boolean hasNegativeZero() { return specials != Specials.FNUZ; }

    /** The NaN this codec writes (positive where NaNs are signed). */
    public int nanBits() { return nanBits; }

    /** Bit pattern of the largest finite value. */
    public int maxFiniteBits() { return maxBits; }

    public float maxFinite() { return decode(maxBits); }

    /** 2^(1 - bias). */
    public float minNormal() { return Math.scalb(1f, 1 - bias); }

    /** 2^(1 - bias - mantissaBits). */
    public float minSubnormal() { return Math.scalb(1f, 1 - bias - mantissaBits); }

    /** Machine epsilon: the gap between 1 and the next value, 2^-mantissaBits. */
    public float epsilon() { return Math.scalb(1f, -mantissaBits); }

    /** Decimal digits carried by the significand: (mantissaBits + 1) log10 2. */
    public double decimalDigits() { return (mantissaBits + 1) * Math.log10(2); }

    /**
     * The midpoint between {@link #maxFinite()} and the next value the format would have:
     * max + half the spacing of the top binade. Anything above it overflows. The midpoint
     * itself is a tie: it overflows when max's mantissa is odd (FP16, BF16, E5M2, FNUZ) and
     * rounds down to max for E4M3FN, whose max 1.110 is even (464 -> 448, 465 -> NaN).
     */
    public double overflowThreshold() {
        double max = maxFinite();
        int topExponent = Math.getExponent(max);
        return max + Math.scalb(1.0, topExponent - mantissaBits - 1);
    }

    /** How infinity and NaN are encoded, in words. */
    public String specialValues() {
        switch (specials) {
            case IEEE: return "inf, NaN (all-ones exponent)";
            case FN: return "no inf; NaN = S.1111.111 only";
            default: return "no inf, no -0; NaN = 0x80 only";
        }
    }

    /** Where hardware computes in this format (as of 2025). */
    public String hardware() { return hardware; }

    /**
     * The format named {@code name} (any spelling in {@link #names()}, case-insensitive).
     *
     * @throws UserError naming the unknown format and the close ones
     */
    public static FloatFormat parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        for (FloatFormat f : values()) {
            if (f.names.contains(n) || f.name().toLowerCase(Locale.ROOT).equals(n)) return f;
        }
        throw new UserError("unknown number format '" + name + "'." + DidYouMean.hint(n, knownNames())
                + " Known: " + String.join(", ", shortNames()) + ".");
    }

    /** Parses a comma-separated list such as "fp16,bf16,e4m3". */
    public static List<FloatFormat> parseList(String csv) {
        List<FloatFormat> out = new ArrayList<>();
        for (String part : csv.split(",")) {
            if (part.isBlank()) continue;
            FloatFormat f = parse(part);
            if (!out.contains(f)) out.add(f);
        }
        if (out.isEmpty()) throw new UserError("no number format given. Known: " + String.join(", ", shortNames()) + ".");
        return out;
    }

    static List<String> shortNames() {
        List<String> s = new ArrayList<>();
        for (FloatFormat f : values()) s.add(f.shortName());
        return s;
    }

    private static List<String> knownNames() {
        List<String> s = new ArrayList<>();
        for (FloatFormat f : values()) s.addAll(f.names);
        return Collections.unmodifiableList(s);
    }

    /** Splits an encoded value into its fields: sign, biased exponent, mantissa. */
    public Map<String, Integer> fields(int bits) {
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("sign", (bits >>> (exponentBits + mantissaBits)) & 1);
        m.put("exponent", (bits >>> mantissaBits) & ((1 << exponentBits) - 1));
        m.put("mantissa", bits & ((1 << mantissaBits) - 1));
        return m;
    }

    /** The bits as a string with the fields separated by dots, e.g. "0.1111.110". */
    public String bitString(int bits) {
        StringBuilder sb = new StringBuilder();
        for (int i = bits() - 1; i >= 0; i--) {
            sb.append((bits >>> i) & 1);
            if (i == bits() - 1 || i == mantissaBits) sb.append('.');
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- scalar codec

    /** Encodes with {@link Rounding#NON_SATURATING} (PyTorch's cast). */
    public int encode(float value) {
        return encode(value, Rounding.NON_SATURATING);
    }

    /** The nearest value of this format (ties to even) as an unsigned bit pattern. */
    public int encode(float value, Rounding rounding) {
        int b = Float.floatToRawIntBits(value);
        if (this == FP32) return b;
        if (this == BF16) return encodeBf16(b, rounding == Rounding.SATURATE);
        return encodeBits(b, 23 - mantissaBits, (bias - 127) << 23, minNormalFloatBits, magic, maxBits, overflowBits,
                nanBits, exponentBits + mantissaBits, specials == Specials.FNUZ, rounding == Rounding.SATURATE);
    }

    /** The FP32 value of a bit pattern of this format (only the low {@link #bits()} bits are read). */
    public float decode(int bits) {
        switch (this) {
            case FP32: return Float.intBitsToFloat(bits);
            case BF16: return Float.intBitsToFloat((bits & 0xFFFF) << 16);
            default: return table()[bits & (signBit * 2 - 1)];
        }
    }

    /** decode(encode(value)): the value this format stores for {@code value}. */
    public float round(float value, Rounding rounding) {
        return decode(encode(value, rounding));
    }

    public float round(float value) {
        return round(value, Rounding.NON_SATURATING);
    }

    /** Whether the bit pattern is a NaN of this format. */
    public boolean isNaN(int bits) {
        return Float.isNaN(decode(bits));
    }

    // BF16 is FP32 with the low 16 bits rounded away, so round-to-nearest-even is one add.
    private static int encodeBf16(int b, boolean saturate) {
        if ((b & 0x7FFFFFFF) > 0x7F800000) return ((b >>> 16) & 0x8000) | 0x7FC0;
        int r = (b + 0x7FFF + ((b >>> 16) & 1)) >>> 16;
        if (saturate && (r & 0x7FFF) == 0x7F80) r = (r & 0x8000) | 0x7F7F;
        return r;
    }

    /**
     * Round-to-nearest-even from FP32 bits to a narrower format with {@code 23 - shift}
     * mantissa bits (the scheme of c10/util/Half.h and Float8_*.h).
     * <ul>
     * <li>Normal results: re-bias the exponent ({@code biasAdjust} = (bias - 127) << 23), add
     *     the rounding increment (half an ulp minus one, plus the lowest kept bit, so ties go
     *     to even) and shift; a carry out of the mantissa correctly bumps the exponent.</li>
     * <li>Subnormal results: add a float {@code magic} whose ulp is the target's subnormal
     *     unit 2^(1 - bias - m); the FPU's own round-to-nearest-even then leaves the target's
     *     bits at the bottom of the sum's mantissa (a carry into the exponent field gives the
     *     smallest normal).</li>
     * <li>Past the max, infinity or NaN: the overflow pattern (inf or NaN) or the max when
     *     saturating; NaN inputs give this format's NaN.</li>
     * </ul>
     * The bulk loops ({@link ScalarLoops}, {@link VectorLoops}) repeat this body with the format's constants.
     */
    static int encodeBits(int b, int shift, int biasAdjust, int minNormalFloatBits, float magic, int maxBits,
                          int overflowBits, int nanBits, int signShift, boolean fnuz, boolean saturate) {
        int a = b & 0x7FFFFFFF;
        int sign = (b >>> 31) << signShift;
        int r;
        if (a >= minNormalFloatBits) {
            r = (a + biasAdjust + ((1 << (shift - 1)) - 1) + ((a >>> shift) & 1)) >>> shift;
            if (r > maxBits) r = a > 0x7F800000 ? nanBits : saturate ? maxBits : overflowBits;
        } else {
            r = Float.floatToRawIntBits(Float.intBitsToFloat(a) + magic) - Float.floatToRawIntBits(magic);
            if (fnuz && r == 0) return 0; // FNUZ has no -0
        }
        return r | sign;
    }

    /** The exact FP32 value of a pattern, computed from the fields (used to build tables). */
    double decodeExact(int bits) {
        int sign = (bits >>> (exponentBits + mantissaBits)) & 1;
        int e = (bits >>> mantissaBits) & ((1 << exponentBits) - 1);
        int mant = bits & ((1 << mantissaBits) - 1);
        int expOnes = (1 << exponentBits) - 1;
        if (specials == Specials.IEEE) {
            if (e == expOnes) return mant == 0 ? (sign == 0 ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY) : Double.NaN;
        } else if (specials == Specials.FN) {
            if (e == expOnes && mant == (1 << mantissaBits) - 1) return Double.NaN;
        } else if (sign == 1 && e == 0 && mant == 0) {
            return Double.NaN;
        }
        double v = e == 0
                ? Math.scalb((double) mant, 1 - bias - mantissaBits)
                : Math.scalb((double) (mant | (1 << mantissaBits)), e - bias - mantissaBits);
        return sign == 1 ? -v : v;
    }

    float[] table() {
        return table;
    }

    // The encoder's constants, for the bulk loops (see encodeBits).
    int biasAdjust() { return (bias - 127) << 23; }

    int minNormalFloatBits() { return minNormalFloatBits; }

    int overflowBits() { return overflowBits; }

    float magic() { return magic; }

    private float[] buildTable() {
        float[] t = new float[signBit * 2];
        for (int i = 0; i < t.length; i++) {
            double v = decodeExact(i);
            if (Double.isNaN(v)) {
                // A NaN keeps its sign and its payload moved to the top of FP32's mantissa,
                // with the quiet bit set.
                int sign = (i & signBit) != 0 ? 0x80000000 : 0;
                int payload = (i & ((1 << mantissaBits) - 1)) << (23 - mantissaBits);
                t[i] = Float.intBitsToFloat(sign | 0x7FC00000 | payload);
            } else {
                t[i] = (float) v;
            }
        }
        return t;
    }

    // ---------------------------------------------------------------- bulk codec

    /**
     * Encodes {@code n} values of {@code src} from {@code srcPos} into 16-bit patterns, on the
     * fastest {@link CodecPath} this JVM offers.
     */
    public void encode(float[] src, int srcPos, short[] dst, int dstPos, int n, Rounding rounding) {
        require(16);
        Paths.ENCODE[ordinal()].encode(this, src, srcPos, dst, dstPos, n, rounding);
    }

    /** Encodes {@code n} values of {@code src} from {@code srcPos} into 8-bit patterns. */
    public void encode(float[] src, int srcPos, byte[] dst, int dstPos, int n, Rounding rounding) {
        require(8);
        Paths.ENCODE[ordinal()].encode(this, src, srcPos, dst, dstPos, n, rounding);
    }

    /** Decodes {@code n} 16-bit patterns into floats. */
    public void decode(short[] src, int srcPos, float[] dst, int dstPos, int n) {
        require(16);
        Paths.DECODE[ordinal()].decode(this, src, srcPos, dst, dstPos, n);
    }

    /** Decodes {@code n} 8-bit patterns into floats. */
    public void decode(byte[] src, int srcPos, float[] dst, int dstPos, int n) {
        require(8);
        Paths.DECODE[ordinal()].decode(this, src, srcPos, dst, dstPos, n);
    }

    /** The {@link CodecPath} the bulk codecs of this format use in this JVM, encoding or decoding. */
    public CodecPath codecPath(boolean encode) {
        return (encode ? Paths.ENCODE : Paths.DECODE)[ordinal()];
    }

    /** The path of each format and direction, picked once (after every format exists). */
    private static final class Paths {
        static final CodecPath[] ENCODE = new CodecPath[values().length], DECODE = new CodecPath[values().length];

        static {
            for (FloatFormat f : values()) {
                ENCODE[f.ordinal()] = CodecPath.chosen(f, true);
                DECODE[f.ordinal()] = CodecPath.chosen(f, false);
            }
        }
    }

    public short[] encodeToShorts(float[] src, Rounding rounding) {
        short[] out = new short[src.length];
        encode(src, 0, out, 0, src.length, rounding);
        return out;
    }

    public byte[] encodeToBytes(float[] src, Rounding rounding) {
        byte[] out = new byte[src.length];
        encode(src, 0, out, 0, src.length, rounding);
        return out;
    }

    public float[] decode(short[] src) {
        float[] out = new float[src.length];
        decode(src, 0, out, 0, src.length);
        return out;
    }

    public float[] decode(byte[] src) {
        float[] out = new float[src.length];
        decode(src, 0, out, 0, src.length);
        return out;
    }

    /**
     * Rounds every value in place to the nearest value of this format (encode then decode),
     * the "fake quantisation" used for error analysis.
     */
    public void roundInPlace(float[] values, Rounding rounding) {
        final int chunk = 4096;
        if (bits() == 32) return;
        if (bits() == 16) {
            short[] buf = new short[chunk];
            for (int off = 0; off < values.length; off += chunk) {
                int n = Math.min(chunk, values.length - off);
                encode(values, off, buf, 0, n, rounding);
                decode(buf, 0, values, off, n);
            }
        } else {
            byte[] buf = new byte[chunk];
            for (int off = 0; off < values.length; off += chunk) {
                int n = Math.min(chunk, values.length - off);
                encode(values, off, buf, 0, n, rounding);
                decode(buf, 0, values, off, n);
            }
        }
    }

    /**
     * Encodes {@code src} into {@code dst} at its position, little-endian (as safetensors and
     * GGUF store data), advancing the position by {@code src.length * bytesPerValue()}.
     */
    public void encode(float[] src, ByteBuffer dst, Rounding rounding) {
        ByteBuffer d = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int pos = d.position();
        int n = src.length;
        if (d.remaining() < (long) n * bytesPerValue()) {
            throw new IllegalArgumentException("buffer has " + d.remaining() + " bytes, needs " + (long) n * bytesPerValue());
        }
        switch (bits()) {
            case 32:
                for (int i = 0; i < n; i++) d.putFloat(pos + 4 * i, src[i]);
                break;
            case 16: {
                short[] buf = new short[Math.min(n, 4096)];
                for (int off = 0; off < n; off += buf.length) {
                    int k = Math.min(buf.length, n - off);
                    encode(src, off, buf, 0, k, rounding);
                    for (int i = 0; i < k; i++) d.putShort(pos + 2 * (off + i), buf[i]);
                }
                break;
            }
            default: {
                byte[] buf = new byte[Math.min(n, 4096)];
                for (int off = 0; off < n; off += buf.length) {
                    int k = Math.min(buf.length, n - off);
                    encode(src, off, buf, 0, k, rounding);
                    d.position(pos + off);
                    d.put(buf, 0, k);
                }
            }
        }
        dst.position(pos + n * bytesPerValue());
    }

    /**
     * Decodes {@code dst.length} little-endian values from {@code src} at its position,
     * advancing the position.
     */
    public void decode(ByteBuffer src, float[] dst) {
        ByteBuffer s = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int pos = s.position();
        int n = dst.length;
        if (s.remaining() < (long) n * bytesPerValue()) {
            throw new IllegalArgumentException("buffer has " + s.remaining() + " bytes, needs " + (long) n * bytesPerValue());
        }
        switch (bits()) {
            case 32:
                for (int i = 0; i < n; i++) dst[i] = s.getFloat(pos + 4 * i);
                break;
            case 16:
                if (this == BF16) {
                    for (int i = 0; i < n; i++) dst[i] = Float.intBitsToFloat(s.getShort(pos + 2 * i) << 16);
                } else {
                    float[] t = table();
                    for (int i = 0; i < n; i++) dst[i] = t[s.getShort(pos + 2 * i) & 0xFFFF];
                }
                break;
            default: {
                float[] t = table();
                for (int i = 0; i < n; i++) dst[i] = t[s.get(pos + i) & 0xFF];
            }
        }
        src.position(pos + n * bytesPerValue());
    }

    private void require(int width) {
        if (bits() != width) {
            throw new IllegalArgumentException(label + " values are " + bits() + " bits wide, not " + width);
        }
    }
}
