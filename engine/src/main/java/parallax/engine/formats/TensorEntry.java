package parallax.engine.formats;

import java.nio.file.Path;
import java.util.Arrays;
import parallax.engine.numerics.DType;

/**
 * One stored tensor: its name, element type and shape, and where its bytes lie
 * ({@code offset} is absolute in {@code file}). Shapes are row-major, slowest first, as
 * in safetensors and ONNX; GGUF readers reverse ggml's fastest-first order.
 */
public record TensorEntry(String name, DType dtype, long[] shape, Path file, long offset, long length) {

    public long elements() { return DType.elements(shape); }

    public String shapeText() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorEntry t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && file.equals(t.file) && offset == t.offset && length == t.length;
    }

    @Override
    public int hashCode() { return name.hashCode() * 31 + Arrays.hashCode(shape); }

    @Override
    public String toString() { return name + " " + dtype + shapeText() + " @" + offset + "+" + length; }
}
