package parallax.engine.formats;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** The summary {@code %convert} shows: totals, a per-tensor table, and an error chart when lossy. */
public final class ConvertReport {

    private ConvertReport() {}

    static String commonPrefix(List<String> names) {
        if (names.size() < 2) return "";
        String p = names.get(0);
        for (String n : names) while (!n.startsWith(p)) p = p.substring(0, p.length() - 1);
        int dot = p.lastIndexOf('.');
        return dot < 0 ? "" : p.substring(0, dot + 1);
    }

    static double sig(double x) {
        if (x == 0 || !Double.isFinite(x)) return x;
        return new java.math.BigDecimal(x).round(new java.math.MathContext(4)).doubleValue();
    }

    /** One destination type of a conversion: how many tensors and values, bytes, bits per weight and the pooled RMS error. */
    public record TypeRow(String type, int tensors, long values, long bytes, double bitsPerWeight, double rms, double maxError) {}

    /** The destination's tensors grouped by type (bits per weight = 8 x bytes / values, scales included). */
    public static List<TypeRow> byType(Converter.Result r) {
        java.util.Map<String, double[]> acc = new java.util.TreeMap<>();
        for (Converter.TensorResult t : r.perTensor()) {
            parallax.engine.numerics.DType d = parallax.engine.numerics.DType.parse(t.to()).orElse(null);
            if (d == null) continue;
            double values = d.isBlock() ? (double) t.bytesOut() / d.blockBytes() * d.blockElements() : t.bytesOut() * 8.0 / d.bits();
            double[] a = acc.computeIfAbsent(t.to(), k -> new double[5]);
            a[0]++;
            a[1] += values;
            a[2] += t.bytesOut();
            a[3] += t.rmsError() * t.rmsError() * values;
            a[4] = Math.max(a[4], t.maxError());
        }
        List<TypeRow> out = new ArrayList<>();
        acc.forEach((k, a) -> out.add(new TypeRow(k, (int) a[0], (long) a[1], (long) a[2], a[1] == 0 ? 0 : 8 * a[2] / a[1],
                a[1] == 0 ? 0 : Math.sqrt(a[3] / a[1]), a[4])));
        return out;
    }

    private static void typeSummary(Report.Builder b, Converter.Result r, List<TypeRow> rows) {
        StringColumn type = StringColumn.create("type");
        tech.tablesaw.api.IntColumn n = tech.tablesaw.api.IntColumn.create("tensors");
        LongColumn values = LongColumn.create("values");
        LongColumn bytes = LongColumn.create("bytes");
        DoubleColumn bpw = DoubleColumn.create("bits/weight");
        DoubleColumn rms = DoubleColumn.create("RMS err");
        long allValues = 0, allBytes = 0;
        for (TypeRow t : rows) {
            type.append(t.type());
            n.append(t.tensors());
            values.append(t.values());
            bytes.append(t.bytes());
            bpw.append(Math.round(t.bitsPerWeight() * 1000) / 1000.0);
            rms.append(sig(t.rms()));
            allValues += t.values();
            allBytes += t.bytes();
        }
        long fileBytes;
        try {
            fileBytes = java.nio.file.Files.size(java.nio.file.Path.of(r.destination()));
        } catch (java.io.IOException | RuntimeException e) {
            fileBytes = -1;
        }
        b.text(String.format(Locale.ROOT, "File %s: %,d bytes (%s); tensor data %,d bytes for %,d weights, %.3f bits per weight on average.",
                r.destination(), fileBytes, Inspector.bytes(fileBytes), allBytes, allValues, allValues == 0 ? 0 : 8.0 * allBytes / allValues));
        b.table(Table.create("by type", type, n, values, bytes, bpw, rms),
                "Per destination type: bits per weight = 8 x bytes / weights (block scales included); RMS error pooled over the type's tensors");
        CategoryChart c = new CategoryChartBuilder().width(640).height(360).title("Bits per weight and RMS error by type")
                .xAxisTitle("type").yAxisTitle("bits per weight").build();
        c.addSeries("bits/weight", rows.stream().map(TypeRow::type).toList(), rows.stream().map(TypeRow::bitsPerWeight).toList());
        CategoryChart e = new CategoryChartBuilder().width(640).height(360).title("RMS error by type")
                .xAxisTitle("type").yAxisTitle("RMS |x - decoded x|").build();
        e.getStyler().setLegendVisible(false);
        e.addSeries("RMS", rows.stream().map(TypeRow::type).toList(), rows.stream().map(TypeRow::rms).toList());
        b.chart(c, "Bits per weight of each destination type in this file (8 x bytes / weights)");
        b.chart(e, "RMS error of each destination type, pooled over its tensors, measured while converting " + r.source());
    }

    public static Report of(Converter.Result r) {
        StringColumn name = StringColumn.create("tensor");
        StringColumn from = StringColumn.create("from");
        StringColumn to = StringColumn.create("to");
        StringColumn shape = StringColumn.create("shape");
        LongColumn in = LongColumn.create("bytes in");
        LongColumn out = LongColumn.create("bytes out");
        DoubleColumn max = DoubleColumn.create("max |err|");
        DoubleColumn rms = DoubleColumn.create("RMS err");
        StringColumn note = StringColumn.create("note");
        boolean lossy = false;
        for (Converter.TensorResult t : r.perTensor()) {
            name.append(t.name());
            from.append(t.from());
            to.append(t.to());
            shape.append(t.shape());
            in.append(t.bytesIn());
            out.append(t.bytesOut());
            max.append(sig(t.maxError()));
            rms.append(sig(t.rmsError()));
            note.append(t.note());
            lossy |= t.maxError() > 0;
        }
        String summary = String.format(Locale.ROOT,
                "Converted **%s** (%s) to **%s** (%s): %d tensors, %,d bytes -> %,d bytes (ratio %.3f), %.2f s, %.0f MB/s (10^6 bytes of input per second).",
                r.source(), r.sourceFormat(), r.destination(), r.destinationFormat(), r.tensors(), r.bytesIn(), r.bytesOut(),
                r.ratio(), r.seconds(), r.mbPerSecond());
        Report.Builder b = Report.builder("%convert").text(summary);
        if (!r.notes().isEmpty()) b.text(String.join("\n", r.notes()));
        List<TypeRow> byType = byType(r);
        if (byType.size() > 1 || byType.stream().anyMatch(t -> t.rms() > 0)) typeSummary(b, r, byType);
        b.table(Table.create("tensors", name, from, to, shape, in, out, max, rms, note),
                "Per tensor; errors are max and RMS of |x - decode(encode(x))| over the tensor, measured during this conversion");
        if (lossy) {
            List<Converter.TensorResult> top = new ArrayList<>(r.perTensor().stream().filter(t -> t.maxError() > 0).toList());
            top.sort(Comparator.comparingDouble(Converter.TensorResult::rmsError).reversed());
            top = top.subList(0, Math.min(24, top.size()));
            CategoryChart c = new CategoryChartBuilder().width(760).height(420)
                    .title("Conversion error per tensor").xAxisTitle("tensor").yAxisTitle("|x - decoded x|").build();
            c.getStyler().setXAxisLabelRotation(60);
            String prefix = commonPrefix(top.stream().map(Converter.TensorResult::name).toList());
            List<String> names = new ArrayList<>();
            for (Converter.TensorResult t : top) {
                String n = t.name().substring(prefix.length());
                while (names.contains(n)) n = n + "'";
                names.add(n);
            }
            c.addSeries("max", names, top.stream().map(Converter.TensorResult::maxError).toList());
            c.addSeries("RMS", names, top.stream().map(Converter.TensorResult::rmsError).toList());
            b.chart(c, "Max and RMS of |x - decoded x| for the " + top.size() + " converted tensors with the largest RMS error"
                    + (prefix.isEmpty() ? "" : " (names without the prefix " + prefix + ")") + ", measured while converting " + r.source());
        }
        return b.data(r).build();
    }
}
