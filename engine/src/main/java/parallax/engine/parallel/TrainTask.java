package parallax.engine.parallel;

import parallax.engine.torch.Device;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.cluster.Collectives;
import parallax.engine.cluster.Dist;
import parallax.engine.cluster.RankReporter;
import parallax.engine.cluster.RankTask;

/**
 * The worker side of a training run: on every rank of the pool, reads the
 * {@link TrainSpec}, asks the runtime's mesh for its DP, TP and PP groups and runs
 * {@link TrainingLoop#train}, streaming each step's metrics back.
 */
public final class TrainTask implements RankTask {

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        TrainSpec spec = Training.GSON.fromJson(argsJson, TrainSpec.class);
        spec.validate(dist.world());
        long tokens = (long) spec.batch() * spec.model().sequence();
        TrainingLoop.StepListener listener = new TrainingLoop.StepListener() {
            @Override public void step(int step, java.util.Map<String, Object> metrics) {
                // The names the Prometheus endpoint exports as parallax_step_seconds and parallax_tokens_per_second.
                java.util.Map<String, Object> m = new java.util.LinkedHashMap<>(metrics);
                if (metrics.get("stepMs") instanceof Number ms && ms.doubleValue() > 0) {
                    m.put("stepSeconds", ms.doubleValue() / 1000);
                    m.put("tokensPerSecond", tokens / (ms.doubleValue() / 1000));
                }
                reporter.step(step, m);
            }
            @Override public void event(String kind, java.util.Map<String, Object> fields) { reporter.event(kind, fields); }
        };
        TrainingLoop.Groups groups = new TrainingLoop.Groups(comm(dist.dpGroup()), comm(dist.tpGroup()), comm(dist.ppGroup()),
                dist.cpGroup() == null ? Comm.single() : comm(dist.cpGroup()), comm(dist.dpCpGroup()),
                spec.ep() > 1 ? comm(dist.mesh().expertParallelGroup(spec.ep())) : Comm.single(),
                spec.ep() > 1 ? comm(dist.mesh().expertDataParallelGroup(spec.ep())) : comm(dist.dpCpGroup()));
        return TrainingLoop.train(spec, dist.rank(), dist.mesh().coords(), Device.parse(dist.device()), groups, listener);
    }

    /** The runtime's collectives seen as a {@link Comm}. */
    static Comm comm(Collectives c) {
        if (c.size() == 1) return Comm.single();
        return new Comm() {
            @Override public int rank() { return c.rank(); }
            @Override public int size() { return c.size(); }
            @Override public void allReduce(Tensor t) { c.allReduce(t); }
            @Override public void allGather(Tensor out, Tensor in) { c.allGather(out, in); }
            @Override public void reduceScatter(Tensor out, Tensor in) { c.reduceScatter(out, in); }
            @Override public void allToAll(Tensor out, Tensor in) { c.allToAll(out, in); }
            @Override public void send(Tensor t, int dst, int tag) { c.send(t, dst, tag); }
            @Override public void recv(Tensor t, int src, int tag) { c.recv(t, src, tag); }
            @Override public Pending isend(Tensor t, int dst, int tag) { return c.isend(t, dst, tag)::await; }
            @Override public void sendRecv(Tensor out, int dst, Tensor in, int src) { c.sendRecv(out, dst, in, src); }
        };
    }
}
