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
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Encode/decode throughput of our codecs against libtorch's CPU {@code to(dtype)} on the
 * same array, in the same process, one thread each. Median of timed repetitions after
 * warm-up; values per second = array length / median time.
 */
public final class CodecBenchmark {

    /** One measurement: values/s for ours and for libtorch. */
    public record Result(String format, String direction, int values, double oursPerSecond, double torchPerSecond) {
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
            double oursEnc = median(reps, () -> {
                if (wide) f.encode(x, 0, s16, 0, n, Rounding.NON_SATURATING); else f.encode(x, 0, s8, 0, n, Rounding.NON_SATURATING);
            });
            double oursDec = median(reps, () -> {
                if (wide) f.decode(s16, 0, back, 0, n); else f.decode(s8, 0, back, 0, n);
            });
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
            out.add(new Result(f.label(), "FP32 -> " + f.shortName(), n, n / oursEnc, n / torchEnc));
            out.add(new Result(f.label(), f.shortName() + " -> FP32", n, n / oursDec, n / torchDec));
            progress.update(++done, Map.of("format", f.shortName()));
        }
        return out;
    }

    /** Median seconds of {@code reps} timed runs after {@code reps} warm-up runs. */
    static double median(int reps, Runnable work) {
        for (int i = 0; i < reps; i++) work.run();
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
        StringColumn f = StringColumn.create("format"), d = StringColumn.create("direction"),
                ours = StringColumn.create("Parallax (M values/s)"), lt = StringColumn.create("libtorch to(dtype) (M values/s)"),
                ratio = StringColumn.create("ours / libtorch");
        for (Result r : results) {
            f.append(r.format());
            d.append(r.direction());
            ours.append(String.format(Locale.ROOT, "%.0f", r.oursPerSecond() / 1e6));
            lt.append(String.format(Locale.ROOT, "%.0f", r.torchPerSecond() / 1e6));
            ratio.append(String.format(Locale.ROOT, "%.2f", r.ratio()));
        }
        t.addColumns(f, d, ours, lt, ratio);
        int n = results.isEmpty() ? 0 : results.get(0).values();
        String cpu = System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores visible, "
                + "Java " + System.getProperty("java.version");
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("values", n);
        data.put("reps", reps);
        data.put("threads", 1);
        data.put("machine", cpu);
        data.put("results", results);
        return Report.builder("Codec throughput vs libtorch")
                .text(String.format(Locale.ROOT, "%,d values ~ N(0, 1), one thread for both; median of %d timed runs after "
                        + "%d warm-up runs. Ours: bulk array codecs (float[] to short[]/byte[] and back). libtorch: "
                        + "tensor.to(dtype) on the CPU, allocation of the result included. Machine: %s.", n, reps, reps, cpu))
                .table(t, "Measured in one process on this machine")
                .data(data)
                .build();
    }
}
