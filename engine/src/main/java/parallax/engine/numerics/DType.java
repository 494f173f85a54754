package parallax.engine.numerics;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import parallax.engine.numerics.DType;

/**
 * The one element-type enum of the project: what a stored tensor holds, what a training
 * run computes in, what the planner assumes. The names are safetensors' dtype strings
 * (huggingface/safetensors, DType); the rest are ggml block types, which only GGUF stores:
 * blocks of 32 to 256 elements sharing scales (the structs of ggml-common.h, summarised in
 * docs/reference.md#ggml-block-types). Their names are ggml's.
 *
 * <p>Training and planning speak of precisions by their short labels ({@link #label()}):
 * fp32, bf16, fp16, and fp8 (the E4M3 element type of FP8 training recipes).
 */
public enum DType {
    BOOL(8), U8(8), I8(8),
    F8_E5M2(8), F8_E4M3(8), F8_E8M0(8), F8_E4M3FNUZ(8), F8_E5M2FNUZ(8),
    I16(16), U16(16), F16(16), BF16(16),
    I32(32), U32(32), F32(32),
    F64(64), I64(64), U64(64), C64(64),
    F4(4), F6_E2M3(6), F6_E3M2(6),
    // ggml block types: elements per block, bytes per block
    Q8_0(32, 34), Q4_0(32, 18), Q4_1(32, 20), Q5_0(32, 22), Q5_1(32, 24), Q8_1(32, 36),
    // K-quants: super-blocks of 256 with sub-block scales
    Q2_K(256, 84), Q3_K(256, 110), Q4_K(256, 144), Q5_K(256, 176), Q6_K(256, 210), Q8_K(256, 292),
    // i-quants: lattice (grid) codebooks and non-linear levels
    IQ2_XXS(256, 66), IQ2_XS(256, 74), IQ2_S(256, 82), IQ3_XXS(256, 98), IQ3_S(256, 110),
    IQ1_S(256, 50), IQ1_M(256, 56), IQ4_NL(32, 18), IQ4_XS(256, 136),
    // ternary and 1-/2-bit
    TQ1_0(256, 54), TQ2_0(256, 66), Q1_0(128, 18), Q2_0(64, 18),
    // FP4 (E2M1) blocks: an E8M0 scale per 32 (MXFP4), a UE4M3 scale per 16 (NVFP4)
    MXFP4(32, 17), NVFP4(64, 36);

    private final int bits;
    private final int blockElements;
    private final int blockBytes;

    DType(int bits) {
        this.bits = bits;
        this.blockElements = 0;
        this.blockBytes = 0;
    }

    DType(int blockElements, int blockBytes) {
        this.bits = 0;
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
    }

    /** Bits per element; 0 for block types. */
    public int bits() { return bits; }

    /** Bits per element on average, scales included: 4.5 for Q4_K (144 bytes per 256). */
    public double bitsPerWeight() { return isBlock() ? 8.0 * blockBytes / blockElements : bits; }

    public boolean isBlock() { return blockElements > 0; }

    public int blockElements() { return blockElements; }

    public int blockBytes() { return blockBytes; }

    /** True for the types a safetensors header may name. */
    public boolean inSafetensors() { return !isBlock(); }

    /** Whether values of this type can be read as floats for conversion. */
    public boolean isFloatConvertible() {
        switch (this) {
            case F32: case F16: case BF16: case F64: case F8_E4M3: case F8_E5M2:
            case F8_E4M3FNUZ: case F8_E5M2FNUZ:
                return true;
            default:
                return isBlock();
        }
    }

    /**
     * Bytes that {@code elements} elements take, or an error message when they do not fill
     * whole bytes or whole blocks. Throws ArithmeticException on overflow.
     */
    public long bytesFor(long elements) {
        if (isBlock()) {
            if (elements % blockElements != 0) {
                throw new IllegalArgumentException(elements + " elements are not a whole number of " + name()
                        + " blocks of " + blockElements);
            }
            return Math.multiplyExact(elements / blockElements, (long) blockBytes);
        }
        long b = Math.multiplyExact(elements, (long) bits);
        if (b % 8 != 0) {
            throw new IllegalArgumentException(elements + " elements of " + name() + " do not end on a byte boundary");
        }
        return b / 8;
    }

    /** Bytes of one element; only for whole-byte element types (not sub-byte, not block types). */
    public int bytes() {
        if (isBlock() || bits % 8 != 0) throw new IllegalStateException(name() + " has no whole number of bytes per element");
        return bits / 8;
    }

    /** The short name used for precisions: fp32, bf16, fp16, fp8 (E4M3), fp64; else the lower-case name. */
    public String label() {
        switch (this) {
            case F32: return "fp32";
            case F16: return "fp16";
            case BF16: return "bf16";
            case F64: return "fp64";
            case F8_E4M3: return "fp8";
            default: return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** The type whose {@link #label()} is {@code label} (case-insensitive), among {@code allowed}; empty when none. */
    public static Optional<DType> fromLabel(String label, List<DType> allowed) {
        for (DType d : allowed) if (d.label().equalsIgnoreCase(label.trim())) return Optional.of(d);
        return Optional.empty();
    }

    /**
     * The precisions a training run computes in (fp32 master weights behind the 16-bit ones;
     * fp8: the linear layers' matmuls in FP8, E4M3 forward and E5M2 gradients).
     */
    public static final List<DType> TRAINING = List.of(F32, BF16, F16, F8_E4M3);

    public static Optional<DType> parse(String name) {
        for (DType d : values()) if (d.name().equals(name)) return Optional.of(d);
        return Optional.empty();
    }

    public static List<String> names() {
        return Arrays.stream(values()).map(Enum::name).toList();
    }

    /** Elements of a shape, exact; ArithmeticException when it overflows a long. */
    public static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension " + d);
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
