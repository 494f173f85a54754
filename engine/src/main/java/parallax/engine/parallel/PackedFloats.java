package parallax.engine.parallel;

import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * JSON form of the parameters a rank hands back: each tensor as base64 of its
 * little-endian float32 bytes (5.3 characters a value) instead of a JSON array of numbers,
 * whose tree of boxed values costs tens of bytes a value on both sides of the wire.
 */
final class PackedFloats extends TypeAdapter<Map<String, float[]>> {

    @Override
    public void write(JsonWriter out, Map<String, float[]> value) throws IOException {
        if (value == null) {
            out.nullValue();
            return;
        }
        out.beginObject();
        for (Map.Entry<String, float[]> e : value.entrySet()) {
            ByteBuffer b = ByteBuffer.allocate(4 * e.getValue().length).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(e.getValue());
            out.name(e.getKey()).value(Base64.getEncoder().encodeToString(b.array()));
        }
        out.endObject();
    }

    @Override
    public Map<String, float[]> read(JsonReader in) throws IOException {
        if (in.peek() == JsonToken.NULL) {
            in.nextNull();
            return null;
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        in.beginObject();
        while (in.hasNext()) {
            String name = in.nextName();
            ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(in.nextString())).order(ByteOrder.LITTLE_ENDIAN);
            float[] v = new float[b.remaining() / 4];
            b.asFloatBuffer().get(v);
            out.put(name, v);
        }
        in.endObject();
        return out;
    }

    /** Characters of JSON per parameter value handed back (base64 of 4 bytes). */
    static final double CHARS_PER_VALUE = 4.0 * 4 / 3;
}
