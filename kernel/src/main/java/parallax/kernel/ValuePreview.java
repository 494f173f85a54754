package parallax.kernel;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.RandomAccess;

/**
 * Java arrays and the JDK's collections as compact text: {@code int[5] {1, 2, 3, 4, 5}}
 * instead of {@code [I@1b2c3d}; nested arrays inside; past 20 elements the first 10 and
 * the last 3 with the count of those left out. A collection class that writes its own
 * {@code toString} keeps it.
 */
final class ValuePreview {

    /** Up to this many elements are all shown; longer ones show the head and the tail. */
    static final int ALL_UP_TO = 20;
    static final int HEAD = 10;
    static final int TAIL = 3;
    /** An element's own text is cut after this many characters. */
    static final int ELEMENT_CHARS = 200;

    private ValuePreview() {}

    /** True for the values this class previews: arrays, and JDK collections and maps. */
    static boolean handles(Object value) {
        if (value == null) return false;
        if (value.getClass().isArray()) return true;
        if (value instanceof Collection<?> || value instanceof Map<?, ?>) return jdkToString(value);
        return false;
    }

    /** Whether the value's toString is the JDK's (so ours says the same, only shorter). */
    private static boolean jdkToString(Object value) {
        try {
            Class<?> declaring = value.getClass().getMethod("toString").getDeclaringClass();
            return declaring.getName().startsWith("java.");
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    static String text(Object value) {
        return text(value, 0);
    }

    /** Nesting deeper than this prints the element's own toString (which also stops a list that contains itself). */
    static final int MAX_DEPTH = 4;

    private static String text(Object value, int depth) {
        StringBuilder sb = new StringBuilder();
        if (value.getClass().isArray()) {
            sb.append(arrayType(value)).append(' ');
            arrayBody(sb, value, depth);
        } else if (value instanceof Map<?, ?> m) {
            if (m.size() > ALL_UP_TO) sb.append(value.getClass().getSimpleName()).append(" (").append(String.format("%,d", m.size())).append(" entries) ");
            elements(sb, m.entrySet(), m.size(), '{', '}', true, depth);
        } else {
            Collection<?> c = (Collection<?>) value;
            if (c.size() > ALL_UP_TO) sb.append(value.getClass().getSimpleName()).append(" (").append(String.format("%,d", c.size())).append(" elements) ");
            elements(sb, c, c.size(), '[', ']', false, depth);
        }
        return sb.toString();
    }

    /** {@code int[3]}, {@code double[2][4]}, {@code String[10]}: the element type and each length. */
    static String arrayType(Object array) {
        Class<?> component = array.getClass();
        StringBuilder dims = new StringBuilder();
        Object level = array;
        while (component.isArray()) {
            int len = level == null ? 0 : Array.getLength(level);
            dims.append('[').append(level == null ? "" : String.valueOf(len)).append(']');
            level = level != null && len > 0 && component.getComponentType().isArray() ? Array.get(level, 0) : null;
            component = component.getComponentType();
        }
        return component.getSimpleName() + dims;
    }

    private static void arrayBody(StringBuilder sb, Object array, int depth) {
        int n = Array.getLength(array);
        List<Object> shown = new ArrayList<>();
        for (int i : indices(n)) shown.add(i < 0 ? null : Array.get(array, i));
        sb.append('{');
        int[] idx = indices(n);
        for (int k = 0; k < idx.length; k++) {
            if (k > 0) sb.append(", ");
            if (idx[k] < 0) {
                sb.append("... ").append(String.format("%,d", n - HEAD - TAIL)).append(" more ...");
                continue;
            }
            Object e = shown.get(k);
            if (e != null && e.getClass().isArray() && depth < MAX_DEPTH) arrayBody(sb, e, depth + 1);
            else sb.append(element(e));
        }
        sb.append('}');
    }

    /** The indices shown of n elements; -1 marks the gap. */
    private static int[] indices(int n) {
        if (n <= ALL_UP_TO) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) all[i] = i;
            return all;
        }
        int[] out = new int[HEAD + 1 + TAIL];
        for (int i = 0; i < HEAD; i++) out[i] = i;
        out[HEAD] = -1;
        for (int i = 0; i < TAIL; i++) out[HEAD + 1 + i] = n - TAIL + i;
        return out;
    }

    private static void elements(StringBuilder sb, Iterable<?> items, int n, char open, char close, boolean entries, int depth) {
        sb.append(open);
        if (items instanceof List<?> list && list instanceof RandomAccess) {
            int[] idx = indices(n);
            for (int k = 0; k < idx.length; k++) {
                if (k > 0) sb.append(", ");
                if (idx[k] < 0) sb.append("... ").append(String.format("%,d", n - HEAD - TAIL)).append(" more ...");
                else sb.append(nested(list.get(idx[k]), depth));
            }
        } else {
            // No random access: walk once, keeping the head and a ring of the last few.
            List<Object> head = new ArrayList<>();
            Object[] tail = new Object[TAIL];
            int seen = 0;
            for (Iterator<?> it = items.iterator(); it.hasNext(); seen++) {
                Object e = it.next();
                if (n <= ALL_UP_TO || seen < HEAD) head.add(e);
                else tail[seen % TAIL] = e;
            }
            for (int k = 0; k < head.size(); k++) {
                if (k > 0) sb.append(", ");
                sb.append(entries ? entry(head.get(k), depth) : nested(head.get(k), depth));
            }
            if (n > ALL_UP_TO) {
                sb.append(", ... ").append(String.format("%,d", n - HEAD - TAIL)).append(" more ...");
                for (int k = seen - TAIL; k < seen; k++) {
                    Object e = tail[k % TAIL];
                    sb.append(", ").append(entries ? entry(e, depth) : nested(e, depth));
                }
            }
        }
        sb.append(close);
    }

    private static String entry(Object e, int depth) {
        Map.Entry<?, ?> me = (Map.Entry<?, ?>) e;
        return nested(me.getKey(), depth) + "=" + nested(me.getValue(), depth);
    }

    private static String nested(Object e, int depth) {
        if (depth >= MAX_DEPTH) return element(e);
        if (e != null && e.getClass().isArray()) {
            StringBuilder sb = new StringBuilder();
            arrayBody(sb, e, depth + 1);
            return sb.toString();
        }
        if (handles(e)) return text(e, depth + 1);
        return element(e);
    }

    private static String element(Object e) {
        String s = String.valueOf(e);
        return s.length() <= ELEMENT_CHARS ? s : s.substring(0, ELEMENT_CHARS) + "…";
    }
}
