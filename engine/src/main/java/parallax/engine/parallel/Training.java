package parallax.engine.parallel;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import parallax.engine.cluster.MeshShape;
import parallax.engine.cluster.RankEvent;
import parallax.engine.cluster.WorkerPool;

/**
 * The coordinator side of a training run: sends a {@link TrainSpec} to every rank of the
 * worker pool, relays live step events, and collects the ranks' {@link RankResult}s into
 * a {@link Run}.
 */
public final class Training {

    static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().create();

    private Training() {}

    private static volatile List<Run> last = List.of();

    /** The runs of the last %parallel training command in this session (for cells). */
    public static List<Run> lastRuns() { return last; }

    /** The last run (of a --compare, the last layout), or null before any. */
    public static Run lastRun() { return last.isEmpty() ? null : last.get(last.size() - 1); }

    public static void remember(List<Run> runs) { last = List.copyOf(runs); }

    /** A finished run: what was asked and what every rank measured. */
    public record Run(TrainSpec spec, double[] loss, List<RankResult> ranks) {

        public double medianStepMs() {
            double[] worst = new double[spec.steps()];
            for (RankResult r : ranks) for (int s = 0; s < worst.length; s++) worst[s] = Math.max(worst[s], r.stepMs()[s]);
            return median(worst, spec.steps() > 2 ? 1 : 0);
        }

        /** Global tokens per second from the median step (first step excluded as warm-up). */
        public double tokensPerSecond() {
            return spec.batch() * (double) spec.model().sequence() / (medianStepMs() / 1000.0);
        }

        public Map<String, float[]> parameters() { return Hybrid.gatherParameters(ranks); }
    }

    public static double median(double[] values, int skip) {
        double[] v = java.util.Arrays.copyOfRange(values, Math.min(skip, values.length - 1), values.length);
        java.util.Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    /** Runs {@code spec} on {@code pool} (its size must be dp*tp*pp). */
    public static Run run(WorkerPool pool, TrainSpec spec, Consumer<RankEvent> events) {
        spec.validate(pool.size());
        List<JsonElement> out = pool.run(TrainTask.class.getName(), GSON.toJson(spec),
                new MeshShape(spec.dp(), spec.tp(), spec.pp()), events == null ? e -> {} : events);
        List<RankResult> ranks = new ArrayList<>();
        for (JsonElement e : out) ranks.add(GSON.fromJson(e, RankResult.class));
        return new Run(spec, Hybrid.globalLoss(ranks, spec.steps()), ranks);
    }
}
