package parallax.engine.numerics;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;

/**
 * Block-scaled ("microscaling") formats: a block of elements shares one scale
 * (docs/reference.md#microscaling-formats).
 * <ul>
 * <li>OCP MX v1.0 (MXFP8, MXFP6, MXFP4, MXINT8): 32 elements and one E8M0 scale, a power
 *     of two. The scale rule (section 6.3): shared exponent = floor(log2(amax of the
 *     block)) − emax of the element type, clamped to E8M0's [−127, 127]; each element is
 *     x / 2^shared, rounded to nearest even and clamped to the element's max. Because the
 *     exponent is floored, the block's largest values can land above the element's max
 *     (up to 2^(emax+1)) and clamp. A NaN or infinity in a block makes its scale NaN.</li>
 * <li>NVFP4 (NVIDIA Blackwell): 16 E2M1 elements and an E4M3 scale, plus one FP32 scale per
 *     tensor, t = amax(tensor) / (448 · 6), so that the block scales use E4M3's whole range.
 *     Block scale s = E4M3(amax(block) / 6 / t) (nearest even, saturating); element =
 *     E2M1(x / (s · t)); value = element · s · t. The scale is not a power of two, so the
 *     block's largest value maps onto 6 instead of being floored.</li>
 * </ul>
 * The block size is a parameter (the formats' own: 32, 16); blocks run along a row (the
 * last dimension), and a row's last block may be shorter. GGUF stores MXFP4 and NVFP4 in
 * ggml's own block layouts, read by {@link GgmlQuants}; these classes are the formats
 * themselves, as the magic explains and measures them.
 */
public enum BlockFormat {

    MXFP8_E4M3("MXFP8 (E4M3)", MxElement.FP8_E4M3, 32, List.of("mxfp8", "mxfp8_e4m3", "mxfp8e4m3")),
    MXFP8_E5M2("MXFP8 (E5M2)", MxElement.FP8_E5M2, 32, List.of("mxfp8_e5m2", "mxfp8e5m2")),
    MXFP6_E3M2("MXFP6 (E3M2)", MxElement.FP6_E3M2, 32, List.of("mxfp6", "mxfp6_e3m2", "mxfp6e3m2")),
    MXFP6_E2M3("MXFP6 (E2M3)", MxElement.FP6_E2M3, 32, List.of("mxfp6_e2m3", "mxfp6e2m3")),
    MXFP4("MXFP4 (E2M1)", MxElement.FP4_E2M1, 32, List.of("mxfp4")),
    MXINT8("MXINT8", MxElement.INT8, 32, List.of("mxint8")),
    NVFP4("NVFP4 (E2M1)", MxElement.FP4_E2M1, 16, List.of("nvfp4"));

    private final String label;
    private final MxElement element;
    private final int blockSize;
    private final List<String> names;

    BlockFormat(String label, MxElement element, int blockSize, List<String> names) {
        this.label = label;
        this.element = element;
        this.blockSize = blockSize;
        this.names = names;
    }

    public String label() { return label; }

    public String shortName() { return names.get(0); }

    public List<String> names() { return names; }

    public MxElement element() { return element; }

    /** The format's own block size (32 for MX, 16 for NVFP4). */
    public int blockSize() { return blockSize; }

    /** Whether the block scale is E4M3 with a per-tensor FP32 scale (NVFP4) rather than E8M0. */
    public boolean twoLevel() { return this == NVFP4; }

    /** The scale type's name. */
    public String scaleType() { return twoLevel() ? "E4M3 per block + FP32 per tensor" : "E8M0 (power of two)"; }

    /** Storage per value with blocks of {@code block}: element bits + 8 scale bits / block (the per-tensor FP32 not counted). */
    public double bitsPerValue(int block) { return element.bits() + 8.0 / block; }

    /** Where hardware computes in this format (as of 2025). */
    public String hardware() {
        switch (this) {
            case NVFP4: return "NVIDIA Blackwell (B200, GB200, RTX 50) tensor cores";
            case MXINT8: return "defined by OCP MX; little hardware uses it";
            default: return "NVIDIA Blackwell, AMD MI350 (CDNA 4) tensor cores; OCP MX v1.0";
        }
    }

    /** The format named {@code name}, case-insensitive; empty when none. */
    public static java.util.Optional<BlockFormat> find(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        for (BlockFormat f : values()) if (f.names.contains(n) || f.name().toLowerCase(Locale.ROOT).equals(n)) return java.util.Optional.of(f);
        return java.util.Optional.empty();
    }

    /** The format named {@code name}; a {@link UserError} with the close names when there is none. */
    public static BlockFormat parse(String name) {
        return find(name).orElseThrow(() -> new UserError("unknown block format '" + name + "'." + DidYouMean.hint(name, allNames())
                + " Known: " + String.join(", ", shortNames()) + "."));
    }

    public static List<String> shortNames() {
        List<String> s = new ArrayList<>();
        for (BlockFormat f : values()) s.add(f.shortName());
        return s;
    }

    public static List<String> allNames() {
        List<String> s = new ArrayList<>();
        for (BlockFormat f : values()) s.addAll(f.names);
        return s;
    }

    // ---------------------------------------------------------------- the codec

    /**
     * NVFP4's per-tensor FP32 scale t = amax / (448 · 6) of {@code values} (1 when the tensor
     * is all zeros, or for the MX formats, which have none).
     */
    public float tensorScale(float[] values) {
        if (!twoLevel()) return 1f;
        float amax = 0;
        for (float v : values) amax = Math.max(amax, Math.abs(v));
        return tensorScaleOf(amax);
    }

    /** t for a tensor whose largest magnitude is {@code amax}. */
    public float tensorScaleOf(float amax) {
        if (!twoLevel() || amax == 0 || !Float.isFinite(amax)) return 1f;
        return amax / (FloatFormat.E4M3FN.maxFinite() * element.maxFinite());
    }

    /** One block: its scale's code and value, each element's code and the value it decodes to. */
    public record Block(BlockFormat format, int scaleCode, float scale, float tensorScale, int[] codes, float[] values,
                        boolean[] clamped) {
        /** The scale as bits: E8M0's 8, or E4M3's sign.exponent.mantissa. */
        public String scaleBits() {
            return format.twoLevel() ? FloatFormat.E4M3FN.bitString(scaleCode) : E8M0.bitString(scaleCode);
        }
    }

    /**
     * Quantizes {@code len} values of {@code x} from {@code from} as one block;
     * {@code tensorScale} is NVFP4's t ({@link #tensorScale}), ignored by the MX formats.
     */
    public Block quantize(float[] x, int from, int len, float tensorScale) {
        int[] codes = new int[len];
        float[] values = new float[len];
        boolean[] clamped = new boolean[len];
        float amax = 0;
        boolean finite = true;
        for (int i = 0; i < len; i++) {
            float v = x[from + i];
            if (!Float.isFinite(v)) finite = false;
            else amax = Math.max(amax, Math.abs(v));
        }
        if (twoLevel()) {
            if (!finite) {
                java.util.Arrays.fill(values, Float.NaN);
                return new Block(this, FloatFormat.E4M3FN.nanBits(), Float.NaN, tensorScale, codes, values, clamped);
            }
            // s = E4M3(amax / 6 / t): the block's largest value lands on E2M1's max, 6.
            int sc = FloatFormat.E4M3FN.encode(amax / element.maxFinite() / tensorScale, Rounding.SATURATE);
            float s = FloatFormat.E4M3FN.decode(sc);
            float step = s * tensorScale;
            for (int i = 0; i < len; i++) {
                if (step == 0) continue; // a block of zeros (or of values too small for the scale): all zero
                float q = x[from + i] / step;
                clamped[i] = element.clamps(q);
                codes[i] = element.encode(q);
                values[i] = element.decode(codes[i]) * step;
            }
            return new Block(this, sc, s, tensorScale, codes, values, clamped);
        }
        if (!finite) {
            java.util.Arrays.fill(values, Float.NaN);
            return new Block(this, E8M0.NAN, Float.NaN, 1f, codes, values, clamped);
        }
        // OCP MX 6.3: shared exponent = floor(log2 amax) - emax, clamped to E8M0's range; a zero block takes the smallest.
        int shared = amax == 0 ? E8M0.MIN_EXPONENT : E8M0.floorLog2(amax) - element.emax();
        int sc = E8M0.ofExponent(shared);
        int e = E8M0.exponent(sc);
        float scale = E8M0.decode(sc);
        for (int i = 0; i < len; i++) {
            float q = Math.scalb(x[from + i], -e); // exact: a power of two
            clamped[i] = element.clamps(q);
            codes[i] = element.encode(q);
            values[i] = Math.scalb(element.decode(codes[i]), e);
        }
        return new Block(this, sc, scale, 1f, codes, values, clamped);
    }

    /**
     * Rounds {@code values} in place to what this format stores, blocks of {@code block}
     * along rows of {@code rowLength} (a row's last block may be shorter), with one tensor
     * scale for all (NVFP4). Returns how many values were beyond their element's max and
     * clamped.
     */
    public long roundInPlace(float[] values, int rowLength, int block) {
        if (block < 1) throw new UserError("--block must be at least 1, got " + block);
        if (rowLength < 1 || values.length % rowLength != 0)
            throw new IllegalArgumentException("rows of " + rowLength + " do not tile " + values.length + " values");
        float t = tensorScale(values);
        long clamped = 0;
        for (int row = 0; row < values.length; row += rowLength) {
            for (int b = 0; b < rowLength; b += block) {
                int len = Math.min(block, rowLength - b);
                Block q = quantize(values, row + b, len, t);
                System.arraycopy(q.values(), 0, values, row + b, len);
                for (boolean c : q.clamped()) if (c) clamped++;
            }
        }
        return clamped;
    }
}
