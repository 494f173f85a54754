package parallax.engine.plan;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Predicted versus measured memory per rank. The planner predicts the model-state bytes
 * (parameters, gradients, optimizer states) of every rank exactly from the tensor shapes,
 * and activations by the Korthikanti formulas; a measurement record, written by the
 * training engine, holds what each rank really allocated.
 *
 * <p>Rank order follows Megatron's parallel_state: tp varies fastest, then dp, then pp.
 * ZeRO cuts a stage's flat parameter buffer into chunks of ⌈n/dp⌉ elements; rank r owns
 * elements [r·chunk, min(n, (r+1)·chunk)), so the last rank may own fewer (no padding).
 * Model states must match to the byte; activations within 15%.
 */
public final class MemoryValidation {

    /** What one rank of one strategy run allocated, in bytes, as the engine reports it. */
    public record Measurement(String strategy, int rank, int dp, int tp, int pp, int zero, String dtype, String optimizer,
                              int microBatch, int seq, long paramBytes, long gradBytes, long optimizerBytes, long activationBytes) {}

    /** The planner's prediction for the same rank. */
    public record Prediction(int rank, int dpRank, int tpRank, int stage, long paramBytes, long gradBytes, long optimizerBytes,
                             double activationBytes) {}

    /** One compared rank: the gaps (measured − predicted) and whether they pass. */
    public record Row(Measurement measured, Prediction predicted, boolean statesExact, double activationGap, boolean activationOk) {}

    public static final double ACTIVATION_TOLERANCE = 0.15;

    private MemoryValidation() {}

    /** Exact model-state bytes (and the activation estimate) of one rank of a layout. */
    public static Prediction predict(ModelSpec m, Layout l, Conventions c, int rank) {
        if (rank < 0 || rank >= l.gpus()) throw new UserError("rank " + rank + " is outside 0.." + (l.gpus() - 1));
        int tpRank = rank % l.tp();
        int dpRank = (rank / l.tp()) % l.dp();
        int stage = rank / (l.tp() * l.dp());
        Planner.StateBytes sb = Planner.stateBytes(l, c);
        long n = Planner.stageElements(m, l.tp(), l.pp(), stage);
        long owned = Planner.partition(n, l.dp(), dpRank);
        long params = (l.zero() == 3 ? owned : n) * sb.param();
        long grads = (l.zero() >= 2 ? owned : n) * sb.grad();
        long opt = (l.zero() >= 1 ? owned : n) * sb.optimizer();
        double act = Planner.layersOfStage(m.layers(), l.pp(), stage)
                * Activations.perLayer(m, l.seq(), l.microBatch(), l.tp(), l.sequenceParallel(), l.recompute())
                * Activations.inFlight(l.schedule(), l.pp(), l.virtualStages(), l.microBatches(), stage)
                * l.dtype().activationBytes() / 2.0;
        return new Prediction(rank, dpRank, tpRank, stage, params, grads, opt, act);
    }

    /** Whether this build has a training engine that can measure memory per rank. */
    public static boolean engineAvailable() {
        try {
            Class.forName("parallax.engine.parallel.MemoryProbe");
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    public static final String ENGINE_MISSING = "the training engine is not available yet in this build, so there is nothing "
            + "measured to validate against; --validate --measured FILE compares a measurement record the engine writes";

    /** Reads a record: {"model": ..., "runs": [{strategy, rank, dp, tp, pp, zero, dtype, optimizer, ...bytes}]}. */
    public static List<Measurement> read(Path path) {
        if (!Files.isRegularFile(path)) throw new UserError("no measurement record at " + path);
        try {
            JsonElement e = JsonParser.parseString(Files.readString(path));
            JsonArray runs = e.isJsonObject() && e.getAsJsonObject().has("runs") ? e.getAsJsonObject().getAsJsonArray("runs")
                    : e.isJsonArray() ? e.getAsJsonArray() : null;
            if (runs == null) throw new UserError(path + " has no \"runs\" array of measurements");
            List<Measurement> out = new ArrayList<>();
            for (JsonElement r : runs) {
                JsonObject o = r.getAsJsonObject();
                out.add(new Measurement(str(o, "strategy", path), num(o, "rank", path), num(o, "dp", path), num(o, "tp", path),
                        num(o, "pp", path), num(o, "zero", path), str(o, "dtype", path), str(o, "optimizer", path),
                        num(o, "micro_batch", path), num(o, "seq", path), lng(o, "param_bytes", path), lng(o, "grad_bytes", path),
                        lng(o, "optimizer_bytes", path), lng(o, "activation_bytes", path)));
            }
            return out;
        } catch (IOException ex) {
            throw new UserError("cannot read " + path + ": " + ex.getMessage());
        } catch (com.google.gson.JsonParseException | IllegalStateException ex) {
            throw new UserError(path + " is not a valid measurement record: " + ex.getMessage());
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

    /** The layout a measurement was taken under (one step's micro-batches: 1, no recompute). */
    public static Layout layoutOf(Measurement x) {
        return new Layout(x.dp(), x.tp(), x.pp(), 1, x.zero(), x.microBatch(), 1, x.seq(), Layout.Recompute.NONE, false,
                Planner.optimizer(x.optimizer()), dtype(x.dtype()), false, false, null);
    }

    static Dtype dtype(String s) {
        for (Dtype d : Dtype.values()) if (d.label().equalsIgnoreCase(s)) return d;
        throw new UserError("unknown dtype '" + s + "' in measurement record (fp32, bf16, fp16, fp8)");
    }

    public static List<Row> compare(ModelSpec m, List<Measurement> measured) {
        Conventions c = Conventions.defaults();
        List<Row> rows = new ArrayList<>();
        for (Measurement x : measured) {
            Prediction p = predict(m, layoutOf(x), c, x.rank());
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
        CategoryChart ch = new CategoryChartBuilder().width(800).height(440).title("Predicted vs measured memory: " + m.name())
                .xAxisTitle("strategy").yAxisTitle("bytes, summed over ranks").build();
        List<String> names = new ArrayList<>(perStrategy.keySet());
        String[] comps = {"params", "grads", "optimizer", "activations"};
        for (int k = 0; k < 4; k++) {
            List<Double> pred = new ArrayList<>(), meas = new ArrayList<>();
            for (String n : names) { pred.add(perStrategy.get(n)[2 * k]); meas.add(perStrategy.get(n)[2 * k + 1]); }
            ch.addSeries(comps[k] + " predicted", names, pred);
            ch.addSeries(comps[k] + " measured", names, meas);
        }
        String head = String.format("%d of %d ranks have model-state bytes exactly as predicted; %d of %d have activations within 15%%. "
                + "Measurements from %s.", exactCount, rows.size(), actOk, rows.size(), source);
        return Report.builder("Validation: planner vs measured memory, " + m.name()).text(head)
                .table(t, "Per rank: bytes predicted by the planner and measured by the engine")
                .chart(ch, "Predicted (planner formulas) next to measured (engine, " + source + ") bytes per component and strategy.")
                .data(Map.of("ranks", rows.size(), "states_exact", exactCount, "activations_within_15pct", actOk)).build();
    }
}
