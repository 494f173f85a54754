package parallax.engine.formats;

import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import parallax.engine.DidYouMean;
import parallax.engine.numerics.DType;

/**
 * safetensors (huggingface/safetensors): u64 little-endian header length N, N bytes of
 * UTF-8 JSON mapping names to {dtype, shape, data_offsets} plus an optional
 * {@code __metadata__} string map, then the data buffer; offsets are relative to the
 * buffer, contiguous and exactly dtype size x elements long.
 */
public final class Safetensors implements ModelFile {

    /** The reference implementation refuses headers above 100 MB. */
    static final long MAX_HEADER = 100_000_000L;

    private final MappedFile file;
    private final Map<String, Object> metadata;
    private final List<TensorEntry> tensors;
    private final long headerLength;

    private Safetensors(MappedFile file, Map<String, Object> metadata, List<TensorEntry> tensors, long headerLength) {
        this.file = file;
        this.metadata = metadata;
        this.tensors = tensors;
        this.headerLength = headerLength;
    }

    public static Safetensors open(Path path) {
        return MappedFile.read(path, Safetensors::read);
    }

    /** Whether the first bytes look like a safetensors header. */
    static boolean sniff(ByteBuffer head, long fileSize) {
        if (head.remaining() < 9) return false;
        long n = head.getLong(0);
        return n > 0 && n <= fileSize - 8 && (head.get(8) == '{' || head.get(8) == ' ');
    }

    private static Safetensors read(MappedFile f) {
        Path p = f.path();
        if (f.size() < 8) throw new FormatError(p, "truncated: " + f.size() + " bytes, shorter than the 8-byte header length");
        long n = f.map(0, 8).getLong(0);
        if (n < 0) throw new FormatError(p, "header length " + Long.toUnsignedString(n) + " is >= 2^63");
        if (n > MAX_HEADER) throw new FormatError(p, "header length " + n + " exceeds the 100,000,000-byte limit");
        if (n > f.size() - 8) {
            throw new FormatError(p, "header length " + n + " runs past the end of the file (" + f.size() + " bytes)");
        }
        if (n < 2) throw new FormatError(p, "header length " + n + " is too short for a JSON object");
        ByteBuffer header = f.map(8, n);
        if (header.get(0) != '{') throw new FormatError(p, "header is not a JSON object (it starts with "
                + describe(header.get(0)) + ")");
        long dataStart = 8 + n;
        long dataSize = f.size() - dataStart;
        Map<String, Object> meta = new LinkedHashMap<>();
        List<Raw> raws = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        try (JsonReader r = new JsonReader(new InputStreamReader(new ByteBufferStream(header),
                StandardCharsets.UTF_8.newDecoder()))) {
            r.setLenient(false);
            r.beginObject();
            while (r.hasNext()) {
                String name = r.nextName();
                if (!seen.add(name)) throw new FormatError(p, "duplicate tensor name \"" + name + "\"");
                if (seen.size() > 1_000_000) throw new FormatError(p, "more than 1,000,000 tensors in the header");
                if (name.equals("__metadata__")) {
                    if (r.peek() != JsonToken.BEGIN_OBJECT) throw new FormatError(p, "__metadata__ is not a JSON object");
                    r.beginObject();
                    while (r.hasNext()) {
                        String k = r.nextName();
                        if (r.peek() != JsonToken.STRING) {
                            throw new FormatError(p, "__metadata__ value of \"" + k + "\" is not a string");
                        }
                        meta.put(k, r.nextString());
                    }
                    r.endObject();
                } else {
                    raws.add(readEntry(p, r, name));
                }
            }
            r.endObject();
            boolean end;
            try {
                end = r.peek() == JsonToken.END_DOCUMENT;
            } catch (IOException e) {
                end = false;
            }
            if (!end) throw new FormatError(p, "bytes after the header's JSON object");
        } catch (FormatError e) {
            throw e;
        } catch (IOException | IllegalStateException | NumberFormatException e) {
            throw new FormatError(p, "header is not valid JSON: " + firstLine(e.getMessage()));
        }
        // Offsets must tile the buffer: sorted by begin, each starts where the last ended.
        List<Raw> sorted = new ArrayList<>(raws);
        sorted.sort(Comparator.comparingLong((Raw x) -> x.begin).thenComparingLong(x -> x.end));
        long expect = 0;
        for (Raw x : sorted) {
            if (x.begin < expect) {
                throw new FormatError(p, "tensor \"" + x.name + "\" data_offsets [" + x.begin + ", " + x.end
                        + "] overlap the previous tensor (which ends at " + expect + ")");
            }
            if (x.begin > expect) {
                throw new FormatError(p, "gap before tensor \"" + x.name + "\": data_offsets start at " + x.begin
                        + " but the previous tensor ends at " + expect);
            }
            expect = x.end;
        }
        if (expect > dataSize) {
            throw new FormatError(p, "truncated: tensors need " + expect + " data bytes but the file holds " + dataSize);
        }
        if (expect < dataSize) {
            throw new FormatError(p, (dataSize - expect) + " bytes after the last tensor are not covered by the header");
        }
        List<TensorEntry> entries = new ArrayList<>();
        for (Raw x : raws) {
            entries.add(new TensorEntry(x.name, x.dtype, x.shape, p, dataStart + x.begin, x.end - x.begin));
        }
        return new Safetensors(f, meta, List.copyOf(entries), n);
    }

    private record Raw(String name, DType dtype, long[] shape, long begin, long end) {}

    private static Raw readEntry(Path p, JsonReader r, String name) throws IOException {
        if (r.peek() != JsonToken.BEGIN_OBJECT) throw new FormatError(p, "tensor \"" + name + "\" is not a JSON object");
        String dtype = null;
        long[] shape = null;
        long[] offsets = null;
        r.beginObject();
        while (r.hasNext()) {
            String k = r.nextName();
            switch (k) {
                case "dtype":
                    if (r.peek() != JsonToken.STRING) throw new FormatError(p, "tensor \"" + name + "\": dtype is not a string");
                    dtype = r.nextString();
                    break;
                case "shape":
                    shape = longs(p, r, name, "shape");
                    break;
                case "data_offsets":
                    offsets = longs(p, r, name, "data_offsets");
                    break;
                default:
                    r.skipValue();
            }
        }
        r.endObject();
        if (dtype == null) throw new FormatError(p, "tensor \"" + name + "\" has no dtype");
        if (shape == null) throw new FormatError(p, "tensor \"" + name + "\" has no shape");
        if (offsets == null) throw new FormatError(p, "tensor \"" + name + "\" has no data_offsets");
        String dt = dtype;
        DType d = DType.parse(dtype).filter(DType::inSafetensors).orElseThrow(() -> new FormatError(p,
                "tensor \"" + name + "\": unknown dtype \"" + dt + "\"." + DidYouMean.hint(dt,
                        DType.names().stream().filter(x -> DType.valueOf(x).inSafetensors()).toList())));
        if (offsets.length != 2) throw new FormatError(p, "tensor \"" + name + "\": data_offsets must be [begin, end]");
        if (offsets[1] < offsets[0]) {
            throw new FormatError(p, "tensor \"" + name + "\": data_offsets end " + offsets[1] + " is before begin " + offsets[0]);
        }
        long need;
        try {
            need = d.bytesFor(DType.elements(shape));
        } catch (ArithmeticException e) {
            throw new FormatError(p, "tensor \"" + name + "\": shape " + java.util.Arrays.toString(shape) + " overflows a 64-bit size");
        } catch (IllegalArgumentException e) {
            throw new FormatError(p, "tensor \"" + name + "\": " + e.getMessage());
        }
        if (offsets[1] - offsets[0] != need) {
            throw new FormatError(p, "tensor \"" + name + "\": data_offsets span " + (offsets[1] - offsets[0])
                    + " bytes but " + d + " " + java.util.Arrays.toString(shape) + " needs " + need);
        }
        return new Raw(name, d, shape, offsets[0], offsets[1]);
    }

    private static long[] longs(Path p, JsonReader r, String name, String what) throws IOException {
        if (r.peek() != JsonToken.BEGIN_ARRAY) throw new FormatError(p, "tensor \"" + name + "\": " + what + " is not an array");
        List<Long> out = new ArrayList<>();
        r.beginArray();
        while (r.hasNext()) {
            if (r.peek() != JsonToken.NUMBER) throw new FormatError(p, "tensor \"" + name + "\": " + what + " holds a non-number");
            String s = r.nextString();
            long v;
            try {
                v = Long.parseLong(s);
            } catch (NumberFormatException e) {
                throw new FormatError(p, "tensor \"" + name + "\": " + what + " value " + s + " is not a 64-bit non-negative integer");
            }
            if (v < 0) throw new FormatError(p, "tensor \"" + name + "\": " + what + " value " + v + " is negative");
            if (out.size() > 1024) throw new FormatError(p, "tensor \"" + name + "\": " + what + " has more than 1024 entries");
            out.add(v);
        }
        r.endArray();
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    private static String describe(byte b) {
        return b >= 32 && b < 127 ? "'" + (char) b + "'" : String.format("byte 0x%02x", b & 0xff);
    }

    static String firstLine(String s) {
        if (s == null) return "unreadable";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    @Override public Format format() { return Format.SAFETENSORS; }

    @Override public Path path() { return file.path(); }

    @Override public Map<String, Object> metadata() { return metadata; }

    @Override public List<TensorEntry> tensors() { return tensors; }

    public long headerLength() { return headerLength; }

    @Override
    public ByteBuffer bytes(TensorEntry t, long from, int length) {
        return file.tensorBytes(t, from, length);
    }

    @Override
    public void close() { file.close(); }

    // ---------------------------------------------------------------- writing

    /** The header JSON, padded with spaces to a multiple of 8 bytes as the reference writer does. */
    static byte[] header(Map<String, String> metadata, List<TensorSpec> tensors) {
        StringWriter sw = new StringWriter();
        try (JsonWriter w = new JsonWriter(sw)) {
            w.setHtmlSafe(false);
            w.beginObject();
            if (metadata != null && !metadata.isEmpty()) {
                w.name("__metadata__").beginObject();
                for (var e : metadata.entrySet()) w.name(e.getKey()).value(e.getValue());
                w.endObject();
            }
            long offset = 0;
            Set<String> names = new HashSet<>();
            for (TensorSpec t : tensors) {
                if (!t.dtype().inSafetensors()) {
                    throw new parallax.engine.UserError("safetensors cannot store " + t.dtype() + " (tensor " + t.name() + ")");
                }
                if (!names.add(t.name()) || t.name().equals("__metadata__")) {
                    throw new parallax.engine.UserError("duplicate or reserved tensor name " + t.name());
                }
                long b = t.bytes();
                w.name(t.name()).beginObject();
                w.name("dtype").value(t.dtype().name());
                w.name("shape").beginArray();
                for (long d : t.shape()) w.value(d);
                w.endArray();
                w.name("data_offsets").beginArray().value(offset).value(offset + b).endArray();
                w.endObject();
                offset += b;
            }
            w.endObject();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        byte[] json = sw.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        java.util.Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** Starts writing a safetensors file; tensors follow in the given order. */
    public static TensorWriter writer(Path target, Map<String, String> metadata, List<TensorSpec> tensors) {
        byte[] h = header(metadata, tensors);
        AtomicFile f = new AtomicFile(target);
        try {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, h.length);
            f.write(len);
            f.write(h);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
        return new TensorWriter(f, tensors, 1) {};
    }
}
