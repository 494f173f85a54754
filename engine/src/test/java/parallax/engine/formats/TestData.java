package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import parallax.engine.numerics.DType;

/** Small model files with known contents, written with our writers. */
public final class TestData {

    private TestData() {}

    /** A tensor with explicit bytes. */
    public record T(String name, DType dtype, long[] shape, byte[] bytes) {
        TensorSpec spec() { return new TensorSpec(name, dtype, shape); }
    }

    /** Random bit patterns for {@code dtype}; floats avoid NaN (whose payloads need not survive a cast). */
    public static byte[] randomBytes(DType d, long elements, Random r) {
        byte[] b = new byte[(int) d.bytesFor(elements)];
        r.nextBytes(b);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        switch (d) {
            case F16:
                for (int i = 0; i < b.length; i += 2) {
                    short h = bb.getShort(i);
                    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) bb.putShort(i, (short) (h & 0xbfff));
                }
                break;
            case BF16:
                for (int i = 0; i < b.length; i += 2) {
                    short h = bb.getShort(i);
                    if ((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0) bb.putShort(i, (short) (h & 0xbfff));
                }
                break;
            case F32:
                for (int i = 0; i < b.length; i += 4) {
                    int x = bb.getInt(i);
                    if ((x & 0x7f800000) == 0x7f800000 && (x & 0x7fffff) != 0) bb.putInt(i, x & 0xbfffffff);
                }
                break;
            case F8_E4M3:
                for (int i = 0; i < b.length; i++) if ((b[i] & 0x7f) == 0x7f) b[i] = (byte) (b[i] & 0xfe);
                break;
            case F8_E5M2:
                for (int i = 0; i < b.length; i++) if ((b[i] & 0x7f) > 0x7c) b[i] = (byte) (b[i] & 0xfb);
                break;
            case BOOL:
                for (int i = 0; i < b.length; i++) b[i] = (byte) (b[i] & 1);
                break;
            default:
                break;
        }
        return b;
    }

    /** One tensor of every safetensors dtype, shapes chosen so sub-byte types fill whole bytes. */
    public static List<T> everyDtype(long seed) {
        Random r = new Random(seed);
        List<T> out = new ArrayList<>();
        for (DType d : DType.values()) {
            if (!d.inSafetensors()) continue;
            long[] shape = {3, 8};
            out.add(new T("t." + d.name().toLowerCase(), d, shape, randomBytes(d, 24, r)));
        }
        out.add(new T("scalar", DType.F32, new long[] {}, randomBytes(DType.F32, 1, r)));
        out.add(new T("empty", DType.F32, new long[] {0, 4}, new byte[0]));
        return out;
    }

    public static void writeSafetensors(Path file, Map<String, String> meta, List<T> tensors) {
        List<TensorSpec> specs = tensors.stream().map(T::spec).toList();
        try (TensorWriter w = Safetensors.writer(file, meta, specs)) {
            for (T t : tensors) {
                w.beginTensor();
                w.write(ByteBuffer.wrap(t.bytes()));
            }
            w.commit();
        }
    }

    public static Map<String, byte[]> readAll(ModelFile m) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (TensorEntry t : m.tensors()) {
            byte[] b = new byte[(int) t.length()];
            m.bytes(t, 0, b.length).get(b);
            out.put(t.name(), b);
        }
        return out;
    }

    public static float[] gaussian(int n, double std, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (std * r.nextGaussian());
        return x;
    }

    public static byte[] floats(float[] x) {
        ByteBuffer b = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(x);
        return b.array();
    }
}
