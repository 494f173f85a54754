package parallax.engine.cluster;

import com.google.gson.JsonParser;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Runs the built-in, ring, tree and parameter-server all-reduce on seeded random inputs and
 * returns the raw results, so the test can compare them with sums it works out itself.
 * Arguments: {"sizes": [elements...], "treeChunk": elements}. The tree also runs with the
 * small chunk, so that a few hundred elements already go up and down in several pieces.
 */
public final class AllReduceResultsTask implements RankTask {

    /** What rank {@code rank} puts in for a tensor of {@code len} elements; the test calls it too. */
    static float[] inputs(int rank, int len) {
        Random rnd = new Random(1000L * len + rank);
        float[] v = new float[len];
        for (int i = 0; i < len; i++) v[i] = (float) ((rnd.nextDouble() * 2 - 1) * Math.pow(10, rnd.nextInt(5) - 2));
        return v;
    }

    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        var a = JsonParser.parseString(argsJson).getAsJsonObject();
        long chunk = a.get("treeChunk").getAsLong();
        Collectives g = dist.worldGroup();
        Map<String, Map<String, float[]>> out = new LinkedHashMap<>();
        for (var e : a.getAsJsonArray("sizes")) {
            int len = e.getAsInt();
            Map<String, float[]> bySize = new LinkedHashMap<>();
            bySize.put("runtime", reduce(inputs(dist.rank(), len), t -> g.allReduce(t)));
            bySize.put("ring", reduce(inputs(dist.rank(), len), t -> AllReduceAlgorithms.ring(g, t)));
            bySize.put("tree", reduce(inputs(dist.rank(), len), t -> AllReduceAlgorithms.tree(g, t)));
            bySize.put("treeChunked", reduce(inputs(dist.rank(), len), t -> AllReduceAlgorithms.tree(g, t, chunk)));
            bySize.put("ps", reduce(inputs(dist.rank(), len), t -> AllReduceAlgorithms.parameterServer(g, t)));
            out.put(String.valueOf(len), bySize);
        }
        return out;
    }

    private static float[] reduce(float[] in, java.util.function.Consumer<Tensor> allReduce) {
        try (PointerScope s = new PointerScope()) {
            Tensor t = Tensor.create(in);
            allReduce.accept(t);
            float[] r = new float[in.length];
            ((FloatBuffer) t.createBuffer()).get(r);
            return r;
        }
    }
}
