package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The FP8 part of a run's report, from the ranks' {@link Fp8Scaling.Trace}: amax and scale
 * history per layer, and the shares of values that saturated or flushed to zero per step.
 */
public final class Fp8Report {

    private Fp8Report() {}

    /** The roles in the order shown, with their formats. */
    static final Fp8Scaling.Role[] ROLES = Fp8Scaling.Role.values();

    /** The block ("h3") a slot belongs to, from its layer name "h3.attn.wq". */
    static String block(String slot) {
        int dot = slot.indexOf('.');
        return dot < 0 ? slot : slot.substring(0, dot);
    }

    /** Per role: mean over the run's steps and tensors of the saturated and flushed shares, and the last step's. */
    public record RoleSummary(String role, String format, double saturatedShare, double flushedShare, double lastSaturatedShare,
                              double lastFlushedShare, double minAmax, double maxAmax) {}

    public static List<RoleSummary> summary(Fp8Scaling.Trace t) {
        List<RoleSummary> out = new ArrayList<>();
        for (Fp8Scaling.Role role : ROLES) {
            double sat = 0, flush = 0, lastSat = 0, lastFlush = 0, lo = Double.POSITIVE_INFINITY, hi = 0;
            int n = 0, steps = 0;
            for (int i = 0; i < t.slots().size(); i++) {
                if (!t.roles().get(i).equals(role.name())) continue;
                double[] s = t.saturatedShare()[i], f = t.flushedShare()[i], a = t.amax()[i];
                steps = s.length;
                for (int k = 0; k < s.length; k++) {
                    sat += s[k];
                    flush += f[k];
                }
                if (s.length > 0) {
                    lastSat += s[s.length - 1];
                    lastFlush += f[f.length - 1];
                    double last = a[a.length - 1];
                    lo = Math.min(lo, last);
                    hi = Math.max(hi, last);
                }
                n++;
            }
            if (n == 0) continue;
            out.add(new RoleSummary(role.label, role.format().label(), sat / n / Math.max(1, steps), flush / n / Math.max(1, steps),
                    lastSat / n, lastFlush / n, lo, hi));
        }
        return out;
    }

    /** Adds the FP8 charts and table of {@code t} (a run with {@code recipe}) to {@code b}. */
    public static void addTo(Report.Builder b, Fp8Scaling.Trace t, Fp8Recipe recipe, String run) {
        b.text(String.format(Locale.ROOT, "FP8 (%s): the blocks' linear layers multiply E4M3 inputs and weights; their output "
                + "gradients are cast to E5M2; each tensor is multiplied by its scale first (%s), clamped to the format's max and cast; "
                + "the LM head, embeddings, norms and attention scores stay in %s. Emulated by exact quantize-dequantize "
                + "(libtorch's float8 casts, bit-exact with the project's codecs) with the matmuls in FP32.", recipe.label(),
                switch (recipe.scaling()) {
                    case DELAYED -> "delayed scaling: max / largest amax of the last " + recipe.history() + " steps, reduced over the TP "
                            + "and DP groups, TransformerEngine's default recipe";
                    case CURRENT -> "current scaling: max / amax of the tensor itself";
                    case NONE -> "no scaling: the scale is 1";
                }, recipe.base().label()));
        b.chart(amaxChart(t), "Largest |value| per step of each block's x, W and dy (max over the block's linear layers), "
                + "measured on " + run + "; E4M3 holds 2^-9 .. 448 and E5M2 2^-16 .. 57344 before scaling");
        if (recipe.scaling() == Fp8Recipe.Scaling.DELAYED) {
            b.chart(scaleChart(t), "Scale each block's tensors used per step (the smallest over its linear layers): max of the format / "
                    + "largest amax in the history; it follows the amax one step late");
        }
        b.chart(shareChart(t), "Share of the values cast per step that saturated (|x·scale| beyond the format's max, clamped) or "
                + "flushed to zero (non-zero, below half the smallest subnormal), mean over the tensors of each kind, measured");
        Table table = Table.create("FP8 casts");
        StringColumn role = StringColumn.create("tensor"), fmt = StringColumn.create("format"), sat = StringColumn.create("saturated"),
                flush = StringColumn.create("flushed to 0"), lastFlush = StringColumn.create("flushed, last step"),
                amax = StringColumn.create("amax, last step");
        for (RoleSummary s : summary(t)) {
            role.append(s.role());
            fmt.append(s.format());
            sat.append(pct(s.saturatedShare()));
            flush.append(pct(s.flushedShare()));
            lastFlush.append(pct(s.lastFlushedShare()));
            amax.append(String.format(Locale.ROOT, "%.3g .. %.3g", s.minAmax(), s.maxAmax()));
        }
        table.addColumns(role, fmt, sat, flush, lastFlush, amax);
        b.table(table, "Shares: mean over steps and over the layers' tensors of each kind, measured on " + run);
    }

    static String pct(double share) {
        if (share == 0) return "0";
        return String.format(Locale.ROOT, share < 1e-4 ? "%.2g%%" : "%.3f%%", 100 * share);
    }

    /** Per block and role, max (or min) over the block's slots, per step. */
    private static Map<String, double[]> byBlock(Fp8Scaling.Trace t, double[][] values, boolean max) {
        Map<String, double[]> out = new TreeMap<>((a, c) -> {
            int ba = blockIndex(a), bc = blockIndex(c);
            return ba != bc ? Integer.compare(ba, bc) : a.compareTo(c);
        });
        for (int i = 0; i < t.slots().size(); i++) {
            String key = block(t.slots().get(i)) + " " + t.roles().get(i).toLowerCase(Locale.ROOT);
            double[] v = values[i];
            double[] acc = out.get(key);
            if (acc == null) {
                out.put(key, v.clone());
                continue;
            }
            for (int k = 0; k < v.length; k++) acc[k] = max ? Math.max(acc[k], v[k]) : Math.min(acc[k], v[k]);
        }
        return out;
    }

    private static int blockIndex(String key) {
        try {
            return Integer.parseInt(key.substring(1, key.indexOf(' ') < 0 ? key.length() : key.indexOf(' ')));
        } catch (RuntimeException e) {
            return Integer.MAX_VALUE;
        }
    }

    private static XYChart lines(String title, String y, boolean log) {
        XYChart c = new XYChartBuilder().width(900).height(440).title(title).xAxisTitle("step").yAxisTitle(y).build();
        c.getStyler().setMarkerSize(0);
        c.getStyler().setYAxisLogarithmic(log);
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        if (log) c.getStyler().setYAxisDecimalPattern("0.0E0");
        return c;
    }

    static XYChart amaxChart(Fp8Scaling.Trace t) {
        XYChart c = lines("FP8 amax history per block", "max |value| (log)", true);
        for (Map.Entry<String, double[]> e : byBlock(t, t.amax(), true).entrySet()) add(c, e.getKey(), e.getValue());
        return c;
    }

    static XYChart scaleChart(Fp8Scaling.Trace t) {
        XYChart c = lines("FP8 scale per block (delayed scaling)", "scale (log)", true);
        for (Map.Entry<String, double[]> e : byBlock(t, t.scale(), false).entrySet()) add(c, e.getKey(), e.getValue());
        return c;
    }

    static XYChart shareChart(Fp8Scaling.Trace t) {
        XYChart c = lines("FP8 values saturated or flushed to zero", "share of values (%)", false);
        for (Fp8Scaling.Role role : ROLES) {
            double[] sat = null, flush = null;
            int n = 0;
            for (int i = 0; i < t.slots().size(); i++) {
                if (!t.roles().get(i).equals(role.name())) continue;
                if (sat == null) {
                    sat = new double[t.saturatedShare()[i].length];
                    flush = new double[sat.length];
                }
                for (int k = 0; k < sat.length; k++) {
                    sat[k] += 100 * t.saturatedShare()[i][k];
                    flush[k] += 100 * t.flushedShare()[i][k];
                }
                n++;
            }
            if (n == 0) continue;
            for (int k = 0; k < sat.length; k++) {
                sat[k] /= n;
                flush[k] /= n;
            }
            String r = role.name().toLowerCase(Locale.ROOT) + " (" + role.format().label().replace("FP8 ", "") + ")";
            add(c, r + " saturated", sat);
            add(c, r + " flushed", flush);
        }
        return c;
    }

    private static void add(XYChart c, String name, double[] v) {
        if (v.length == 0) return;
        double[] x = new double[v.length], y = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            x[i] = i + 1;
            y[i] = c.getStyler().isYAxisLogarithmic() && !(v[i] > 0) ? Double.NaN : v[i];
        }
        c.addSeries(name, x, y).setMarker(SeriesMarkers.NONE);
    }

    /** The trace as data for --json. */
    public static Map<String, Object> data(Fp8Scaling.Trace t, Fp8Recipe recipe) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("recipe", recipe);
        m.put("summary", summary(t));
        m.put("trace", t);
        return m;
    }
}
