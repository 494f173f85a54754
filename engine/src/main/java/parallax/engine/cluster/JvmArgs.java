package parallax.engine.cluster;

import java.util.List;
import java.util.Locale;

/** Facts read from a JVM command line. */
final class JvmArgs {

    private JvmArgs() {}

    /** The heap limit the last {@code -Xmx} sets (the JVM takes the last), or -1 when none does. */
    static long maxHeapBytes(List<String> args) {
        long heap = -1;
        for (String a : args) if (a.startsWith("-Xmx")) heap = size(a.substring(4));
        return heap;
    }

    /** A JVM size such as 512m, 2g, 1048576k or 1073741824 in bytes. */
    static long size(String s) {
        String v = s.trim().toLowerCase(Locale.ROOT);
        long unit = 1;
        char last = v.isEmpty() ? ' ' : v.charAt(v.length() - 1);
        switch (last) {
            case 'k' -> unit = 1L << 10;
            case 'm' -> unit = 1L << 20;
            case 'g' -> unit = 1L << 30;
            case 't' -> unit = 1L << 40;
            default -> { }
        }
        String digits = unit == 1 ? v : v.substring(0, v.length() - 1);
        try {
            return Long.parseLong(digits) * unit;
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
