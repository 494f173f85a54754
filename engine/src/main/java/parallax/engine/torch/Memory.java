package parallax.engine.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Process memory as the kernel reports it (Linux /proc), for peak and current RSS. */
public final class Memory {

    private Memory() {}

    /** Peak resident set size of this process in bytes (VmHWM), or -1 if unknown. */
    public static long peakRssBytes() { return statusField("VmHWM:"); }

    /** Current resident set size of this process in bytes (VmRSS), or -1 if unknown. */
    public static long rssBytes() { return statusField("VmRSS:"); }

    private static long statusField(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(name)) {
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024L;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }
}
