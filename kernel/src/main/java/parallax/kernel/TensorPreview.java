package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import parallax.engine.torch.Device;

/**
 * A libtorch tensor as a cell's value: a header with shape, dtype and device, then the
 * values the way PyTorch's repr prints them (docs/reference.md#pytorch-tensor-repr): above
 * 1000 elements only the first and last three entries of each dimension, with "..." between;
 * a common format for all entries (integral, fixed with four decimals, or scientific when the
 * magnitudes span more than 1000x or leave [1e-4, 1e8]), right-aligned to one width.
 */
final class TensorPreview {

    /** PyTorch's print options: summarise above this many elements, keeping this many at each edge. */
    static final long THRESHOLD = 1000;
    static final int EDGE_ITEMS = 3;
    /** A heatmap shows at most this many cells a side; larger tensors are averaged in blocks. */
    static final int HEATMAP_CELLS = 64;

    private TensorPreview() {}

    static DisplayData render(Tensor t) {
        String header = header(t);
        String body = repr(t);
        DisplayData d = new DisplayData(header + "\n" + body);
        d.putHTML("<div class=\"parallax-tensor\"><div><b>Tensor</b> " + Renderers.escape(header.substring("Tensor ".length()))
                + "</div><pre>" + Renderers.escape(body) + "</pre></div>");
        return d;
    }

    /** "Tensor shape [2, 3], float32, cpu" (and ", requires_grad" when it does). */
    static String header(Tensor t) {
        if (!t.defined()) return "Tensor (undefined)";
        return "Tensor shape " + java.util.Arrays.toString(shape(t)) + ", " + dtype(scalarType(t)) + ", "
                + t.device().str().getString() + (t.requires_grad() ? ", requires_grad" : "");
    }

    static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.size(i);
        return s;
    }

    /**
     * The tensor's dtype as one of the enum's own constants: the enum JavaCPP returns from
     * native code is a fresh object (same value, ordinal 0), so == and switch would misread it.
     */
    static torch.ScalarType scalarType(Tensor t) {
        int value = t.scalar_type().value;
        for (torch.ScalarType s : torch.ScalarType.values()) if (s.value == value) return s;
        throw new IllegalStateException("unknown libtorch scalar type " + value);
    }

    /** PyTorch's names for the dtypes (torch.float32, torch.int64, ...), without "torch.". */
    static String dtype(torch.ScalarType s) {
        return switch (s) {
            case Float -> "float32";
            case Double -> "float64";
            case Half -> "float16";
            case BFloat16 -> "bfloat16";
            case Long -> "int64";
            case Int -> "int32";
            case Short -> "int16";
            case Char -> "int8";
            case Byte -> "uint8";
            case Bool -> "bool";
            case ComplexFloat -> "complex64";
            case ComplexDouble -> "complex128";
            default -> s.name().toLowerCase(Locale.ROOT);
        };
    }

    /** The values as PyTorch prints them: {@code tensor([[1., 2.], [3., 4.]])} laid out over lines. */
    static String repr(Tensor t) {
        if (!t.defined()) return "tensor(undefined)";
        if (t.is_complex()) return "tensor(<complex values are not previewed>)";
        try (PointerScope scope = new PointerScope()) {
            long[] shape = shape(t);
            boolean summarise = t.numel() > THRESHOLD;
            // Keep only the entries that will be printed: the edges of each long dimension.
            Tensor kept = t.detach();
            List<long[]> keptIndices = new ArrayList<>();
            for (int d = 0; d < shape.length; d++) {
                long[] idx = edges(shape[d], summarise);
                keptIndices.add(idx);
                if (idx.length < shape[d]) kept = kept.index_select(d, Device.of(kept).fromLongs(idx, idx.length));
            }
            boolean integral = !t.is_floating_point();
            boolean bool = scalarType(t) == torch.ScalarType.Bool;
            Tensor asDouble = kept.to(torch.ScalarType.Double).cpu().contiguous();
            double[] values = new double[(int) asDouble.numel()];
            if (values.length > 0) asDouble.data_ptr_double().get(values);
            Formatter f = new Formatter(values, integral, bool);
            if (shape.length == 0) return "tensor(" + f.format(values[0]) + ")";
            if (t.numel() == 0) return "tensor([])";
            StringBuilder out = new StringBuilder("tensor(");
            int[] cursor = {0};
            block(out, 0, shape, keptIndices, values, cursor, f, "tensor(".length());
            return out.append(")").toString();
        }
    }

    /** The indices of a dimension that are printed: all, or the first and last three. */
    static long[] edges(long size, boolean summarise) {
        if (!summarise || size <= 2L * EDGE_ITEMS) {
            long[] all = new long[(int) size];
            for (int i = 0; i < all.length; i++) all[i] = i;
            return all;
        }
        long[] e = new long[2 * EDGE_ITEMS];
        for (int i = 0; i < EDGE_ITEMS; i++) {
            e[i] = i;
            e[EDGE_ITEMS + i] = size - EDGE_ITEMS + i;
        }
        return e;
    }

    /** PyTorch's default line width: a row of the last dimension wraps past it. */
    static final int LINE_WIDTH = 80;

    private static void block(StringBuilder out, int d, long[] shape, List<long[]> kept, double[] values, int[] cursor,
                              Formatter f, int indent) {
        long[] idx = kept.get(d);
        boolean gap = idx.length < shape[d];
        out.append('[');
        if (d == shape.length - 1) {
            // The gap counts as an element; a line holds as many as fit the width.
            List<String> items = new ArrayList<>();
            for (int i = 0; i < idx.length; i++) {
                if (gap && i == EDGE_ITEMS) items.add(" ...");
                items.add(f.format(values[cursor[0]++]));
            }
            int perLine = Math.max(1, (LINE_WIDTH - indent) / (f.width() + 2));
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) out.append(i % perLine == 0 ? ",\n" + " ".repeat(indent + 1) : ", ");
                out.append(items.get(i));
            }
        } else {
            String separator = "," + "\n".repeat(shape.length - d - 1) + " ".repeat(indent + 1);
            for (int i = 0; i < idx.length; i++) {
                if (i > 0) out.append(separator);
                if (gap && i == EDGE_ITEMS) out.append("...").append(separator);
                block(out, d + 1, shape, kept, values, cursor, f, indent + 1);
            }
        }
        out.append(']');
    }

    /**
     * One format for every printed entry, chosen as PyTorch chooses it: from the non-zero
     * finite values (all values for integer and bool tensors), padded to their widest.
     */
    static final class Formatter {
        private final boolean integral;
        private final boolean bool;
        private final boolean integerValued;
        private final boolean scientific;
        private final int width;

        Formatter(double[] values, boolean integral, boolean bool) {
            this.integral = integral;
            this.bool = bool;
            double maxAbs = 0;
            double minAbs = Double.POSITIVE_INFINITY;
            boolean allIntegers = true;
            List<Double> nonZeroFinite = new ArrayList<>();
            for (double v : values) {
                if (!Double.isFinite(v) || v == 0) continue;
                nonZeroFinite.add(v);
                if (v != Math.rint(v)) allIntegers = false;
                maxAbs = Math.max(maxAbs, Math.abs(v));
                minAbs = Math.min(minAbs, Math.abs(v));
            }
            this.integerValued = allIntegers;
            this.scientific = !integral && !nonZeroFinite.isEmpty()
                    && (maxAbs / minAbs > 1000 || maxAbs > 1e8 || !allIntegers && minAbs < 1e-4);
            int w = 1;
            if (integral) {
                for (double v : values) w = Math.max(w, raw(v).length());
            } else {
                for (double v : nonZeroFinite) w = Math.max(w, raw(v).length());
            }
            this.width = w;
        }

        int width() {
            return width;
        }

        private String raw(double v) {
            if (bool) return v != 0 ? "True" : "False";
            if (integral) return Long.toString((long) v);
            if (Double.isNaN(v)) return "nan";
            if (Double.isInfinite(v)) return v > 0 ? "inf" : "-inf";
            if (scientific) return String.format(Locale.ROOT, "%.4e", v);
            if (integerValued) return String.format(Locale.ROOT, "%.0f.", v);
            return String.format(Locale.ROOT, "%.4f", v);
        }

        String format(double v) {
            String s = raw(v);
            return " ".repeat(Math.max(0, width - s.length())) + s;
        }
    }

    /**
     * A 2-D tensor as a heatmap (row 0 at the top). Tensors larger than 64 a side are
     * averaged over equal blocks first; the title says so.
     */
    static HeatMapChart heatmap(Tensor t, String title) {
        if (t.dim() != 2) throw new IllegalArgumentException("heatmap needs a 2-D tensor, this one has shape " + java.util.Arrays.toString(shape(t)));
        if (t.is_complex()) throw new IllegalArgumentException("heatmap cannot show complex values");
        int rows = (int) t.size(0);
        int cols = (int) t.size(1);
        if (rows == 0 || cols == 0) throw new IllegalArgumentException("heatmap of an empty tensor " + java.util.Arrays.toString(shape(t)));
        float[] v;
        try (PointerScope scope = new PointerScope()) {
            v = Device.hostFloats(t.detach());
        }
        int r = Math.min(rows, HEATMAP_CELLS);
        int c = Math.min(cols, HEATMAP_CELLS);
        double[][] cell = new double[r][c];
        int[][] count = new int[r][c];
        for (int i = 0; i < rows; i++) {
            int bi = (int) ((long) i * r / rows);
            for (int j = 0; j < cols; j++) {
                int bj = (int) ((long) j * c / cols);
                cell[bi][bj] += v[i * cols + j];
                count[bi][bj]++;
            }
        }
        List<Number[]> data = new ArrayList<>();
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                double mean = cell[i][j] / count[i][j];
                if (Double.isFinite(mean)) {
                    min = Math.min(min, mean);
                    max = Math.max(max, mean);
                }
                // XChart puts y = 0 at the bottom; row 0 goes on top, as in a matrix.
                data.add(new Number[] {j, r - 1 - i, mean});
            }
        }
        List<Integer> xs = new ArrayList<>();
        for (int j = 0; j < c; j++) xs.add(j);
        List<Integer> ys = new ArrayList<>();
        for (int i = 0; i < r; i++) ys.add(i);
        boolean pooled = r < rows || c < cols;
        String name = (title == null ? "" : title + ": ") + "shape [" + rows + ", " + cols + "]"
                + (pooled ? ", block means on " + r + "x" + c : "");
        HeatMapChart chart = new HeatMapChartBuilder().width(600).height(500).title(name).xAxisTitle("column").yAxisTitle("row").build();
        chart.getStyler().setShowValue(false).setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
        chart.getStyler().setXAxisTicksVisible(c <= 32).setYAxisTicksVisible(r <= 32);
        if (Double.isFinite(min) && Double.isFinite(max)) {
            chart.getStyler().setMin(min).setMax(max == min ? min + 1 : max);
        }
        chart.addSeries("values", xs, ys, data);
        return chart;
    }
}
