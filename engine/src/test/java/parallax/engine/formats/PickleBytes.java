package parallax.engine.formats;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/** Hand-assembled pickles and torch-style zips for tests (what torch.save would write, or worse). */
final class PickleBytes {

    final ByteArrayOutputStream b = new ByteArrayOutputStream();

    PickleBytes op(int... bytes) {
        for (int x : bytes) b.write(x);
        return this;
    }

    PickleBytes proto() { return op(0x80, 2); }

    PickleBytes global(String module, String name) {
        op('c');
        byte[] s = (module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8);
        b.write(s, 0, s.length);
        return this;
    }

    PickleBytes str(String s) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        op('X', u.length & 0xff, (u.length >> 8) & 0xff, 0, 0);
        b.write(u, 0, u.length);
        return this;
    }

    PickleBytes int1(int v) { return op('K', v); }

    PickleBytes intN(int v) { return op('J', v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24)); }

    byte[] bytes() { return b.toByteArray(); }

    /** {name: tensor} with one F32 storage "0" of numel elements, tensor [rows, cols] at offset 0. */
    static PickleBytes stateDict(String name, int rows, int cols, int numel, int[] stride) {
        PickleBytes p = new PickleBytes().proto();
        p.global("collections", "OrderedDict").op(')', 'R');             // OrderedDict()
        p.str(name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.op('(');                                                         // args
        p.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").intN(numel).op('t', 'Q');
        p.int1(0);                                                         // storage offset
        p.int1(rows).int1(cols).op(0x86);                                  // size
        p.int1(stride[0]).int1(stride[1]).op(0x86);                        // stride
        p.op(0x89);                                                        // requires_grad False
        p.global("collections", "OrderedDict").op(')', 'R');             // backward hooks
        p.op('t', 'R');                                                    // _rebuild_tensor_v2(*args)
        p.op('s', '.');                                                    // dict[name] = tensor; STOP
        return p;
    }

    /** A torch.save-style zip: archive/data.pkl, archive/byteorder, archive/data/KEY, all stored. */
    static void zip(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        entries.put("archive/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
        storages.forEach((k, v) -> entries.put("archive/data/" + k, v));
        zipEntries(file, entries, ZipEntry.STORED);
    }

    static void zipEntries(Path file, Map<String, byte[]> entries, int method) throws IOException {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            for (var e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(method);
                if (method == ZipEntry.STORED) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    ze.setSize(e.getValue().length);
                    ze.setCompressedSize(e.getValue().length);
                    ze.setCrc(crc.getValue());
                }
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
    }
}
