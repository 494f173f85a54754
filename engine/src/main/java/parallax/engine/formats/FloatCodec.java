package parallax.engine.formats;

import java.nio.ByteBuffer;

/**
 * The default {@link ElementCodec}: float types through {@link MiniFloats} and ggml block
 * types through {@link GgmlQuants}. Bulk loops read through typed views, which the JIT
 * turns into plain loads for a little-endian map on a little-endian machine.
 */
public final class FloatCodec implements ElementCodec {

    public static final FloatCodec INSTANCE = new FloatCodec();

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
            case F16:
                for (int i = 0; i < n; i++) dst[i] = MiniFloats.halfToFloat(src.getShort());
                break;
            case BF16:
                for (int i = 0; i < n; i++) dst[i] = MiniFloats.bf16ToFloat(src.getShort());
                break;
            case F8_E4M3: case F8_E5M2: case F8_E4M3FNUZ: case F8_E5M2FNUZ:
                for (int i = 0; i < n; i++) dst[i] = MiniFloats.fp8ToFloat(type, src.get());
                break;
            case Q8_0: case Q4_0: case Q4_1: case Q5_0: case Q5_1:
                GgmlQuants.dequantize(type, src, dst, n);
                break;
            default:
                throw new parallax.engine.UserError("cannot convert " + type + " values to float");
        }
    }

    @Override
    public void encode(DType type, float[] src, int n, ByteBuffer dst) {
        switch (type) {
            case F32:
                dst.asFloatBuffer().put(src, 0, n);
                dst.position(dst.position() + 4 * n);
                break;
            case F16:
                for (int i = 0; i < n; i++) dst.putShort(MiniFloats.floatToHalf(src[i]));
                break;
            case BF16:
                for (int i = 0; i < n; i++) dst.putShort(MiniFloats.floatToBf16(src[i]));
                break;
            case F8_E4M3: case F8_E5M2:
                for (int i = 0; i < n; i++) dst.put(MiniFloats.floatToFp8(type, src[i]));
                break;
            case Q8_0:
                GgmlQuants.quantizeQ8_0(src, n, dst);
                break;
            case Q4_0:
                GgmlQuants.quantizeQ4_0(src, n, dst);
                break;
            default:
                throw new parallax.engine.UserError("cannot write " + type);
        }
    }

    @Override
    public boolean canEncode(DType type) {
        switch (type) {
            case F32: case F16: case BF16: case F8_E4M3: case F8_E5M2: case Q8_0: case Q4_0:
                return true;
            default:
                return false;
        }
    }
}
