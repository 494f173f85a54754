package parallax.engine.cluster;

import com.google.gson.JsonElement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiConsumer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Is an all-reduce's result the sum? Each implementation (the built-in one and the three of
 * {@link AllReduceAlgorithms}) sums known inputs, and every element is compared with the
 * exact sum, worked out in double from the same inputs.
 *
 * <p><b>Tolerance.</b> A float32 sum of n terms, added in any order (a chain, a tree, chunk
 * by chunk), rounds at most n-1 times, each time by a relative error of at most
 * u = 2^-24, so it lies within gamma(n-1) x sum|x_i| of the exact sum, where
 * gamma(k) = k u / (1 - k u) (Higham, "Accuracy and Stability of Numerical Algorithms",
 * 2nd ed., 2002, section 4.2). The check allows exactly that, per element: a correct
 * algorithm can never exceed it, while a lost or doubled contribution, a wrong chunk
 * boundary or a stale buffer does, by orders of magnitude.
 *
 * <p>The same run counts what each of the three send/recv algorithms sends (the rank's
 * {@link CommStats}) and compares it with its formula.
 */
public final class AllReduceCheck implements RankTask {

    /** Unit roundoff of float32 (round to nearest): half the distance from 1 to the next float. */
    static final double UNIT_ROUNDOFF = 0x1p-24;

    /** The implementations checked, by their benchmark names: the built-in one and the three of {@link AllReduceAlgorithms}. */
    public static final List<String> IMPLS = List.of("runtime", "ring", "tree", "ps");

    /** The send/recv algorithms, whose traffic is counted. */
    static final List<String> COUNTED = List.of("ring", "tree", "ps");

    /**
     * The worst element of one implementation's result over one world and size: the largest
     * difference from the exact sum, and the largest fraction of its own tolerance that any
     * element used (above 1: wrong).
     */
    public record Deviation(String impl, int world, long elements, double maxAbsDiff, double toleranceAtMaxDiff,
                            double worstFraction, long worstElement, double worstValue, double worstExact,
                            double worstTolerance) {

        public boolean within() {
            return worstFraction <= 1;
        }

        /** One line naming the algorithm, the world size, the size and the difference. */
        public String failure() {
            return String.format(Locale.ROOT, "all-reduce check failed: %s, %d ranks, %d element%s: element %d is %.9g,"
                            + " the exact sum is %.9g, a difference of %.3g, above the float32 tolerance %.3g"
                            + " ((n-1) u sum|x_i|, u = 2^-24)",
                    label(impl), world, elements, elements == 1 ? "" : "s", worstElement, worstValue, worstExact,
                    Math.abs(worstValue - worstExact), worstTolerance);
        }

        /** The worse of two deviations of the same check (say, from two ranks). */
        Deviation worse(Deviation o) {
            boolean mine = worstFraction >= o.worstFraction || Double.isNaN(worstFraction);
            Deviation w = mine ? this : o;
            boolean myDiff = maxAbsDiff >= o.maxAbsDiff || Double.isNaN(maxAbsDiff);
            return new Deviation(impl, world, elements, myDiff ? maxAbsDiff : o.maxAbsDiff,
                    myDiff ? toleranceAtMaxDiff : o.toleranceAtMaxDiff, w.worstFraction, w.worstElement, w.worstValue,
                    w.worstExact, w.worstTolerance);
        }
    }

    /**
     * Bytes one send/recv algorithm sent for a tensor of {@code bytes} bytes, counted by
     * {@link CommStats} on every rank: the busiest rank's share and the sum over ranks, with
     * the formulas they should match.
     */
    public record Traffic(String impl, int world, long bytes, long busiestRankSentBytes, long allRanksSentBytes) {

        /** Measured: bytes the busiest rank sent, in multiples of the tensor. */
        public double busiestOverSize() { return (double) busiestRankSentBytes / bytes; }

        /** Measured: bytes all ranks sent together, in multiples of the tensor. */
        public double allOverSize() { return (double) allRanksSentBytes / bytes; }

        /**
         * Formula for {@link #busiestOverSize}: ring 2(n-1)/n (each of 2(n-1) steps passes one
         * n-th), tree the most a rank sends (one copy up, one to each child: at most 3),
         * parameter server n-1 (rank 0 sends the sum to everyone else).
         */
        public double busiestFormula() { return busiestFormula(impl, world); }

        /** Formula for {@link #allOverSize}: 2(n-1) for all three. */
        public double allFormula() { return 2.0 * (world - 1); }

        /** Message latencies one after the other in the algorithm's model (not measured). */
        public int steps() { return steps(impl, world); }

        static double busiestFormula(String impl, int n) {
            return switch (impl) {
                case "ring" -> 2.0 * (n - 1) / n;
                case "tree" -> {
                    int most = 0;
                    for (int r = 0; r < n; r++) most = Math.max(most, AllReduceAlgorithms.treeChildren(r, n).length + (r == 0 ? 0 : 1));
                    yield most;
                }
                case "ps" -> n - 1;
                default -> throw new IllegalArgumentException(impl);
            };
        }

        /** Ring 2(n-1) steps; tree 2 floor(log2 n) levels; parameter server 2(n-1) messages through rank 0. */
        static int steps(String impl, int n) {
            return switch (impl) {
                case "ring", "ps" -> 2 * (n - 1);
                case "tree" -> 2 * AllReduceAlgorithms.treeDepth(n);
                default -> throw new IllegalArgumentException(impl);
            };
        }
    }

    /** What a check over one world found. */
    public record Outcome(List<Deviation> deviations, List<Traffic> traffic) {

        /** Throws a {@link ClusterError} naming the first implementation out of tolerance. */
        public Outcome requireWithinTolerance() {
            for (Deviation d : deviations) if (!d.within()) throw new ClusterError(d.failure());
            return this;
        }
    }

    /**
     * Element counts checked over {@code n} ranks: one element, fewer elements than ranks,
     * counts that n does not divide, and one large enough for several tree chunks.
     */
    static List<Long> checkedSizes(int n) {
        List<Long> s = new ArrayList<>(List.of(1L));
        if (n - 1 > 1) s.add((long) n - 1);
        s.addAll(List.of(7L, 1001L, 3 * AllReduceAlgorithms.TREE_CHUNK_ELEMENTS + 1));
        return s;
    }

    /** Elements of the tensor whose traffic is counted: divisible by 2, 3 and 4, several tree chunks. */
    static final long COUNTED_ELEMENTS = 3 * AllReduceAlgorithms.TREE_CHUNK_ELEMENTS;

    /**
     * What rank {@code rank} contributes at element {@code i}: values of both signs and of
     * different sizes per rank, so that rounding happens, and a lost contribution shows.
     */
    static float input(int rank, long i) {
        return (float) ((1 + rank) * Math.sin(0.37 * i + 1.3 * rank + 0.1));
    }

    /** Tolerance for one element: gamma(n-1) x sum|x_i| (see the class comment). */
    static double tolerance(int n, double absSum) {
        double k = (n - 1) * UNIT_ROUNDOFF;
        return k / (1 - k) * absSum;
    }

    /**
     * Compares {@code result} with the exact sum of {@code inputs} (one row per rank):
     * the deviation of implementation {@code impl}.
     */
    public static Deviation compare(String impl, float[][] inputs, float[] result) {
        int n = inputs.length;
        double[] exact = new double[result.length];
        double[] abs = new double[result.length];
        for (float[] row : inputs) {
            if (row.length != result.length) throw new IllegalArgumentException("inputs and result differ in length");
            for (int i = 0; i < row.length; i++) {
                exact[i] += row[i];
                abs[i] += Math.abs(row[i]);
            }
        }
        return compare(impl, n, result, exact, abs);
    }

    private static Deviation compare(String impl, int n, float[] result, double[] exact, double[] abs) {
        double maxDiff = 0, tolAtMax = 0, worst = 0, worstTol = 0;
        long worstAt = 0;
        for (int i = 0; i < result.length; i++) {
            double diff = Math.abs(result[i] - exact[i]);
            double tol = tolerance(n, abs[i]);
            // NaN fails: nothing compares above it, so it is made infinite
            double fraction = Double.isNaN(diff) ? Double.POSITIVE_INFINITY : diff == 0 ? 0 : diff / tol;
            if (diff > maxDiff || Double.isNaN(diff) && !Double.isNaN(maxDiff)) {
                maxDiff = diff;
                tolAtMax = tol;
            }
            if (fraction > worst) {
                worst = fraction;
                worstAt = i;
                worstTol = tol;
            }
        }
        int w = (int) worstAt;
        double value = result.length == 0 ? 0 : result[w];
        double ex = result.length == 0 ? 0 : exact[w];
        return new Deviation(impl, n, result.length, maxDiff, tolAtMax, worst, worstAt, value, ex, worstTol);
    }

    // ---------------------------------------------------------------- the rank side

    /**
     * Runs every implementation on every checked size, compares on this rank, and counts the
     * send/recv algorithms' bytes. Returns {"deviations": [...], "sentBytes": {impl: bytes}}.
     */
    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) {
        Collectives g = dist.worldGroup();
        int n = g.size();
        int r = g.rank();
        List<Deviation> deviations = new ArrayList<>();
        for (long len : checkedSizes(n)) {
            double[] exact = new double[(int) len];
            double[] abs = new double[(int) len];
            for (int q = 0; q < n; q++) {
                for (int i = 0; i < len; i++) {
                    float x = input(q, i);
                    exact[i] += x;
                    abs[i] += Math.abs(x);
                }
            }
            for (String impl : IMPLS) {
                float[] result = runOnce(g, impl, len, r);
                deviations.add(compare(impl, n, result, exact, abs));
            }
        }
        Map<String, Long> sent = new LinkedHashMap<>();
        for (String impl : COUNTED) {
            long before = g.stats().get(CommStats.Op.SEND).bytes();
            runOnce(g, impl, COUNTED_ELEMENTS, r);
            sent.put(impl, g.stats().get(CommStats.Op.SEND).bytes() - before);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("deviations", deviations);
        out.put("sentBytes", sent);
        return out;
    }

    private static float[] runOnce(Collectives g, String impl, long len, int rank) {
        try (PointerScope s = new PointerScope()) {
            float[] v = new float[(int) len];
            for (int i = 0; i < len; i++) v[i] = input(rank, i);
            // Host-side check of a collective on host tensors (the Gloo/shared-memory path it benchmarks).
            Tensor t = parallax.engine.torch.Device.cpu().fromFloats(v, len);
            implementation(impl).accept(g, t);
            return parallax.engine.torch.Device.hostFloats(t);
        }
    }

    /** The all-reduce called {@code impl} in the benchmark: runtime (built-in), ring, tree, ps. */
    static BiConsumer<Collectives, Tensor> implementation(String impl) {
        return switch (impl) {
            case "runtime" -> Collectives::allReduce;
            case "ring" -> AllReduceAlgorithms::ring;
            case "tree" -> AllReduceAlgorithms::tree;
            case "ps" -> AllReduceAlgorithms::parameterServer;
            default -> throw new ClusterError("unknown all-reduce " + impl + " (runtime, ring, tree, ps)");
        };
    }

    /** How the reports name an implementation. */
    public static String label(String impl) {
        return switch (impl) {
            case "runtime" -> "built-in";
            case "ps" -> "parameter server";
            default -> impl;
        };
    }

    // ---------------------------------------------------------------- the coordinator side

    /** Runs the check on every rank of {@code pool}; the worst over ranks, not yet judged. */
    public static Outcome run(WorkerPool pool) {
        List<JsonElement> res = pool.run(AllReduceCheck.class.getName(), "{}", null, ev -> { });
        int n = pool.size();
        Map<String, Deviation> worst = new LinkedHashMap<>();
        Map<String, long[]> sent = new LinkedHashMap<>();   // impl -> {busiest, all}
        for (JsonElement e : res) {
            var o = e.getAsJsonObject();
            for (var d : o.getAsJsonArray("deviations")) {
                Deviation dev = Wire.GSON.fromJson(d, Deviation.class);
                worst.merge(dev.impl() + "/" + dev.elements(), dev, Deviation::worse);
            }
            for (var s : o.getAsJsonObject("sentBytes").entrySet()) {
                long b = s.getValue().getAsLong();
                long[] acc = sent.computeIfAbsent(s.getKey(), k -> new long[2]);
                acc[0] = Math.max(acc[0], b);
                acc[1] += b;
            }
        }
        List<Traffic> traffic = new ArrayList<>();
        for (var s : sent.entrySet()) {
            traffic.add(new Traffic(s.getKey(), n, COUNTED_ELEMENTS * 4, s.getValue()[0], s.getValue()[1]));
        }
        return new Outcome(new ArrayList<>(worst.values()), traffic);
    }
}
