package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import parallax.engine.numerics.DType;

/**
 * A PyTorch checkpoint (torch.save since 1.6: a zip holding {@code <dir>/data.pkl},
 * {@code <dir>/data/<key>} storages and {@code <dir>/byteorder}), read with
 * {@link SafeUnpickler}: tensors come out as byte ranges of the stored storage entries,
 * and no code from the file ever runs.
 */
public final class TorchCheckpoint implements ModelFile {

    static final long MAX_PICKLE = 64L << 20;

    private final MappedFile file;
    private final Map<String, Object> metadata;
    private final List<TensorEntry> tensors;

    private TorchCheckpoint(MappedFile file, Map<String, Object> metadata, List<TensorEntry> tensors) {
        this.file = file;
        this.metadata = metadata;
        this.tensors = tensors;
    }

    public static TorchCheckpoint open(Path path) {
        return MappedFile.read(path, TorchCheckpoint::read);
    }

    private static TorchCheckpoint read(MappedFile f) {
        Path p = f.path();
        if (f.size() >= 2) {
            ByteBuffer h = f.map(0, 2);
            if ((h.get(0) & 0xff) == 0x80) {
                throw new FormatError(p, "a bare pickle (the pre-1.6 torch.save format) is not read; re-save it with a current PyTorch");
            }
        }
        ZipIndex zip = ZipIndex.read(f);
        String prefix = null;
        for (String name : zip.entries().keySet()) {
            if (name.endsWith("/data.pkl") && name.indexOf('/') == name.length() - "/data.pkl".length()) {
                if (prefix != null) throw new FormatError(p, "more than one data.pkl in the archive");
                prefix = name.substring(0, name.length() - "data.pkl".length());
            }
        }
        if (prefix == null) throw new FormatError(p, "zip archive without <dir>/data.pkl: not a torch.save checkpoint");
        ZipIndex.Entry bo = zip.entries().get(prefix + "byteorder");
        if (bo != null) {
            String order = new String(zip.readAll(bo, 16), StandardCharsets.US_ASCII).trim();
            if (!order.equals("little")) throw new FormatError(p, "byte order \"" + order + "\" is not supported");
        }
        byte[] pickle = zip.readAll(zip.entries().get(prefix + "data.pkl"), MAX_PICKLE);
        Object root = new SafeUnpickler(p, prefix + "data.pkl", pickle).load();
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("archive", prefix.substring(0, prefix.length() - 1));
        List<TensorEntry> entries = new ArrayList<>();
        flatten(p, zip, prefix, "", root, entries, meta, 0);
        if (entries.isEmpty()) throw new FormatError(p, "the checkpoint holds no tensors");
        Set<String> seen = new HashSet<>();
        for (TensorEntry e : entries) if (!seen.add(e.name())) throw new FormatError(p, "duplicate tensor name \"" + e.name() + "\"");
        return new TorchCheckpoint(f, meta, List.copyOf(entries));
    }

    /** Walks nested dicts ({"model": {...}}), naming tensors by their dotted path. */
    private static void flatten(Path p, ZipIndex zip, String prefix, String path, Object o, List<TensorEntry> out,
                                Map<String, Object> meta, int depth) {
        if (depth > 16) throw new FormatError(p, "state dict nested deeper than 16 levels");
        if (o instanceof Map<?, ?> m) {
            for (var e : m.entrySet()) {
                String k = String.valueOf(e.getKey());
                flatten(p, zip, prefix, path.isEmpty() ? k : path + "." + k, e.getValue(), out, meta, depth + 1);
            }
        } else if (o instanceof SafeUnpickler.TensorRef t) {
            out.add(tensor(p, zip, prefix, path, t));
        } else if (o instanceof String || o instanceof Number || o instanceof Boolean) {
            meta.put(path, o);
        }
    }

    private static TensorEntry tensor(Path p, ZipIndex zip, String prefix, String name, SafeUnpickler.TensorRef t) {
        SafeUnpickler.Storage s = t.storage();
        ZipIndex.Entry e = zip.entries().get(prefix + "data/" + s.key());
        if (e == null) throw new FormatError(p, "tensor \"" + name + "\" refers to storage " + s.key() + ", which the archive lacks");
        if (e.method() != 0) throw new FormatError(p, "tensor \"" + name + "\" storage is compressed; torch.save stores it uncompressed");
        int es = s.dtype().bits() / 8;
        if (t.size().length != t.stride().length) throw new FormatError(p, "tensor \"" + name + "\" size and stride differ in rank");
        long expect = 1;
        for (int i = t.size().length - 1; i >= 0; i--) {
            if (t.size()[i] != 1 && t.stride()[i] != expect) {
                throw new FormatError(p, "tensor \"" + name + "\" is not contiguous (stride " + java.util.Arrays.toString(t.stride())
                        + "); save it with .contiguous()");
            }
            expect = Math.multiplyExact(expect, t.size()[i]);
        }
        long n;
        long bytes;
        try {
            n = DType.elements(t.size());
            bytes = Math.multiplyExact(n, (long) es);
        } catch (ArithmeticException ex) {
            throw new FormatError(p, "tensor \"" + name + "\" shape overflows a 64-bit size");
        }
        long start = Math.multiplyExact(t.offset(), (long) es);
        if (e.size() != Math.multiplyExact(s.numel(), (long) es) || start + bytes > e.size()) {
            throw new FormatError(p, "tensor \"" + name + "\" needs storage bytes " + start + ".." + (start + bytes)
                    + " but storage " + s.key() + " has " + e.size());
        }
        return new TensorEntry(name, s.dtype(), t.size(), p, e.dataOffset() + start, bytes);
    }

    @Override public Format format() { return Format.PYTORCH; }

    @Override public Path path() { return file.path(); }

    @Override public Map<String, Object> metadata() { return metadata; }

    @Override public List<TensorEntry> tensors() { return tensors; }

    @Override
    public ByteBuffer bytes(TensorEntry t, long from, int length) {
        return file.tensorBytes(t, from, length);
    }

    @Override
    public void close() { file.close(); }
}
