package parallax.engine.numerics;

import java.nio.ByteBuffer;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;

/**
 * The default {@link ElementCodec}: FP16, BF16 and FP8 through the precision package's bulk
 * codecs ({@link FloatFormat}, PyTorch's non-saturating casts), ggml block types through
 * {@link GgmlQuants}. Bulk loops go through short[]/byte[] scratch arrays and typed buffer
 * views, which the JIT turns into plain copies on a little-endian machine. One instance per
 * conversion (the scratch arrays are not shared between threads).
 */
public final class FloatCodec implements ElementCodec {

    private short[] shorts = new short[0];
    private byte[] bytes = new byte[0];
    private final KQuantizer kQuantizer = new KQuantizer();

    private short[] shorts(int n) {
        if (shorts.length < n) shorts = new short[n];
        return shorts;
    }

    private byte[] bytes(int n) {
        if (bytes.length < n) bytes = new byte[n];
        return bytes;
    }

    @Override
    public void decode(DType type, ByteBuffer src, float[] dst, int n) {
        switch (type) {
            case F32:
                src.asFloatBuffer().get(dst, 0, n);
                src.position(src.position() + 4 * n);
                break;
            case F64:
                for (int i = 0; i < n; i++) dst[i] = (float) src.getDouble();
                break;
            case F16: case BF16: {
                short[] s = shorts(n);
                src.asShortBuffer().get(s, 0, n);
                src.position(src.position() + 2 * n);
                (type == DType.F16 ? FloatFormat.FP16 : FloatFormat.BF16).decode(s, 0, dst, 0, n);
                break;
            }
            case F8_E4M3: case F8_E5M2: case F8_E4M3FNUZ: case F8_E5M2FNUZ: {
                byte[] b = bytes(n);
                src.get(b, 0, n);
                MiniFloats.fp8(type).decode(b, 0, dst, 0, n);
                break;
            }
            default:
                if (!type.isBlock()) throw new parallax.engine.UserError("cannot convert " + type + " values to float");
                GgmlQuants.dequantize(type, src, dst, n);
                break;
        }
    }

    @Override
    public void encode(DType type, float[] src, int n, ByteBuffer dst) {
        switch (type) {
            case F32:
                dst.asFloatBuffer().put(src, 0, n);
                dst.position(dst.position() + 4 * n);
                break;
            case F16: case BF16: {
                short[] s = shorts(n);
                (type == DType.F16 ? FloatFormat.FP16 : FloatFormat.BF16).encode(src, 0, s, 0, n, Rounding.NON_SATURATING);
                dst.asShortBuffer().put(s, 0, n);
                dst.position(dst.position() + 2 * n);
                break;
            }
            case F8_E4M3: case F8_E5M2: {
                byte[] b = bytes(n);
                MiniFloats.fp8(type).encode(src, 0, b, 0, n, Rounding.NON_SATURATING);
                dst.put(b, 0, n);
                break;
            }
            default:
                if (canEncode(type) && type.isBlock()) {
                    encodeBlocks(type, src, n, dst, null);
                    break;
                }
                throw new parallax.engine.UserError("cannot write " + type);
        }
    }

    /** Quantizes into {@code dst} and, when {@code decoded} is given, also returns what a reader will decode. */
    public void encodeBlocks(DType type, float[] src, int n, ByteBuffer dst, float[] decoded) {
        if (KQuantizer.writes(type)) {
            kQuantizer.quantize(type, src, n, dst, decoded);
            return;
        }
        int len = (int) type.bytesFor(n);
        byte[] b = bytes(len);
        switch (type) {
            case Q8_0: GgmlQuants.quantizeQ8_0(src, n, b, decoded); break;
            case Q4_0: GgmlQuants.quantizeQ4_0(src, n, b, decoded); break;
            case Q5_0: GgmlQuants.quantizeQ5_0(src, n, b, decoded); break;
            case Q5_1: GgmlQuants.quantizeQ5_1(src, n, b, decoded); break;
            default: throw new parallax.engine.UserError("cannot write " + type);
        }
        dst.put(b, 0, len);
    }

    @Override
    public boolean canEncode(DType type) {
        switch (type) {
            case F32: case F16: case BF16: case F8_E4M3: case F8_E5M2: case Q8_0: case Q4_0: case Q5_0: case Q5_1:
            case Q4_K: case Q5_K: case Q6_K:
                return true;
            default:
                return false;
        }
    }
}
