package parallax.engine.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Memory as the Linux kernel reports it (/proc): this process's peak and current RSS, the machine's available memory. */
public final class Memory {

    private Memory() {}

    /** Peak resident set size of this process in bytes (VmHWM), or -1 if unknown. */
    public static long peakRssBytes() { return statusField("VmHWM:"); }

    /** Current resident set size of this process in bytes (VmRSS), or -1 if unknown. */
    public static long rssBytes() { return statusField("VmRSS:"); }

    /** Memory the kernel says new processes can still use (MemAvailable), in bytes, or -1 if unknown. */
    public static long availableBytes() { return field(Path.of("/proc/meminfo"), "MemAvailable:"); }

    private static long statusField(String name) { return field(Path.of("/proc/self/status"), name); }

    private static long field(Path file, String name) {
        try {
            for (String line : Files.readAllLines(file)) {
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
