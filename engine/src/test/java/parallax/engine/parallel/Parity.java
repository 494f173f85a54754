package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

/** Assertions that a parallel run reproduces the single-process run of the same model and data. */
final class Parity {

    private Parity() {}

    /** Every step's loss within 1e-5 relative of the reference's. */
    static void losses(String label, double[] loss, double[] reference, int steps) {
        for (int s = 0; s < steps; s++) {
            double rel = Math.abs(loss[s] - reference[s]) / Math.abs(reference[s]);
            assertTrue(rel < 1e-5, label + " step " + (s + 1) + ": " + loss[s] + " vs reference " + reference[s]);
        }
    }

    /** The same tensors, every element within 1e-4 + 1e-3·|w| of the reference's. */
    static void weights(String label, Map<String, float[]> got, Map<String, float[]> reference) {
        assertEquals(reference.keySet(), got.keySet());
        for (Map.Entry<String, float[]> e : reference.entrySet()) {
            float[] want = e.getValue(), have = got.get(e.getKey());
            assertEquals(want.length, have.length, label + " " + e.getKey());
            for (int i = 0; i < want.length; i++)
                assertEquals(want[i], have[i], 1e-4 + 1e-3 * Math.abs(want[i]), label + " " + e.getKey() + "[" + i + "]");
        }
    }

    /** Losses and final weights of {@code run} against the reference's. */
    static void matches(TrainingRun run, double[] referenceLoss, Map<String, float[]> referenceWeights, int steps) {
        losses(run.label(), run.loss(), referenceLoss, steps);
        weights(run.label(), run.parameters(), referenceWeights);
    }
}
