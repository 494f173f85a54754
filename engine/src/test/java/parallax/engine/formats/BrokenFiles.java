package parallax.engine.formats;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.ZipEntry;
import parallax.engine.numerics.DType;

/**
 * Crafted broken model files, at least 40 per format: truncations, lying lengths and
 * counts, wrong types, overlapping data, hostile pickles, zip bombs. Each is written to
 * {@code dir/<format>/NN-what.ext}.
 */
final class BrokenFiles {

    private BrokenFiles() {}

    static void writeAll(Path dir) throws IOException {
        safetensors(Files.createDirectories(dir.resolve("safetensors")));
        gguf(Files.createDirectories(dir.resolve("gguf")));
        onnx(Files.createDirectories(dir.resolve("onnx")));
        pytorch(Files.createDirectories(dir.resolve("pytorch")));
    }

    private static int counter;

    private static void put(Path dir, String what, String ext, byte[] bytes) throws IOException {
        Files.write(dir.resolve(String.format("%02d-%s.%s", ++counter, what, ext)), bytes);
    }

    static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] p : parts) o.write(p, 0, p.length);
        return o.toByteArray();
    }

    // ------------------------------------------------------------------ safetensors

    static byte[] st(String json, int dataBytes) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        return concat(le64(h.length), h, new byte[dataBytes]);
    }

    static byte[] validSafetensors(Path tmp) throws IOException {
        Path f = tmp.resolve("valid.safetensors.tmp");
        TestData.writeSafetensors(f, Map.of("format", "pt"), List.of(
                new TestData.T("a", DType.F32, new long[] {2, 4}, new byte[32]),
                new TestData.T("b", DType.F16, new long[] {8}, new byte[16]),
                new TestData.T("c", DType.I64, new long[] {3}, new byte[24])));
        byte[] b = Files.readAllBytes(f);
        Files.delete(f);
        return b;
    }

    static void safetensors(Path d) throws IOException {
        counter = 0;
        byte[] ok = validSafetensors(d);
        long n = ByteBuffer.wrap(ok).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        for (int cut : new int[] {0, 1, 4, 7, 8, 9, 8 + (int) n / 2, 8 + (int) n - 1, 8 + (int) n + 10, ok.length - 1}) {
            put(d, "truncated-at-" + cut, "safetensors", Arrays.copyOf(ok, cut));
        }
        String t1 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        put(d, "header-len-2^63", "safetensors", concat(le64(Long.MIN_VALUE), new byte[16]));
        put(d, "header-len-2^64-1", "safetensors", concat(le64(-1), new byte[16]));
        put(d, "header-len-past-end", "safetensors", concat(le64(1000), "{}".getBytes()));
        put(d, "header-len-over-limit", "safetensors", concat(le64(200_000_000L), "{".getBytes(), new byte[64]));
        put(d, "header-array", "safetensors", st("[1,2]   ", 0));
        put(d, "header-string", "safetensors", st("\"hello\" ", 0));
        put(d, "header-null", "safetensors", st("null    ", 0));
        put(d, "header-unclosed", "safetensors", st("{" + t1, 8));
        put(d, "header-bad-utf8", "safetensors", concat(le64(8), new byte[] {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'}));
        put(d, "duplicate-names", "safetensors", st("{" + t1 + "," + t1 + "}", 8));
        put(d, "overlapping-offsets", "safetensors", st("{" + t1 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        put(d, "gap-between-tensors", "safetensors", st("{" + t1 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20));
        put(d, "size-not-dtype-times-shape", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12));
        put(d, "unknown-dtype", "safetensors", st("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
        put(d, "lowercase-dtype", "safetensors", st("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
        put(d, "ggml-dtype-in-safetensors", "safetensors", st("{\"a\":{\"dtype\":\"Q8_0\",\"shape\":[32],\"data_offsets\":[0,34]}}", 34));
        put(d, "shape-overflows-long", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,8]}}", 8));
        put(d, "shape-times-size-overflows", "safetensors", st("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8));
        put(d, "negative-dim", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8));
        put(d, "dim-too-big-for-long", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8));
        put(d, "shape-holds-string", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8));
        put(d, "three-offsets", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8));
        put(d, "end-before-begin", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8));
        put(d, "offsets-past-file", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2048],\"data_offsets\":[0,8192]}}", 8));
        put(d, "trailing-bytes", "safetensors", st("{" + t1 + "}", 40));
        put(d, "metadata-not-object", "safetensors", st("{\"__metadata__\":[1]," + t1 + "}", 8));
        put(d, "metadata-value-number", "safetensors", st("{\"__metadata__\":{\"k\":1}," + t1 + "}", 8));
        put(d, "tensor-not-object", "safetensors", st("{\"a\":[1,2]}", 0));
        put(d, "missing-dtype", "safetensors", st("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
        put(d, "missing-shape", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8));
        put(d, "missing-offsets", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8));
        put(d, "fractional-offset", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8));
        put(d, "first-offset-not-zero", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        put(d, "bytes-after-json", "safetensors", st("{" + t1 + "} x", 8));
        put(d, "f4-odd-count", "safetensors", st("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2));
        put(d, "empty-file", "safetensors", new byte[0]);
        put(d, "dtype-number", "safetensors", st("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
        put(d, "exponent-dim", "safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e3],\"data_offsets\":[0,4000]}}", 4000));
        put(d, "deep-json-nesting", "safetensors", st("{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}", 0));
        put(d, "header-len-zero", "safetensors", concat(le64(0), new byte[8]));
        put(d, "header-len-one", "safetensors", concat(le64(1), new byte[] {'{'}));
    }

    // ------------------------------------------------------------------ GGUF

    /** A little-endian byte builder for GGUF headers. */
    static final class G {
        final ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        G u32(long v) { b.putInt((int) v); return this; }
        G u64(long v) { b.putLong(v); return this; }
        G str(String s) { byte[] x = s.getBytes(StandardCharsets.UTF_8); u64(x.length); b.put(x); return this; }
        G raw(byte... x) { b.put(x); return this; }
        G head(long tensors, long kvs) { raw("GGUF".getBytes()).u32(3).u64(tensors).u64(kvs); return this; }
        G kvU32(String k, long v) { str(k).u32(4).u32(v); return this; }
        G tensor(String name, long[] dims, int type, long offset) {
            str(name).u32(dims.length);
            for (long x : dims) u64(x);
            return u32(type).u64(offset);
        }
        G align(int a) { while (b.position() % a != 0) b.put((byte) 0); return this; }
        G zeros(int n) { b.put(new byte[n]); return this; }
        byte[] bytes() { return Arrays.copyOf(b.array(), b.position()); }
    }

    /** Two F32 tensors [4] and [8], one u32 kv and one string kv. */
    static byte[] validGguf() {
        return new G().head(2, 2).kvU32("general.alignment", 32).str("general.architecture").u32(8).str("test")
                .tensor("a", new long[] {4}, 0, 0).tensor("b", new long[] {8}, 0, 32).align(32).zeros(64).bytes();
    }

    static void gguf(Path d) throws IOException {
        counter = 0;
        byte[] ok = validGguf();
        for (int cut : new int[] {0, 3, 4, 8, 16, 24, 40, 90, 140, ok.length - 40, ok.length - 1}) {
            put(d, "truncated-at-" + cut, "gguf", Arrays.copyOf(ok, cut));
        }
        put(d, "bad-magic-GGUX", "gguf", concat("GGUX".getBytes(), Arrays.copyOfRange(ok, 4, ok.length)));
        put(d, "bad-magic-reversed", "gguf", concat("FUGG".getBytes(), Arrays.copyOfRange(ok, 4, ok.length)));
        put(d, "version-1", "gguf", new G().raw("GGUF".getBytes()).u32(1).u64(0).u64(0).bytes());
        put(d, "version-4", "gguf", new G().raw("GGUF".getBytes()).u32(4).u64(0).u64(0).bytes());
        put(d, "version-max", "gguf", new G().raw("GGUF".getBytes()).u32(0xffffffffL).u64(0).u64(0).bytes());
        put(d, "absurd-tensor-count", "gguf", new G().head(1L << 40, 0).zeros(64).bytes());
        put(d, "tensor-count-2^63", "gguf", new G().head(Long.MIN_VALUE, 0).zeros(64).bytes());
        put(d, "absurd-kv-count", "gguf", new G().head(0, 1L << 40).zeros(64).bytes());
        put(d, "kv-count-2^64-1", "gguf", new G().head(0, -1).zeros(64).bytes());
        put(d, "key-longer-than-file", "gguf", new G().head(0, 1).u64(1 << 30).raw("abc".getBytes()).zeros(16).bytes());
        put(d, "key-length-2^63", "gguf", new G().head(0, 1).u64(Long.MIN_VALUE).zeros(16).bytes());
        put(d, "string-value-longer-than-file", "gguf", new G().head(0, 1).str("k").u32(8).u64(1L << 33).zeros(16).bytes());
        put(d, "unknown-value-type-13", "gguf", new G().head(0, 1).str("k").u32(13).zeros(16).bytes());
        put(d, "unknown-value-type-max", "gguf", new G().head(0, 1).str("k").u32(0xffffffffL).zeros(16).bytes());
        put(d, "array-unknown-element-type", "gguf", new G().head(0, 1).str("k").u32(9).u32(77).u64(1).zeros(16).bytes());
        put(d, "array-absurd-length", "gguf", new G().head(0, 1).str("k").u32(9).u32(10).u64(1L << 50).zeros(16).bytes());
        G deep = new G().head(0, 1).str("k").u32(9);
        for (int i = 0; i < 20; i++) deep.u32(9).u64(1);
        put(d, "arrays-nested-too-deep", "gguf", deep.u32(0).u64(0).zeros(16).bytes());
        put(d, "bool-value-2", "gguf", new G().head(0, 1).str("k").u32(7).raw((byte) 2).zeros(16).bytes());
        put(d, "duplicate-key", "gguf", new G().head(0, 2).kvU32("k", 1).kvU32("k", 2).zeros(16).bytes());
        put(d, "alignment-zero", "gguf", new G().head(0, 1).kvU32("general.alignment", 0).zeros(16).bytes());
        put(d, "alignment-not-power-of-two", "gguf", new G().head(0, 1).kvU32("general.alignment", 24).zeros(16).bytes());
        put(d, "alignment-is-a-string", "gguf", new G().head(0, 1).str("general.alignment").u32(8).str("32").zeros(16).bytes());
        put(d, "tensor-name-over-64-bytes", "gguf", new G().head(1, 0).tensor("x".repeat(65), new long[] {4}, 0, 0).align(32).zeros(16).bytes());
        put(d, "duplicate-tensor-names", "gguf", new G().head(2, 0).tensor("a", new long[] {4}, 0, 0).tensor("a", new long[] {4}, 0, 32).align(32).zeros(64).bytes());
        put(d, "five-dims", "gguf", new G().head(1, 0).tensor("a", new long[] {1, 1, 1, 1, 4}, 0, 0).align(32).zeros(16).bytes());
        put(d, "zero-dims", "gguf", new G().head(1, 0).tensor("a", new long[] {}, 0, 0).align(32).zeros(16).bytes());
        put(d, "dim-2^63", "gguf", new G().head(1, 0).tensor("a", new long[] {Long.MIN_VALUE}, 0, 0).align(32).zeros(16).bytes());
        put(d, "shape-overflows-long", "gguf", new G().head(1, 0).tensor("a", new long[] {1L << 40, 1L << 40}, 0, 0).align(32).zeros(16).bytes());
        put(d, "unknown-ggml-type-99", "gguf", new G().head(1, 0).tensor("a", new long[] {4}, 99, 0).align(32).zeros(16).bytes());
        put(d, "future-ggml-type-43", "gguf", new G().head(1, 0).tensor("a", new long[] {256}, 43, 0).align(32).zeros(144).bytes());
        put(d, "removed-ggml-type-Q4_0_4_4", "gguf", new G().head(1, 0).tensor("a", new long[] {32}, 31, 0).align(32).zeros(32).bytes());
        put(d, "removed-ggml-type-Q4_2", "gguf", new G().head(1, 0).tensor("a", new long[] {32}, 4, 0).align(32).zeros(32).bytes());
        // K-quants and i-quants: a super-block cut short at the end of the file, and rows that are not whole super-blocks
        put(d, "q4_k-truncated-super-block", "gguf", new G().head(1, 0).tensor("a", new long[] {256, 2}, 12, 0).align(32).zeros(144 + 100).bytes());
        put(d, "q6_k-row-not-whole-super-blocks", "gguf", new G().head(1, 0).tensor("a", new long[] {128, 2}, 14, 0).align(32).zeros(210).bytes());
        put(d, "iq2_xxs-truncated-super-block", "gguf", new G().head(1, 0).tensor("a", new long[] {512}, 16, 0).align(32).zeros(66 + 10).bytes());
        put(d, "mxfp4-truncated-block", "gguf", new G().head(1, 0).tensor("a", new long[] {64}, 39, 0).align(32).zeros(20).bytes());
        put(d, "misaligned-offset", "gguf", new G().head(1, 0).tensor("a", new long[] {4}, 0, 4).align(32).zeros(32).bytes());
        put(d, "overlapping-offsets", "gguf", new G().head(2, 0).tensor("a", new long[] {16}, 0, 0).tensor("b", new long[] {4}, 0, 32).align(32).zeros(96).bytes());
        put(d, "gap-between-tensors", "gguf", new G().head(2, 0).tensor("a", new long[] {4}, 0, 0).tensor("b", new long[] {4}, 0, 96).align(32).zeros(128).bytes());
        put(d, "tensor-past-end", "gguf", new G().head(1, 0).tensor("a", new long[] {1 << 20}, 0, 0).align(32).zeros(16).bytes());
        put(d, "q8_0-row-not-whole-blocks", "gguf", new G().head(1, 0).tensor("a", new long[] {33, 32}, 8, 0).align(32).zeros(34 * 33).bytes());
        put(d, "key-not-utf8", "gguf", new G().head(0, 1).u64(2).raw((byte) 0xc3, (byte) 0x28).u32(4).u32(1).zeros(16).bytes());
        put(d, "empty-file", "gguf", new byte[0]);
        put(d, "only-magic", "gguf", "GGUF".getBytes());
        put(d, "uint32-value-cut", "gguf", new G().head(0, 1).str("k").u32(4).raw((byte) 1, (byte) 2).bytes());
    }

    // ------------------------------------------------------------------ ONNX

    static byte[] validOnnx(Path tmp) throws IOException {
        Path a = tmp.resolve("v.safetensors.tmp");
        TestData.writeSafetensors(a, Map.of("format", "pt"), List.of(
                new TestData.T("w", DType.F32, new long[] {4, 4}, new byte[64]),
                new TestData.T("b", DType.F32, new long[] {4}, new byte[16])));
        Path o = tmp.resolve("v.onnx.tmp.onnx");
        Converter.convert(a, o, Converter.Options.defaults(), parallax.engine.report.Progress.NONE);
        byte[] b = Files.readAllBytes(o);
        Files.delete(a);
        Files.delete(o);
        return b;
    }

    /** Protobuf wire helpers. */
    static byte[] varint(long v) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        while ((v & ~0x7fL) != 0) {
            o.write((int) ((v & 0x7f) | 0x80));
            v >>>= 7;
        }
        o.write((int) v);
        return o.toByteArray();
    }

    static byte[] field(int num, byte[] payload) {
        return concat(varint((long) num << 3 | 2), varint(payload.length), payload);
    }

    static byte[] fieldVarint(int num, long v) {
        return concat(varint((long) num << 3), varint(v));
    }

    static byte[] model(byte[] graph) {
        return concat(fieldVarint(1, 8), field(2, "t".getBytes()), field(7, graph));
    }

    static byte[] tensor(String name, int type, long[] dims, byte[] raw) {
        byte[] t = new byte[0];
        for (long d : dims) t = concat(t, fieldVarint(1, d));
        t = concat(t, fieldVarint(2, type), field(8, name.getBytes(StandardCharsets.UTF_8)));
        if (raw != null) t = concat(t, field(9, raw));
        return t;
    }

    static byte[] external(String name, long[] dims, String location, String offset, String length) {
        byte[] t = new byte[0];
        for (long d : dims) t = concat(t, fieldVarint(1, d));
        t = concat(t, fieldVarint(2, 1), field(8, name.getBytes()));
        t = concat(t, field(13, concat(field(1, "location".getBytes()), field(2, location.getBytes()))));
        if (offset != null) t = concat(t, field(13, concat(field(1, "offset".getBytes()), field(2, offset.getBytes()))));
        if (length != null) t = concat(t, field(13, concat(field(1, "length".getBytes()), field(2, length.getBytes()))));
        return concat(t, fieldVarint(14, 1));
    }

    static byte[] init(byte[] tensor) {
        return model(field(5, tensor));
    }

    static void onnx(Path d) throws IOException {
        counter = 0;
        byte[] ok = validOnnx(d);
        for (int cut : new int[] {1, 2, 5, 12, 30, ok.length / 3, ok.length / 2, ok.length - 70, ok.length - 20, ok.length - 1}) {
            put(d, "truncated-at-" + cut, "onnx", Arrays.copyOf(ok, cut));
        }
        Random r = new Random(42);
        for (int i = 0; i < 5; i++) {
            byte[] g = new byte[200 + 300 * i];
            r.nextBytes(g);
            g[0] = (byte) (i % 2 == 0 ? 0x08 : 0x3a);
            put(d, "garbage-" + i, "onnx", g);
        }
        put(d, "text-file", "onnx", "hello, this is not a model\n".getBytes());
        put(d, "overlong-varint", "onnx", concat(new byte[] {0x08}, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
            (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01}));
        put(d, "wire-type-7", "onnx", concat(fieldVarint(1, 8), new byte[] {0x0f, 0}));
        put(d, "wire-type-group", "onnx", concat(fieldVarint(1, 8), new byte[] {0x0b, 0}));
        put(d, "field-number-zero", "onnx", concat(fieldVarint(1, 8), new byte[] {0x02, 0}));
        put(d, "length-past-file", "onnx", concat(fieldVarint(1, 8), varint(7 << 3 | 2), varint(1 << 20), new byte[10]));
        put(d, "graph-longer-than-model", "onnx", concat(fieldVarint(1, 8), varint(7 << 3 | 2), varint(50), field(5, new byte[4])));
        put(d, "initializer-longer-than-graph", "onnx", model(concat(varint(5 << 3 | 2), varint(40), new byte[4])));
        put(d, "initializer-without-name", "onnx", init(concat(fieldVarint(1, 2), fieldVarint(2, 1), field(9, new byte[8]))));
        put(d, "initializer-unknown-type", "onnx", init(tensor("x", 99, new long[] {2}, new byte[8])));
        put(d, "raw-data-size-mismatch", "onnx", init(tensor("x", 1, new long[] {4}, new byte[8])));
        put(d, "shape-overflows-long", "onnx", init(tensor("x", 1, new long[] {1L << 40, 1L << 40}, new byte[8])));
        put(d, "negative-dim", "onnx", init(tensor("x", 1, new long[] {-1}, new byte[8])));
        put(d, "duplicate-initializers", "onnx", model(concat(field(5, tensor("x", 1, new long[] {2}, new byte[8])),
                field(5, tensor("x", 1, new long[] {2}, new byte[8])))));
        put(d, "external-absolute-path", "onnx", init(external("x", new long[] {2}, "/etc/passwd", "0", "8")));
        put(d, "external-escapes-directory", "onnx", init(external("x", new long[] {2}, "../outside.bin", "0", "8")));
        put(d, "external-missing-file", "onnx", init(external("x", new long[] {2}, "nowhere.data", "0", "8")));
        Files.write(d.resolve("small.data"), new byte[16]);
        put(d, "external-offset-past-end", "onnx", init(external("x", new long[] {2}, "small.data", "4096", "8")));
        put(d, "external-length-mismatch", "onnx", init(external("x", new long[] {2}, "small.data", "0", "12")));
        put(d, "external-offset-not-number", "onnx", init(external("x", new long[] {2}, "small.data", "zero", "8")));
        put(d, "external-without-location", "onnx", init(concat(fieldVarint(1, 2), fieldVarint(2, 1), field(8, "x".getBytes()), fieldVarint(14, 1))));
        put(d, "no-ir-version", "onnx", concat(field(2, "t".getBytes()), field(7, new byte[0])));
        put(d, "no-graph", "onnx", concat(fieldVarint(1, 8), field(2, "t".getBytes())));
        put(d, "garbage-opset-import", "onnx", concat(fieldVarint(1, 8), field(8, new byte[] {(byte) 0xff, (byte) 0xff}), field(7, new byte[0])));
        put(d, "garbage-metadata-props", "onnx", concat(fieldVarint(1, 8), field(14, new byte[] {0x0a, 0x7f}), field(7, new byte[0])));
        put(d, "producer-not-utf8", "onnx", concat(fieldVarint(1, 8), field(2, new byte[] {(byte) 0xc3, 0x28}), field(7, new byte[0])));
        put(d, "initializer-without-data", "onnx", init(tensor("x", 1, new long[] {4}, null)));
        put(d, "int64-data-too-many-values", "onnx", init(concat(fieldVarint(1, 2), fieldVarint(2, 7), field(8, "x".getBytes()),
                field(7, concat(varint(1), varint(2), varint(3))))));
        put(d, "producer-as-varint", "onnx", concat(fieldVarint(1, 8), fieldVarint(2, 5), field(7, new byte[0])));
        put(d, "empty-file", "onnx", new byte[0]);
        put(d, "json-named-onnx", "onnx", "{\"not\": \"a model\"}".getBytes());
    }

    // ------------------------------------------------------------------ PyTorch

    static byte[] zipOf(Map<String, byte[]> entries, int method) throws IOException {
        Path t = Files.createTempFile("zip", ".tmp");
        try {
            PickleBytes.zipEntries(t, entries, method);
            return Files.readAllBytes(t);
        } finally {
            Files.delete(t);
        }
    }

    static byte[] ckpt(byte[] pickle, Map<String, byte[]> storages) throws IOException {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("archive/data.pkl", pickle);
        e.put("archive/byteorder", "little".getBytes());
        storages.forEach((k, v) -> e.put("archive/data/" + k, v));
        return zipOf(e, ZipEntry.STORED);
    }

    static byte[] call(String module, String name) {
        return new PickleBytes().proto().global(module, name).str("echo pwned").op(0x85, 'R', '.').bytes();
    }

    static void pytorch(Path d) throws IOException {
        counter = 0;
        Map<String, byte[]> st = Map.of("0", new byte[48]);
        byte[] good = PickleBytes.stateDict("w", 3, 4, 12, new int[] {4, 1}).bytes();
        put(d, "global-os-system", "bin", ckpt(call("os", "system"), Map.of()));
        put(d, "global-posix-system", "bin", ckpt(call("posix", "system"), Map.of()));
        put(d, "global-builtins-eval", "bin", ckpt(call("builtins", "eval"), Map.of()));
        put(d, "global-builtins-exec", "bin", ckpt(call("builtins", "exec"), Map.of()));
        put(d, "global-subprocess-popen-stack", "bin", ckpt(new PickleBytes().proto().str("subprocess").str("Popen").op(0x93)
                .str("ls").op(0x85, 'R', '.').bytes(), Map.of()));
        put(d, "global-torch-load", "bin", ckpt(call("torch", "load"), Map.of()));
        put(d, "global-builtin-getattr", "bin", ckpt(call("__builtin__", "getattr"), Map.of()));
        put(d, "global-nt-system", "bin", ckpt(call("nt", "system"), Map.of()));
        put(d, "opcode-inst", "bin", ckpt(new PickleBytes().proto().op('(').op('i').bytes(), Map.of()));
        put(d, "opcode-obj", "bin", ckpt(new PickleBytes().proto().op('(', 'o', '.').bytes(), Map.of()));
        put(d, "opcode-newobj", "bin", ckpt(new PickleBytes().proto().op(')', ')', 0x81, '.').bytes(), Map.of()));
        put(d, "opcode-persid-text", "bin", ckpt(new PickleBytes().proto().op('P').bytes(), Map.of()));
        put(d, "pickle-truncated", "bin", ckpt(Arrays.copyOf(good, good.length / 2), st));
        put(d, "pickle-stack-underflow", "bin", ckpt(new PickleBytes().proto().op('R', '.').bytes(), Map.of()));
        put(d, "pickle-memo-missing", "bin", ckpt(new PickleBytes().proto().op('h', 9, '.').bytes(), Map.of()));
        put(d, "pickle-string-past-end", "bin", ckpt(new PickleBytes().proto().op('X', 0xff, 0xff, 0xff, 0x7f, 'a').bytes(), Map.of()));
        put(d, "pickle-no-stop", "bin", ckpt(new PickleBytes().proto().op('}').bytes(), Map.of()));
        put(d, "persistent-id-not-storage", "bin", ckpt(new PickleBytes().proto().str("x").op('Q', '.').bytes(), Map.of()));
        put(d, "storage-type-not-allowed", "bin", ckpt(new String(good, StandardCharsets.ISO_8859_1).replace("FloatStorage", "ComplexStorage")
                .getBytes(StandardCharsets.ISO_8859_1), st));
        put(d, "storage-missing", "bin", ckpt(good, Map.of()));
        put(d, "tensor-past-storage", "bin", ckpt(PickleBytes.stateDict("w", 4, 4, 12, new int[] {4, 1}).bytes(), st));
        put(d, "non-contiguous", "bin", ckpt(PickleBytes.stateDict("w", 3, 4, 12, new int[] {1, 3}).bytes(), st));
        Map<String, byte[]> deflated = new LinkedHashMap<>();
        deflated.put("archive/data.pkl", good);
        deflated.put("archive/data/0", new byte[48]);
        put(d, "storage-deflated", "bin", zipOf(deflated, ZipEntry.DEFLATED));
        put(d, "zip-bomb-inflates-past-declared", "bin", patchDeclaredSize(zipOf(Map.of("archive/data.pkl", new byte[200_000]), ZipEntry.DEFLATED), 100));
        put(d, "zip-bomb-declares-1TB", "bin", patchDeclaredSize(zipOf(Map.of("archive/data.pkl", new byte[1000]), ZipEntry.DEFLATED), 0xfffffff0L));
        put(d, "zip-bomb-overlapping-entries", "bin", overlapping(good));
        put(d, "zip-without-data-pkl", "bin", zipOf(Map.of("readme.txt", "hi".getBytes()), ZipEntry.STORED));
        Map<String, byte[]> two = new LinkedHashMap<>();
        two.put("a/data.pkl", good);
        two.put("b/data.pkl", good);
        put(d, "two-data-pkl", "bin", zipOf(two, ZipEntry.STORED));
        put(d, "zip-header-then-garbage", "bin", concat(new byte[] {'P', 'K', 3, 4}, new byte[300]));
        byte[] z = ckpt(good, st);
        put(d, "eocd-absurd-count", "bin", patchEocd(z, 10, 0xfffe, 2));
        put(d, "central-directory-past-end", "bin", patchEocd(z, 16, 0x7ffffff0L, 4));
        put(d, "local-header-past-end", "bin", patchFirstCentral(z, 42, 0x7ffffff0L));
        put(d, "legacy-bare-pickle", "bin", new PickleBytes().proto().op('}', '.').bytes());
        put(d, "byteorder-big", "bin", zipOf(Map.of("archive/data.pkl", good, "archive/byteorder", "big".getBytes(), "archive/data/0", new byte[48]), ZipEntry.STORED));
        put(d, "zip-truncated-half", "bin", Arrays.copyOf(z, z.length / 2));
        put(d, "empty-file", "bin", new byte[0]);
        byte[] def = zipOf(Map.of("archive/data.pkl", good), ZipEntry.DEFLATED);
        put(d, "corrupt-deflate-stream", "bin", corruptDeflate(def));
        put(d, "compression-method-12", "bin", patchFirstCentral(z, 10, 12, 2));
        put(d, "no-tensors", "bin", ckpt(new PickleBytes().proto().op('}').str("step").int1(3).op('s', '.').bytes(), Map.of()));
        put(d, "pickle-long1-past-end", "bin", ckpt(new PickleBytes().proto().op(0x8a, 200, 1, '.').bytes(), Map.of()));
        PickleBytes nest = new PickleBytes().proto();
        for (int i = 0; i < 40; i++) nest.op('}').str("k");
        nest.op('}');
        for (int i = 0; i < 40; i++) nest.op('s');
        put(d, "dicts-nested-40-deep", "bin", ckpt(nest.op('.').bytes(), Map.of()));
        put(d, "rebuild-bad-arguments", "bin", ckpt(new PickleBytes().proto().op('}').str("w").global("torch._utils", "_rebuild_tensor_v2")
                .op('(').int1(1).int1(2).op('t', 'R', 's', '.').bytes(), Map.of()));
        put(d, "build-on-global", "bin", ckpt(new PickleBytes().proto().global("collections", "OrderedDict").op('}', 'b', '.').bytes(), Map.of()));
        byte[] bomb = new byte[2_500_000];
        bomb[0] = (byte) 0x80;
        bomb[1] = 2;
        java.util.Arrays.fill(bomb, 2, bomb.length, (byte) ']'); // 2.5 million EMPTY_LIST
        put(d, "pickle-bomb-millions-of-lists", "bin", ckpt(bomb, Map.of()));
        Map<String, byte[]> dup = new LinkedHashMap<>();
        dup.put("archive/data.pkl", good);
        dup.put("archive/data.pkX", good);
        String dz = new String(zipOf(dup, ZipEntry.STORED), StandardCharsets.ISO_8859_1);
        put(d, "duplicate-entry-names", "bin", dz.replace("archive/data.pkX", "archive/data.pkl").getBytes(StandardCharsets.ISO_8859_1));
    }

    /** Sets the declared uncompressed size of the first entry in the central directory. */
    static byte[] patchDeclaredSize(byte[] zip, long size) {
        return patchFirstCentral(zip, 24, size);
    }

    static int centralStart(byte[] zip) {
        ByteBuffer b = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = zip.length - 22; i >= 0; i--) if (b.getInt(i) == 0x06054b50) return b.getInt(i + 16);
        throw new IllegalStateException();
    }

    static byte[] patchFirstCentral(byte[] zip, int field, long value) {
        return patchFirstCentral(zip, field, value, 4);
    }

    static byte[] patchFirstCentral(byte[] zip, int field, long value, int width) {
        byte[] z = zip.clone();
        ByteBuffer b = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
        int cd = centralStart(z);
        if (width == 2) b.putShort(cd + field, (short) value);
        else b.putInt(cd + field, (int) value);
        return z;
    }

    static byte[] patchEocd(byte[] zip, int field, long value, int width) {
        byte[] z = zip.clone();
        ByteBuffer b = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = z.length - 22; i >= 0; i--) {
            if (b.getInt(i) == 0x06054b50) {
                if (width == 2) b.putShort(i + field, (short) value);
                else b.putInt(i + field, (int) value);
                return z;
            }
        }
        throw new IllegalStateException();
    }

    /** A second central entry pointing at the first entry's local header: the overlapping-file zip bomb. */
    static byte[] overlapping(byte[] pickle) throws IOException {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("archive/data.pkl", pickle);
        e.put("archive/data/0", new byte[48]);
        byte[] z = zipOf(e, ZipEntry.STORED);
        ByteBuffer b = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
        int cd = centralStart(z);
        int first = cd;
        int second = first + 46 + (b.getShort(first + 28) & 0xffff) + (b.getShort(first + 30) & 0xffff) + (b.getShort(first + 32) & 0xffff);
        int localOfFirst = b.getInt(first + 42);
        b.putInt(second + 42, localOfFirst);
        b.putInt(second + 20, 48);
        b.putInt(second + 24, 48);
        return z;
    }

    static byte[] corruptDeflate(byte[] zip) {
        byte[] z = zip.clone();
        ByteBuffer b = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
        int data = 30 + (b.getShort(26) & 0xffff) + (b.getShort(28) & 0xffff);
        for (int i = data; i < data + 8 && i < z.length; i++) z[i] = (byte) 0xff;
        return z;
    }

}
