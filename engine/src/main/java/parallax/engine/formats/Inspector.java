package parallax.engine.formats;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** What is inside a model file: the data behind {@code %inspect}, and its report. */
public final class Inspector {

    private Inspector() {}

    public record TensorRow(String name, String dtype, long[] shape, long params, long bytes, long offset, String file) {}

    public record KindRow(String kind, int tensors, long params, double share) {}

    public record Inspection(String file, String format, long fileBytes, Map<String, Object> metadata,
                             List<TensorRow> tensors, long totalParams, long totalBytes,
                             List<KindRow> byKind, Map<String, Long> bytesByDtype) {}

    public static Inspection inspect(Path path) {
        try (ModelFile m = ModelFiles.open(path)) {
            List<TensorRow> rows = new ArrayList<>();
            long params = 0;
            long bytes = 0;
            Map<String, long[]> kinds = new LinkedHashMap<>();
            for (String k : List.of("embedding", "attention", "mlp", "norm", "output head", "other")) kinds.put(k, new long[2]);
            Map<String, Long> byDtype = new TreeMap<>();
            for (TensorEntry t : m.tensors()) {
                long n = t.elements();
                rows.add(new TensorRow(t.name(), t.dtype().name(), t.shape(), n, t.length(), t.offset(),
                        t.file().equals(m.path()) ? "" : String.valueOf(t.file().getFileName())));
                params += n;
                bytes += t.length();
                long[] k = kinds.get(kind(t.name()));
                k[0]++;
                k[1] += n;
                byDtype.merge(t.dtype().name(), t.length(), Long::sum);
            }
            List<KindRow> byKind = new ArrayList<>();
            for (var e : kinds.entrySet()) {
                if (e.getValue()[0] > 0) {
                    byKind.add(new KindRow(e.getKey(), (int) e.getValue()[0], e.getValue()[1], params == 0 ? 0 : (double) e.getValue()[1] / params));
                }
            }
            long size;
            try {
                size = Files.size(path);
            } catch (java.io.IOException e) {
                size = -1;
            }
            Map<String, Object> meta = new LinkedHashMap<>();
            m.metadata().forEach((k, v) -> meta.put(k, summarise(v)));
            return new Inspection(path.toString(), m.format().label(), size, meta, rows, params, bytes, byKind, byDtype);
        }
    }

    /** Long arrays (a tokenizer's 150k tokens) become their length and first entries, so reports stay small. */
    static Object summarise(Object v) {
        if (v instanceof List<?> l && l.size() > 64) {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("count", l.size());
            s.put("first", new ArrayList<>(l.subList(0, 8)));
            return s;
        }
        return v;
    }

    /** Layer kind from the tensor's name (nanoGPT, Hugging Face and GGUF spellings). */
    static String kind(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.contains("norm") || n.contains("ln_") || n.matches(".*\\bln\\d*\\b.*")) return "norm";
        if (n.contains("embed") || n.contains("wte") || n.contains("wpe") || n.contains("token_embd")) return "embedding";
        if (n.contains("attn") || n.contains("attention") || n.contains("q_proj") || n.contains("k_proj") || n.contains("v_proj")) return "attention";
        if (n.contains("mlp") || n.contains("ffn") || n.contains("feed_forward") || n.contains("fc")) return "mlp";
        if (n.startsWith("lm_head") || n.equals("output.weight")) return "output head";
        return "other";
    }

    public static Report report(Inspection in) {
        StringBuilder text = new StringBuilder();
        text.append(String.format(Locale.ROOT, "**%s** — %s, %s, %d tensors, %,d parameters, %s of tensor data.",
                in.file(), in.format(), bytes(in.fileBytes()), in.tensors().size(), in.totalParams(), bytes(in.totalBytes())));
        StringColumn key = StringColumn.create("key");
        StringColumn value = StringColumn.create("value");
        in.metadata().forEach((k, v) -> {
            key.append(k);
            value.append(shorten(v));
        });
        StringColumn name = StringColumn.create("name");
        StringColumn dtype = StringColumn.create("dtype");
        StringColumn shape = StringColumn.create("shape");
        LongColumn params = LongColumn.create("params");
        LongColumn bytesCol = LongColumn.create("bytes");
        LongColumn offset = LongColumn.create("offset");
        StringColumn file = StringColumn.create("file");
        boolean shards = in.tensors().stream().anyMatch(t -> !t.file().isEmpty());
        for (TensorRow t : in.tensors()) {
            name.append(t.name());
            dtype.append(t.dtype());
            shape.append(java.util.Arrays.toString(t.shape()));
            params.append(t.params());
            bytesCol.append(t.bytes());
            offset.append(t.offset());
            file.append(t.file());
        }
        Table tensors = shards ? Table.create("tensors", name, dtype, shape, params, bytesCol, offset, file)
                : Table.create("tensors", name, dtype, shape, params, bytesCol, offset);
        StringColumn kind = StringColumn.create("layer kind");
        IntColumn count = IntColumn.create("tensors");
        LongColumn kp = LongColumn.create("params");
        DoubleColumn share = DoubleColumn.create("share %");
        for (KindRow k : in.byKind()) {
            kind.append(k.kind());
            count.append(k.tensors());
            kp.append(k.params());
            share.append(Math.round(k.share() * 1000) / 10.0);
        }
        CategoryChart chart = new CategoryChartBuilder().width(640).height(360)
                .title("Tensor bytes by dtype").xAxisTitle("dtype").yAxisTitle("MiB (2^20 bytes)").build();
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.addSeries("bytes", new ArrayList<>(in.bytesByDtype().keySet()),
                in.bytesByDtype().values().stream().map(b -> b / 1048576.0).toList());
        StringColumn dt = StringColumn.create("dtype");
        LongColumn dtBytes = LongColumn.create("bytes");
        DoubleColumn dtShare = DoubleColumn.create("share %");
        in.bytesByDtype().forEach((k, v) -> {
            dt.append(k);
            dtBytes.append(v);
            dtShare.append(in.totalBytes() == 0 ? 0 : Math.round(1000.0 * v / in.totalBytes()) / 10.0);
        });
        return Report.builder("%inspect " + in.file())
                .text(text.toString())
                .table(Table.create("metadata", key, value), "Metadata (" + in.metadata().size() + " entries)")
                .table(tensors, "Tensors (offsets are absolute byte positions in the file)")
                .text(String.format(Locale.ROOT, "Totals: %d tensors, %,d parameters, %,d bytes (%s).",
                        in.tensors().size(), in.totalParams(), in.totalBytes(), bytes(in.totalBytes())))
                .table(Table.create("by layer kind", kind, count, kp, share), "Parameters grouped by layer kind (from tensor names)")
                .table(Table.create("bytes by dtype", dt, dtBytes, dtShare), "Tensor bytes by element type")
                .chart(chart, "Bytes of tensor data per element type, read from the file's header")
                .data(in)
                .build();
    }

    /** Value statistics of one tensor, decoded to float32 (ggml blocks dequantized as ggml does). */
    public record ValueStats(String name, String dtype, long count, double min, double max, double mean, double std, double zeroShare) {}

    /**
     * Decodes every floating-point tensor (every ggml block type included) in bounded chunks
     * and reports its minimum, maximum, mean, standard deviation and share of exact zeros.
     */
    public static Report stats(Path path) {
        List<ValueStats> rows = new ArrayList<>();
        try (ModelFile m = ModelFiles.open(path)) {
            parallax.engine.numerics.FloatCodec codec = new parallax.engine.numerics.FloatCodec();
            float[] buf = new float[1 << 16];
            for (TensorEntry t : m.tensors()) {
                if (!t.dtype().isFloatConvertible()) continue;
                long n = t.elements();
                double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY, sum = 0, sq = 0;
                long zeros = 0;
                for (long i = 0; i < n; i += buf.length) {
                    int k = (int) Math.min(buf.length, n - i);
                    java.nio.ByteBuffer b = m.bytes(t, t.dtype().bytesFor(i), (int) t.dtype().bytesFor(k)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                    codec.decode(t.dtype(), b, buf, k);
                    for (int j = 0; j < k; j++) {
                        double v = buf[j];
                        min = Math.min(min, v);
                        max = Math.max(max, v);
                        sum += v;
                        sq += v * v;
                        if (v == 0) zeros++;
                    }
                }
                double mean = n == 0 ? 0 : sum / n;
                rows.add(new ValueStats(t.name(), t.dtype().name(), n, n == 0 ? 0 : min, n == 0 ? 0 : max, mean,
                        n == 0 ? 0 : Math.sqrt(Math.max(0, sq / n - mean * mean)), n == 0 ? 0 : (double) zeros / n));
            }
        }
        StringColumn name = StringColumn.create("name");
        StringColumn dtype = StringColumn.create("dtype");
        LongColumn count = LongColumn.create("values");
        DoubleColumn min = DoubleColumn.create("min"), max = DoubleColumn.create("max"), mean = DoubleColumn.create("mean"),
                std = DoubleColumn.create("std"), zero = DoubleColumn.create("zeros %");
        for (ValueStats r : rows) {
            name.append(r.name());
            dtype.append(r.dtype());
            count.append(r.count());
            min.append(ConvertReport.sig(r.min()));
            max.append(ConvertReport.sig(r.max()));
            mean.append(ConvertReport.sig(r.mean()));
            std.append(ConvertReport.sig(r.std()));
            zero.append(Math.round(r.zeroShare() * 10000) / 100.0);
        }
        return Report.builder("%inspect --stats " + path)
                .text("Values of every floating-point tensor of **" + path + "**, decoded to float32 (quantized ggml blocks dequantized as ggml's dequantize_row_* does).")
                .table(Table.create("value statistics", name, dtype, count, min, max, mean, std, zero), "Per tensor, over all its values")
                .data(rows).build();
    }

    static String shorten(Object v) {
        String s = v instanceof List<?> l && l.size() > 8 ? "[" + l.size() + " items: " + l.subList(0, 4) + " ...]"
                : v instanceof Map<?, ?> m && m.containsKey("count") ? "[" + m.get("count") + " items: " + m.get("first") + " ...]"
                : String.valueOf(v);
        return s.length() > 100 ? s.substring(0, 97) + "..." : s;
    }

    public static String bytes(long b) {
        if (b < 0) return "?";
        if (b >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format(Locale.ROOT, "%.2f MiB", b / (double) (1L << 20));
        if (b >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        return b + " B";
    }
}
