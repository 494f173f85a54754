package parallax.engine.precision;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import parallax.engine.UserError;
import parallax.engine.numerics.CodecPath;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Encode/decode throughput of our codecs against libtorch's CPU {@code to(dtype)} on the
 * same array, in the same process, one thread each. Median of timed repetitions after
 * warm-up; values per second = array length / median time. Every {@link CodecPath} this
 * JVM offers is timed; "ours" is the path the codecs use here ({@link FloatFormat#codecPath}).
 */
public final class CodecBenchmark {

    /**
     * One measurement: values/s of the path the codecs use, of every path this JVM offers
     * (by {@link CodecPath} name), and of libtorch.
     */
    public record Result(String format, String direction, int values, String path, double oursPerSecond,
                         Map<String, Double> perPath, double torchPerSecond) {
        public double ratio() { return oursPerSecond / torchPerSecond; }
    }

    private CodecBenchmark() {}

    /** Rejects sizes too small to time. */
    public static void validate(int n, int reps) {
        if (n < 1024) throw new UserError("--values must be at least 1024, got " + n);
        if (reps < 3) throw new UserError("--reps must be at least 3, got " + reps);
    }

    public static List<Result> run(List<FloatFormat> formats, int n, int reps, Progress progress) {
        validate(n, reps);
        TorchCast.oneThread();
        SplittableRandom r = new SplittableRandom(1);
        float[] x = PrecisionTraining.gaussian(r, n, 1);
        List<Result> out = new ArrayList<>();
        int done = 0;
        for (FloatFormat f : formats) {
            if (f == FloatFormat.FP32) continue;
            float[] back = new float[n];
            short[] s16 = new short[n];
            byte[] s8 = new byte[n];
            boolean wide = f.bytesPerValue() == 2;
            Map<String, Double> enc = new LinkedHashMap<>(), dec = new LinkedHashMap<>();
            for (CodecPath p : CodecPath.values()) {
                if (p.handles(f, true)) enc.put(p.name(), n / median(reps, () -> {
                    if (wide) p.encode(f, x, 0, s16, 0, n, Rounding.NON_SATURATING); else p.encode(f, x, 0, s8, 0, n, Rounding.NON_SATURATING);
                }));
                if (p.handles(f, false)) dec.put(p.name(), n / median(reps, () -> {
                    if (wide) p.decode(f, s16, 0, back, 0, n); else p.decode(f, s8, 0, back, 0, n);
                }));
            }
            double torchEnc, torchDec;
            try (PointerScope scope = new PointerScope()) {
                Tensor src = Device.cpu().fromFloats(x, x.length);
                Tensor narrow = src.to(TorchCast.scalarType(f));
                ScalarType dt = TorchCast.scalarType(f);
                torchEnc = median(reps, () -> {
                    try (PointerScope s = new PointerScope()) {
                        src.to(dt);
                    }
                });
                torchDec = median(reps, () -> {
                    try (PointerScope s = new PointerScope()) {
                        narrow.to(ScalarType.Float);
                    }
                });
            }
            CodecPath encPath = f.codecPath(true), decPath = f.codecPath(false);
            out.add(new Result(f.label(), "FP32 -> " + f.shortName(), n, encPath.name(), enc.get(encPath.name()), enc, n / torchEnc));
            out.add(new Result(f.label(), f.shortName() + " -> FP32", n, decPath.name(), dec.get(decPath.name()), dec, n / torchDec));
            progress.update(++done, Map.of("format", f.shortName()));
        }
        return out;
    }

    /** The least warm-up time of each measured loop. */
    static final long WARM_UP_NANOS = 500_000_000L;

    /**
     * Median seconds of {@code reps} timed runs after at least {@code reps} warm-up runs and
     * {@link #WARM_UP_NANOS}: a loop of a million values takes well under a millisecond, and
     * on a loaded machine the JIT's compiler thread needs longer than a few dozen of them
     * to replace the first compiled (on-stack-replaced) loop with the vectorised one.
     */
    static double median(int reps, Runnable work) {
        long start = System.nanoTime();
        for (int i = 0; i < reps || System.nanoTime() - start < WARM_UP_NANOS; i++) work.run();
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            work.run();
            t[i] = (System.nanoTime() - t0) / 1e9;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }

    public static Report report(List<Result> results, int reps) {
        Table t = Table.create("Codec throughput");
        StringColumn f = StringColumn.create("format"), d = StringColumn.create("direction"), used = StringColumn.create("path"),
                ours = StringColumn.create("Parallax (M values/s)"), lt = StringColumn.create("libtorch to(dtype) (M values/s)"),
                ratio = StringColumn.create("ours / libtorch");
        Map<CodecPath, StringColumn> perPath = new LinkedHashMap<>();
        for (CodecPath p : CodecPath.values()) if (p.available()) perPath.put(p, StringColumn.create(p.name().toLowerCase(Locale.ROOT) + " (M/s)"));
        for (Result r : results) {
            f.append(r.format());
            d.append(r.direction());
            used.append(r.path().toLowerCase(Locale.ROOT));
            ours.append(String.format(Locale.ROOT, "%.0f", r.oursPerSecond() / 1e6));
            lt.append(String.format(Locale.ROOT, "%.0f", r.torchPerSecond() / 1e6));
            ratio.append(String.format(Locale.ROOT, "%.2f", r.ratio()));
            for (Map.Entry<CodecPath, StringColumn> e : perPath.entrySet()) {
                Double v = r.perPath().get(e.getKey().name());
                e.getValue().append(v == null ? "-" : String.format(Locale.ROOT, "%.0f", v / 1e6));
            }
        }
        t.addColumns(f, d, used, ours, lt, ratio);
        for (StringColumn c : perPath.values()) t.addColumns(c);
        int n = results.isEmpty() ? 0 : results.get(0).values();
        String jvm = "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")";
        String cpu = System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores visible, " + jvm;
        StringBuilder paths = new StringBuilder();
        for (CodecPath p : CodecPath.values()) {
            paths.append(p.name().toLowerCase(Locale.ROOT)).append(": ").append(p.description())
                    .append(p.available() ? "" : p == CodecPath.VECTOR ? " - not in this JVM (start it with --add-modules jdk.incubator.vector)"
                            : " - not in this JVM (Java 20+)").append("; ");
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("values", n);
        data.put("reps", reps);
        data.put("threads", 1);
        data.put("machine", cpu);
        data.put("javaVersion", System.getProperty("java.version"));
        List<String> available = new ArrayList<>();
        for (CodecPath p : CodecPath.values()) if (p.available()) available.add(p.name());
        data.put("paths", available);
        data.put("results", results);
        return Report.builder("Codec throughput vs libtorch")
                .text(String.format(Locale.ROOT, "%,d values ~ N(0, 1), one thread for both; median of %d timed runs after "
                        + "at least %d warm-up runs and %.1f s. Ours: bulk array codecs (float[] to short[]/byte[] and back) on each path this JVM "
                        + "offers (%s); the Parallax column is the path the codecs pick. libtorch: tensor.to(dtype) on the CPU, "
                        + "allocation of the result included. Machine: %s.", n, reps, reps, WARM_UP_NANOS / 1e9, paths.toString().replaceAll("; $", ""), cpu))
                .table(t, "Measured in one process on this machine, " + jvm)
                .data(data)
                .build();
    }
}
