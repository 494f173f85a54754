package parallax.engine.precision;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * What casting real tensors to a narrower format costs: per format (and per tensor of a
 * file) the largest absolute error, the RMSE, the largest relative error and the shares of
 * values that overflowed, underflowed to zero or became NaN, with optional scaling first
 * (x * s, cast, / s with s = max finite / amax, per tensor or per output channel = row),
 * as FP8 recipes do (Micikevicius et al., "FP8 Formats for Deep Learning", 2022); or to a
 * block-scaled format ({@link CastTarget.Blocks}: OCP MX, NVFP4) whose block size is a
 * parameter.
 */
public final class CastAnalysis {

    /** How values are scaled before the cast. */
    public enum Scaling {
        NONE("none"), PER_TENSOR("per-tensor"), PER_CHANNEL("per-channel");

        final String label;

        Scaling(String label) { this.label = label; }

        public String label() { return label; }

        public static Scaling parse(String s) {
            List<String> known = new ArrayList<>();
            for (Scaling v : values()) {
                known.add(v.label);
                if (v.label.equalsIgnoreCase(s.trim())) return v;
            }
            throw new UserError("unknown scaling '" + s + "'." + DidYouMean.hint(s, known) + " Known: " + String.join(", ", known) + ".");
        }
    }

    /** A tensor as FP32 values, row-major. */
    public record NamedTensor(String name, long[] shape, float[] values) {}

    /** Error statistics of one tensor (or all) cast to one format. */
    public record Stats(String tensor, String format, long count, double maxAbsError, double rmse,
                        double maxRelError, double overflowShare, double underflowShare, double nanShare) {}

    static final double HIST_LO = -10, HIST_HI = 1;
    static final int HIST_BINS = 44;

    private CastAnalysis() {}

    /**
     * A weights-and-activations-like random tensor of {@code count} values, rows of 1024:
     * 98% N(0, 0.02^2) (a typical weight init), 1% N(0, (1e-6)^2) (tiny values that FP8 flushes)
     * and 1% N(0, 1000^2) (activation-style outliers beyond E4M3's 448).
     */
    public static NamedTensor random(long count, long seed) {
        if (count < 1) throw new UserError("--count must be at least 1, got " + count);
        if (count > 50_000_000) throw new UserError("--count " + count + " is too large for an interactive analysis (at most 50,000,000)");
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[(int) count];
        float[] g = PrecisionTraining.gaussian(r, v.length, 1);
        for (int i = 0; i < v.length; i++) {
            double u = r.nextDouble();
            double std = u < 0.98 ? 0.02 : u < 0.99 ? 1e-6 : 1000;
            v[i] = (float) (g[i] * std);
        }
        long[] shape = count % 1024 == 0 ? new long[] {count / 1024, 1024} : new long[] {count};
        return new NamedTensor("random", shape, v);
    }

    public static Report analyse(String source, List<NamedTensor> tensors, List<CastTarget> formats,
                                 Scaling scaling, Rounding rounding) {
        return analyse(source, "", tensors, formats, scaling, rounding);
    }

    /**
     * As above; {@code note} (may be empty) describes the source in the report's text.
     * {@code tensors} is walked once, one tensor at a time, so a lazy iterable (a file read
     * tensor by tensor) keeps only the current tensor on the heap.
     */
    public static Report analyse(String source, String note, Iterable<NamedTensor> tensors, List<CastTarget> formats,
                                 Scaling scaling, Rounding rounding) {
        List<String> empty = new ArrayList<>();
        List<List<Stats>> rows = new ArrayList<>();
        List<Accumulator> totals = new ArrayList<>();
        for (int k = 0; k < formats.size(); k++) {
            rows.add(new ArrayList<>());
            totals.add(new Accumulator());
        }
        int used = 0;
        long values = 0;
        String firstName = null;
        for (NamedTensor t : tensors) {
            if (t.values().length == 0) {
                empty.add(t.name());
                continue;
            }
            int bad = 0;
            for (float v : t.values()) if (!Float.isFinite(v)) bad++;
            if (bad > 0) {
                throw new UserError("tensor '" + t.name() + "' has " + bad + " non-finite values (NaN or inf); "
                        + "cast errors are measured on finite inputs only");
            }
            if (firstName == null) firstName = t.name();
            used++;
            values += t.values().length;
            for (int k = 0; k < formats.size(); k++) {
                Accumulator acc = new Accumulator();
                castAndMeasure(t, formats.get(k), scaling, rounding, acc);
                totals.get(k).add(acc);
                rows.get(k).add(acc.stats(t.name(), formats.get(k)));
            }
        }
        if (used == 0) throw new UserError(source + " has only empty tensors (" + String.join(", ", empty) + ")");

        boolean perTensorRows = used > 1;
        Table table = Table.create("Cast error");
        StringColumn cTensor = StringColumn.create("tensor"), cFormat = StringColumn.create("format"),
                cMaxAbs = StringColumn.create("max abs error"), cRmse = StringColumn.create("RMSE"),
                cMaxRel = StringColumn.create("max rel error"), cOver = StringColumn.create("overflowed"),
                cUnder = StringColumn.create("underflowed to 0"), cNan = StringColumn.create("NaN");
        List<Stats> all = new ArrayList<>();
        XYChart hist = new XYChartBuilder().width(900).height(500)
                .title("Relative error of each value after the cast")
                .xAxisTitle("log10(|cast - x| / |x|)  (leftmost bin: exact or below 1e-10)")
                .yAxisTitle("share of values").build();
        hist.getStyler().setMarkerSize(0);
        hist.getStyler().setXAxisDecimalPattern("0.0");
        for (int k = 0; k < formats.size(); k++) {
            CastTarget f = formats.get(k);
            Accumulator total = totals.get(k);
            if (perTensorRows) {
                for (Stats s : rows.get(k)) addRow(s, cTensor, cFormat, cMaxAbs, cRmse, cMaxRel, cOver, cUnder, cNan, all);
            }
            addRow(total.stats(perTensorRows ? "(all)" : firstName, f), cTensor, cFormat, cMaxAbs, cRmse,
                    cMaxRel, cOver, cUnder, cNan, all);
            double[] xs = new double[HIST_BINS], ys = new double[HIST_BINS];
            for (int b = 0; b < HIST_BINS; b++) {
                xs[b] = HIST_LO + (b + 0.5) * (HIST_HI - HIST_LO) / HIST_BINS;
                ys[b] = total.counted == 0 ? 0 : (double) total.hist[b] / total.counted;
            }
            hist.addSeries(f.label(), xs, ys).setMarker(SeriesMarkers.NONE);
        }
        table.addColumns(cTensor, cFormat, cMaxAbs, cRmse, cMaxRel, cOver, cUnder, cNan);
        if (perTensorRows) {
            // Each format's total first: a model has tens to hundreds of tensors per format, more rows than a notebook shows.
            Table totalsFirst = table.where(cTensor.isEqualTo("(all)"));
            totalsFirst.append(table.where(cTensor.isNotEqualTo("(all)")));
            table = totalsFirst.setName("Cast error");
        }
        boolean anyBlocks = formats.stream().anyMatch(t -> t instanceof CastTarget.Blocks);
        boolean anyElementwise = formats.stream().anyMatch(t -> t instanceof CastTarget.Elementwise);
        String how = anyElementwise ? "scaling " + scaling.label + ", " + (rounding == Rounding.SATURATE ? "saturating" : "non-saturating (PyTorch)")
                + " round-to-nearest-even" : "round-to-nearest-even within each block";
        StringBuilder md = new StringBuilder();
        md.append(String.format(Locale.ROOT, "Cast %,d values in %d tensor(s) from %s%s; %s.", values, used, source,
                note.isEmpty() ? "" : " (" + note + ")", how));
        if (scaling != Scaling.NONE) {
            md.append(" Each ").append(scaling == Scaling.PER_TENSOR ? "tensor" : "row (output channel)")
                    .append(" is multiplied by s = max finite / max|x| before the cast and divided by s after; 1-D tensors use one scale.");
        }
        if (anyBlocks) {
            md.append(" Block formats: blocks run along each row (the last dimension; a row's last block may be shorter) and "
                    + "carry their own scales (OCP MX: an E8M0 power of two per block from floor(log2 amax) minus the element's emax; "
                    + "NVFP4: an E4M3 scale per block and one FP32 scale per tensor), so --scaling and --saturate do not apply to them; "
                    + "their elements always saturate, and overflowed counts values beyond the element's max that were clamped.");
        }
        if (!empty.isEmpty()) md.append(" Skipped empty tensors: ").append(String.join(", ", empty)).append('.');
        md.append(" Overflowed = became inf/NaN (or was clamped, when saturating); underflowed = a nonzero value became 0. "
                + "Errors are over the values that stayed finite.");
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("source", source);
        data.put("scaling", scaling.label);
        data.put("rounding", rounding.name());
        data.put("values", values);
        data.put("stats", all);
        return Report.builder("Cast error from " + source)
                .text(md.toString())
                .table(table, "Measured by casting every value with the Parallax codecs (bit-exact with libtorch's to(dtype))"
                        + (perTensorRows ? "; each format's total over all tensors first, then tensor by tensor" : ""))
                .chart(hist, "Distribution of per-value relative error, all tensors of " + source + " together ("
                        + how + "); overflowed, NaN and zero inputs are left out")
                .data(data)
                .build();
    }

    private static void addRow(Stats s, StringColumn cTensor, StringColumn cFormat, StringColumn cMaxAbs, StringColumn cRmse,
                               StringColumn cMaxRel, StringColumn cOver, StringColumn cUnder, StringColumn cNan, List<Stats> all) {
        all.add(s);
        cTensor.append(s.tensor());
        cFormat.append(s.format());
        cMaxAbs.append(FormatReports.err(s.maxAbsError()));
        cRmse.append(FormatReports.err(s.rmse()));
        cMaxRel.append(FormatReports.err(s.maxRelError()));
        cOver.append(pct(s.overflowShare()));
        cUnder.append(pct(s.underflowShare()));
        cNan.append(pct(s.nanShare()));
    }

    static String pct(double share) {
        if (share == 0) return "0";
        return String.format(Locale.ROOT, share < 1e-4 ? "%.2g%%" : "%.3f%%", 100 * share);
    }

    /** Running statistics over many values. */
    static final class Accumulator {
        long count, counted, finite, over, under, nan;
        double maxAbs, sumSq, maxRel;
        final long[] hist = new long[HIST_BINS];

        void add(Accumulator o) {
            count += o.count;
            counted += o.counted;
            finite += o.finite;
            over += o.over;
            under += o.under;
            nan += o.nan;
            maxAbs = Math.max(maxAbs, o.maxAbs);
            maxRel = Math.max(maxRel, o.maxRel);
            sumSq += o.sumSq;
            for (int i = 0; i < HIST_BINS; i++) hist[i] += o.hist[i];
        }

        Stats stats(String tensor, CastTarget f) {
            return new Stats(tensor, f.label(), count, maxAbs, finite == 0 ? Double.NaN : Math.sqrt(sumSq / finite),
                    maxRel, share(over), share(under), share(nan));
        }

        private double share(long k) {
            return count == 0 ? 0 : (double) k / count;
        }

        /** One value {@code v} and what the cast gave back, {@code c}; {@code clamped}: saturated at the max. */
        void measure(float v, float c, boolean clamped) {
            count++;
            if (Float.isNaN(c)) {
                nan++;
                over++;
                return;
            }
            if (Float.isInfinite(c)) {
                over++;
                return;
            }
            if (clamped) over++;
            if (v != 0 && c == 0) under++;
            double abs = Math.abs((double) c - v);
            finite++;
            sumSq += abs * abs;
            maxAbs = Math.max(maxAbs, abs);
            if (v != 0) {
                double rel = abs / Math.abs(v);
                maxRel = Math.max(maxRel, rel);
                counted++;
                double lg = rel == 0 ? HIST_LO : Math.log10(rel);
                int b = (int) Math.floor((lg - HIST_LO) / (HIST_HI - HIST_LO) * HIST_BINS);
                hist[Math.max(0, Math.min(HIST_BINS - 1, b))]++;
            }
        }
    }

    static void castAndMeasure(NamedTensor t, CastTarget target, Scaling scaling, Rounding rounding, Accumulator acc) {
        if (target instanceof CastTarget.Blocks b) {
            castBlocks(t, b, acc);
            return;
        }
        FloatFormat f = ((CastTarget.Elementwise) target).format();
        float[] x = t.values();
        float[] y = x.clone();
        int rows = scaling == Scaling.PER_CHANNEL && t.shape().length >= 2 ? (int) t.shape()[0] : 1;
        int rowLen = x.length / rows;
        float[] scales = new float[rows];
        Arrays.fill(scales, 1f);
        if (scaling != Scaling.NONE) {
            for (int r = 0; r < rows; r++) {
                float amax = 0;
                for (int i = r * rowLen; i < (r + 1) * rowLen; i++) amax = Math.max(amax, Math.abs(x[i]));
                scales[r] = amax == 0 ? 1f : f.maxFinite() / amax;
                if (!Float.isFinite(scales[r])) scales[r] = 1f;
                for (int i = r * rowLen; i < (r + 1) * rowLen; i++) y[i] = x[i] * scales[r];
            }
        }
        boolean[] clamped = null;
        if (rounding == Rounding.SATURATE) {
            // Clamped = would have overflowed without saturation.
            clamped = new boolean[y.length];
            for (int i = 0; i < y.length; i++) clamped[i] = !Float.isFinite(f.round(y[i], Rounding.NON_SATURATING));
        }
        f.roundInPlace(y, rounding);
        for (int r = 0; r < rows; r++) {
            float s = scales[r];
            for (int i = r * rowLen; i < (r + 1) * rowLen; i++) {
                acc.measure(x[i], s == 1f ? y[i] : y[i] / s, clamped != null && clamped[i]);
            }
        }
    }

    /** A block format: blocks along the rows (the last dimension), its scales computed as the format says. */
    static void castBlocks(NamedTensor t, CastTarget.Blocks target, Accumulator acc) {
        float[] x = t.values();
        float[] y = x.clone();
        int rowLength = t.shape().length == 0 ? x.length : (int) t.shape()[t.shape().length - 1];
        if (rowLength < 1 || x.length % rowLength != 0) rowLength = x.length;
        BlockFormat f = target.format();
        float tensorScale = f.tensorScale(x);
        for (int row = 0; row < x.length; row += rowLength) {
            for (int b = 0; b < rowLength; b += target.block()) {
                int len = Math.min(target.block(), rowLength - b);
                BlockFormat.Block q = f.quantize(x, row + b, len, tensorScale);
                for (int i = 0; i < len; i++) acc.measure(x[row + b + i], q.values()[i], q.clamped()[i]);
            }
        }
    }
}
