package parallax.engine.formats;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import parallax.engine.numerics.DType;

/**
 * GGUF v3 (ggml docs/gguf.md). Little-endian: magic "GGUF", u32 version, u64 tensor
 * count, u64 metadata count, the key/value pairs, the tensor infos (name, n_dims <= 4,
 * dims fastest-varying first, ggml type, offset relative to the data section), padding to
 * {@code general.alignment} (default 32), then the tensor data, each tensor at an aligned
 * offset. Every count and length is checked against the bytes left before anything is
 * allocated, so a hostile header cannot exhaust the heap.
 */
public final class Gguf implements ModelFile {

    static final int MAGIC = 0x46554747; // "GGUF" read little-endian
    static final int MAX_DIMS = 4;
    static final int MAX_NAME = 64;
    static final int DEFAULT_ALIGNMENT = 32;
    /** Arrays longer than this keep only their count (tokenizer vocabularies are ~150k). */
    static final long MAX_LOADED_ARRAY = 4_000_000;
    static final int MAX_NESTING = 8;
    /** Limits that keep the heap bounded on hostile headers; real files stay far below them. */
    static final long MAX_TENSORS = 1_000_000;
    static final long MAX_STRING = 16L << 20;
    static final long MAX_RETAINED_VALUES = 8_000_000;

    /**
     * ggml type numbers (ggml.h, enum ggml_type; docs/reference.md#ggml-block-types) of the
     * types Parallax reads: every type of the enum that a GGUF file may hold.
     */
    private static final Map<DType, Integer> GGML_IDS = ggmlIds();

    private static Map<DType, Integer> ggmlIds() {
        Map<DType, Integer> m = new java.util.EnumMap<>(DType.class);
        Object[] table = {
            DType.F32, 0, DType.F16, 1, DType.Q4_0, 2, DType.Q4_1, 3, DType.Q5_0, 6, DType.Q5_1, 7, DType.Q8_0, 8,
            DType.Q8_1, 9, DType.Q2_K, 10, DType.Q3_K, 11, DType.Q4_K, 12, DType.Q5_K, 13, DType.Q6_K, 14, DType.Q8_K, 15,
            DType.IQ2_XXS, 16, DType.IQ2_XS, 17, DType.IQ3_XXS, 18, DType.IQ1_S, 19, DType.IQ4_NL, 20, DType.IQ3_S, 21,
            DType.IQ2_S, 22, DType.IQ4_XS, 23, DType.I8, 24, DType.I16, 25, DType.I32, 26, DType.I64, 27, DType.F64, 28,
            DType.IQ1_M, 29, DType.BF16, 30, DType.TQ1_0, 34, DType.TQ2_0, 35, DType.MXFP4, 39, DType.NVFP4, 40,
            DType.Q1_0, 41, DType.Q2_0, 42,
        };
        for (int i = 0; i < table.length; i += 2) m.put((DType) table[i], (Integer) table[i + 1]);
        return java.util.Collections.unmodifiableMap(m);
    }

    /** The ggml type number of {@code d}; a one-line error for a type GGUF cannot hold. */
    public static int ggmlType(DType d) {
        Integer id = GGML_IDS.get(d);
        if (id == null) throw new parallax.engine.UserError("GGUF cannot store " + d);
        return id;
    }

    /** Whether GGUF has a type number for {@code d}. */
    public static boolean stores(DType d) { return GGML_IDS.containsKey(d); }

    static DType fromGgml(int id) {
        for (var e : GGML_IDS.entrySet()) if (e.getValue() == id) return e.getKey();
        return null;
    }

    /**
     * ggml type numbers that were once defined and then removed from ggml.h (no file in the
     * current format may use them), with their names, so a refusal can say what it was.
     */
    static String removedType(int id) {
        switch (id) {
            case 4: return "Q4_2";
            case 5: return "Q4_3";
            case 31: return "Q4_0_4_4";
            case 32: return "Q4_0_4_8";
            case 33: return "Q4_0_8_8";
            case 36: return "IQ4_NL_4_4";
            case 37: return "IQ4_NL_4_8";
            case 38: return "IQ4_NL_8_8";
            default: return null;
        }
    }

    private final MappedFile file;
    private final int version;
    private final Map<String, GgufValue> kv;
    private final List<TensorEntry> tensors;
    private final long alignment;
    private final long dataStart;

    private Gguf(MappedFile file, int version, Map<String, GgufValue> kv, List<TensorEntry> tensors, long alignment, long dataStart) {
        this.file = file;
        this.version = version;
        this.kv = kv;
        this.tensors = tensors;
        this.alignment = alignment;
        this.dataStart = dataStart;
    }

    public static Gguf open(Path path) {
        return MappedFile.read(path, f -> new Reader(f).read());
    }

    public int version() { return version; }

    public long alignment() { return alignment; }

    public long dataStart() { return dataStart; }

    /** The typed key/value pairs in file order. */
    public Map<String, GgufValue> kv() { return kv; }

    @Override public Format format() { return Format.GGUF; }

    @Override public Path path() { return file.path(); }

    @Override
    public Map<String, Object> metadata() {
        Map<String, Object> m = new LinkedHashMap<>();
        kv.forEach((k, v) -> m.put(k, v.plain()));
        return m;
    }

    @Override public List<TensorEntry> tensors() { return tensors; }

    @Override
    public ByteBuffer bytes(TensorEntry t, long from, int length) {
        return file.tensorBytes(t, from, length);
    }

    @Override
    public void close() { file.close(); }

    /** Reads the header through one map of at most 2 GiB; the data is mapped per tensor later. */
    private static final class Reader {
        final MappedFile f;
        final Path p;
        final ByteBuffer b;

        Reader(MappedFile f) {
            this.f = f;
            this.p = f.path();
            this.b = f.map(0, Math.min(f.size(), Integer.MAX_VALUE));
        }

        long remaining() { return f.size() - b.position(); }

        void need(long n, String what) {
            if (n < 0 || n > b.remaining()) {
                throw new FormatError(p, "truncated: " + what + " at offset " + b.position() + " needs " + (n < 0 ? Long.toUnsignedString(n) : n)
                        + " bytes, " + b.remaining() + " left");
            }
        }

        int u32(String what) { need(4, what); return b.getInt(); }

        long u64(String what) { need(8, what); return b.getLong(); }

        long retained;

        String string(String what) {
            long len = u64(what + " length");
            if (len < 0 || len > b.remaining()) {
                throw new FormatError(p, what + " of " + Long.toUnsignedString(len) + " bytes at offset " + (b.position() - 8)
                        + " runs past the end of the file");
            }
            if (len > MAX_STRING) {
                throw new FormatError(p, what + " of " + len + " bytes at offset " + (b.position() - 8) + " exceeds the reader's 16 MiB limit");
            }
            byte[] bytes = new byte[(int) len];
            b.get(bytes);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                throw new FormatError(p, what + " at offset " + (b.position() - len) + " is not valid UTF-8");
            }
        }

        Gguf read() {
            if (f.size() < 4) throw new FormatError(p, "truncated: " + f.size() + " bytes, too short for the GGUF magic");
            int magic = b.getInt();
            if (magic != MAGIC) throw new FormatError(p, String.format("bad magic 0x%08x (a GGUF file starts with \"GGUF\")", magic));
            int version = u32("version");
            if (version == 0x03000000 || version == 0x02000000) {
                throw new FormatError(p, "big-endian GGUF (version bytes swapped) is not supported");
            }
            if (version != 3 && version != 2) {
                throw new FormatError(p, "unsupported GGUF version " + Integer.toUnsignedString(version) + " (this reader knows 2 and 3)");
            }
            long nTensors = u64("tensor count");
            long nKv = u64("metadata count");
            // A tensor info takes at least 8 (name length) + 4 + 8 + 4 + 8 bytes, a key/value 8 + 4 + 1.
            if (nTensors > MAX_TENSORS && nTensors <= remaining() / 32) {
                throw new FormatError(p, "tensor count " + nTensors + " exceeds the reader's limit of " + MAX_TENSORS);
            }
            if (nTensors < 0 || nTensors > remaining() / 32) {
                throw new FormatError(p, "tensor count " + Long.toUnsignedString(nTensors) + " needs at least 32 bytes each but "
                        + remaining() + " bytes remain (an absurd count or a truncated file)");
            }
            if (nKv < 0 || nKv > remaining() / 13) {
                throw new FormatError(p, "metadata count " + Long.toUnsignedString(nKv) + " needs at least 13 bytes each but "
                        + remaining() + " bytes remain (an absurd count or a truncated file)");
            }
            Map<String, GgufValue> kv = new LinkedHashMap<>();
            for (long i = 0; i < nKv; i++) {
                String key = string("metadata key");
                int typeId = u32("type of " + key);
                GgufValue.Type t = GgufValue.Type.of(typeId);
                if (t == null) throw new FormatError(p, "unknown metadata value type " + Integer.toUnsignedString(typeId) + " for key " + key);
                GgufValue v = value(key, t, 0);
                if (kv.putIfAbsent(key, v) != null) throw new FormatError(p, "duplicate metadata key " + key);
            }
            long alignment = DEFAULT_ALIGNMENT;
            GgufValue a = kv.get("general.alignment");
            if (a != null) {
                if (a.type() != GgufValue.Type.UINT32) throw new FormatError(p, "general.alignment is " + a.type() + ", not UINT32");
                alignment = a.asLong();
                if (alignment <= 0 || Long.bitCount(alignment) != 1) {
                    throw new FormatError(p, "general.alignment " + alignment + " is not a power of two");
                }
            }
            record Info(String name, long[] dims, DType type, long offset) {}
            List<Info> infos = new ArrayList<>();
            Set<String> names = new HashSet<>();
            for (long i = 0; i < nTensors; i++) {
                String name = string("tensor name");
                if (name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME) {
                    throw new FormatError(p, "tensor name \"" + name.substring(0, 20) + "...\" is longer than " + MAX_NAME + " bytes");
                }
                if (!names.add(name)) throw new FormatError(p, "duplicate tensor name \"" + name + "\"");
                int nDims = u32("dimension count of " + name);
                if (nDims < 1 || nDims > MAX_DIMS) {
                    throw new FormatError(p, "tensor \"" + name + "\" has " + Integer.toUnsignedString(nDims) + " dimensions (GGUF allows 1 to " + MAX_DIMS + ")");
                }
                long[] dims = new long[nDims];
                for (int d = 0; d < nDims; d++) {
                    dims[d] = u64("dimension of " + name);
                    if (dims[d] < 0) throw new FormatError(p, "tensor \"" + name + "\" dimension " + Long.toUnsignedString(dims[d]) + " is >= 2^63");
                }
                int typeId = u32("type of " + name);
                DType type = fromGgml(typeId);
                if (type == null) {
                    String removed = removedType(typeId);
                    throw new FormatError(p, "tensor \"" + name + "\" has " + (removed != null
                            ? "ggml type " + removed + " (" + typeId + "), which ggml removed from the format (re-quantize the model with a current llama.cpp)"
                            : "unknown ggml type " + Integer.toUnsignedString(typeId) + " (newer than this reader, which knows ggml types 0 to 42)"));
                }
                long offset = u64("offset of " + name);
                if (offset < 0 || offset % alignment != 0) {
                    throw new FormatError(p, "tensor \"" + name + "\" offset " + Long.toUnsignedString(offset) + " is not a multiple of the alignment " + alignment);
                }
                infos.add(new Info(name, dims, type, offset));
            }
            long dataStart = (b.position() + alignment - 1) / alignment * alignment;
            if (dataStart > f.size()) throw new FormatError(p, "truncated: the data section would start at " + dataStart + ", past the end of the file");
            List<TensorEntry> entries = new ArrayList<>();
            long expect = 0;
            for (Info in : infos) {
                long[] shape = new long[in.dims.length];
                for (int d = 0; d < shape.length; d++) shape[d] = in.dims[shape.length - 1 - d];
                long bytes;
                try {
                    if (in.type.isBlock() && in.dims[0] % in.type.blockElements() != 0) {
                        throw new FormatError(p, "tensor \"" + in.name + "\" rows of " + in.dims[0] + " are not whole " + in.type
                                + (in.type.blockElements() == 256 ? " super-blocks of 256" : " blocks of " + in.type.blockElements()));
                    }
                    bytes = in.type.bytesFor(DType.elements(shape));
                } catch (ArithmeticException e) {
                    throw new FormatError(p, "tensor \"" + in.name + "\" shape " + Arrays.toString(shape) + " overflows a 64-bit size");
                }
                if (in.offset != expect) {
                    throw new FormatError(p, "tensor \"" + in.name + "\" offset " + in.offset + " should be " + expect
                            + (in.offset < expect ? " (it overlaps the previous tensor)" : " (gap after the previous tensor)"));
                }
                long abs = dataStart + in.offset;
                if (bytes > f.size() - abs) {
                    throw new FormatError(p, "truncated: tensor \"" + in.name + "\" needs bytes " + abs + ".." + (abs + bytes) + " but the file has " + f.size());
                }
                entries.add(new TensorEntry(in.name, in.type, shape, p, abs, bytes));
                expect = in.offset + (bytes + alignment - 1) / alignment * alignment;
            }
            return new Gguf(f, version, kv, List.copyOf(entries), alignment, dataStart);
        }

        GgufValue value(String key, GgufValue.Type t, int depth) {
            String what = "value of " + key;
            try {
                switch (t) {
                    case UINT8: need(1, what); return GgufValue.of(t, b.get() & 0xff);
                    case INT8: need(1, what); return GgufValue.of(t, (int) b.get());
                    case UINT16: need(2, what); return GgufValue.of(t, b.getShort() & 0xffff);
                    case INT16: need(2, what); return GgufValue.of(t, (int) b.getShort());
                    case UINT32: return GgufValue.of(t, u32(what) & 0xffffffffL);
                    case INT32: return GgufValue.of(t, u32(what));
                    case FLOAT32: need(4, what); return GgufValue.of(t, b.getFloat());
                    case BOOL: {
                        need(1, what);
                        int v = b.get();
                        if (v != 0 && v != 1) throw new FormatError(p, key + ": bool value " + v + " is neither 0 nor 1");
                        return GgufValue.of(t, v == 1);
                    }
                    case STRING: return GgufValue.of(t, string(what));
                    case UINT64: case INT64: return GgufValue.of(t, u64(what));
                    case FLOAT64: need(8, what); return GgufValue.of(t, b.getDouble());
                    case ARRAY: {
                        if (depth >= MAX_NESTING) throw new FormatError(p, key + ": arrays nested deeper than " + MAX_NESTING);
                        int et = u32("array type of " + key);
                        GgufValue.Type e = GgufValue.Type.of(et);
                        if (e == null) throw new FormatError(p, "unknown array element type " + Integer.toUnsignedString(et) + " for key " + key);
                        long n = u64("array length of " + key);
                        if (n < 0 || n > b.remaining() / e.minBytes) {
                            throw new FormatError(p, "absurd array length " + Long.toUnsignedString(n) + " for key " + key
                                    + " (" + b.remaining() + " bytes left)");
                        }
                        boolean keep = n <= MAX_LOADED_ARRAY && retained + n <= MAX_RETAINED_VALUES;
                        if (!keep && e != GgufValue.Type.ARRAY && e != GgufValue.Type.STRING) {
                            need(n * e.minBytes, what);
                            b.position((int) (b.position() + n * e.minBytes));
                            return new GgufValue(t, null, e, n);
                        }
                        if (!keep && e == GgufValue.Type.STRING) {
                            for (long i = 0; i < n; i++) {
                                long len = u64("string length in " + key);
                                need(len, "string in " + key);
                                b.position((int) (b.position() + len));
                            }
                            return new GgufValue(t, null, e, n);
                        }
                        retained += n;
                        List<GgufValue> l = new ArrayList<>((int) Math.min(n, 1 << 16));
                        for (long i = 0; i < n; i++) {
                            GgufValue v = value(key, e, depth + 1);
                            if (keep) l.add(v);
                        }
                        return keep ? GgufValue.array(e, l) : new GgufValue(t, null, e, n);
                    }
                    default: throw new IllegalStateException();
                }
            } catch (BufferUnderflowException e) {
                throw new FormatError(p, "truncated inside " + what);
            }
        }
    }

    // ---------------------------------------------------------------- writing

    /** Starts a GGUF v3 file: header, metadata and tensor infos now, tensor data streamed after. */
    public static TensorWriter writer(Path target, Map<String, GgufValue> kv, List<TensorSpec> tensors) {
        long alignment = DEFAULT_ALIGNMENT;
        GgufValue a = kv.get("general.alignment");
        if (a != null) alignment = a.asLong();
        Header h = new Header();
        h.u32(MAGIC).u32(3).u64(tensors.size()).u64(kv.size());
        kv.forEach((k, v) -> {
            h.string(k);
            h.u32(v.type().id());
            h.value(v);
        });
        long offset = 0;
        for (TensorSpec t : tensors) {
            if (t.name().getBytes(StandardCharsets.UTF_8).length > MAX_NAME) {
                throw new parallax.engine.UserError("GGUF tensor names are at most 64 bytes: " + t.name());
            }
            if (t.shape().length < 1 || t.shape().length > MAX_DIMS) {
                throw new parallax.engine.UserError("GGUF stores 1 to 4 dimensions; " + t.name() + " has " + t.shape().length);
            }
            h.string(t.name());
            h.u32(t.shape().length);
            for (int d = t.shape().length - 1; d >= 0; d--) h.u64(t.shape()[d]);
            h.u32(ggmlType(t.dtype()));
            h.u64(offset);
            offset += (t.bytes() + alignment - 1) / alignment * alignment;
        }
        AtomicFile f = new AtomicFile(target);
        try {
            h.flushTo(f);
            f.pad(alignment, (byte) 0);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
        return new TensorWriter(f, tensors, alignment) {};
    }

    /** A growable little-endian header buffer. */
    private static final class Header {
        ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        void ensure(long n) {
            if (b.remaining() >= n) return;
            long cap = Math.max((long) b.capacity() * 2, b.position() + n);
            if (cap > Integer.MAX_VALUE - 16) throw new parallax.engine.UserError("GGUF header larger than 2 GiB");
            ByteBuffer nb = ByteBuffer.allocate((int) cap).order(ByteOrder.LITTLE_ENDIAN);
            b.flip();
            nb.put(b);
            b = nb;
        }

        Header u32(long v) { ensure(4); b.putInt((int) v); return this; }

        Header u64(long v) { ensure(8); b.putLong(v); return this; }

        Header string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            ensure(bytes.length);
            b.put(bytes);
            return this;
        }

        void value(GgufValue v) {
            Object o = v.value();
            switch (v.type()) {
                case UINT8: case INT8: ensure(1); b.put(((Number) o).byteValue()); break;
                case UINT16: case INT16: ensure(2); b.putShort(((Number) o).shortValue()); break;
                case UINT32: case INT32: u32(((Number) o).longValue()); break;
                case FLOAT32: ensure(4); b.putFloat(((Number) o).floatValue()); break;
                case BOOL: ensure(1); b.put((byte) (((Boolean) o) ? 1 : 0)); break;
                case STRING: string((String) o); break;
                case UINT64: case INT64: u64(((Number) o).longValue()); break;
                case FLOAT64: ensure(8); b.putDouble(((Number) o).doubleValue()); break;
                case ARRAY:
                    if (o == null) throw new parallax.engine.UserError("cannot write an array that was not loaded");
                    u32(v.elementType().id());
                    u64(v.elements().size());
                    for (GgufValue e : v.elements()) {
                        if (e.type() != v.elementType()) throw new IllegalArgumentException("array element " + e.type() + " in " + v.elementType() + " array");
                        value(e);
                    }
                    break;
                default: throw new IllegalStateException();
            }
        }

        void flushTo(AtomicFile f) {
            b.flip();
            f.write(b);
        }
    }
}
