package parallax.engine.plan;

import java.util.Locale;
import parallax.engine.UserError;
import parallax.engine.parallel.TrainSpec;

/**
 * What a training run will take before it starts, from the planner's formulas: the fullest
 * rank's memory (the same prediction {@code %plan --validate} checks against measured runs)
 * and the FLOPs of a step. {@code %parallel} shows the time estimate for large shapes and
 * refuses a run that cannot fit in the ranks' memory, with the numbers.
 */
public record RunEstimate(TrainSpec spec, MemoryValidation.Prediction fullest, double flopsPerStep) {

    /** The estimate for {@code spec} (validated). */
    public static RunEstimate of(TrainSpec spec) {
        spec.validate(spec.world());
        Layout l = ValidationRuns.layoutOf(spec);
        ModelSpec m = ValidationRuns.spec(spec.model());
        MemoryValidation.Prediction most = null;
        // The ranks of the layout the planner models (without --cp it is every rank).
        for (int r = 0; r < l.gpus(); r++) {
            MemoryValidation.Prediction p = MemoryValidation.predict(m, l, r);
            if (most == null || total(p) > total(most)) most = p;
        }
        double tokens = (double) spec.batch() * spec.model().sequence();
        // 6 Ψ per token, 8 with recomputation (docs/reference.md#flops-and-mfu).
        double flops = (spec.checkpointEvery() > 0 ? 8.0 : 6.0) * spec.model().parameterCount() * tokens;
        return new RunEstimate(spec, most, flops);
    }

    static double total(MemoryValidation.Prediction p) {
        return p.paramBytes() + p.gradBytes() + p.optimizerBytes() + p.activationBytes();
    }

    /** Bytes the fullest rank needs: model states plus activations. */
    public double fullestRankBytes() { return total(fullest); }

    /** Seconds per step if each rank computes at {@code flopsPerRank} FLOP/s. */
    public double secondsPerStep(double flopsPerRank) {
        return flopsPerStep / spec.world() / flopsPerRank;
    }

    /** Fails in one line, with the planner's numbers, when the fullest rank needs more than {@code availablePerRank}. */
    public void requireFits(double availablePerRank, String where) {
        if (fullestRankBytes() <= availablePerRank) return;
        throw new UserError(String.format(Locale.ROOT,
                "%s at %s needs about %.2f GiB on its fullest rank (parameters %.2f, gradients %.2f, optimizer %.2f, "
                        + "activations %.2f GiB: the planner's formulas, docs/plan.md), more than the %.2f GiB %s: "
                        + "lower --batch or --sequence, add --checkpoint, --zero 3, --tp or --pp",
                spec.model().name(), spec.label(), gib(fullestRankBytes()), gib(fullest.paramBytes()), gib(fullest.gradBytes()),
                gib(fullest.optimizerBytes()), gib(fullest.activationBytes()), gib(availablePerRank), where));
    }

    private static double gib(double b) { return b / (1L << 30); }
}
