package parallax.engine.formats;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Throughput of {@code %convert} against a plain copy of the same file, in the same run:
 * a safetensors file of F32 [4096, 4096] tensors (64 MiB each) with Gaussian-like values
 * is generated in a temporary directory, then copied (Files.copy, then fsync as the
 * converter does before its rename) and converted to GGUF
 * F16, GGUF Q8_0 and GGUF Q4_K_M (all Q4_K here: the tensors have no llama.cpp names),
 * {@code repeats} times each after one uncounted warm-up round;
 * medians are reported. Everything
 * written is deleted afterwards.
 */
public final class ConvertBenchmark {

    private ConvertBenchmark() {}

    public record Case(String name, List<Double> mbPerSecond, double medianMBps, double ratioToCopy) {}

    /** Decoding one ggml block type to float32 on one thread: M values per second (median of the runs) and the ratio to Q8_0's. */
    public record Dequant(String type, List<Double> mValuesPerSecond, double median, double ratioToQ8_0) {}

    public record Result(long fileBytes, int tensors, int repeats, int threads, long maxHeapBytes, List<Case> cases,
                         List<Dequant> dequantization, String directory) {}

    /** Values per dequantization run: 4 Mi, a multiple of every block size. */
    static final int DEQUANT_VALUES = 1 << 22;

    /**
     * Dequantization speed of every ggml block type the readers decode, one thread, in this
     * JVM: the types Parallax writes decode blocks it quantized from Gaussian-like values,
     * the others decode pseudo-random bytes whose fp16/fp32 scale fields are set to 0.01 so
     * no subnormal or NaN arithmetic skews the time. Each type is decoded once to warm up,
     * then {@code repeats} times.
     */
    public static List<Dequant> dequantization(int repeats) {
        float[] x = new float[DEQUANT_VALUES];
        long s = 0x9E3779B97F4A7C15L;
        for (int i = 0; i < x.length; i++) {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            x[i] = ((s & 0xffff) + ((s >>> 16) & 0xffff) + ((s >>> 32) & 0xffff) - 98302.5f) / 65536f * 0.04f;
        }
        float[] out = new float[DEQUANT_VALUES];
        parallax.engine.numerics.FloatCodec codec = new parallax.engine.numerics.FloatCodec();
        Map<String, List<Double>> rates = new LinkedHashMap<>();
        for (DType t : DType.values()) {
            if (!t.isBlock()) continue;
            ByteBuffer blocks = ByteBuffer.allocate((int) t.bytesFor(DEQUANT_VALUES)).order(ByteOrder.LITTLE_ENDIAN);
            if (codec.canEncode(t)) {
                codec.encodeBlocks(t, x, DEQUANT_VALUES, blocks, null);
            } else {
                for (int i = 0; i < blocks.capacity(); i++) {
                    s ^= s << 13;
                    s ^= s >>> 7;
                    s ^= s << 17;
                    blocks.put(i, (byte) s);
                }
                tameScales(t, blocks);
            }
            List<Double> runs = new ArrayList<>();
            for (int r = -1; r < repeats; r++) {
                blocks.clear();
                long t0 = System.nanoTime();
                codec.decode(t, blocks, out, DEQUANT_VALUES);
                double sec = (System.nanoTime() - t0) / 1e9;
                if (r >= 0) runs.add(DEQUANT_VALUES / 1e6 / sec);
            }
            rates.put(t.name(), runs);
        }
        double q8 = median(rates.get("Q8_0"));
        List<Dequant> outList = new ArrayList<>();
        rates.forEach((k, v) -> outList.add(new Dequant(k, v, median(v), median(v) / q8)));
        return outList;
    }

    /** Sets the scale fields of random blocks to 0.01 (fp16 0x211F, or float32 for Q8_K; E8M0 2^-7 for MXFP4, E4M3 for NVFP4). */
    private static void tameScales(DType t, ByteBuffer b) {
        int bb = t.blockBytes();
        for (int at = 0; at + bb <= b.capacity(); at += bb) {
            switch (t) {
                case Q8_K: b.putFloat(at, 0.01f); break;
                case MXFP4: b.put(at, (byte) 120); break;
                case NVFP4: for (int k = 0; k < 4; k++) b.put(at + k, (byte) 0x30); break;
                case Q2_K: b.putShort(at + 80, (short) 0x211F); b.putShort(at + 82, (short) 0x211F); break;
                case Q3_K: b.putShort(at + 108, (short) 0x211F); break;
                case Q6_K: b.putShort(at + 208, (short) 0x211F); break;
                case Q4_K: case Q5_K: b.putShort(at, (short) 0x211F); b.putShort(at + 2, (short) 0x211F); break;
                case Q4_1: case Q5_1: case Q8_1: b.putShort(at, (short) 0x211F); b.putShort(at + 2, (short) 0x211F); break;
                default: b.putShort(at, (short) 0x211F); break; // d first: Q4_0, Q5_0, Q8_0, the i-quants, IQ4_NL/XS, TQ1_0/TQ2_0 keep d elsewhere
            }
            if (t == DType.TQ1_0 || t == DType.TQ2_0) b.putShort(at + bb - 2, (short) 0x211F);
        }
    }

    /**
     * Checks the flags before anything is written: the size, the repeats, and that
     * {@code tmpRoot} is (or can become) a directory with room for the source file, its
     * copy and one converted file at a time.
     */
    public static void validate(long megabytes, int repeats, Path tmpRoot) {
        if (megabytes < 64) throw new UserError("--bench needs at least 64 MB, got " + megabytes);
        if (repeats < 1) throw new UserError("--repeat must be at least 1, got " + repeats);
        Path existing = tmpRoot.toAbsolutePath();
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null || !Files.isDirectory(existing))
            throw new UserError("--tmp " + tmpRoot + " is not a directory");
        try {
            long free = Files.getFileStore(existing).getUsableSpace();
            // source + copy + one F16 output: 2.5 bytes per byte of the source
            if (megabytes > free / 2_500_000L)
                throw new UserError(String.format(Locale.ROOT, "--bench %d MB needs about %.1f GB free in %s, which has %.1f GB",
                        megabytes, megabytes * 2.5e6 / 1e9, existing, free / 1e9));
        } catch (IOException e) {
            throw new UserError("--tmp " + tmpRoot + ": " + e.getMessage());
        }
    }

    public static Result run(long megabytes, int repeats, Path tmpRoot, Progress progress) {
        validate(megabytes, repeats, tmpRoot);
        Path dir;
        try {
            Files.createDirectories(tmpRoot);
            dir = Files.createTempDirectory(tmpRoot, "parallax-bench-");
        } catch (IOException e) {
            throw new UserError("--tmp " + tmpRoot + ": cannot create a directory there (" + e.getMessage() + ")");
        }
        try {
            long perTensor = 4096L * 4096 * 4;
            int tensors = (int) Math.max(1, (megabytes * 1_000_000L + perTensor - 1) / perTensor);
            Path src = dir.resolve("bench.safetensors");
            generate(src, tensors);
            long size = Files.size(src);
            Map<String, List<Double>> rates = new LinkedHashMap<>();
            for (String c : List.of("copy", "GGUF F16", "GGUF Q8_0", "GGUF Q4_K_M")) rates.put(c, new ArrayList<>()); // copy = Files.copy + fsync
            try (Progress p = progress) {
                int step = 0;
                for (int r = -1; r < repeats; r++) { // round -1 warms the JIT and the page cache; not counted
                    Path copy = dir.resolve("copy.safetensors");
                    long t0 = System.nanoTime();
                    Files.copy(src, copy, StandardCopyOption.REPLACE_EXISTING);
                    try (FileChannel ch = FileChannel.open(copy, StandardOpenOption.WRITE)) {
                        ch.force(false); // the converter fsyncs before its rename; so does the copy
                    }
                    if (r >= 0) rates.get("copy").add(size / 1e6 / ((System.nanoTime() - t0) / 1e9));
                    Files.delete(copy);
                    p.update(++step);
                    for (String c : List.of("GGUF F16", "GGUF Q8_0", "GGUF Q4_K_M")) {
                        Converter.Options o = c.endsWith("F16") ? new Converter.Options(DType.F16, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD)
                                : c.endsWith("Q8_0") ? new Converter.Options(DType.Q8_0, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD)
                                : new Converter.Options(null, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD).withMix(QuantMix.Q4_K_M);
                        Path dst = dir.resolve("out.gguf");
                        long t1 = System.nanoTime();
                        Converter.convert(src, dst, o, Progress.NONE);
                        if (r >= 0) rates.get(c).add(size / 1e6 / ((System.nanoTime() - t1) / 1e9));
                        Files.delete(dst);
                        p.update(++step);
                    }
                }
            }
            double copyMedian = median(rates.get("copy"));
            List<Case> cases = new ArrayList<>();
            rates.forEach((k, v) -> cases.add(new Case(k, v, median(v), median(v) / copyMedian)));
            List<Dequant> dq = dequantization(repeats);
            return new Result(size, tensors, repeats, ChunkedCopy.THREADS, Runtime.getRuntime().maxMemory(), cases, dq, dir.toString());
        } catch (IOException e) {
            throw new UserError("--bench: writing in " + dir + " failed: " + e.getMessage());
        } finally {
            deleteTree(dir);
        }
    }

    static double median(List<Double> xs) {
        double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    /** Writes {@code tensors} F32 [4096, 4096] tensors of a sum of uniforms (roughly Gaussian, xorshift). */
    static void generate(Path file, int tensors) {
        List<TensorSpec> specs = new ArrayList<>();
        for (int i = 0; i < tensors; i++) specs.add(new TensorSpec("layers." + i + ".weight", DType.F32, new long[] {4096, 4096}));
        ByteBuffer buf = ByteBuffer.allocateDirect(4 << 20).order(ByteOrder.LITTLE_ENDIAN);
        long s = 0x9E3779B97F4A7C15L;
        try (TensorWriter w = Safetensors.writer(file, Map.of("format", "pt"), specs)) {
            for (int i = 0; i < tensors; i++) {
                w.beginTensor();
                long left = 4096L * 4096;
                while (left > 0) {
                    buf.clear();
                    int n = (int) Math.min(left, buf.capacity() / 4);
                    for (int j = 0; j < n; j++) {
                        s ^= s << 13;
                        s ^= s >>> 7;
                        s ^= s << 17;
                        float u = ((s & 0xffff) + ((s >>> 16) & 0xffff) + ((s >>> 32) & 0xffff) - 98302.5f) / 65536f;
                        buf.putFloat(u * 0.04f);
                    }
                    buf.flip();
                    w.write(buf);
                    left -= n;
                }
            }
            w.commit();
        }
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(x -> {
                try {
                    Files.deleteIfExists(x);
                } catch (IOException ignored) {
                    // best effort cleanup of our own temp files
                }
            });
        } catch (IOException ignored) {
            // already gone
        }
    }

    public static Report report(Result r) {
        StringColumn name = StringColumn.create("case");
        StringColumn runs = StringColumn.create("runs MB/s");
        DoubleColumn med = DoubleColumn.create("median MB/s");
        DoubleColumn ratio = DoubleColumn.create("vs copy");
        for (Case c : r.cases()) {
            name.append(c.name());
            runs.append(Arrays.toString(c.mbPerSecond().stream().mapToLong(Math::round).toArray()));
            med.append(Math.round(c.medianMBps()));
            ratio.append(Math.round(c.ratioToCopy() * 100) / 100.0);
        }
        CategoryChart chart = new CategoryChartBuilder().width(560).height(340)
                .title("Conversion throughput vs plain copy").xAxisTitle("case").yAxisTitle("MB/s (10^6 bytes of input / s)").build();
        chart.getStyler().setLegendVisible(false);
        chart.addSeries("median", r.cases().stream().map(Case::name).toList(), r.cases().stream().map(Case::medianMBps).toList());
        StringColumn dt = StringColumn.create("type");
        StringColumn druns = StringColumn.create("runs M values/s");
        DoubleColumn dmed = DoubleColumn.create("median M values/s");
        DoubleColumn dratio = DoubleColumn.create("vs Q8_0");
        for (Dequant d : r.dequantization()) {
            dt.append(d.type());
            druns.append(Arrays.toString(d.mValuesPerSecond().stream().mapToLong(Math::round).toArray()));
            dmed.append(Math.round(d.median()));
            dratio.append(Math.round(d.ratioToQ8_0() * 100) / 100.0);
        }
        return Report.builder("%convert --bench")
                .text(String.format(Locale.ROOT, "File: %,d bytes of safetensors F32 (%d tensors of [4096, 4096]), %d runs each after one warm-up round, JVM max heap %s, %d conversion threads. Temporary files deleted.",
                        r.fileBytes(), r.tensors(), r.repeats(), Inspector.bytes(r.maxHeapBytes()), r.threads()))
                .table(Table.create("throughput", name, runs, med, ratio), "Median of the runs; 'vs copy' divides by the copy's median")
                .chart(chart, "Median MB/s of input processed, measured in this run on this machine")
                .table(Table.create("dequantization", dt, druns, dmed, dratio),
                        "Decoding " + DEQUANT_VALUES + " values of each ggml block type to float32 on one thread, median of the runs; 'vs Q8_0' divides by Q8_0's median")
                .data(r)
                .build();
    }
}
