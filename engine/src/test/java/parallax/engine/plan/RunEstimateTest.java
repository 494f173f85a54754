package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import parallax.engine.model.GptConfig;
import parallax.engine.parallel.TrainSpec;

/** The estimate %parallel makes before a run, for the layouts issue 13 added. */
class RunEstimateTest {

    /**
     * A context-parallel run has dp*cp*tp*pp ranks; the estimate used to ask the planner for
     * ranks its cp-less layout did not have, so every --cp run stopped with
     * "rank 1 is outside 0..0" before training. Cutting the sequence can only lower a
     * rank's memory, never raise it.
     */
    @Test
    void contextParallelRunsAreEstimated() {
        TrainSpec one = TrainSpec.defaults(GptConfig.longContext());
        for (int cp : new int[] {2, 4}) {
            RunEstimate withCp = RunEstimate.of(one.withCp(cp));
            assertTrue(withCp.fullestRankBytes() > 0);
            assertTrue(withCp.fullestRankBytes() <= RunEstimate.of(one).fullestRankBytes(), "cp " + cp);
        }
        RunEstimate cpTp = RunEstimate.of(one.withLayout(1, 2, 1).withCp(2).withSequenceParallel(true));
        assertTrue(cpTp.fullestRankBytes() <= RunEstimate.of(one).fullestRankBytes());
    }
}
