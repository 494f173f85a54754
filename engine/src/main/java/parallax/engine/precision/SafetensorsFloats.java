package parallax.engine.precision;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import parallax.engine.UserError;

/**
 * Just enough of safetensors to read the floating-point tensors of one file (REFERENCE.md,
 * "safetensors"): u64 LE header length N, N bytes of JSON, then the data buffer. The full
 * reader (and GGUF) belongs to engine.formats; this one only serves %precision cast.
 */
final class SafetensorsFloats {

    private SafetensorsFloats() {}

    static final Map<String, FloatFormat> FLOAT_DTYPES = Map.of(
            "F32", FloatFormat.FP32, "F16", FloatFormat.FP16, "BF16", FloatFormat.BF16,
            "F8_E4M3", FloatFormat.E4M3FN, "F8_E5M2", FloatFormat.E5M2,
            "F8_E4M3FNUZ", FloatFormat.E4M3FNUZ, "F8_E5M2FNUZ", FloatFormat.E5M2FNUZ);

    /** One tensor read as FP32, with the dtype it was stored in. */
    record Stored(CastAnalysis.NamedTensor tensor, String dtype) {}

    /** Reads every floating-point tensor (F64 included, narrowed to FP32) in file order. */
    static List<Stored> read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            String where = file.getFileName().toString();
            if (size < 8) throw new UserError(where + " is not a safetensors file: only " + size + " bytes");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(lenBuf, 0);
            long n = lenBuf.getLong(0);
            if (n <= 0 || n > 100_000_000 || 8 + n > size) {
                throw new UserError(where + " is not a safetensors file: header length " + n + " does not fit a " + size + "-byte file");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) n);
            ch.read(hb, 8);
            JsonObject header;
            try {
                JsonElement e = JsonParser.parseString(new String(hb.array(), StandardCharsets.UTF_8));
                if (!e.isJsonObject()) throw new IllegalStateException("not an object");
                header = e.getAsJsonObject();
            } catch (RuntimeException e) {
                throw new UserError(where + " is not a safetensors file: its header is not a JSON object");
            }
            long dataStart = 8 + n;
            long dataSize = size - dataStart;
            List<Stored> out = new ArrayList<>();
            TreeSet<String> otherDtypes = new TreeSet<>();
            for (Map.Entry<String, JsonElement> entry : header.entrySet()) {
                if (entry.getKey().equals("__metadata__")) continue;
                String name = entry.getKey();
                JsonObject info;
                String dtype;
                long[] shape;
                long begin, end;
                try {
                    info = entry.getValue().getAsJsonObject();
                    dtype = info.get("dtype").getAsString();
                    var shapeJson = info.getAsJsonArray("shape");
                    shape = new long[shapeJson.size()];
                    for (int i = 0; i < shape.length; i++) shape[i] = shapeJson.get(i).getAsLong();
                    var off = info.getAsJsonArray("data_offsets");
                    begin = off.get(0).getAsLong();
                    end = off.get(1).getAsLong();
                } catch (RuntimeException e) {
                    throw new UserError(where + ": tensor '" + name + "' has a malformed header entry");
                }
                FloatFormat f = FLOAT_DTYPES.get(dtype);
                boolean f64 = dtype.equals("F64");
                if (f == null && !f64) {
                    otherDtypes.add(dtype);
                    continue;
                }
                long count = 1;
                for (long d : shape) count = Math.multiplyExact(count, d);
                int width = f64 ? 8 : f.bytesPerValue();
                if (begin < 0 || end < begin || end > dataSize || end - begin != count * width) {
                    throw new UserError(where + ": tensor '" + name + "' has data offsets [" + begin + ", " + end
                            + "] that do not match its shape and dtype or the file size");
                }
                if (count > Integer.MAX_VALUE - 8) throw new UserError(where + ": tensor '" + name + "' has more than 2^31 values");
                float[] values = new float[(int) count];
                ByteBuffer data = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin).order(ByteOrder.LITTLE_ENDIAN);
                if (f64) {
                    for (int i = 0; i < values.length; i++) values[i] = (float) data.getDouble(8 * i);
                } else {
                    f.decode(data, values);
                }
                out.add(new Stored(new CastAnalysis.NamedTensor(name, shape, values), dtype));
            }
            if (out.isEmpty()) {
                throw new UserError(where + " has no floating-point tensors"
                        + (otherDtypes.isEmpty() ? "" : " (dtypes found: " + String.join(", ", otherDtypes) + ")"));
            }
            return out;
        } catch (NoSuchFileException e) {
            throw new UserError("no such file: " + file);
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
    }

    /** Writes a safetensors file (temp name, then rename); for tests and lessons. */
    static void write(Path file, List<CastAnalysis.NamedTensor> tensors, FloatFormat format) throws IOException {
        JsonObject header = new JsonObject();
        long offset = 0;
        String dtype = null;
        for (Map.Entry<String, FloatFormat> e : FLOAT_DTYPES.entrySet()) if (e.getValue() == format) dtype = e.getKey();
        for (CastAnalysis.NamedTensor t : tensors) {
            JsonObject info = new JsonObject();
            info.addProperty("dtype", dtype);
            var shape = new com.google.gson.JsonArray();
            for (long d : t.shape()) shape.add(d);
            info.add("shape", shape);
            var off = new com.google.gson.JsonArray();
            long len = (long) t.values().length * format.bytesPerValue();
            off.add(offset);
            off.add(offset + len);
            info.add("data_offsets", off);
            header.add(t.name(), info);
            offset += len;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer buf = ByteBuffer.allocate((int) (8 + padded + offset)).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(padded);
        buf.put(json);
        for (int i = json.length; i < padded; i++) buf.put((byte) ' ');
        for (CastAnalysis.NamedTensor t : tensors) format.encode(t.values(), buf, Rounding.NON_SATURATING);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, buf.array());
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
}
