package parallax.engine.parallel;

/**
 * One rank's routing counts over a run of a mixture of experts: tokens routed to each expert
 * of each block it runs (before the capacity cut, summed over its micro-batches and steps),
 * and the (token, expert) assignments dropped over capacity, per step.
 */
final class ExpertLoad {

    private final long[][] load;      // [layer][expert]
    private final long[] droppedPerStep;
    private long droppedNow, routedNow, routedPerStep;

    ExpertLoad(int layers, int experts, int steps) {
        this.load = new long[layers][experts];
        this.droppedPerStep = new long[steps];
    }

    void add(int layer, long[] tokens, long dropped) {
        for (int e = 0; e < tokens.length; e++) {
            load[layer][e] += tokens[e];
            routedNow += tokens[e];
        }
        droppedNow += dropped;
    }

    /** Closes step {@code i} (0-based within the run). */
    void endStep(int i) {
        droppedPerStep[i] = droppedNow;
        routedPerStep = routedNow;
        droppedNow = 0;
        routedNow = 0;
    }

    RankResult.Experts result() { return new RankResult.Experts(load, droppedPerStep, routedPerStep); }
}
