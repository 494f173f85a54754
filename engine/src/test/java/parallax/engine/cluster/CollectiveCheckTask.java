package parallax.engine.cluster;

import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Runs every collective once with values derived from the rank, and returns what came out,
 * so the test can compare against sums worked out by hand.
 */
public final class CollectiveCheckTask implements RankTask {

    static float[] values(Tensor t) {
        Tensor c = t.contiguous();
        float[] a = new float[(int) c.numel()];
        FloatBuffer b = c.createBuffer();
        b.get(a);
        return a;
    }

    static Tensor filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return Tensor.create(a);
    }

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        Map<String, Object> out = new LinkedHashMap<>();
        int r = dist.rank();
        int w = dist.world();
        try (PointerScope s = new PointerScope()) {
            Tensor a = filled(4, r + 1);
            dist.allReduce(a);
            out.put("allReduce", values(a));
            reporter.step(1, Map.of("op", "allReduce"));

            Tensor in = filled(2, r);
            Tensor gathered = torch.empty(2L * w);
            dist.allGather(gathered, in);
            out.put("allGather", values(gathered));
            reporter.step(2, Map.of("op", "allGather"));

            float[] big = new float[2 * w];
            for (int i = 0; i < big.length; i++) big[i] = i + r;
            Tensor shard = torch.empty(2);
            dist.reduceScatter(shard, Tensor.create(big));
            out.put("reduceScatter", values(shard));

            int root = w - 1;
            Tensor b = filled(3, r == root ? 42 : -1);
            dist.broadcast(b, root);
            out.put("broadcast", values(b));

            // equal-split all-to-all: block j (2 floats) of rank r's input is 100r + 2j, 100r + 2j + 1
            float[] blocks = new float[2 * w];
            for (int i = 0; i < blocks.length; i++) blocks[i] = 100 * r + i;
            Tensor moved = torch.empty(2L * w);
            dist.worldGroup().allToAll(moved, Tensor.create(blocks));
            out.put("allToAll", values(moved));

            Tensor msg = filled(2, 10 * r);
            Tensor got = torch.zeros(2);
            int next = (r + 1) % w;
            int prev = (r - 1 + w) % w;
            if (r % 2 == 0) {
                dist.send(msg, next);
                dist.recv(got, prev);
            } else {
                dist.recv(got, prev);
                dist.send(msg, next);
            }
            out.put("recvFromPrev", values(got));
            dist.barrier();

            // the subgroups of the mesh: sum the world rank over each
            Mesh m = dist.mesh();
            Tensor tp = filled(1, r);
            m.tpGroup().allReduce(tp);
            Tensor dp = filled(1, r);
            m.dpGroup().allReduce(dp);
            Tensor pp = filled(1, r);
            m.ppGroup().allReduce(pp);
            out.put("tpSum", values(tp)[0]);
            out.put("dpSum", values(dp)[0]);
            out.put("ppSum", values(pp)[0]);
            out.put("coords", new int[] {m.dpRank(), m.tpRank(), m.ppRank()});
            out.put("prevStage", m.prevStageRank());
            out.put("nextStage", m.nextStageRank());
            out.put("worldTransport", dist.worldGroup().transport());
            out.put("allReduceBytes", dist.stats().get(CommStats.Op.ALL_REDUCE).bytes());
            out.put("allReduceCalls", dist.stats().get(CommStats.Op.ALL_REDUCE).calls());
        }
        return out;
    }
}
