package parallax.engine.cluster;

/**
 * Code that runs on every rank of the worker pool (SPMD): the contract between the
 * runtime and whoever has work for the ranks (training strategies, benchmarks, tests).
 *
 * <p>A task is a public class with a public no-argument constructor, found by name on the
 * worker's classpath (the coordinator's classpath). For each run every rank makes a fresh
 * instance and calls {@link #run}; the returned value is serialised to JSON (Gson) and
 * handed back to the coordinator, one per rank, by {@link WorkerPool#run}. An exception
 * ends the run with an error naming the rank; the other ranks are then stopped.
 *
 * <pre>{@code
 * public final class SumTask implements RankTask {
 *     public Object run(Dist dist, String argsJson, RankReporter reporter) {
 *         try (PointerScope s = new PointerScope()) {
 *             Tensor t = torch.ones(4).mul(new Scalar(dist.rank() + 1));
 *             dist.allReduce(t);
 *             reporter.step(1, Map.of("sum", t.item_double()));
 *             return t.sum().item_double();
 *         }
 *     }
 * }
 * }</pre>
 */
@FunctionalInterface
public interface RankTask {

    /**
     * @param dist     this rank's view of the job (rank, mesh, groups, collectives)
     * @param argsJson the arguments given to {@link WorkerPool#run}, as JSON text, the same on every rank
     * @param reporter streams progress and metrics to the coordinator while the task runs
     * @return a value for the coordinator (serialised with Gson), or null
     */
    Object run(Dist dist, String argsJson, RankReporter reporter) throws Exception;
}
