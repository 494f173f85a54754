package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ring, tree and parameter-server all-reduce (and the built-in one) across real worker
 * JVMs over Gloo, for sizes the world does not divide; and the tolerance check that judges
 * them, fed with results that are wrong.
 */
class AllReduceAlgorithmsTest {

    @TempDir
    Path logs;

    private static final List<String> IMPLS = List.of("runtime", "ring", "tree", "treeChunked", "ps");

    private static float[] floats(JsonElement e) {
        var a = e.getAsJsonArray();
        float[] f = new float[a.size()];
        for (int i = 0; i < f.length; i++) f[i] = a.get(i).getAsFloat();
        return f;
    }

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {2, 3, 4})
    void everyAlgorithmSumsWithinTheFloat32Tolerance(int n) {
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 30_000);
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(n), n, opts)) {
            // one element, fewer than ranks, and counts n does not divide
            List<Integer> sizes = new ArrayList<>(new TreeSet<>(List.of(1, n - 1, 7, 1001)));
            JsonObject args = new JsonObject();
            args.add("sizes", Wire.GSON.toJsonTree(sizes));
            args.addProperty("treeChunk", 100);   // 1001 elements: 11 chunks up and down the tree
            List<JsonElement> res = pool.run(AllReduceResultsTask.class.getName(), args.toString(), null, ev -> { });
            assertEquals(n, res.size());
            for (int len : sizes) {
                float[][] in = new float[n][];
                for (int q = 0; q < n; q++) in[q] = AllReduceResultsTask.inputs(q, len);
                for (String impl : IMPLS) {
                    float[] first = floats(res.get(0).getAsJsonObject().getAsJsonObject(String.valueOf(len)).get(impl));
                    assertEquals(len, first.length);
                    for (int r = 1; r < n; r++) {
                        float[] mine = floats(res.get(r).getAsJsonObject().getAsJsonObject(String.valueOf(len)).get(impl));
                        assertArrayEquals(first, mine, impl + ", " + len + " elements: rank " + r + " holds another sum than rank 0");
                    }
                    AllReduceCheck.Deviation d = AllReduceCheck.compare(impl, in, first);
                    assertTrue(d.within(), d.failure());
                }
            }

            // the benchmark's own check on the same ranks: passes, and counts what each algorithm sent
            AllReduceCheck.Outcome o = CollectiveBenchmark.checkAllReduce(pool);
            assertEquals(AllReduceCheck.IMPLS.size() * AllReduceCheck.checkedSizes(n).size(), o.deviations().size());
            for (AllReduceCheck.Deviation d : o.deviations()) {
                assertTrue(d.within(), d.failure());
                assertEquals(n, d.world());
            }
            // multiples of the tensor size, written out: ring 2(n-1)/n per rank; tree one copy up
            // and one per child (rank 0 has 1 child at n=2, 2 children at n=3 and 4; rank 1 has
            // a child at n=4); parameter server n-1 from rank 0; in total 2(n-1) for all three
            Map<String, Double> busiest = Map.of("ring", 2.0 * (n - 1) / n, "tree", n == 2 ? 1.0 : 2.0, "ps", n - 1.0);
            assertEquals(3, o.traffic().size());
            for (AllReduceCheck.Traffic t : o.traffic()) {
                assertEquals(busiest.get(t.impl()), t.busiestOverSize(), 1e-12, t.impl() + " busiest rank");
                assertEquals(busiest.get(t.impl()), t.busiestFormula(), 1e-12, t.impl() + " formula");
                assertEquals(2.0 * (n - 1), t.allOverSize(), 1e-12, t.impl() + " all ranks");
            }
        }
    }

    /** Inputs of {@code n} ranks and their float32 sum added in rank order, as an all-reduce would. */
    private static float[][] inputs(int n, int len) {
        float[][] in = new float[n][];
        for (int q = 0; q < n; q++) in[q] = AllReduceResultsTask.inputs(q, len);
        return in;
    }

    private static float[] float32Sum(float[][] in, boolean reversed) {
        float[] s = new float[in[0].length];
        for (int k = 0; k < in.length; k++) {
            float[] row = in[reversed ? in.length - 1 - k : k];
            for (int i = 0; i < s.length; i++) s[i] += row[i];
        }
        return s;
    }

    @Test
    void float32SumsInAnyOrderPassTheCheck() {
        float[][] in = inputs(4, 20_000);
        for (boolean reversed : new boolean[] {false, true}) {
            AllReduceCheck.Deviation d = AllReduceCheck.compare("ring", in, float32Sum(in, reversed));
            assertTrue(d.within(), d.failure());
            assertTrue(d.maxAbsDiff() > 0, "float32 rounding must show in 20000 sums, or the check proves nothing");
        }
        // a tree order: (x0 + x1) + (x2 + x3)
        float[] pairs = new float[20_000];
        for (int i = 0; i < pairs.length; i++) pairs[i] = (in[0][i] + in[1][i]) + (in[2][i] + in[3][i]);
        assertTrue(AllReduceCheck.compare("tree", in, pairs).within());
    }

    @Test
    void aResultOffByMoreThanTheToleranceFailsWithOneLine() {
        float[][] in = inputs(3, 1001);
        float[] good = float32Sum(in, false);
        AllReduceCheck.Deviation ok = AllReduceCheck.compare("tree", in, good);
        assertTrue(ok.within(), ok.failure());

        double exact = (double) in[0][17] + in[1][17] + in[2][17];
        double abs = Math.abs((double) in[0][17]) + Math.abs((double) in[1][17]) + Math.abs((double) in[2][17]);
        double tol = 2 * 0x1p-24 / (1 - 2 * 0x1p-24) * abs;   // gamma(2) sum|x|
        float[] bad = good.clone();
        bad[17] = (float) (exact + 10 * tol);
        AllReduceCheck.Deviation d = AllReduceCheck.compare("tree", in, bad);
        assertFalse(d.within());
        assertEquals(17, d.worstElement());
        assertEquals(tol, d.worstTolerance(), tol * 1e-12);
        assertTrue(d.worstFraction() > 9 && d.worstFraction() < 11, "fraction " + d.worstFraction());

        AllReduceCheck.Outcome o = new AllReduceCheck.Outcome(List.of(ok, d), List.of());
        ClusterError e = assertThrows(ClusterError.class, o::requireWithinTolerance);
        String m = e.getMessage();
        assertTrue(m.startsWith("all-reduce check failed: tree, 3 ranks, 1001 elements: element 17 is "), m);
        assertTrue(m.contains(String.format(java.util.Locale.ROOT, "a difference of %.3g", Math.abs(bad[17] - exact))), m);
        assertTrue(m.contains(String.format(java.util.Locale.ROOT, "above the float32 tolerance %.3g", tol)), m);
        assertFalse(m.contains("\n"), m);
    }

    @Test
    void aLostContributionOrANanFails() {
        float[][] in = inputs(4, 7);
        float[] withoutRank3 = float32Sum(new float[][] {in[0], in[1], in[2]}, false);
        AllReduceCheck.Deviation lost = AllReduceCheck.compare("ring", in, withoutRank3);
        assertFalse(lost.within());
        assertThrows(ClusterError.class, () -> new AllReduceCheck.Outcome(List.of(lost), List.of()).requireWithinTolerance());

        float[] nan = float32Sum(in, false);
        nan[6] = Float.NaN;
        AllReduceCheck.Deviation n = AllReduceCheck.compare("ps", in, nan);
        assertFalse(n.within());
        assertEquals(6, n.worstElement());
    }

    @Test
    void theToleranceIsAFewUlpsTight() {
        // two positive inputs: the correctly rounded sum is within half an ulp, the tolerance
        // u (a + b) under one ulp, so a result four ulps away fails
        float[][] in = {{1.1f, 3.3f, 1000.7f}, {2.2f, 4.4f, 0.9f}};
        float[] sum = float32Sum(in, false);
        assertTrue(AllReduceCheck.compare("ps", in, sum).within());
        for (int i = 0; i < sum.length; i++) {
            float[] off = sum.clone();
            off[i] = sum[i] + 4 * Math.ulp(sum[i]);
            assertFalse(AllReduceCheck.compare("ps", in, off).within(), "4 ulps off at element " + i);
        }
    }
}
