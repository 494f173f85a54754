package parallax.engine.plan;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import parallax.engine.JsonText;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Predicted versus measured memory per rank. The planner predicts the model-state bytes
 * (parameters, gradients, optimizer states) of every rank exactly from the tensor shapes,
 * and activations by the Korthikanti formulas; the training engine measures what each
 * rank really holds ({@code parallax.engine.parallel.RankResult.RankMemory}).
 *
 * <p>Exact prediction needs the engine's storage conventions, which are those of its ZeRO
 * (parallax.engine.parallel.Zero): parameters are bucketed by unit (the embedding, each
 * block, the head), each unit's flat buffer padded to a multiple of dp, and every DP rank
 * owns padded/dp elements of it. Parameters: the padded buffer in the compute dtype (the
 * owned slice under ZeRO-3). Gradients: each parameter's gradient in the compute dtype
 * (ZeRO 0-1), or the owned slice kept in fp32 (ZeRO 2-3). Optimizer: AdamW's m and v (8 B)
 * or SGD's momentum (4 B) per master element, plus the fp32 master copy in mixed precision;
 * the master is the padded buffer under ZeRO-0 and the owned slice otherwise. With context
 * parallelism the buckets are padded to and owned over the dp-cp group (cp ranks hold the
 * same weights). Rank order follows Megatron's parallel_state: tp fastest, then cp, dp,
 * pp. Model states must match to the byte; activations within 15%.
 */
public final class MemoryValidation {

    /** What one rank of one strategy run allocated, in bytes, as the engine reports it. */
    public record Measurement(String strategy, int rank, int dp, int tp, int pp, int zero, String dtype, String optimizer,
                              int microBatch, int microBatches, int seq, String recompute, String schedule,
                              long paramBytes, long gradBytes, long optimizerBytes, long activationBytes,
                              int cp, boolean sequenceParallel, int virtualStages) {}

    /** The planner's prediction for the same rank. */
    public record Prediction(int rank, int dpRank, int tpRank, int stage, long paramBytes, long gradBytes, long optimizerBytes,
                             double activationBytes) {}

    /** One compared rank: the gaps (measured − predicted) and whether they pass. */
    public record Row(Measurement measured, Prediction predicted, boolean statesExact, double activationGap, boolean activationOk) {}

    public static final double ACTIVATION_TOLERANCE = 0.15;

    private MemoryValidation() {}

    /** Elements of each parameter bucket (unit) pipeline stage {@code stage} holds on one TP rank. */
    static List<Long> units(ModelSpec m, int tp, int pp, int stage) {
        Planner.Shards sh = Planner.shards(m, tp);
        List<Long> u = new ArrayList<>();
        if (stage == 0) u.add(sh.embedding());
        // A block's bucket holds all of it: for a mixture its router, every expert (no expert
        // parallelism in the engine yet) and any shared expert; the first layers of a model may be dense.
        int dense = sh.denseIn(m.layers(), pp, stage);
        for (int i = 0; i < Planner.layersOfStage(m.layers(), pp, stage); i++)
            u.add(sh.layer() + (i < dense ? sh.denseLayer() : sh.moeLayer() + sh.routed()));
        if (stage == pp - 1) u.add(sh.head() + (pp > 1 ? sh.tiedCopy() : 0));
        return u;
    }

    /** Exact model-state bytes (engine conventions, see the class comment) and the activation estimate of one rank. */
    public static Prediction predict(ModelSpec m, Layout l, int rank) {
        if (rank < 0 || rank >= l.gpus()) throw new UserError("rank " + rank + " is outside 0.." + (l.gpus() - 1));
        parallax.engine.cluster.Mesh.Coords at = parallax.engine.cluster.Mesh.coords(
                new parallax.engine.cluster.MeshShape(l.dp(), l.tp(), l.pp(), l.cp()), rank);
        int tpRank = at.tpRank(), dpRank = at.dpRank(), stage = at.ppRank();
        // The engine's stores average gradients and shard over the dp-cp group: cp ranks hold the same weights.
        int dp = l.dataShards(), z = l.zero();
        int cb = l.dtype() == DType.F32 ? 4 : 2;
        int k = switch (l.optimizer()) { case ADAMW -> 8; case SGD -> 4; case ADAM_8BIT -> 2; };
        boolean mixed = l.dtype() != DType.F32;
        long numel = 0, padded = 0, shard = 0;
        for (long n : units(m, l.tp(), l.pp(), stage)) {
            long p = ModelSpec.ceilDiv(n, dp) * dp;
            numel += n;
            padded += p;
            shard += p / dp;
        }
        long params = (z < 3 ? padded : shard) * cb;
        long grads = z <= 1 ? numel * cb : shard * 4;
        long master = z == 0 ? padded : shard;
        long opt = master * k + (mixed ? master * 4 : 0);
        return new Prediction(rank, dpRank, tpRank, stage, params, grads, opt, activations(m, l, stage));
    }

    /**
     * The activation bytes pipeline stage {@code stage} holds at its peak, by the engine's
     * pass order walked chunk by chunk (every schedule, interleaved included): each chunk's
     * layers by the Korthikanti formula for this rank's tokens, the output layer on the
     * model's last chunk. The engine's GPT has no dropout (GptConfig refuses it), so no
     * masks are counted, and no embedding-side term.
     */
    static double activations(ModelSpec m, Layout l, int stage) {
        int e = l.activationBytes(), p = l.pp(), v = l.virtualStages();
        double perLayer = Activations.perLayer(m, l.seq(), l.microBatch(), l.tp(), l.cp(), l.sequenceParallel(), l.recompute(), e, false);
        double perLayerW = l.schedule() == Layout.Schedule.ZB_H1
                ? Activations.weightGradientInputs(m, l.seq(), l.microBatch(), l.tp(), l.cp(), e) : 0;
        double[] full = new double[v], weights = new double[v];
        for (int c = 0; c < v; c++) {
            int layers = v == 1 ? Planner.layersOfStage(m.layers(), p, stage) : m.layers() / (p * v);
            full[c] = layers * perLayer;
            weights[c] = layers * perLayerW;
        }
        if (stage == p - 1) {
            full[v - 1] += Activations.outputLayer(m, l.localSeq(), l.microBatch(), l.tp(), l.sequenceParallel(), e);
            if (l.schedule() == Layout.Schedule.ZB_H1)
                weights[v - 1] += Activations.outputLayerWeightGradient(m, l.localSeq(), l.microBatch(), l.tp(), e);
        }
        return Activations.walkPeak(l.schedule(), p, v, l.microBatches(), stage, full, weights);
    }

    /** Reads a record: {"model": ..., "runs": [{strategy, rank, dp, tp, pp, zero, dtype, optimizer, ...bytes}]}. */
    public static List<Measurement> read(Path path) {
        if (!Files.isRegularFile(path)) throw new UserError("no measurement record at " + path);
        try {
            JsonElement e = JsonText.parse(Files.readString(path), path.toString());
            JsonArray runs = e.isJsonObject() && e.getAsJsonObject().has("runs") ? e.getAsJsonObject().getAsJsonArray("runs")
                    : e.isJsonArray() ? e.getAsJsonArray() : null;
            if (runs == null) throw new UserError(path + " has no \"runs\" array of measurements");
            List<Measurement> out = new ArrayList<>();
            for (JsonElement r : runs) {
                JsonObject o = r.getAsJsonObject();
                out.add(new Measurement(str(o, "strategy", path), num(o, "rank", path), num(o, "dp", path), num(o, "tp", path),
                        num(o, "pp", path), num(o, "zero", path), str(o, "dtype", path), str(o, "optimizer", path),
                        num(o, "micro_batch", path), o.has("micro_batches") ? o.get("micro_batches").getAsInt() : 1,
                        num(o, "seq", path), o.has("recompute") ? o.get("recompute").getAsString() : "none",
                        o.has("schedule") ? o.get("schedule").getAsString() : "1f1b",
                        lng(o, "param_bytes", path), lng(o, "grad_bytes", path),
                        lng(o, "optimizer_bytes", path), lng(o, "activation_bytes", path),
                        o.has("cp") ? o.get("cp").getAsInt() : 1,
                        o.has("sequence_parallel") && o.get("sequence_parallel").getAsBoolean(),
                        o.has("vpp") ? o.get("vpp").getAsInt() : 1));
            }
            return out;
        } catch (IOException ex) {
            throw new UserError("cannot read " + path + ": " + ex.getMessage());
        } catch (UserError ex) {
            throw ex;
        } catch (RuntimeException ex) { // a value of the wrong JSON type: Gson's casts and number parsing
            throw new UserError(path + " is not a valid measurement record" + JsonText.where(ex)
                    + ": expected {\"model\": ..., \"runs\": [...]} as %plan --validate --save writes");
        }
    }

    /** The model a record names ("model", as ValidationRuns.save writes it), or null when it names none. */
    public static String model(Path path) {
        if (!Files.isRegularFile(path)) throw new UserError("no measurement record at " + path);
        try {
            JsonElement e = JsonText.parse(Files.readString(path), path.toString());
            if (e.isJsonObject() && e.getAsJsonObject().has("model") && e.getAsJsonObject().get("model").isJsonPrimitive())
                return e.getAsJsonObject().get("model").getAsString();
            return null;
        } catch (IOException ex) {
            throw new UserError("cannot read " + path + ": " + ex.getMessage());
        }
    }

    private static String str(JsonObject o, String k, Path p) {
        if (!o.has(k)) throw new UserError(p + ": a run lacks \"" + k + "\"");
        return o.get(k).getAsString();
    }

    private static int num(JsonObject o, String k, Path p) {
        if (!o.has(k)) throw new UserError(p + ": a run lacks \"" + k + "\"");
        return o.get(k).getAsInt();
    }

    private static long lng(JsonObject o, String k, Path p) {
        if (!o.has(k)) throw new UserError(p + ": a run lacks \"" + k + "\"");
        return o.get(k).getAsLong();
    }

    /** The layout a measurement was taken under. */
    public static Layout layoutOf(Measurement x) {
        Layout.Recompute r;
        try {
            r = Layout.Recompute.valueOf(x.recompute().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("unknown recompute '" + x.recompute() + "' in measurement record (none, selective, full)");
        }
        return new Layout(x.dp(), x.tp(), x.pp(), x.virtualStages(), x.zero(), x.microBatch(), x.microBatches(), x.seq(), r,
                x.sequenceParallel(), Planner.optimizer(x.optimizer()), dtype(x.dtype()), false, false,
                Layout.Schedule.of(x.schedule()), x.cp());
    }

    static DType dtype(String s) {
        for (DType d : Layout.DTYPES) if (d.label().equalsIgnoreCase(s)) return d;
        throw new UserError("unknown dtype '" + s + "' in measurement record (fp32, bf16, fp16, fp8)");
    }

    public static List<Row> compare(ModelSpec m, List<Measurement> measured) {
        List<Row> rows = new ArrayList<>();
        for (Measurement x : measured) {
            Prediction p = predict(m, layoutOf(x), x.rank());
            boolean exact = p.paramBytes() == x.paramBytes() && p.gradBytes() == x.gradBytes() && p.optimizerBytes() == x.optimizerBytes();
            double gap = p.activationBytes() == 0 ? 0 : (x.activationBytes() - p.activationBytes()) / p.activationBytes();
            rows.add(new Row(x, p, exact, gap, Math.abs(gap) <= ACTIVATION_TOLERANCE));
        }
        return rows;
    }

    public static Report report(ModelSpec m, List<Row> rows, String source) {
        Table t = Table.create("validation");
        StringColumn strategy = StringColumn.create("strategy"), rank = StringColumn.create("rank"),
                states = StringColumn.create("params/grads/optimizer (predicted | measured)"), exact = StringColumn.create("exact"),
                act = StringColumn.create("activations (predicted | measured)"), gap = StringColumn.create("activation gap");
        Map<String, double[]> perStrategy = new LinkedHashMap<>();
        int exactCount = 0, actOk = 0;
        for (Row r : rows) {
            Measurement x = r.measured();
            Prediction p = r.predicted();
            strategy.append(x.strategy());
            rank.append(String.valueOf(x.rank()));
            states.append(String.format("%,d/%,d/%,d | %,d/%,d/%,d", p.paramBytes(), p.gradBytes(), p.optimizerBytes(),
                    x.paramBytes(), x.gradBytes(), x.optimizerBytes()));
            exact.append(r.statesExact() ? "yes" : "NO");
            act.append(String.format("%,.0f | %,d", p.activationBytes(), x.activationBytes()));
            gap.append(String.format("%+.1f%%%s", r.activationGap() * 100, r.activationOk() ? "" : " (> 15%)"));
            if (r.statesExact()) exactCount++;
            if (r.activationOk()) actOk++;
            double[] acc = perStrategy.computeIfAbsent(x.strategy(), k -> new double[8]);
            acc[0] += p.paramBytes(); acc[1] += x.paramBytes(); acc[2] += p.gradBytes(); acc[3] += x.gradBytes();
            acc[4] += p.optimizerBytes(); acc[5] += x.optimizerBytes(); acc[6] += p.activationBytes(); acc[7] += x.activationBytes();
        }
        t.addColumns(strategy, rank, states, exact, act, gap);
        CategoryChart ch = new CategoryChartBuilder().width(1000).height(480).title("Predicted vs measured memory per rank: " + m.name())
                .xAxisTitle("strategy").yAxisTitle("KiB per rank (mean over the strategy's ranks)").build();
        ch.getStyler().setXAxisLabelRotation(35);
        ch.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
        List<String> names = new ArrayList<>(perStrategy.keySet());
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Row r : rows) counts.merge(r.measured().strategy(), 1, Integer::sum);
        String[] comps = {"params", "grads", "optimizer", "activations"};
        java.awt.Color[] colors = {new java.awt.Color(31, 119, 180), new java.awt.Color(44, 160, 44),
                new java.awt.Color(148, 103, 189), new java.awt.Color(214, 39, 40)};
        for (int k = 0; k < 4; k++) {
            List<Double> pred = new ArrayList<>(), meas = new ArrayList<>();
            for (String n : names) {
                pred.add(perStrategy.get(n)[2 * k] / counts.get(n) / 1024);
                meas.add(perStrategy.get(n)[2 * k + 1] / counts.get(n) / 1024);
            }
            ch.addSeries(comps[k] + " predicted", names, pred).setFillColor(colors[k]);
            java.awt.Color c = colors[k];
            ch.addSeries(comps[k] + " measured", names, meas)
                    .setFillColor(new java.awt.Color(c.getRed(), c.getGreen(), c.getBlue(), 110));
        }
        String head = String.format("%d of %d ranks have model-state bytes exactly as predicted; %d of %d have activations within 15%%. "
                + "Measurements from %s.  %nPredicted activations follow Korthikanti et al. (per layer, micro-batches in flight, the "
                + "output layer kept, as the paper has it) without dropout terms, since the engine's GPT has none; the engine counts "
                + "the tensors autograd saved plus each unit's input. Gaps beyond 15%% are shown as they are.",
                exactCount, rows.size(), actOk, rows.size(), source);
        return Report.builder("Validation: planner vs measured memory, " + m.name()).text(head)
                .table(t, "Per rank: bytes predicted by the planner and measured by the engine")
                .chart(ch, "Predicted (planner formulas) next to measured (engine, " + source + ") bytes per component and strategy.")
                .data(Map.of("ranks", rows.size(), "states_exact", exactCount, "activations_within_15pct", actOk)).build();
    }
}
