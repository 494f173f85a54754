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

    static double sig(double x) {
        if (x == 0 || !Double.isFinite(x)) return x;
        return new java.math.BigDecimal(x).round(new java.math.MathContext(4)).doubleValue();
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
        b.table(Table.create("tensors", name, from, to, shape, in, out, max, rms, note),
                "Per tensor; errors are max and RMS of |x - decode(encode(x))| over the tensor, measured during this conversion");
        if (lossy) {
            List<Converter.TensorResult> top = new ArrayList<>(r.perTensor());
            top.sort(Comparator.comparingLong(Converter.TensorResult::bytesIn).reversed());
            top = top.subList(0, Math.min(24, top.size()));
            CategoryChart c = new CategoryChartBuilder().width(760).height(400)
                    .title("Conversion error per tensor").xAxisTitle("tensor").yAxisTitle("|error|").build();
            c.getStyler().setXAxisLabelRotation(60);
            List<String> names = top.stream().map(t -> t.name().length() > 28 ? "…" + t.name().substring(t.name().length() - 27) : t.name()).toList();
            c.addSeries("max", names, top.stream().map(Converter.TensorResult::maxError).toList());
            c.addSeries("RMS", names, top.stream().map(Converter.TensorResult::rmsError).toList());
            b.chart(c, "Max and RMS of |x - dequantized x| for the " + top.size() + " largest tensors, measured while converting " + r.source());
        }
        return b.data(r).build();
    }
}
