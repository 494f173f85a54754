package parallax.engine.precision;

import parallax.engine.torch.Torch;
import parallax.engine.torch.Device;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.numerics.FloatFormat;

/**
 * libtorch's own casts, the reference our codecs are checked and timed against:
 * {@code tensor.to(dtype)} on the CPU, bytes read back as they lie in memory.
 */
public final class TorchCast {

    private TorchCast() {}

    /** The libtorch dtype of a format. */
    public static ScalarType scalarType(FloatFormat f) {
        switch (f) {
            case FP32: return ScalarType.Float;
            case FP16: return ScalarType.Half;
            case BF16: return ScalarType.BFloat16;
            case E4M3FN: return ScalarType.Float8_e4m3fn;
            case E5M2: return ScalarType.Float8_e5m2;
            case E4M3FNUZ: return ScalarType.Float8_e4m3fnuz;
            default: return ScalarType.Float8_e5m2fnuz;
        }
    }

    /** {@code torch.tensor(values).to(f)}, as raw little-endian bytes. */
    public static byte[] encode(float[] values, FloatFormat f) {
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Device.cpu().fromFloats(values, values.length).to(scalarType(f)).contiguous();
            return bytesOf(t, (long) values.length * f.bytesPerValue());
        }
    }

    /** Reinterprets raw bytes as format {@code f} and casts them to FP32 with libtorch. */
    public static float[] decode(byte[] raw, FloatFormat f) {
        try (PointerScope scope = new PointerScope()) {
            Tensor bytes = Device.cpu().fromBytes(raw);
            Tensor typed = f.bytesPerValue() == 1 ? bytes.view(scalarType(f))
                    : bytes.view(f.bytesPerValue() == 2 ? ScalarType.Short : ScalarType.Int).view(scalarType(f));
            Tensor out = typed.to(ScalarType.Float).contiguous();
            float[] result = new float[(int) out.numel()];
            byte[] b = bytesOf(out, 4L * result.length);
            java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer().get(result);
            return result;
        }
    }

    static byte[] bytesOf(Tensor t, long n) {
        byte[] out = new byte[Math.toIntExact(n)];
        new BytePointer(t.data_ptr()).capacity(n).get(out);
        return out;
    }

    /** One compute thread, as every Parallax process uses on small machines (see {@link Torch#init}). */
    public static void oneThread() {
        Torch.init();
    }
}
