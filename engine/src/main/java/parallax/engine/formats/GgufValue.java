package parallax.engine.formats;

import java.util.ArrayList;
import java.util.List;

/**
 * A typed GGUF metadata value (ggml docs/gguf.md, gguf_metadata_value_type). Integers
 * narrower than 64 bits are held as Integer (UINT32 as Long), 64-bit ones as Long (UINT64
 * keeps its bits), floats as Float/Double; an ARRAY holds a list of GgufValue with one
 * element type, arrays may nest. {@code count} is the stored element count: for arrays
 * too large to keep on the heap only the count is held and {@code value} is null.
 */
public record GgufValue(Type type, Object value, Type elementType, long count) {

    /** The 13 value types, by their numbers in the file. */
    public enum Type {
        UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4),
        BOOL(7, 1), STRING(8, 8), ARRAY(9, 12), UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

        final int id;
        /** Fewest bytes one value takes in the file; bounds counts before allocating. */
        final int minBytes;

        Type(int id, int minBytes) {
            this.id = id;
            this.minBytes = minBytes;
        }

        public int id() { return id; }

        static Type of(int id) {
            for (Type t : values()) if (t.id == id) return t;
            return null;
        }
    }

    public static GgufValue of(Type type, Object value) {
        if (type == Type.ARRAY) throw new IllegalArgumentException("use array()");
        return new GgufValue(type, value, null, 1);
    }

    public static GgufValue string(String s) { return of(Type.STRING, s); }

    public static GgufValue u32(long v) { return of(Type.UINT32, v); }

    public static GgufValue f32(float v) { return of(Type.FLOAT32, v); }

    public static GgufValue array(Type elementType, List<GgufValue> elements) {
        return new GgufValue(Type.ARRAY, List.copyOf(elements), elementType, elements.size());
    }

    /** An array of plain values of one type (strings, numbers). */
    public static GgufValue arrayOf(Type elementType, List<?> plain) {
        List<GgufValue> l = new ArrayList<>(plain.size());
        for (Object o : plain) l.add(of(elementType, o));
        return array(elementType, l);
    }

    @SuppressWarnings("unchecked")
    public List<GgufValue> elements() { return (List<GgufValue>) value; }

    /** The value as plain Java: numbers, strings, booleans, lists (null for a skipped array). */
    public Object plain() {
        if (type != Type.ARRAY) return value;
        if (value == null) return "[" + count + " x " + elementType + " not loaded]";
        List<Object> out = new ArrayList<>();
        for (GgufValue v : elements()) out.add(v.plain());
        return out;
    }

    public long asLong() {
        return ((Number) value).longValue();
    }
}
