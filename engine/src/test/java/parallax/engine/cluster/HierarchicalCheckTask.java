package parallax.engine.cluster;

import com.google.gson.JsonParser;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Runs all-reduce, all-gather and reduce-scatter on the world group (and all-reduce on the
 * mesh's groups) with seeded inputs, and checks each result on the rank itself against the
 * exact answer worked out in double from every rank's inputs: all-gather must be exact, sums
 * within the float32 bound (n-1) u sum|x_i| per element. Returns, per case, how close to that
 * bound the worst element came and a CRC of the result's bits, so the test can see that every
 * rank holds the same bits. Arguments: {"sizes": [elements...]}.
 */
public final class HierarchicalCheckTask implements RankTask {

    private static final double U = Math.pow(2, -24);

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        var a = JsonParser.parseString(argsJson).getAsJsonObject();
        Collectives g = dist.worldGroup();
        int n = g.size(), me = g.rank();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("world", g.transport());
        out.put("tp", dist.tpGroup().transport());
        out.put("dp", dist.dpGroup().transport());
        out.put("pp", dist.ppGroup().transport());
        for (var e : a.getAsJsonArray("sizes")) {
            int len = e.getAsInt();
            try (PointerScope s = new PointerScope()) {
                // all-reduce
                Tensor t = Tensor.create(AllReduceResultsTask.inputs(me, len));
                g.allReduce(t);
                float[] sum = floats(t);
                out.put("allReduce/" + len, Map.of("overTolerance", overTolerance(sum, n, q -> AllReduceResultsTask.inputs(q, len), 0),
                        "crc", crc(sum)));

                // all-gather: exact concatenation in group-rank order
                Tensor gathered = torch.empty((long) n * len);
                g.allGather(gathered, Tensor.create(AllReduceResultsTask.inputs(me, len)));
                float[] got = floats(gathered);
                int bad = -1;
                for (int q = 0; q < n && bad < 0; q++) {
                    float[] want = AllReduceResultsTask.inputs(q, len);
                    for (int i = 0; i < len; i++) {
                        if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[q * len + i])) {
                            bad = q * len + i;
                            break;
                        }
                    }
                }
                out.put("allGather/" + len, Map.of("firstWrong", bad));

                // reduce-scatter: this rank's part of the sum of n x len inputs
                Tensor part = torch.empty(len);
                g.reduceScatter(part, Tensor.create(AllReduceResultsTask.inputs(me, n * len)));
                out.put("reduceScatter/" + len, Map.of("overTolerance",
                        overTolerance(floats(part), n, q -> AllReduceResultsTask.inputs(q, n * len), me * (long) len)));
            }
        }
        // the mesh's groups: a sum of group ranks + 1, exact in float
        try (PointerScope s = new PointerScope()) {
            for (String kind : new String[] {"tp", "dp", "pp"}) {
                Collectives grp = kind.equals("tp") ? dist.tpGroup() : kind.equals("dp") ? dist.dpGroup() : dist.ppGroup();
                Tensor t = Tensor.create(new float[] {grp.rank() + 1, 1});
                grp.allReduce(t);
                out.put(kind + "Sum", floats(t)[0]);
            }
        }
        return out;
    }

    /** Largest |result - exact| / ((n-1) u sum|x|) over the elements, the inputs of element i being at {@code offset + i}. */
    static double overTolerance(float[] result, int n, java.util.function.IntFunction<float[]> inputsOf, long offset) {
        double[] exact = new double[result.length], abs = new double[result.length];
        for (int q = 0; q < n; q++) {
            float[] x = inputsOf.apply(q);
            for (int i = 0; i < result.length; i++) {
                exact[i] += x[(int) offset + i];
                abs[i] += Math.abs(x[(int) offset + i]);
            }
        }
        double worst = 0;
        for (int i = 0; i < result.length; i++) {
            double tol = (n - 1) * U * abs[i];
            double d = Math.abs(result[i] - exact[i]);
            worst = Math.max(worst, tol == 0 ? (d == 0 ? 0 : Double.POSITIVE_INFINITY) : d / tol);
        }
        return worst;
    }

    static long crc(float[] v) {
        CRC32 c = new CRC32();
        for (float f : v) {
            int b = Float.floatToIntBits(f);
            c.update(b);
            c.update(b >>> 8);
            c.update(b >>> 16);
            c.update(b >>> 24);
        }
        return c.getValue();
    }

    private static float[] floats(Tensor t) {
        float[] r = new float[(int) t.numel()];
        ((FloatBuffer) t.contiguous().createBuffer()).get(r);
        return r;
    }
}
