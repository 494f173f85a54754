package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/** Lossless paths are bit-exact: safetensors <-> GGUF <-> safetensors, safetensors <-> ONNX, shards. */
class RoundTripTest {

    @TempDir
    Path dir;

    static Converter.Options to(DType d) {
        return new Converter.Options(d, null, Converter.Names.KEEP, Onnx.EXTERNAL_THRESHOLD);
    }

    @Test
    void safetensorsHoldsEveryDtypeMetadataAndPadding() throws Exception {
        List<TestData.T> ts = TestData.everyDtype(1);
        Path f = dir.resolve("all.safetensors");
        Map<String, String> meta = new LinkedHashMap<>(Map.of("format", "pt"));
        meta.put("note", "naïve \"quotes\"");
        TestData.writeSafetensors(f, meta, ts);
        try (Safetensors s = Safetensors.open(f)) {
            assertEquals(0, s.headerLength() % 8, "header padded to 8 bytes");
            byte[] header = Files.readAllBytes(f);
            String json = new String(header, 8, (int) s.headerLength(), StandardCharsets.UTF_8);
            assertTrue(json.startsWith("{") && json.stripTrailing().endsWith("}"), json);
            assertTrue(json.substring(json.lastIndexOf('}') + 1).chars().allMatch(c -> c == ' '), "padding is spaces");
            assertEquals(meta, s.metadata());
            assertEquals(ts.size(), s.tensors().size());
            Map<String, byte[]> back = TestData.readAll(s);
            for (TestData.T t : ts) {
                TensorEntry e = s.tensors().stream().filter(x -> x.name().equals(t.name())).findFirst().orElseThrow();
                assertEquals(t.dtype(), e.dtype());
                assertArrayEquals(t.shape(), e.shape());
                assertArrayEquals(t.bytes(), back.get(t.name()), t.name());
            }
        }
    }

    @Test
    void safetensorsToGgufAndBackIsByteIdenticalForEveryDtype() throws Exception {
        Path a = dir.resolve("a.safetensors");
        TestData.writeSafetensors(a, Map.of("format", "pt", "origin", "test"), TestData.everyDtype(2));
        Path g = dir.resolve("a.gguf");
        Converter.convert(a, g, Converter.Options.defaults(), Progress.NONE);
        try (Gguf gg = Gguf.open(g)) {
            assertEquals("I8", gg.tensors().stream().filter(t -> t.name().equals("t.u16")).findFirst().orElseThrow().dtype().name(),
                    "a type GGUF lacks travels as bytes");
            assertEquals("F16", gg.tensors().stream().filter(t -> t.name().equals("t.f16")).findFirst().orElseThrow().dtype().name());
        }
        Path b = dir.resolve("b.safetensors");
        Converter.convert(g, b, Converter.Options.defaults(), Progress.NONE);
        assertEquals(header(a), header(b));
        assertEquals(-1, Files.mismatch(a, b), "file bytes identical after safetensors -> GGUF -> safetensors");
    }

    static String header(Path f) throws Exception {
        byte[] b = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(0);
        return new String(b, 8, (int) n, StandardCharsets.UTF_8);
    }

    @Test
    void floatTypesSurviveGgufF32AndBack() throws Exception {
        for (DType d : List.of(DType.F32, DType.F16, DType.BF16, DType.F8_E4M3, DType.F8_E5M2)) {
            java.util.Random r = new java.util.Random(d.ordinal());
            List<TestData.T> ts = List.of(new TestData.T("w", d, new long[] {64, 32}, TestData.randomBytes(d, 2048, r)),
                    new TestData.T("b", d, new long[] {32}, TestData.randomBytes(d, 32, r)));
            Path a = dir.resolve(d + ".safetensors");
            TestData.writeSafetensors(a, Map.of(), ts);
            Path g = dir.resolve(d + ".gguf");
            Converter.Result r1 = Converter.convert(a, g, to(DType.F32), Progress.NONE);
            assertTrue(r1.perTensor().stream().allMatch(t -> t.to().equals("F32") && t.maxError() == 0));
            Path b = dir.resolve(d + "-back.safetensors");
            Converter.convert(g, b, to(d), Progress.NONE);
            try (Safetensors x = Safetensors.open(a); Safetensors y = Safetensors.open(b)) {
                Map<String, byte[]> xs = TestData.readAll(x);
                Map<String, byte[]> ys = TestData.readAll(y);
                for (String n : xs.keySet()) assertArrayEquals(xs.get(n), ys.get(n), d + " " + n + " bit-exact through F32");
            }
        }
    }

    @Test
    void ggufMetadataAllThirteenTypesNestedArraysAndAlignment() throws Exception {
        Map<String, GgufValue> kv = new LinkedHashMap<>();
        kv.put("general.architecture", GgufValue.string("test"));
        kv.put("general.alignment", GgufValue.u32(64));
        kv.put("u8", GgufValue.of(GgufValue.Type.UINT8, 255));
        kv.put("i8", GgufValue.of(GgufValue.Type.INT8, -128));
        kv.put("u16", GgufValue.of(GgufValue.Type.UINT16, 65535));
        kv.put("i16", GgufValue.of(GgufValue.Type.INT16, -32768));
        kv.put("u32", GgufValue.of(GgufValue.Type.UINT32, 4294967295L));
        kv.put("i32", GgufValue.of(GgufValue.Type.INT32, Integer.MIN_VALUE));
        kv.put("f32", GgufValue.of(GgufValue.Type.FLOAT32, 1.5f));
        kv.put("bool", GgufValue.of(GgufValue.Type.BOOL, true));
        kv.put("str", GgufValue.string("héllo"));
        kv.put("u64", GgufValue.of(GgufValue.Type.UINT64, -1L));
        kv.put("i64", GgufValue.of(GgufValue.Type.INT64, Long.MIN_VALUE));
        kv.put("f64", GgufValue.of(GgufValue.Type.FLOAT64, Math.PI));
        kv.put("tokens", GgufValue.arrayOf(GgufValue.Type.STRING, List.of("<s>", "</s>", "a")));
        kv.put("nested", GgufValue.array(GgufValue.Type.ARRAY, List.of(
                GgufValue.arrayOf(GgufValue.Type.INT32, List.of(1, 2, 3)),
                GgufValue.array(GgufValue.Type.ARRAY, List.of(GgufValue.arrayOf(GgufValue.Type.FLOAT64, List.of(0.5)))))));
        kv.put("empty", GgufValue.arrayOf(GgufValue.Type.UINT8, List.of()));
        float[] x = TestData.gaussian(96, 1, 5);
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.F32, new long[] {3, 32}), new TensorSpec("b", DType.F32, new long[] {5}));
        Path g = dir.resolve("kv.gguf");
        try (TensorWriter w = Gguf.writer(g, kv, specs)) {
            w.beginTensor();
            w.write(ByteBuffer.wrap(TestData.floats(x)));
            w.beginTensor();
            w.write(ByteBuffer.wrap(TestData.floats(new float[] {1, 2, 3, 4, 5})));
            w.commit();
        }
        try (Gguf r = Gguf.open(g)) {
            assertEquals(3, r.version());
            assertEquals(64, r.alignment());
            assertEquals(0, r.dataStart() % 64);
            assertEquals(kv.keySet(), r.kv().keySet());
            for (String k : kv.keySet()) {
                assertEquals(kv.get(k).type(), r.kv().get(k).type(), k);
                assertEquals(kv.get(k).plain(), r.kv().get(k).plain(), k);
            }
            assertEquals(List.of(List.of(1, 2, 3), List.of(List.of(0.5))), r.kv().get("nested").plain());
            TensorEntry b = r.tensors().get(1);
            assertEquals(0, (b.offset() - r.dataStart()) % 64, "tensor offsets aligned to general.alignment");
            assertArrayEquals(new long[] {3, 32}, r.tensors().get(0).shape(), "shape back in row-major order");
            assertArrayEquals(TestData.floats(x), TestData.readAll(r).get("a"));
        }
        // the ggml dims are stored fastest first: [32, 3]
        byte[] raw = Files.readAllBytes(g);
        String s = new String(raw, StandardCharsets.ISO_8859_1);
        int at = s.indexOf("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000a\u0002\u0000\u0000\u0000") + 9;
        ByteBuffer bb = ByteBuffer.wrap(raw).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(2, bb.getInt(at));
        assertEquals(32, bb.getLong(at + 4));
        assertEquals(3, bb.getLong(at + 12));
    }

    @Test
    void safetensorsToOnnxInitializersAndBack() throws Exception {
        List<TestData.T> ts = new java.util.ArrayList<>();
        java.util.Random r = new java.util.Random(7);
        for (DType d : List.of(DType.F32, DType.F16, DType.BF16, DType.I64, DType.I32, DType.I8, DType.U8, DType.BOOL,
                DType.F64, DType.U16, DType.I16, DType.F8_E4M3, DType.F8_E5M2, DType.U32, DType.U64)) {
            ts.add(new TestData.T("p." + d, d, new long[] {4, 300}, TestData.randomBytes(d, 1200, r)));
        }
        Path a = dir.resolve("a.safetensors");
        TestData.writeSafetensors(a, Map.of("format", "pt"), ts);
        for (long threshold : new long[] {Onnx.EXTERNAL_THRESHOLD, 1}) {
            Path o = dir.resolve("m" + threshold + ".onnx");
            Converter.convert(a, o, new Converter.Options(null, null, Converter.Names.KEEP, threshold), Progress.NONE);
            assertEquals(threshold == 1, Files.exists(dir.resolve("m1.onnx.data")) && threshold == 1);
            try (Onnx m = Onnx.open(o)) {
                assertEquals(8L, m.metadata().get("ir_version"));
                assertEquals("pt", m.metadata().get("metadata.format"));
            }
            Path b = dir.resolve("b" + threshold + ".safetensors");
            Converter.convert(o, b, Converter.Options.defaults(), Progress.NONE);
            try (Safetensors x = Safetensors.open(a); Safetensors y = Safetensors.open(b)) {
                Map<String, byte[]> xs = TestData.readAll(x);
                Map<String, byte[]> ys = TestData.readAll(y);
                assertEquals(xs.keySet(), ys.keySet());
                for (String n : xs.keySet()) assertArrayEquals(xs.get(n), ys.get(n), n);
            }
            assertEquals(-1, Files.mismatch(a, b), "safetensors -> ONNX -> safetensors is byte-identical (metadata included)");
        }
        // Last: an outside reader, Debian's onnx package, reads the external-data initializer too.
        parallax.engine.Peers.python("onnx", "python3-onnx");
        {
            PythonPeer.Result pr = PythonPeer.run("import onnx, sys, numpy as np\n"
                    + "from onnx import numpy_helper\n"
                    + "m = onnx.load(sys.argv[1])\n"
                    + "t = {i.name: i for i in m.graph.initializer}\n"
                    + "a = numpy_helper.to_array(t['p.F32'])\n"
                    + "print(a.shape, a.dtype, float(a.astype('float64').sum()))\n", dir.resolve("m1.onnx").toString());
            assertEquals(0, pr.exit(), pr.output());
            float[] f = new float[1200];
            ByteBuffer.wrap(ts.get(0).bytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
            double sum = 0;
            for (float v : f) sum += v;
            assertTrue(pr.output().startsWith("(4, 300) float32"), pr.output());
            double py = Double.parseDouble(pr.output().trim().split(" ")[3]);
            assertEquals(sum, py, Math.abs(sum) * 1e-12 + 1e-300, "onnx.numpy_helper reads the same F32 initializer (external data)");
        }
    }

    @Test
    void shardedCheckpointViaIndex() throws Exception {
        List<TestData.T> all = TestData.everyDtype(3).subList(0, 6);
        TestData.writeSafetensors(dir.resolve("model-00001-of-00002.safetensors"), Map.of(), all.subList(0, 3));
        TestData.writeSafetensors(dir.resolve("model-00002-of-00002.safetensors"), Map.of(), all.subList(3, 6));
        StringBuilder wm = new StringBuilder();
        long total = 0;
        for (int i = 0; i < 6; i++) {
            if (i > 0) wm.append(',');
            wm.append('"').append(all.get(i).name()).append("\": \"model-0000").append(i < 3 ? 1 : 2).append("-of-00002.safetensors\"");
            total += all.get(i).bytes().length;
        }
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"metadata\": {\"total_size\": " + total + "}, \"weight_map\": {" + wm + "}}");
        assertEquals(Format.SAFETENSORS_INDEX, ModelFiles.detect(index));
        Inspector.Inspection in = Inspector.inspect(index);
        assertEquals(6, in.tensors().size());
        assertEquals(total, in.totalBytes());
        assertTrue(in.tensors().stream().anyMatch(t -> t.file().equals("model-00002-of-00002.safetensors")));
        Path one = dir.resolve("one.safetensors");
        Converter.convert(index, one, Converter.Options.defaults(), Progress.NONE);
        try (Safetensors s = Safetensors.open(one)) {
            Map<String, byte[]> got = TestData.readAll(s);
            for (TestData.T t : all) assertArrayEquals(t.bytes(), got.get(t.name()));
        }
        // a shard that is named in the index but lacks the tensor
        Files.writeString(index, "{\"weight_map\": {\"" + all.get(0).name() + "\": \"model-00002-of-00002.safetensors\"}}");
        UserError e = assertThrows(UserError.class, () -> Inspector.inspect(index));
        assertTrue(e.getMessage().contains("is not in its shard"), e.getMessage());
    }

    @Test
    void failedConversionLeavesNoDestination() throws Exception {
        Path a = dir.resolve("a.safetensors");
        TestData.writeSafetensors(a, Map.of(), List.of(new TestData.T("x", DType.F32, new long[] {4}, new byte[16])));
        Path d = dir.resolve("out.gguf");
        assertThrows(UserError.class, () -> Converter.convert(a, d, to(DType.F8_E4M3), Progress.NONE));
        Path o = dir.resolve("out.onnx");
        // interrupt the writer mid-way: a progress sink that throws after the first tensor
        List<TestData.T> two = List.of(new TestData.T("x", DType.F32, new long[] {4}, new byte[16]),
                new TestData.T("y", DType.F32, new long[] {4}, new byte[16]));
        TestData.writeSafetensors(a, Map.of(), two);
        Progress boom = new Progress() {
            @Override public void update(long done, Map<String, String> fields) { throw new IllegalStateException("interrupted"); }
            @Override public void close() {}
        };
        assertThrows(IllegalStateException.class, () -> Converter.convert(a, o, Converter.Options.defaults(), boom));
        try (var s = Files.list(dir)) {
            assertEquals(List.of("a.safetensors"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no destination and no temporary file remain");
        }
    }
}
