package parallax.engine.cluster;

import parallax.engine.numerics.DType;
import parallax.engine.torch.Device;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AllToAllOptions;
import org.bytedeco.pytorch.AllgatherOptions;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.ReduceScatterOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * The rank side of {@code %parallel --bench}: times one collective for each message size
 * and returns this rank's median seconds per size.
 *
 * <p>Arguments: {@code {"op": "allreduce|allgather|reduce_scatter|broadcast|alltoall", "sizes": [bytes...],
 * "impls": ["runtime", "raw", "ring", "tree", "ps"], "iters": n, "warmup": n, "jitWarmup": n}}; the result maps each
 * implementation to its median seconds per size. "runtime" goes through
 * {@link Collectives} (timeouts, byte counting); "raw" calls the ProcessGroupGloo directly,
 * the baseline for the runtime's overhead; "ring", "tree" and "ps" are the send/recv
 * all-reduces of {@link AllReduceAlgorithms} (all-reduce only). The size is the nccl-tests
 * message size: the all-reduce buffer, the all-gather output, the reduce-scatter input, the
 * broadcast buffer, the all-to-all send buffer (equal split, as all_to_all_single without sizes).
 */
public final class CollectiveBenchTask implements RankTask {

    /** Untimed calls of each implementation before the first size. */
    static final int JIT_WARMUP_CALLS = 50;

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        JsonObject a = JsonParser.parseString(argsJson).getAsJsonObject();
        String op = a.get("op").getAsString();
        List<String> impls = new ArrayList<>();
        a.getAsJsonArray("impls").forEach(e -> impls.add(e.getAsString()));
        int warmup = a.has("warmup") ? a.get("warmup").getAsInt() : 3;
        int jitWarmup = a.has("jitWarmup") ? a.get("jitWarmup").getAsInt() : JIT_WARMUP_CALLS;
        int fixedIters = a.has("iters") ? a.get("iters").getAsInt() : 0;
        Collectives g = dist.worldGroup();
        Device device = Device.parse(dist.device());
        int n = g.size();
        Map<String, List<Double>> medians = new LinkedHashMap<>();
        for (String impl : impls) medians.put(impl, new ArrayList<>());
        JsonArray sizes = a.getAsJsonArray("sizes");
        for (int i = 0; i < sizes.size(); i++) {
            long bytes = sizes.get(i).getAsLong();
            int iters = fixedIters > 0 ? fixedIters : bytes <= (1 << 20) ? 20 : bytes <= (8 << 20) ? 10 : 5;
            try (PointerScope s = new PointerScope()) {
                long elems = Math.max(n, bytes / 4 / n * n);   // divisible by n for the sharded ops
                Tensor big = device.zeros(DType.F32, elems);
                Tensor shard = device.zeros(DType.F32, elems / n);
                List<Runnable> once = new ArrayList<>();
                for (String impl : impls) once.add(step(op, impl, g, big, shard));
                // Before the first size, each implementation runs long enough for the JIT to
                // compile its Java path (cold, the first calls cost milliseconds): then the
                // per-size warm-up only has to settle the buffers, as nccl-tests' does.
                int calls = i == 0 ? Math.max(warmup, jitWarmup) : warmup;
                for (Runnable r : once) for (int w = 0; w < calls; w++) r.run();
                double[][] t = new double[impls.size()][iters];
                g.barrier();
                // Implementations take turns call by call, so a change in machine load
                // (other jobs on the same cores) hits them alike.
                for (int k = 0; k < iters; k++) {
                    for (int j = 0; j < once.size(); j++) {
                        int m = (j + k) % once.size();   // and each goes first in turn
                        device.synchronize(); // on a GPU a collective is queued, not done, when the call returns
                        long t0 = System.nanoTime();
                        once.get(m).run();
                        device.synchronize();
                        t[m][k] = (System.nanoTime() - t0) / 1e9;
                    }
                }
                for (int m = 0; m < impls.size(); m++) {
                    Arrays.sort(t[m]);
                    medians.get(impls.get(m)).add(t[m][iters / 2]);
                }
            }
            reporter.step(i + 1, Map.of("bytes", bytes));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("seconds", medians);
        return out;
    }

    private static Runnable step(String op, String impl, Collectives g, Tensor big, Tensor shard) {
        switch (impl) {
            case "runtime":
                return switch (op) {
                    case "allreduce" -> () -> g.allReduce(big);
                    case "allgather" -> () -> g.allGather(big, shard);
                    case "reduce_scatter" -> () -> g.reduceScatter(shard, big);
                    case "broadcast" -> () -> g.broadcast(big, 0);
                    case "alltoall" -> {
                        Tensor out = big.clone();
                        yield () -> g.allToAll(out, big);
                    }
                    default -> throw new ClusterError("unknown collective " + op);
                };
            case "raw": {
                Backend b = g.backend();
                TensorVector bigV = new TensorVector(big);
                AllreduceOptions ar = new AllreduceOptions();
                AllgatherOptions ag = new AllgatherOptions();
                ReduceScatterOptions rs = new ReduceScatterOptions();
                BroadcastOptions bc = new BroadcastOptions();
                return switch (op) {
                    case "allreduce" -> () -> b.allreduce(bigV, ar)._wait();
                    case "allgather" -> () -> b._allgather_base(big, shard, ag)._wait();
                    case "reduce_scatter" -> () -> b._reduce_scatter_base(shard, big, rs)._wait();
                    case "broadcast" -> () -> b.broadcast(bigV, bc)._wait();
                    case "alltoall" -> {
                        Tensor out = big.clone();
                        AllToAllOptions aa = new AllToAllOptions();
                        LongVector equal = new LongVector();
                        yield () -> b.alltoall_base(out, big, equal, equal, aa)._wait();
                    }
                    default -> throw new ClusterError("unknown collective " + op);
                };
            }
            case "ring":
                return () -> AllReduceAlgorithms.ring(g, big);
            case "tree":
                return () -> AllReduceAlgorithms.tree(g, big);
            case "ps":
                return () -> AllReduceAlgorithms.parameterServer(g, big);
            default:
                throw new ClusterError("unknown implementation " + impl + " (runtime, raw, ring, tree, ps)");
        }
    }
}
