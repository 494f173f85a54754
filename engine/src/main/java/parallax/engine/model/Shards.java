package parallax.engine.model;

/**
 * How a tensor-parallel parameter is cut into equal parts along one dimension and put
 * back together: the two directions of one layout, kept side by side. Tensors are
 * row-major 1-D or 2-D float arrays; dimension 0 cuts rows (column-parallel weights, whose
 * output features are rows), dimension 1 cuts columns (row-parallel weights).
 */
public final class Shards {

    private Shards() {}

    /** Part {@code part} of {@code parts} along {@code dim} of {@code full} with shape {@code shape}. */
    public static float[] cut(float[] full, long[] shape, int dim, int part, int parts) {
        if (shape.length == 1) {
            int n = (int) shape[0] / parts;
            float[] out = new float[n];
            System.arraycopy(full, part * n, out, 0, n);
            return out;
        }
        int rows = (int) shape[0], cols = (int) shape[1];
        if (dim == 0) {
            int r = rows / parts;
            float[] out = new float[r * cols];
            System.arraycopy(full, part * r * cols, out, 0, r * cols);
            return out;
        }
        int c = cols / parts;
        float[] out = new float[rows * c];
        for (int i = 0; i < rows; i++) System.arraycopy(full, i * cols + part * c, out, i * c, c);
        return out;
    }

    /** Writes {@code piece}, part {@code part} of {@code parts} along {@code dim}, into {@code full}: the inverse of {@link #cut}. */
    public static void place(float[] full, float[] piece, long[] shape, int dim, int part, int parts) {
        if (shape.length == 1 || dim == 0) {
            System.arraycopy(piece, 0, full, part * piece.length, piece.length);
            return;
        }
        int rows = (int) shape[0], cols = (int) shape[1], c = cols / parts;
        for (int r = 0; r < rows; r++) System.arraycopy(piece, r * c, full, r * cols + part * c, c);
    }
}
