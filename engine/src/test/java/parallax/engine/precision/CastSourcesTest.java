package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.precision.CastAnalysis.NamedTensor;
import parallax.engine.precision.CastAnalysis.Scaling;
import parallax.engine.precision.CastAnalysis.Stats;
import parallax.engine.report.Report;

/** %precision cast over files read by the formats package: the same values give the same statistics in every format. */
class CastSourcesTest {

    @TempDir
    Path dir;

    static final List<CastTarget> TO = CastTarget.of(FloatFormat.BF16, FloatFormat.FP16, FloatFormat.E4M3FN, FloatFormat.E5M2);

    /** Weights-like tensors with a few outliers and tiny values, so every statistic is nonzero somewhere. */
    static List<NamedTensor> weights() {
        SplittableRandom r = new SplittableRandom(11);
        List<NamedTensor> out = new ArrayList<>();
        long[][] shapes = {{16, 64}, {16}, {8, 16}, {3, 5, 7}};
        String[] names = {"blk.0.w1", "blk.0.b1", "blk.0.w2", "emb"};
        for (int k = 0; k < shapes.length; k++) {
            int n = 1;
            for (long d : shapes[k]) n *= (int) d;
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                double u = r.nextDouble();
                double std = u < 0.95 ? 0.02 : u < 0.98 ? 1e-6 : 300;
                v[i] = (float) ((r.nextDouble() * 2 - 1) * std);
            }
            out.add(new NamedTensor(names[k], shapes[k], v));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static List<Stats> stats(Report r) {
        return (List<Stats>) ((Map<String, Object>) r.data()).get("stats");
    }

    static List<Stats> cast(Path file) {
        return stats(CastSources.file(file, TO, Scaling.PER_CHANNEL, Rounding.NON_SATURATING));
    }

    @Test
    void readsEveryStoredFloatDtypeAsItsRoundedValues() {
        float[] a = {1f, -2.5f, 0.1f, 448f, 1e-3f, 0f};
        Map<DType, FloatFormat> types = Map.of(DType.F32, FloatFormat.FP32, DType.F16, FloatFormat.FP16, DType.BF16, FloatFormat.BF16,
                DType.F8_E4M3, FloatFormat.E4M3FN, DType.F8_E5M2, FloatFormat.E5M2);
        for (Map.Entry<DType, FloatFormat> e : types.entrySet()) {
            Path p = CastFiles.safetensors(dir.resolve(e.getKey() + ".safetensors"), CastFiles.as(e.getKey(),
                    List.of(new NamedTensor("a", new long[] {2, 3}, a), new NamedTensor("b", new long[] {1}, new float[] {7f}))));
            try (ModelFile m = ModelFiles.open(p)) {
                List<NamedTensor> back = new ArrayList<>();
                CastSources.lazy(m, m.tensors()).forEach(back::add);
                assertEquals(2, back.size());
                assertEquals("a", back.get(0).name());
                assertEquals(List.of(2L, 3L), List.of(back.get(0).shape()[0], back.get(0).shape()[1]));
                for (int i = 0; i < a.length; i++) assertEquals(e.getValue().round(a[i]), back.get(0).values()[i], 0f, e.getKey() + " value " + i);
            }
        }
    }

    @Test
    void readsInChunksAcrossTheChunkBoundary() {
        int n = CastSources.CHUNK + 3;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i * 0.5f;
        Path p = CastFiles.safetensors(dir.resolve("big.safetensors"), CastFiles.as(DType.F16, List.of(new NamedTensor("big", new long[] {n}, v))));
        try (ModelFile m = ModelFiles.open(p)) {
            NamedTensor t = CastSources.read(m, m.tensors().get(0), new FloatCodec());
            for (int i : new int[] {0, 1, CastSources.CHUNK - 1, CastSources.CHUNK, n - 1}) {
                assertEquals(FloatFormat.FP16.round(v[i]), t.values()[i], 0f, "value " + i);
            }
        }
    }

    @Test
    void ggufAndOnnxGiveTheSameStatisticsAsSafetensors() {
        for (DType stored : List.of(DType.F32, DType.F16, DType.BF16)) {
            List<CastFiles.Stored> t = CastFiles.as(stored, weights());
            List<Stats> st = cast(CastFiles.safetensors(dir.resolve(stored + ".safetensors"), t));
            List<Stats> gg = cast(CastFiles.gguf(dir.resolve(stored + ".gguf"), t));
            assertEquals(4 * (4 + 1), st.size(), "4 tensors and one (all) row, per format");
            assertEquals(st, gg, "GGUF " + stored);
            assertEquals(st, cast(CastFiles.onnx(dir.resolve(stored + ".onnx"), t)), "ONNX " + stored);
            Stats e4 = st.stream().filter(s -> s.tensor().equals("(all)") && s.format().equals(FloatFormat.E4M3FN.label())).findFirst().orElseThrow();
            assertTrue(e4.maxAbsError() > 0 && e4.count() == 16 * 64 + 16 + 8 * 16 + 105, e4.toString());
        }
    }

    @Test
    void reportTextNamesTheFormatAndTheStoredDtype() {
        Report r = CastSources.file(CastFiles.gguf(dir.resolve("w.gguf"), CastFiles.as(DType.F16, weights())), TO, Scaling.NONE, Rounding.NON_SATURATING);
        assertTrue(r.toText().contains("GGUF") && r.toText().contains("stored as F16"), r.toText());
    }

    @Test
    void aShardedIndexGivesTheSameStatisticsAsOneFile() throws Exception {
        List<CastFiles.Stored> t = CastFiles.as(DType.F32, weights());
        List<Stats> one = cast(CastFiles.safetensors(dir.resolve("one.safetensors"), t));
        CastFiles.safetensors(dir.resolve("model-00001-of-00002.safetensors"), t.subList(0, 2));
        CastFiles.safetensors(dir.resolve("model-00002-of-00002.safetensors"), t.subList(2, 4));
        StringBuilder wm = new StringBuilder();
        for (int i = 0; i < t.size(); i++) {
            if (i > 0) wm.append(',');
            wm.append('"').append(t.get(i).tensor().name()).append("\": \"model-0000").append(i < 2 ? 1 : 2).append("-of-00002.safetensors\"");
        }
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"metadata\": {}, \"weight_map\": {" + wm + "}}");
        List<Stats> sharded = cast(index);
        assertEquals(one.size(), sharded.size());
        for (Stats s : one) {
            Stats o = sharded.stream().filter(x -> x.tensor().equals(s.tensor()) && x.format().equals(s.format())).findFirst().orElseThrow();
            assertEquals(s.count(), o.count());
            assertEquals(s.maxAbsError(), o.maxAbsError(), 0);
            assertEquals(s.maxRelError(), o.maxRelError(), 0);
            assertEquals(s.rmse(), o.rmse(), 1e-12 * s.rmse(), s.tensor() + " " + s.format());
            assertEquals(s.overflowShare(), o.overflowShare(), 0);
            assertEquals(s.underflowShare(), o.underflowShare(), 0);
        }
    }

    /** Quantized GGUF tensors (any ggml block type) are dequantized as ggml does and then cast like the others. */
    @Test
    void quantizedGgufTensorsAreDequantizedAndCast() {
        float[] q = new float[256 * 2];
        for (int i = 0; i < q.length; i++) q[i] = (float) Math.sin(i);
        NamedTensor w = new NamedTensor("w", new long[] {4, 8}, java.util.Arrays.copyOf(q, 32));
        List<CastFiles.Stored> mixed = List.of(new CastFiles.Stored(new NamedTensor("q", new long[] {2, 256}, q), DType.Q4_K),
                new CastFiles.Stored(w, DType.F32));
        Report r = CastSources.file(CastFiles.gguf(dir.resolve("mixed.gguf"), mixed), CastTarget.of(FloatFormat.BF16), Scaling.NONE, Rounding.NON_SATURATING);
        assertTrue(r.toText().contains("1 quantized tensor(s) (Q4_K) dequantized as ggml does, then cast"), r.toText());
        List<Stats> s = stats(r);
        assertEquals(512, s.stream().filter(x -> x.tensor().equals("q")).findFirst().orElseThrow().count(), "every Q4_K value cast");
        assertEquals(32, s.stream().filter(x -> x.tensor().equals("w")).findFirst().orElseThrow().count());
    }

    @Test
    void badFilesAreOneLineUserErrors() throws Exception {
        Path junk = dir.resolve("junk.safetensors");
        Files.write(junk, new byte[] {1, 2, 3});
        String msg = assertThrows(UserError.class, () -> CastSources.file(junk, TO, Scaling.NONE, Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("junk.safetensors") && msg.contains("truncated") && !msg.contains("\n"), msg);

        Path ints = dir.resolve("ints.safetensors");
        try (TensorWriter w = Safetensors.writer(ints, Map.of(), List.of(new TensorSpec("ids", DType.I64, new long[] {2})))) {
            w.beginTensor();
            w.write(ByteBuffer.allocate(16));
            w.commit();
        }
        msg = assertThrows(UserError.class, () -> CastSources.file(ints, TO, Scaling.NONE, Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("no floating-point tensors") && msg.contains("I64"), msg);

        msg = assertThrows(UserError.class, () -> CastSources.file(dir.resolve("missing.safetensors"), TO, Scaling.NONE,
                Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("no such file"), msg);

        Path nan = CastFiles.safetensors(dir.resolve("nan.safetensors"), CastFiles.as(DType.F32,
                List.of(new NamedTensor("ok", new long[] {1}, new float[] {1f}), new NamedTensor("bad", new long[] {2}, new float[] {1f, Float.NaN}))));
        msg = assertThrows(UserError.class, () -> CastSources.file(nan, TO, Scaling.NONE, Rounding.NON_SATURATING)).getMessage();
        assertTrue(msg.contains("'bad'") && msg.contains("non-finite"), msg);
        assertFalse(Files.list(dir).anyMatch(p -> p.toString().endsWith(".tmp")), "nothing half-written");
    }
}
