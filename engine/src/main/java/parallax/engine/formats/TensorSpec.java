package parallax.engine.formats;

import parallax.engine.numerics.DType;
/** A tensor a writer will store: name, element type and row-major shape (slowest first). */
public record TensorSpec(String name, DType dtype, long[] shape) {

    public long elements() { return DType.elements(shape); }

    public long bytes() { return dtype.bytesFor(elements()); }
}
