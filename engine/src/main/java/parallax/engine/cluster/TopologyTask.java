package parallax.engine.cluster;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Device;

/**
 * The rank side of {@code %cluster topology}: point-to-point latency and bandwidth between
 * every ordered pair of ranks, one pair at a time while the others wait, in the manner of
 * nccl-tests' and nvbandwidth's pairwise runs.
 *
 * <p>For a pair (i, j): latency is half the median round trip of a 4-byte message
 * ({@code latencyIters} round trips); bandwidth is {@code iters} messages of {@code bytes}
 * sent back to back from i to j, timed by i from the first send to j's 4-byte receipt of
 * the last, so one latency is included (small against a few MiB). Both directions are
 * measured, since a link's two directions may differ. Sends and receives are Gloo's, over
 * TCP between the pair's node addresses (loopback inside a node).
 *
 * <p>Arguments: {@code {"bytes": n, "iters": k, "latencyIters": m}}; result on rank i:
 * {@code {"to": [j...], "gbps": [GB/s...], "latencyUs": [µs...]}} for the pairs it sent in.
 */
public final class TopologyTask implements RankTask {

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        JsonObject a = JsonParser.parseString(argsJson).getAsJsonObject();
        long bytes = a.get("bytes").getAsLong();
        int iters = a.get("iters").getAsInt(), latencyIters = a.get("latencyIters").getAsInt();
        Collectives g = dist.worldGroup();
        int n = g.size(), me = g.rank();
        double[] gbps = new double[n], latencyUs = new double[n];
        try (PointerScope s = new PointerScope()) {
            Tensor big = Device.cpu().zeros(DType.F32, Math.max(1, bytes / 4));
            Tensor small = Device.cpu().zeros(DType.F32, 1);
            int pair = 0;
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    if (i == j) continue;
                    g.barrier();   // one pair at a time: the others wait here
                    if (me == i) {
                        latencyUs[j] = pingPong(g, small, j, latencyIters, true);
                        long t0 = System.nanoTime();
                        for (int k = 0; k < iters; k++) g.send(big, j);
                        g.recv(small, j);
                        gbps[j] = (double) big.nbytes() * iters / ((System.nanoTime() - t0) / 1e9) / 1e9;
                    } else if (me == j) {
                        pingPong(g, small, i, latencyIters, false);
                        for (int k = 0; k < iters; k++) g.recv(big, i);
                        g.send(small, i);
                    }
                    reporter.step(++pair, Map.of("from", i, "to", j));
                }
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("gbps", gbps);
        out.put("latencyUs", latencyUs);
        return out;
    }

    /** Half the median round trip in µs (as measured by the side that starts). */
    private static double pingPong(Collectives g, Tensor t, int peer, int iters, boolean starts) {
        double[] rtt = new double[iters];
        for (int k = 0; k < iters + 2; k++) {   // two untimed round trips first
            long t0 = System.nanoTime();
            if (starts) {
                g.send(t, peer);
                g.recv(t, peer);
            } else {
                g.recv(t, peer);
                g.send(t, peer);
            }
            if (k >= 2) rtt[k - 2] = (System.nanoTime() - t0) / 1e3;
        }
        Arrays.sort(rtt);
        return rtt[iters / 2] / 2;
    }
}
