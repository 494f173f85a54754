package parallax.engine.formats;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The central directory of a zip archive (PKWARE APPNOTE 4.3: end of central directory,
 * zip64 locator, central headers, local headers), read over a memory map so stored
 * entries can be mapped in place. torch.save writes its tensors stored, not deflated.
 * Guards against zip bombs: entries may not overlap, and inflating is capped both by the
 * declared size and by an absolute limit.
 */
final class ZipIndex {

    record Entry(String name, int method, long compressedSize, long size, long dataOffset) {}

    private final MappedFile f;
    private final Map<String, Entry> entries;

    private ZipIndex(MappedFile f, Map<String, Entry> entries) {
        this.f = f;
        this.entries = entries;
    }

    Map<String, Entry> entries() { return entries; }

    static ZipIndex read(MappedFile f) {
        Path p = f.path();
        long size = f.size();
        if (size < 22) throw new FormatError(p, "truncated zip: no end of central directory");
        int tail = (int) Math.min(size, 22 + 65535);
        ByteBuffer t = f.map(size - tail, tail);
        int eocd = -1;
        for (int i = tail - 22; i >= 0; i--) {
            if (t.getInt(i) == 0x06054b50) {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) throw new FormatError(p, "truncated zip: no end of central directory record");
        long count = t.getShort(eocd + 10) & 0xffff;
        long cdSize = t.getInt(eocd + 12) & 0xffffffffL;
        long cdOffset = t.getInt(eocd + 16) & 0xffffffffL;
        long eocdAbs = size - tail + eocd;
        if (count == 0xffff || cdOffset == 0xffffffffL || cdSize == 0xffffffffL) {
            // zip64: the locator sits just before the EOCD record
            if (eocdAbs < 20) throw new FormatError(p, "truncated zip64 locator");
            ByteBuffer loc = f.map(eocdAbs - 20, 20);
            if (loc.getInt(0) != 0x07064b50) throw new FormatError(p, "zip64 end of central directory locator missing");
            long z = loc.getLong(8);
            ByteBuffer z64 = f.map(z, 56);
            if (z64.getInt(0) != 0x06064b50) throw new FormatError(p, "zip64 end of central directory record missing");
            count = z64.getLong(32);
            cdSize = z64.getLong(40);
            cdOffset = z64.getLong(48);
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset > size || cdSize > size - cdOffset) {
            throw new FormatError(p, "zip central directory " + cdOffset + "+" + cdSize + " lies outside the file");
        }
        if (count < 0 || count > cdSize / 46) throw new FormatError(p, "absurd zip entry count " + count);
        ByteBuffer cd = f.map(cdOffset, cdSize);
        Map<String, Entry> out = new LinkedHashMap<>();
        int pos = 0;
        for (long i = 0; i < count; i++) {
            if (pos + 46 > cd.limit() || cd.getInt(pos) != 0x02014b50) throw new FormatError(p, "corrupt zip central directory entry " + i);
            int method = cd.getShort(pos + 10) & 0xffff;
            long csize = cd.getInt(pos + 20) & 0xffffffffL;
            long usize = cd.getInt(pos + 24) & 0xffffffffL;
            int nameLen = cd.getShort(pos + 28) & 0xffff;
            int extraLen = cd.getShort(pos + 30) & 0xffff;
            int commentLen = cd.getShort(pos + 32) & 0xffff;
            long local = cd.getInt(pos + 42) & 0xffffffffL;
            if (pos + 46L + nameLen + extraLen + commentLen > cd.limit()) throw new FormatError(p, "corrupt zip central directory entry " + i);
            byte[] nb = new byte[nameLen];
            cd.get(pos + 46, nb);
            String name = new String(nb, StandardCharsets.UTF_8);
            // zip64 extra field (id 1) holds the 0xffffffff fields in order: usize, csize, local offset
            int e = pos + 46 + nameLen;
            int eEnd = e + extraLen;
            while (e + 4 <= eEnd) {
                int id = cd.getShort(e) & 0xffff;
                int len = cd.getShort(e + 2) & 0xffff;
                int q = e + 4;
                if (id == 1) {
                    if (usize == 0xffffffffL && q + 8 <= eEnd) { usize = cd.getLong(q); q += 8; }
                    if (csize == 0xffffffffL && q + 8 <= eEnd) { csize = cd.getLong(q); q += 8; }
                    if (local == 0xffffffffL && q + 8 <= eEnd) { local = cd.getLong(q); }
                }
                e += 4 + len;
            }
            pos += 46 + nameLen + extraLen + commentLen;
            if (local < 0 || local > size - 30) throw new FormatError(p, "zip entry " + name + " local header lies outside the file");
            ByteBuffer lh = f.map(local, 30);
            if (lh.getInt(0) != 0x04034b50) throw new FormatError(p, "zip entry " + name + " has no local header");
            long data = local + 30 + (lh.getShort(26) & 0xffff) + (lh.getShort(28) & 0xffff);
            if (csize < 0 || data > size || csize > size - data) {
                throw new FormatError(p, "truncated: zip entry " + name + " needs bytes " + data + ".." + (data + csize) + " of " + size);
            }
            if (method != 0 && method != 8) throw new FormatError(p, "zip entry " + name + " uses compression method " + method);
            if (method == 0 && csize != usize) throw new FormatError(p, "zip entry " + name + " is stored but its sizes differ");
            if (out.put(name, new Entry(name, method, csize, usize, data)) != null) {
                throw new FormatError(p, "duplicate zip entry " + name);
            }
        }
        List<Entry> sorted = new ArrayList<>(out.values());
        sorted.sort(Comparator.comparingLong(Entry::dataOffset));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1);
            Entry b = sorted.get(i);
            if (b.dataOffset() < a.dataOffset() + a.compressedSize()) {
                throw new FormatError(p, "zip bomb: entries " + a.name() + " and " + b.name() + " overlap");
            }
        }
        return new ZipIndex(f, out);
    }

    /** The whole of a small entry, inflated if needed, refusing more than {@code limit} bytes. */
    byte[] readAll(Entry e, long limit) {
        Path p = f.path();
        if (e.size() > limit) throw new FormatError(p, "zip entry " + e.name() + " declares " + e.size() + " bytes, over the " + limit + "-byte limit");
        ByteBuffer src = f.map(e.dataOffset(), e.compressedSize());
        if (e.method() == 0) {
            byte[] out = new byte[(int) e.size()];
            src.get(out);
            return out;
        }
        Inflater inf = new Inflater(true);
        try {
            inf.setInput(src);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            while (!inf.finished()) {
                int n = inf.inflate(buf);
                if (n == 0 && (inf.needsInput() || inf.needsDictionary())) {
                    throw new FormatError(p, "truncated deflate data in zip entry " + e.name());
                }
                out.write(buf, 0, n);
                if (out.size() > e.size() || out.size() > limit) {
                    throw new FormatError(p, "zip bomb: entry " + e.name() + " inflates past its declared " + e.size() + " bytes");
                }
            }
            if (out.size() != e.size()) throw new FormatError(p, "zip entry " + e.name() + " inflates to " + out.size() + " bytes, not " + e.size());
            return out.toByteArray();
        } catch (DataFormatException ex) {
            throw new FormatError(p, "corrupt deflate data in zip entry " + e.name());
        } finally {
            inf.end();
        }
    }
}
