package parallax.engine.precision;

import static parallax.engine.precision.FormatReports.EXP;
import static parallax.engine.precision.FormatReports.MANT;
import static parallax.engine.precision.FormatReports.SIGN;
import static parallax.engine.precision.FormatReports.err;
import static parallax.engine.precision.FormatReports.num;
import static parallax.engine.precision.FormatReports.pow2;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.E8M0;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.MxElement;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The block-scaled formats (OCP MX, NVFP4) in {@code %precision}'s reports: their element
 * and scale types, the formats, and one block explained bit by bit.
 */
final class BlockFormatReports {

    private BlockFormatReports() {}

    // ---------------------------------------------------------------- formats

    /** Facts of the element types and of E8M0, from their codecs. */
    static Table elementTable(List<Map<String, Object>> data) {
        Table t = Table.create("Element and scale types of the block formats");
        StringColumn name = StringColumn.create("type"), layout = StringColumn.create("sign/exp/mant"),
                max = StringColumn.create("max"), minN = StringColumn.create("min normal"), minS = StringColumn.create("min subnormal"),
                special = StringColumn.create("inf / NaN"), used = StringColumn.create("used by");
        IntColumn bits = IntColumn.create("bits"), bias = IntColumn.create("bias"), emax = IntColumn.create("emax");
        for (MxElement e : MxElement.values()) {
            name.append(e.label());
            bits.append(e.bits());
            layout.append(e.isInteger() ? "two's complement x 2^-6" : "1/" + e.exponentBits() + "/" + e.mantissaBits());
            bias.append(e.bias());
            emax.append(e.emax());
            max.append(num(e.maxFinite()));
            minN.append(pow2(e.minNormal()));
            minS.append(pow2(e.minSubnormal()));
            special.append(e.fp8() != null ? e.fp8().specialValues() : "none (the block scale carries NaN)");
            List<String> by = new ArrayList<>();
            for (BlockFormat f : BlockFormat.values()) if (f.element() == e) by.add(f.shortName());
            used.append(String.join(", ", by));
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("type", e.label());
            row.put("bits", e.bits());
            row.put("exponentBits", e.exponentBits());
            row.put("mantissaBits", e.mantissaBits());
            row.put("bias", e.bias());
            row.put("emax", e.emax());
            row.put("maxFinite", (double) e.maxFinite());
            row.put("minNormal", (double) e.minNormal());
            row.put("minSubnormal", (double) e.minSubnormal());
            data.add(row);
        }
        name.append("E8M0 (scale)");
        bits.append(8);
        layout.append("0/8/0");
        bias.append(127);
        emax.append(E8M0.MAX_EXPONENT);
        max.append(pow2(E8M0.decode(254)));
        minN.append(pow2(E8M0.decode(0)));
        minS.append("-");
        special.append("no zero, no sign; NaN = 0xFF");
        used.append("the MX formats' shared scale");
        t.addColumns(name, bits, layout, bias, emax, max, minN, minS, special, used);
        return t;
    }

    /** The block formats: element, block, scale, storage per value, range. */
    static Table blockTable(List<Map<String, Object>> data) {
        Table t = Table.create("Block-scaled formats");
        StringColumn name = StringColumn.create("format"), element = StringColumn.create("element"),
                scale = StringColumn.create("scale"), bpv = StringColumn.create("bits/value"),
                inBlock = StringColumn.create("range in one block (decades)"), smallest = StringColumn.create("smallest > 0"),
                largest = StringColumn.create("largest"), hw = StringColumn.create("hardware");
        IntColumn block = IntColumn.create("block");
        for (BlockFormat f : BlockFormat.values()) {
            MxElement e = f.element();
            double[] range = range(f);
            name.append(f.label());
            element.append(e.label());
            block.append(f.blockSize());
            scale.append(f.scaleType());
            bpv.append(String.format(Locale.ROOT, "%.2f", f.bitsPerValue(f.blockSize())));
            inBlock.append(String.format(Locale.ROOT, "%.1f", Math.log10(e.maxFinite() / (double) e.minSubnormal())));
            smallest.append(f.twoLevel() ? sci(range[0]) + " x t" : sci(range[0]));
            largest.append(f.twoLevel() ? sci(range[1]) + " x t" : sci(range[1]));
            hw.append(f.hardware());
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("format", f.label());
            row.put("name", f.shortName());
            row.put("element", e.label());
            row.put("blockSize", f.blockSize());
            row.put("scale", f.scaleType());
            row.put("bitsPerValue", f.bitsPerValue(f.blockSize()));
            row.put("smallestPositive", range[0]);
            row.put("largest", range[1]);
            row.put("perTensorScale", f.twoLevel());
            data.add(row);
        }
        t.addColumns(name, element, block, scale, bpv, inBlock, smallest, largest, hw);
        return t;
    }

    /**
     * Smallest positive and largest value with the scale at its ends: E8M0 from 2^−127 to
     * 2^127; NVFP4's E4M3 block scale from its smallest subnormal to 448, times t.
     */
    static double[] range(BlockFormat f) {
        MxElement e = f.element();
        if (f.twoLevel()) {
            return new double[] {(double) e.minSubnormal() * FloatFormat.E4M3FN.minSubnormal(),
                    (double) e.maxFinite() * FloatFormat.E4M3FN.maxFinite()};
        }
        return new double[] {e.minSubnormal() * Math.pow(2, E8M0.MIN_EXPONENT), e.maxFinite() * Math.pow(2, E8M0.MAX_EXPONENT)};
    }

    static String sci(double v) {
        return String.format(Locale.ROOT, "%.3g", v);
    }

    static String formatsText() {
        return " The block-scaled formats (OCP Microscaling v1.0: MXFP8, MXFP6, MXFP4, MXINT8; NVIDIA's NVFP4) store narrow "
                + "elements that share one scale per block: a value is element x scale (x the per-tensor FP32 scale t for NVFP4). "
                + "MX scales are E8M0 powers of two, 2^(floor(log2 amax) - emax of the element); NVFP4's are E4M3, amax / 6 / t, "
                + "with t = amax(tensor) / (448 x 6). Bits per value count the scale's 8 bits shared by the block.";
    }

    // ---------------------------------------------------------------- explain

    /** One element as the explain table shows it. */
    record Element(String format, int block, String value, int code, String bits, double element, double stored, double absError,
                   double relError, String outcome) {}

    /** One block: its scale and elements. */
    record ExplainedBlock(String format, int block, int values, int scaleCode, String scaleBits, double scale, double tensorScale,
                          String rule, List<Element> elements) {}

    /**
     * The given values as blocks of {@code blockSize} (the format's own when null) in each
     * block format: the scale, how the rule chose it, and each element's bits.
     */
    static List<ExplainedBlock> explain(List<String> typed, List<Double> values, List<BlockFormat> formats, Integer blockSize,
                                        StringBuilder md, Table table) {
        StringColumn cFormat = StringColumn.create("format"), cValue = StringColumn.create("value"),
                cScale = StringColumn.create("block scale"), cBits = StringColumn.create("element bits"),
                cElement = StringColumn.create("element"), cStored = StringColumn.create("stored"),
                cAbs = StringColumn.create("abs error"), cRel = StringColumn.create("rel error"), cWhat = StringColumn.create("what happened");
        IntColumn cBlock = IntColumn.create("block");
        float[] x = new float[values.size()];
        for (int i = 0; i < x.length; i++) x[i] = (float) (double) values.get(i);
        List<ExplainedBlock> out = new ArrayList<>();
        for (BlockFormat f : formats) {
            int size = blockSize == null ? f.blockSize() : blockSize;
            float t = f.tensorScale(x);
            md.append("**").append(f.label()).append("**: blocks of ").append(size).append(", ").append(f.element().label())
                    .append(" elements, ").append(f.scaleType()).append(" scale");
            if (f.twoLevel()) md.append("; per-tensor scale t = amax / (448 x 6) = ").append(num(t));
            md.append(".\n\n");
            for (int from = 0, b = 1; from < x.length; from += size, b++) {
                int len = Math.min(size, x.length - from);
                BlockFormat.Block q = f.quantize(x, from, len, t);
                String rule = rule(f, x, from, len, q);
                md.append("Block ").append(b).append(" (").append(len).append(len == 1 ? " value" : " values").append("): scale ")
                        .append(scaleCells(f, q.scaleCode())).append(" = ").append(num(q.scale())).append(". ").append(rule).append("\n\n");
                md.append("<table style=\"border-collapse:collapse;font-family:monospace\">");
                md.append("<tr><th>value</th><th>element bits</th><th>element</th><th>stored</th><th>abs error</th><th>rel error</th>"
                        + "<th>what happened</th></tr>");
                List<Element> elements = new ArrayList<>();
                for (int i = 0; i < len; i++) {
                    double v = values.get(from + i);
                    float stored = q.values()[i];
                    double element = Float.isNaN(q.scale()) ? Double.NaN : f.element().decode(q.codes()[i]);
                    double abs = Math.abs(stored - v), rel = v == 0 ? (stored == 0 ? 0 : Double.POSITIVE_INFINITY) : abs / Math.abs(v);
                    if (!Double.isFinite(v)) abs = rel = Double.NaN;
                    String what = outcome(f, v, (float) v / (q.scale() * q.tensorScale()), stored, q.clamped()[i], q.scale());
                    Element el = new Element(f.label(), b, typed.get(from + i).trim(), q.codes()[i], f.element().bitString(q.codes()[i]),
                            element, stored, abs, rel, what);
                    elements.add(el);
                    md.append("<tr><td>").append(el.value()).append("</td><td>").append(elementCells(f.element(), q.codes()[i]))
                            .append("</td><td>").append(num(element)).append("</td><td>").append(num(stored)).append("</td><td>")
                            .append(err(abs)).append("</td><td>").append(err(rel)).append("</td><td>").append(what).append("</td></tr>");
                    cFormat.append(f.label());
                    cBlock.append(b);
                    cValue.append(el.value());
                    cScale.append(q.scaleBits() + " = " + num(q.scale()));
                    cBits.append(el.bits());
                    cElement.append(num(element));
                    cStored.append(num(stored));
                    cAbs.append(err(abs));
                    cRel.append(err(rel));
                    cWhat.append(what);
                }
                md.append("</table>\n\n");
                out.add(new ExplainedBlock(f.label(), b, len, q.scaleCode(), q.scaleBits(), q.scale(), q.tensorScale(), rule, elements));
            }
        }
        table.addColumns(cFormat, cBlock, cValue, cScale, cBits, cElement, cStored, cAbs, cRel, cWhat);
        return out;
    }

    /** How the scale of this block was chosen, in words, with the numbers. */
    static String rule(BlockFormat f, float[] x, int from, int len, BlockFormat.Block q) {
        float amax = 0;
        for (int i = from; i < from + len; i++) amax = Math.max(amax, Math.abs(x[i]));
        if (Float.isNaN(q.scale())) return "A NaN or infinity in the block makes its scale NaN: every element reads as NaN.";
        if (f.twoLevel()) {
            return String.format(Locale.ROOT, "amax = %s; amax / 6 / t = %s, rounded to E4M3 (nearest even) = %s.", num(amax),
                    num(amax / f.element().maxFinite() / q.tensorScale()), num(q.scale()));
        }
        if (amax == 0) return "All zeros: the smallest scale, 2^-127.";
        int fl = parallax.engine.numerics.E8M0.floorLog2(amax);
        int shared = fl - f.element().emax();
        String clamp = shared < E8M0.MIN_EXPONENT ? ", clamped to -127" : "";
        return String.format(Locale.ROOT, "amax = %s; floor(log2 amax) = %d, minus the element's emax %d = %d%s: scale 2^%d.", num(amax), fl,
                f.element().emax(), shared, clamp, E8M0.exponent(q.scaleCode()));
    }

    static String outcome(BlockFormat f, double value, float scaled, float stored, boolean clamped, float scale) {
        if (Float.isNaN(scale)) return "NaN: the block's scale is NaN";
        if (clamped) return "clamped to the element's max " + num(f.element().maxFinite()) + " (x/scale = " + num(scaled) + ")";
        if (value != 0 && stored == 0) return "flushed to zero (x/scale = " + num(scaled) + " below half the element's smallest "
                + num(f.element().minSubnormal()) + ")";
        if (stored == value) return "exact";
        return "rounded to nearest even (x/scale = " + num(scaled) + ")";
    }

    static String scaleCells(BlockFormat f, int code) {
        StringBuilder sb = new StringBuilder("<span style=\"font-family:monospace\">");
        if (f.twoLevel()) {
            String bits = FloatFormat.E4M3FN.bitString(code).replace(".", "");
            for (int i = 0; i < bits.length(); i++) {
                String colour = i == 0 ? SIGN : i <= FloatFormat.E4M3FN.exponentBits() ? EXP : MANT;
                sb.append("<span style=\"background-color:").append(colour).append("\">").append(bits.charAt(i)).append("</span>");
            }
        } else {
            sb.append("<span style=\"background-color:").append(EXP).append("\">").append(E8M0.bitString(code)).append("</span>");
        }
        return sb.append("</span>").toString();
    }

    static String elementCells(MxElement e, int code) {
        StringBuilder sb = new StringBuilder("<table style=\"border-collapse:collapse;font-family:monospace\" border=\"1\"><tr>");
        for (int i = e.bits() - 1; i >= 0; i--) {
            String colour = e.isInteger() ? MANT : i == e.bits() - 1 ? SIGN : i >= e.mantissaBits() ? EXP : MANT;
            sb.append("<td style=\"background-color:").append(colour).append("\">").append((code >>> i) & 1).append("</td>");
        }
        return sb.append("</tr></table>").toString();
    }
}
