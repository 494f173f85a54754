package parallax.engine.precision;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.UserError;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.MxElement;
import parallax.engine.numerics.Rounding;
import parallax.engine.report.Report;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** The facts of the formats as reports: the table, one value's bits, and the ranges. */
public final class FormatReports {

    private FormatReports() {}

    /** A number for tables: 10 significant digits in plain form, 6 in exponent form, no trailing zeros. */
    static String num(double v) {
        if (v == 0) return 1 / v < 0 ? "-0" : "0";
        if (Double.isNaN(v) || Double.isInfinite(v)) return String.valueOf(v);
        double a = Math.abs(v);
        String s = a >= 1e-4 && a < 1e7 ? String.format(Locale.ROOT, "%.10g", v) : String.format(Locale.ROOT, "%.6g", v);
        int e = s.indexOf('e');
        String mant = e < 0 ? s : s.substring(0, e);
        String exp = e < 0 ? "" : s.substring(e);
        if (mant.contains(".")) mant = mant.replaceAll("0+$", "").replaceAll("\\.$", "");
        return mant + exp;
    }

    /** A power of two as "2^-24 (5.96e-08)". */
    static String pow2(double v) {
        return "2^" + Math.getExponent(v) + " (" + String.format(Locale.ROOT, "%.3g", v) + ")";
    }

    // ---------------------------------------------------------------- formats

    public static Report formats() {
        Table t = Table.create("Number formats");
        StringColumn name = StringColumn.create("format"), layout = StringColumn.create("sign/exp/mant"),
                max = StringColumn.create("max finite"), minN = StringColumn.create("min normal"),
                minS = StringColumn.create("min subnormal"), eps = StringColumn.create("epsilon"),
                digits = StringColumn.create("decimal digits"), special = StringColumn.create("inf / NaN"),
                hw = StringColumn.create("hardware");
        IntColumn bits = IntColumn.create("bits"), bias = IntColumn.create("bias"), bytes = IntColumn.create("bytes/param");
        List<Map<String, Object>> data = new ArrayList<>();
        for (FloatFormat f : FloatFormat.values()) {
            name.append(f.label());
            bits.append(f.bits());
            layout.append("1/" + f.exponentBits() + "/" + f.mantissaBits());
            bias.append(f.bias());
            max.append(num(f.maxFinite()));
            minN.append(pow2(f.minNormal()));
            minS.append(pow2(f.minSubnormal()));
            eps.append(pow2(f.epsilon()));
            digits.append(String.format(Locale.ROOT, "%.2f", f.decimalDigits()));
            special.append(f.specialValues());
            bytes.append(f.bytesPerValue());
            hw.append(f.hardware());
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("format", f.label());
            row.put("name", f.shortName());
            row.put("bits", f.bits());
            row.put("exponentBits", f.exponentBits());
            row.put("mantissaBits", f.mantissaBits());
            row.put("bias", f.bias());
            row.put("maxFinite", (double) f.maxFinite());
            row.put("minNormal", (double) f.minNormal());
            row.put("minSubnormal", (double) f.minSubnormal());
            row.put("epsilon", (double) f.epsilon());
            row.put("decimalDigits", f.decimalDigits());
            row.put("infinity", f.hasInfinity());
            row.put("negativeZero", f.hasNegativeZero());
            row.put("specialValues", f.specialValues());
            row.put("bytesPerValue", f.bytesPerValue());
            row.put("hardware", f.hardware());
            data.add(row);
        }
        t.addColumns(name, bits, layout, bias, max, minN, minS, eps, digits, special, bytes, hw);
        List<Map<String, Object>> elements = new ArrayList<>(), blocks = new ArrayList<>();
        Table elementTable = BlockFormatReports.elementTable(elements);
        Table blockTable = BlockFormatReports.blockTable(blocks);
        return Report.builder("Number formats")
                .text("Every value is (-1)^sign x 2^(exponent - bias) x 1.mantissa (0.mantissa x 2^(1 - bias) when "
                        + "the exponent field is 0). Values computed from the codecs in parallax.engine.numerics; "
                        + "layouts per IEEE 754-2008 (FP16, FP32), Google's bfloat16, the OCP OFP8 spec (E4M3FN, E5M2) "
                        + "and Graphcore/AMD FNUZ." + BlockFormatReports.formatsText())
                .table(t, "Facts of each format, computed by decoding its bit patterns")
                .table(elementTable, "Element types of OCP MX v1.0 (section 5.3) and NVFP4, and the E8M0 scale; computed from their codecs")
                .table(blockTable, "Block formats with their own block sizes; smallest and largest with the scale at its ends (t: NVFP4's per-tensor scale)")
                .data(Map.of("formats", data, "elementTypes", elements, "blockFormats", blocks))
                .build();
    }

    // ---------------------------------------------------------------- explain

    /** Parses a number as typed: decimal, exponent form, inf, -inf, nan. */
    public static double parseValue(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        switch (s) {
            case "inf": case "+inf": case "infinity": return Double.POSITIVE_INFINITY;
            case "-inf": case "-infinity": return Double.NEGATIVE_INFINITY;
            case "nan": return Double.NaN;
            default:
                try {
                    if (s.isEmpty() || s.endsWith("d") || s.endsWith("f")) throw new NumberFormatException();
                    return Double.parseDouble(s);
                } catch (NumberFormatException e) {
                    throw new UserError("cannot read '" + text + "' as a number (examples: 0.1, 65504, 1e-8, -inf, nan)");
                }
        }
    }

    /** What one format stores for one value. */
    public record Stored(String format, double input, int bits, String bitString, double stored, double absError,
                         double relError, String outcome) {}

    /** Encodes {@code value} (converted to FP32 first, as torch.tensor does) into {@code f}. */
    public static Stored store(double value, FloatFormat f, Rounding rounding) {
        float x = (float) value;
        int bits = f.encode(x, rounding);
        float y = f.decode(bits);
        double abs = Math.abs((double) y - value);
        double rel = value == 0 ? (y == 0 ? 0 : Double.POSITIVE_INFINITY) : abs / Math.abs(value);
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            abs = Double.NaN;
            rel = Double.NaN;
        }
        return new Stored(f.label(), value, bits, f.bitString(bits), y, abs, rel, outcome(value, x, y, f, rounding));
    }

    static String outcome(double value, float x, float y, FloatFormat f, Rounding rounding) {
        if (Double.isNaN(value)) return Float.isNaN(y) ? "NaN stays NaN" : "NaN became " + y;
        if (Double.isInfinite(value)) {
            if (Float.isInfinite(y)) return "inf stays inf";
            if (Float.isNaN(y)) return "inf became NaN (no inf in " + f.label() + ")";
            return "inf saturated to " + num(y);
        }
        if (Float.isNaN(y)) return "overflowed to NaN (beyond max " + num(f.maxFinite()) + ", no inf)";
        if (Float.isInfinite(y)) return "overflowed to inf (beyond max " + num(f.maxFinite()) + ")";
        if (rounding == Rounding.SATURATE && Math.abs(y) == f.maxFinite() && !Float.isFinite(f.round(x))) {
            return "saturated to max " + num(f.maxFinite()) + " (would overflow without --saturate)";
        }
        if (value != 0 && y == 0) return "flushed to zero (below half the min subnormal " + pow2(f.minSubnormal()) + ")";
        boolean exact = y == value;
        if (y != 0 && Math.abs(y) < f.minNormal()) return exact ? "exact, subnormal" : "rounded, subnormal (fewer significant bits)";
        if (exact) return "exact";
        // A tie: the FP32 neighbours on either side round to different values.
        boolean tie = f != FloatFormat.FP32 && x == value && f.round(Math.nextUp(x)) != f.round(Math.nextDown(x));
        return tie ? "tie, rounded to the even neighbour" : "rounded to nearest";
    }

    public static Report explain(List<String> values, List<FloatFormat> formats, Rounding rounding) {
        return explain(values, formats, List.of(), null, rounding);
    }

    /**
     * As above, plus the block formats: the values form blocks of {@code blockSize} (each
     * format's own when null), shown with their shared scale and each element's bits.
     */
    public static Report explain(List<String> values, List<FloatFormat> formats, List<BlockFormat> blockFormats, Integer blockSize,
                                 Rounding rounding) {
        if (values.isEmpty()) throw new UserError("give at least one value, e.g. %precision explain 0.1 65504 1e-8");
        if (blockSize != null && blockSize < 1) throw new UserError("--block must be at least 1, got " + blockSize);
        List<Double> parsed = new ArrayList<>();
        for (String v : values) parsed.add(parseValue(v));
        List<FloatFormat> fs = new ArrayList<>();
        fs.add(FloatFormat.FP32);
        for (FloatFormat f : formats) if (!fs.contains(f)) fs.add(f);

        StringBuilder md = new StringBuilder();
        md.append("Bits drawn as <span style=\"background-color:").append(SIGN).append("\">sign</span> "
                + "<span style=\"background-color:").append(EXP).append("\">exponent</span> "
                + "<span style=\"background-color:").append(MANT).append("\">mantissa</span>; each value is converted to FP32 first "
                + "(as `torch.tensor` does), then rounded to nearest, ties to even, ")
                .append(rounding == Rounding.SATURATE ? "saturating at the max." : "overflowing as PyTorch does (inf, or NaN where there is no inf).")
                .append("\n\n");
        Table t = Table.create("Stored values");
        StringColumn cValue = StringColumn.create("value"), cFormat = StringColumn.create("format"),
                cBits = StringColumn.create("bits"), cStored = StringColumn.create("stored"),
                cAbs = StringColumn.create("abs error"), cRel = StringColumn.create("rel error"),
                cWhat = StringColumn.create("what happened");
        List<Stored> data = new ArrayList<>();
        for (int i = 0; i < parsed.size(); i++) {
            double v = parsed.get(i);
            md.append("**").append(values.get(i).trim()).append("**\n\n");
            md.append("<table style=\"border-collapse:collapse;font-family:monospace\">");
            md.append("<tr><th>format</th><th>bits</th><th>stored</th><th>abs error</th><th>rel error</th><th>what happened</th></tr>");
            for (FloatFormat f : fs) {
                Stored s = store(v, f, rounding);
                data.add(s);
                md.append("<tr><td>").append(f.label()).append("</td><td>").append(bitCells(f, s.bits())).append("</td><td>")
                        .append(num(s.stored())).append("</td><td>").append(err(s.absError())).append("</td><td>")
                        .append(err(s.relError())).append("</td><td>").append(s.outcome()).append("</td></tr>");
                cValue.append(values.get(i).trim());
                cFormat.append(f.label());
                cBits.append(s.bitString());
                cStored.append(num(s.stored()));
                cAbs.append(err(s.absError()));
                cRel.append(err(s.relError()));
                cWhat.append(s.outcome());
            }
            md.append("</table>\n\n");
        }
        t.addColumns(cValue, cFormat, cBits, cStored, cAbs, cRel, cWhat);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("rounding", rounding.name());
        json.put("values", data);
        Table blockTable = Table.create("Block elements");
        if (!blockFormats.isEmpty()) {
            md.append("The same values as blocks: each block shares one scale, and each element stores value / scale "
                    + "(rounded to nearest even, clamped to the element's max).\n\n");
            json.put("blocks", BlockFormatReports.explain(values, parsed, blockFormats, blockSize, md, blockTable));
        }
        Report.Builder b = Report.builder("What each format stores")
                .text(md.toString())
                .table(t, "Bits as sign.exponent.mantissa; errors against the value as typed");
        if (!blockFormats.isEmpty()) b.table(blockTable, "Each value in its block: the block's scale, the element's bits and value, "
                + "stored = element x scale (x t for NVFP4)");
        return b.data(json).build();
    }

    static final String SIGN = "#f6b8b8", EXP = "#b8e0b8", MANT = "#b8d0f6";

    static String bitCells(FloatFormat f, int bits) {
        StringBuilder sb = new StringBuilder("<table style=\"border-collapse:collapse;font-family:monospace\" border=\"1\"><tr>");
        for (int i = f.bits() - 1; i >= 0; i--) {
            String colour = i == f.bits() - 1 ? SIGN : i >= f.mantissaBits() ? EXP : MANT;
            sb.append("<td style=\"background-color:").append(colour).append("\">").append((bits >>> i) & 1).append("</td>");
        }
        return sb.append("</tr></table>").toString();
    }

    static String err(double e) {
        if (Double.isNaN(e)) return "-";
        if (Double.isInfinite(e)) return "inf";
        if (e == 0) return "0";
        return String.format(Locale.ROOT, "%.3g", e);
    }

    // ---------------------------------------------------------------- range

    public static Report range(List<FloatFormat> formats) {
        return range(formats, List.of());
    }

    /** A layout drawn in the range charts: a format, or a block format's element type. */
    private record Layout(String label, int mantissaBits, double minSubnormal, double minNormal, double maxFinite, boolean uniform) {}

    /**
     * As above, plus the element types of {@code blockFormats} (their steps within one block)
     * and a table of each block format's range with its scale.
     */
    public static Report range(List<FloatFormat> formats, List<BlockFormat> blockFormats) {
        XYChart spacing = new XYChartBuilder().width(900).height(520)
                .title("Spacing between neighbouring values across magnitudes")
                .xAxisTitle("log10 |x|").yAxisTitle("log10 of the gap to the next value").build();
        XYChart relative = new XYChartBuilder().width(900).height(520)
                .title("Relative precision: gap / |x|")
                .xAxisTitle("log10 |x|").yAxisTitle("log10 (gap / |x|)").build();
        // log10 on linear axes: FP32 spans 83 decades, too many for one tick per decade.
        for (XYChart c : List.of(spacing, relative)) {
            c.getStyler().setMarkerSize(0);
            c.getStyler().setXAxisDecimalPattern("0");
            c.getStyler().setYAxisDecimalPattern("0");
        }
        Table t = Table.create("Range and precision");
        StringColumn name = StringColumn.create("format"), lo = StringColumn.create("smallest > 0"),
                loN = StringColumn.create("smallest normal"), hi = StringColumn.create("largest"),
                decades = StringColumn.create("range (decades)"), eps = StringColumn.create("gap at 1");
        IntColumn binades = IntColumn.create("binades"), perBinade = IntColumn.create("values per binade");
        List<Map<String, Object>> data = new ArrayList<>();
        List<Layout> layouts = new ArrayList<>();
        for (FloatFormat f : formats) layouts.add(new Layout(f.label(), f.mantissaBits(), f.minSubnormal(), f.minNormal(), f.maxFinite(), false));
        for (BlockFormat b : blockFormats) {
            MxElement e = b.element();
            String label = e.label() + " (" + b.shortName() + " element)";
            if (layouts.stream().anyMatch(l -> l.label().startsWith(e.label() + " ("))) continue;
            if (e.fp8() != null && formats.contains(e.fp8())) continue;
            layouts.add(new Layout(label, e.mantissaBits(), e.minSubnormal(), e.minNormal(), e.maxFinite(), e.isInteger()));
        }
        for (Layout f : layouts) {
            List<Double> xs = new ArrayList<>(), gaps = new ArrayList<>(), rel = new ArrayList<>();
            double sub = f.minSubnormal();
            int eMin = Math.getExponent(f.minNormal());
            int eMax = Math.getExponent(f.maxFinite());
            if (f.uniform()) {
                // INT8 elements: one step, 2^-6, everywhere
                addStep(xs, gaps, rel, sub, f.maxFinite(), sub);
            } else {
                // Subnormals: constant gap = min subnormal, from min subnormal up to min normal.
                addStep(xs, gaps, rel, sub, f.minNormal(), sub);
                for (int e = eMin; e <= eMax; e++) {
                    double lo2 = Math.scalb(1.0, e);
                    double hi2 = e == eMax ? f.maxFinite() : Math.scalb(1.0, e + 1);
                    addStep(xs, gaps, rel, lo2, hi2, Math.scalb(1.0, e - f.mantissaBits()));
                }
            }
            XYSeries s1 = spacing.addSeries(f.label(), xs, gaps);
            s1.setMarker(SeriesMarkers.NONE);
            List<Double> xr = new ArrayList<>(xs);
            XYSeries s2 = relative.addSeries(f.label(), xr, rel);
            s2.setMarker(SeriesMarkers.NONE);
            double dec = Math.log10(f.maxFinite() / f.minSubnormal());
            name.append(f.label());
            lo.append(pow2(f.minSubnormal()));
            loN.append(pow2(f.minNormal()));
            hi.append(num(f.maxFinite()));
            decades.append(String.format(Locale.ROOT, "%.1f", dec));
            int nb = f.uniform() ? 0 : eMax - eMin + 1;
            binades.append(nb);
            perBinade.append(f.uniform() ? 0 : 1 << f.mantissaBits());
            double epsilon = f.uniform() ? f.minSubnormal() : Math.scalb(1.0, -f.mantissaBits());
            eps.append(pow2(epsilon));
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("format", f.label());
            row.put("minSubnormal", f.minSubnormal());
            row.put("minNormal", f.minNormal());
            row.put("maxFinite", f.maxFinite());
            row.put("decades", dec);
            row.put("normalBinades", nb);
            row.put("valuesPerBinade", f.uniform() ? 0 : 1 << f.mantissaBits());
            row.put("epsilon", epsilon);
            data.add(row);
        }
        t.addColumns(name, lo, loN, hi, decades, binades, perBinade, eps);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("formats", data);
        Table blocks = null;
        if (!blockFormats.isEmpty()) {
            blocks = Table.create("Block formats: range with the scale");
            StringColumn bName = StringColumn.create("format"), bElem = StringColumn.create("element range"),
                    bIn = StringColumn.create("decades in one block"), bLo = StringColumn.create("smallest > 0"),
                    bHi = StringColumn.create("largest"), bAll = StringColumn.create("decades with the scale");
            List<Map<String, Object>> bdata = new ArrayList<>();
            for (BlockFormat b : blockFormats) {
                MxElement e = b.element();
                double[] r = BlockFormatReports.range(b);
                String suffix = b.twoLevel() ? " x t" : "";
                bName.append(b.label());
                bElem.append(num(e.minSubnormal()) + " .. " + num(e.maxFinite()));
                bIn.append(String.format(Locale.ROOT, "%.1f", Math.log10(e.maxFinite() / (double) e.minSubnormal())));
                bLo.append(BlockFormatReports.sci(r[0]) + suffix);
                bHi.append(BlockFormatReports.sci(r[1]) + suffix);
                bAll.append(String.format(Locale.ROOT, "%.1f", Math.log10(r[1] / r[0])));
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("format", b.label());
                row.put("decadesInOneBlock", Math.log10(e.maxFinite() / (double) e.minSubnormal()));
                row.put("smallestPositive", r[0]);
                row.put("largest", r[1]);
                row.put("decadesWithScale", Math.log10(r[1] / r[0]));
                bdata.add(row);
            }
            blocks.addColumns(bName, bElem, bIn, bLo, bHi, bAll);
            json.put("blockFormats", bdata);
        }
        Report.Builder rb = Report.builder("Range and precision of each format")
                .text("Each format covers [smallest subnormal, max] with 2^mantissa values per power of two (binade); "
                        + "the gap between neighbours doubles every binade, so the relative gap is flat at epsilon "
                        + "in the normal range and grows below the smallest normal. BF16 keeps FP32's 8 exponent bits "
                        + "(same range, 7 mantissa bits); FP16 trades 3 exponent bits for 3 more mantissa bits "
                        + "(8x finer, but max 65504).")
                .table(t, "Computed from each format's bit layout")
                .chart(spacing, "Gap between a value and the next representable one, per binade, computed from the "
                        + "formats' layouts (not sampled); lines end at the largest finite value and start at the smallest subnormal")
                .chart(relative, "Relative rounding step (gap / |x|): epsilon in the normal range, rising through the subnormals");
        if (blocks != null) {
            rb.text("A block format's element covers only a few decades (FP4 E2M1: 0.5 to 6); the shared scale moves that window to "
                    + "where each block's values are, so the format as a whole spans the scale's range too. Within one block, values "
                    + "far below the block's largest flush to zero.");
            rb.table(blocks, "Element range (one block), and the whole range with the scale at its ends; t: NVFP4's per-tensor FP32 scale");
        }
        return rb.data(json).build();
    }

    private static void addStep(List<Double> xs, List<Double> gaps, List<Double> rel, double from, double to, double gap) {
        xs.add(Math.log10(from));
        gaps.add(Math.log10(gap));
        rel.add(Math.log10(gap / from));
        xs.add(Math.log10(to));
        gaps.add(Math.log10(gap));
        rel.add(Math.log10(gap / to));
    }
}
