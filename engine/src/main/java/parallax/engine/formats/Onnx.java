package parallax.engine.formats;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import parallax.engine.formats.onnx.OnnxProto;
import parallax.engine.numerics.DType;

/**
 * ONNX (onnx/onnx.proto): a protobuf ModelProto. Reading walks the wire format over a
 * memory map instead of parsing the whole message, so initializers are found as byte
 * ranges (raw_data, packed float_data/double_data, or external data files) without
 * copying weights onto the heap. Small messages (opset ids, nodes' op types) are parsed
 * with the generated classes of our own onnx_subset.proto.
 */
public final class Onnx implements ModelFile {

    /** ONNX TensorProto.DataType numbers (onnx.proto). */
    static DType fromOnnx(int t) {
        switch (t) {
            case 1: return DType.F32;
            case 2: return DType.U8;
            case 3: return DType.I8;
            case 4: return DType.U16;
            case 5: return DType.I16;
            case 6: return DType.I32;
            case 7: return DType.I64;
            case 9: return DType.BOOL;
            case 10: return DType.F16;
            case 11: return DType.F64;
            case 12: return DType.U32;
            case 13: return DType.U64;
            case 14: return DType.C64;
            case 16: return DType.BF16;
            case 17: return DType.F8_E4M3;
            case 18: return DType.F8_E4M3FNUZ;
            case 19: return DType.F8_E5M2;
            case 20: return DType.F8_E5M2FNUZ;
            default: return null;
        }
    }

    static String firstSentence(String s) {
        if (s == null) return "unreadable";
        int i = s.indexOf(". ");
        return i < 0 ? s : s.substring(0, i);
    }

    static int toOnnx(DType d) {
        for (int t = 1; t <= 20; t++) if (fromOnnx(t) == d) return t;
        throw new parallax.engine.UserError("ONNX has no element type for " + d);
    }

    private final MappedFile file;
    private final Map<String, Object> metadata;
    private final List<TensorEntry> tensors;
    private final Map<String, MappedFile> external;
    private final Map<String, ByteBuffer> decoded;

    private Onnx(MappedFile file, Map<String, Object> metadata, List<TensorEntry> tensors,
                 Map<String, MappedFile> external, Map<String, ByteBuffer> decoded) {
        this.file = file;
        this.metadata = metadata;
        this.tensors = tensors;
        this.external = external;
        this.decoded = decoded;
    }

    public static Onnx open(Path path) {
        MappedFile f = new MappedFile(path);
        Walker w = new Walker(f);
        try {
            return w.read();
        } catch (RuntimeException e) {
            w.external.values().forEach(MappedFile::close);
            f.close();
            throw e;
        }
    }

    /**
     * ONNX has no magic number. A file is taken for ONNX when its first fields parse as
     * ModelProto fields: known field numbers with the right wire types, lengths that fit,
     * and an ir_version between 1 and 15 if that field comes first.
     */
    static boolean sniff(ByteBuffer head) {
        ByteBuffer b = head.duplicate();
        int fields = 0;
        while (b.hasRemaining() && fields < 3) {
            long tag = sniffVarint(b);
            if (tag < 0) return fields > 0;
            int field = (int) (tag >>> 3);
            int wire = (int) (tag & 7);
            boolean known = field == 1 && wire == 0 || field == 5 && wire == 0 || (field == 2 || field == 3 || field == 4
                    || field == 6 || field == 7 || field == 8 || field == 14 || field == 20) && wire == 2;
            if (!known) return false;
            long v = sniffVarint(b);
            if (v < 0) return fields > 0;
            if (field == 1 && (v < 1 || v > 15)) return false;
            if (wire == 2) {
                if (v > (1L << 31)) return false;
                if (v > b.remaining()) return true; // runs past our small window: plausible
                b.position(b.position() + (int) v);
            }
            fields++;
        }
        return fields > 0;
    }

    private static long sniffVarint(ByteBuffer b) {
        long v = 0;
        for (int shift = 0; shift < 64 && b.hasRemaining(); shift += 7) {
            int x = b.get() & 0xff;
            v |= (long) (x & 0x7f) << shift;
            if ((x & 0x80) == 0) return v;
        }
        return -1;
    }

    @Override public Format format() { return Format.ONNX; }

    @Override public Path path() { return file.path(); }

    @Override public Map<String, Object> metadata() { return metadata; }

    @Override public List<TensorEntry> tensors() { return tensors; }

    @Override
    public ByteBuffer bytes(TensorEntry t, long from, int length) {
        if (from < 0 || from + length > t.length()) throw new IndexOutOfBoundsException(t.name());
        ByteBuffer d = decoded.get(t.name());
        if (d != null) {
            return d.duplicate().position((int) from).limit((int) from + length).slice().order(ByteOrder.LITTLE_ENDIAN);
        }
        MappedFile src = t.file().equals(file.path()) ? file : external.get(t.file().toString());
        return src.map(t.offset() + from, length);
    }

    @Override
    public void close() {
        external.values().forEach(MappedFile::close);
        file.close();
    }

    /** A protobuf wire-format reader over a mapped buffer, checking every length. */
    private static final class Walker {
        final MappedFile f;
        final Path p;
        final ByteBuffer b;
        final Map<String, MappedFile> external = new HashMap<>();
        final Map<String, ByteBuffer> decoded = new HashMap<>();
        long decodedBytes;

        Walker(MappedFile f) {
            this.f = f;
            this.p = f.path();
            if (f.size() > Integer.MAX_VALUE) {
                throw new FormatError(p, "an ONNX protobuf is limited to 2 GB but this file has " + f.size() + " bytes");
            }
            this.b = f.map(0, f.size());
        }

        long varint() {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (!b.hasRemaining()) throw new FormatError(p, "not ONNX: truncated varint at offset " + b.position());
                int x = b.get() & 0xff;
                v |= (long) (x & 0x7f) << shift;
                if ((x & 0x80) == 0) return v;
            }
            throw new FormatError(p, "not ONNX: malformed varint at offset " + b.position());
        }

        /** Reads a length prefix and checks it against the enclosing message's end. */
        int length(int end) {
            long n = varint();
            if (n < 0 || n > end - b.position()) {
                throw new FormatError(p, "not ONNX (or truncated): a field of " + Long.toUnsignedString(n) + " bytes at offset "
                        + b.position() + " runs past its message, which ends at " + end);
            }
            return (int) n;
        }

        void skip(int wire, int end) {
            switch (wire) {
                case 0: varint(); break;
                case 1: advance(8, end); break;
                case 2: advance(length(end), end); break;
                case 5: advance(4, end); break;
                default: throw new FormatError(p, "not ONNX: wire type " + wire + " at offset " + (b.position() - 1));
            }
        }

        void advance(int n, int end) {
            if (n > end - b.position()) throw new FormatError(p, "not ONNX (or truncated): field runs past offset " + end);
            b.position(b.position() + n);
        }

        int tag(int end) {
            long t = varint();
            if (b.position() > end) throw new FormatError(p, "not ONNX: field tag crosses its message end at " + end);
            int field = (int) (t >>> 3);
            if (t >>> 3 > 536_870_911L || field == 0) throw new FormatError(p, "not ONNX: invalid field number at offset " + b.position());
            return (int) t;
        }

        String string(int end) {
            int n = length(end);
            byte[] bytes = new byte[n];
            b.get(bytes);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                throw new FormatError(p, "not ONNX: string at offset " + (b.position() - n) + " is not UTF-8");
            }
        }

        ByteBuffer slice(int n) {
            ByteBuffer s = b.duplicate().position(b.position()).limit(b.position() + n).slice();
            b.position(b.position() + n);
            return s;
        }

        Onnx read() {
            int end = b.limit();
            if (end == 0) throw new FormatError(p, "empty file");
            Map<String, Object> meta = new LinkedHashMap<>();
            List<TensorEntry> entries = new ArrayList<>();
            boolean sawGraph = false;
            while (b.position() < end) {
                int t = tag(end);
                int field = t >>> 3;
                int wire = t & 7;
                if (field == 1 && wire == 0) {
                    meta.put("ir_version", varint());
                } else if (field == 2 && wire == 2) {
                    meta.put("producer_name", string(end));
                } else if (field == 3 && wire == 2) {
                    meta.put("producer_version", string(end));
                } else if (field == 4 && wire == 2) {
                    meta.put("domain", string(end));
                } else if (field == 6 && wire == 2) {
                    meta.put("doc_string", string(end));
                } else if (field == 7 && wire == 2) {
                    int n = length(end);
                    graph(b.position() + n, meta, entries);
                    sawGraph = true;
                } else if (field == 8 && wire == 2) {
                    int n = length(end);
                    try {
                        OnnxProto.OperatorSetId op = OnnxProto.OperatorSetId.parseFrom(slice(n));
                        String dom = op.getDomain().isEmpty() ? "ai.onnx" : op.getDomain();
                        meta.put("opset." + dom, op.getVersion());
                    } catch (InvalidProtocolBufferException e) {
                        throw new FormatError(p, "not ONNX: bad opset_import: " + firstSentence(e.getMessage()));
                    }
                } else if (field == 14 && wire == 2) {
                    int n = length(end);
                    try {
                        OnnxProto.StringStringEntry e = OnnxProto.StringStringEntry.parseFrom(slice(n));
                        meta.put("metadata." + e.getKey(), e.getValue());
                    } catch (InvalidProtocolBufferException e) {
                        throw new FormatError(p, "not ONNX: bad metadata_props: " + firstSentence(e.getMessage()));
                    }
                } else if (field <= 30 && wire != 2 && (field == 2 || field == 3 || field == 4 || field == 6 || field == 7
                        || field == 8 || field == 14)) {
                    throw new FormatError(p, "not ONNX: field " + field + " has wire type " + wire + " at offset " + b.position());
                } else {
                    skip(wire, end);
                }
            }
            if (!meta.containsKey("ir_version")) throw new FormatError(p, "not ONNX: no ir_version field");
            if (!sawGraph) throw new FormatError(p, "not ONNX: no graph");
            Set<String> names = new HashSet<>();
            for (TensorEntry e : entries) {
                if (!names.add(e.name())) throw new FormatError(p, "duplicate initializer name \"" + e.name() + "\"");
            }
            return new Onnx(f, meta, List.copyOf(entries), external, decoded);
        }

        void graph(int end, Map<String, Object> meta, List<TensorEntry> entries) {
            Map<String, Integer> ops = new TreeMap<>();
            List<String> inputs = new ArrayList<>();
            List<String> outputs = new ArrayList<>();
            int nodes = 0;
            while (b.position() < end) {
                int t = tag(end);
                int field = t >>> 3;
                int wire = t & 7;
                if (field == 1 && wire == 2) {
                    int n = length(end);
                    nodes++;
                    String op = nodeOp(b.position() + n);
                    ops.merge(ops.size() < 1000 || ops.containsKey(op) ? op : "(other)", 1, Integer::sum);
                } else if (field == 2 && wire == 2) {
                    meta.put("graph.name", string(end));
                } else if (field == 5 && wire == 2) {
                    int n = length(end);
                    if (entries.size() >= 1_000_000) throw new FormatError(p, "more than 1,000,000 initializers");
                    entries.add(tensor(b.position() + n));
                } else if ((field == 11 || field == 12) && wire == 2) {
                    int n = length(end);
                    String name = valueInfoName(b.position() + n);
                    (field == 11 ? inputs : outputs).add(name);
                } else {
                    skip(wire, end);
                }
            }
            meta.put("graph.nodes", nodes);
            if (!ops.isEmpty()) meta.put("graph.ops", ops);
            meta.put("graph.inputs", inputs);
            meta.put("graph.outputs", outputs);
        }

        String nodeOp(int end) {
            String op = "?";
            while (b.position() < end) {
                int t = tag(end);
                if (t == ((4 << 3) | 2)) op = string(end);
                else skip(t & 7, end);
            }
            return op;
        }

        String valueInfoName(int end) {
            String name = "";
            while (b.position() < end) {
                int t = tag(end);
                if (t == ((1 << 3) | 2)) name = string(end);
                else skip(t & 7, end);
            }
            return name;
        }

        TensorEntry tensor(int end) {
            List<Long> dims = new ArrayList<>();
            int dataType = 0;
            String name = null;
            long dataOffset = -1;
            long dataLength = 0;
            int dataField = 0;
            boolean externalLoc = false;
            Map<String, String> ext = new HashMap<>();
            int start = b.position();
            while (b.position() < end) {
                int t = tag(end);
                int field = t >>> 3;
                int wire = t & 7;
                if (field == 1 && wire == 0) {
                    dims.add(varint());
                } else if (field == 1 && wire == 2) {
                    int n = length(end);
                    int stop = b.position() + n;
                    while (b.position() < stop) dims.add(varint());
                } else if (field == 2 && wire == 0) {
                    dataType = (int) varint();
                } else if (field == 8 && wire == 2) {
                    name = string(end);
                } else if ((field == 9 || field == 4 || field == 10 || field == 5 || field == 7 || field == 11) && wire == 2) {
                    int n = length(end);
                    dataField = field;
                    dataOffset = b.position();
                    dataLength = n;
                    b.position(b.position() + n);
                } else if (field == 13 && wire == 2) {
                    int n = length(end);
                    try {
                        OnnxProto.StringStringEntry e = OnnxProto.StringStringEntry.parseFrom(slice(n));
                        ext.put(e.getKey(), e.getValue());
                    } catch (InvalidProtocolBufferException e) {
                        throw new FormatError(p, "not ONNX: bad external_data entry: " + firstSentence(e.getMessage()));
                    }
                } else if (field == 14 && wire == 0) {
                    externalLoc = varint() == 1;
                } else {
                    skip(wire, end);
                }
            }
            if (name == null) throw new FormatError(p, "initializer at offset " + start + " has no name");
            DType d = fromOnnx(dataType);
            if (d == null) throw new FormatError(p, "initializer \"" + name + "\" has unsupported ONNX data type " + dataType);
            long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
            long need;
            try {
                for (long x : shape) if (x < 0) throw new FormatError(p, "initializer \"" + name + "\" has a negative dimension");
                need = d.bytesFor(DType.elements(shape));
            } catch (ArithmeticException e) {
                throw new FormatError(p, "initializer \"" + name + "\" shape " + java.util.Arrays.toString(shape) + " overflows a 64-bit size");
            }
            if (externalLoc || !ext.isEmpty()) {
                return externalTensor(name, d, shape, need, ext);
            }
            if (dataOffset < 0) {
                if (need == 0) return new TensorEntry(name, d, shape, p, start, 0);
                throw new FormatError(p, "initializer \"" + name + "\" has no data");
            }
            boolean direct = dataField == 9 || (dataField == 4 && d == DType.F32) || (dataField == 10 && d == DType.F64);
            if (direct) {
                if (dataLength != need) {
                    throw new FormatError(p, "initializer \"" + name + "\" holds " + dataLength + " bytes but " + d + " "
                            + java.util.Arrays.toString(shape) + " needs " + need);
                }
                return new TensorEntry(name, d, shape, p, dataOffset, dataLength);
            }
            return varintTensor(name, d, shape, need, dataField, (int) dataOffset, (int) dataLength);
        }

        /** int32_data / int64_data / uint64_data are varints: decode small ones onto the heap. */
        TensorEntry varintTensor(String name, DType d, long[] shape, long need, int field, int off, int len) {
            if (need > 64L << 20 || decodedBytes + need > 256L << 20) {
                throw new FormatError(p, "initializer \"" + name + "\" stores " + need + " bytes as varints; too large to decode");
            }
            ByteBuffer out = ByteBuffer.allocate((int) need).order(ByteOrder.LITTLE_ENDIAN);
            int save = b.position();
            b.position(off);
            int stop = off + len;
            while (b.position() < stop) {
                long v = varint();
                if (!out.hasRemaining()) throw new FormatError(p, "initializer \"" + name + "\" holds more values than its shape");
                switch (d.bits()) {
                    case 8: out.put((byte) v); break;
                    case 16: out.putShort((short) v); break;
                    case 32: out.putInt((int) v); break;
                    case 64: out.putLong(v); break;
                    default: throw new FormatError(p, "initializer \"" + name + "\": unsupported typed data");
                }
            }
            b.position(save);
            if (out.hasRemaining()) throw new FormatError(p, "initializer \"" + name + "\" holds fewer values than its shape");
            out.flip();
            decoded.put(name, out);
            decodedBytes += need;
            return new TensorEntry(name, d, shape, p, off, need);
        }

        TensorEntry externalTensor(String name, DType d, long[] shape, long need, Map<String, String> ext) {
            String loc = ext.get("location");
            if (loc == null) throw new FormatError(p, "initializer \"" + name + "\" is external but names no location");
            Path dir = p.toAbsolutePath().getParent();
            Path target = dir.resolve(loc).normalize();
            if (Path.of(loc).isAbsolute() || !target.startsWith(dir)) {
                throw new FormatError(p, "initializer \"" + name + "\" external location \"" + loc + "\" leaves the model's directory");
            }
            long offset;
            long length;
            try {
                offset = Long.parseLong(ext.getOrDefault("offset", "0"));
                length = Long.parseLong(ext.getOrDefault("length", Long.toString(need)));
            } catch (NumberFormatException e) {
                throw new FormatError(p, "initializer \"" + name + "\" external offset/length is not a number");
            }
            if (length != need) {
                throw new FormatError(p, "initializer \"" + name + "\" external length " + length + " but the shape needs " + need);
            }
            if (!java.nio.file.Files.isRegularFile(target)) {
                throw new FormatError(p, "initializer \"" + name + "\" external data file \"" + loc + "\" is missing");
            }
            MappedFile ef = external.computeIfAbsent(target.toString(), k -> new MappedFile(target));
            if (offset < 0 || offset > ef.size() - length) {
                throw new FormatError(p, "initializer \"" + name + "\" external data " + offset + "+" + length + " runs past the end of " + loc);
            }
            return new TensorEntry(name, d, shape, target, offset, length);
        }
    }

    // ---------------------------------------------------------------- writing

    /** Models at or above this size keep initializer data in a side file (protobuf's 2 GB limit). */
    public static final long EXTERNAL_THRESHOLD = 2_000_000_000L;

    /**
     * Starts an ONNX file whose graph is {@code graph} plus the given initializers, streamed.
     * The ModelProto is written field by field: everything but the graph from the generated
     * classes, then the graph's header, then each initializer's header and raw bytes. Protobuf
     * readers merge fields in any order, so this is the same message as one built in memory.
     * Data goes into {@code <target>.data} (offsets 4096-aligned) when {@code external} or
     * when the model would pass {@code threshold} bytes.
     */
    public static TensorWriter writer(Path target, OnnxProto.Model.Builder model, OnnxProto.Graph graph,
                                      List<TensorSpec> tensors, boolean external, long threshold) {
        long dataBytes = 0;
        for (TensorSpec t : tensors) dataBytes += t.bytes();
        boolean ext = external || dataBytes + graph.getSerializedSize() + 4096 >= threshold;
        String dataName = target.getFileName() + ".data";
        List<byte[]> heads = new ArrayList<>();
        long graphSize = graph.getSerializedSize();
        long offset = 0;
        // Like onnx's convert_model_to_external_data, tensors under 1 KiB stay inline: shape
        // constants must be readable during shape inference.
        boolean[] outside = new boolean[tensors.size()];
        int k = 0;
        for (TensorSpec t : tensors) {
            outside[k++] = ext && t.bytes() >= 1024;
        }
        k = 0;
        for (TensorSpec t : tensors) {
            boolean ext1 = outside[k++];
            OnnxProto.Tensor.Builder tb = OnnxProto.Tensor.newBuilder().setName(t.name()).setDataType(toOnnx(t.dtype()));
            for (long d : t.shape()) tb.addDims(d);
            if (ext1) {
                offset = (offset + 4095) / 4096 * 4096;
                tb.setDataLocation(OnnxProto.Tensor.DataLocation.EXTERNAL);
                tb.addExternalData(entry("location", dataName));
                tb.addExternalData(entry("offset", Long.toString(offset)));
                tb.addExternalData(entry("length", Long.toString(t.bytes())));
                offset += t.bytes();
            }
            byte[] h = tb.build().toByteArray();
            heads.add(h);
            long tensorSize = h.length + (ext1 ? 0 : CodedOutputStream.computeTagSize(9)
                    + CodedOutputStream.computeUInt64SizeNoTag(t.bytes()) + t.bytes());
            graphSize += CodedOutputStream.computeTagSize(5) + CodedOutputStream.computeUInt64SizeNoTag(tensorSize) + tensorSize;
        }
        byte[] modelHead = model.clearGraph().build().toByteArray();
        if (!ext && modelHead.length + graphSize + 16 > Integer.MAX_VALUE) {
            throw new parallax.engine.UserError("ONNX model would pass 2 GB: write its data externally");
        }
        AtomicFile f = new AtomicFile(target);
        AtomicFile data = ext ? new AtomicFile(target.resolveSibling(dataName)) : null;
        try {
            f.write(modelHead);
            f.write(tagAndLength(7, graphSize));
            f.write(graph.toByteArray());
        } catch (RuntimeException e) {
            f.close();
            if (data != null) data.close();
            throw e;
        }
        return new TensorWriter(f, tensors, 1) {
            int i = -1;

            @Override
            public TensorSpec beginTensor() {
                TensorSpec t = super.beginTensor();
                i++;
                byte[] h = heads.get(i);
                boolean ext1 = outside[i];
                long tensorSize = h.length + (ext1 ? 0 : CodedOutputStream.computeTagSize(9)
                        + CodedOutputStream.computeUInt64SizeNoTag(t.bytes()) + t.bytes());
                file.write(tagAndLength(5, tensorSize));
                file.write(h);
                if (ext1) data.pad(4096, (byte) 0);
                else file.write(tagAndLength(9, t.bytes()));
                return t;
            }

            @Override
            protected void writeData(ByteBuffer bytes) {
                (outside[i] ? data : file).write(bytes);
            }

            @Override
            protected void finish() {
                if (data != null) data.commit();
            }

            @Override
            public void close() {
                super.close();
                if (data != null) data.close();
            }
        };
    }

    static OnnxProto.StringStringEntry entry(String k, String v) {
        return OnnxProto.StringStringEntry.newBuilder().setKey(k).setValue(v).build();
    }

    private static byte[] tagAndLength(int field, long length) {
        byte[] out = new byte[CodedOutputStream.computeTagSize(field) + CodedOutputStream.computeUInt64SizeNoTag(length)];
        CodedOutputStream c = CodedOutputStream.newInstance(out);
        try {
            c.writeTag(field, 2);
            c.writeUInt64NoTag(length);
            c.flush();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }
}
