package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * At least 40 crafted broken files per format, converted in a JVM with -Xmx256m: each must
 * give exactly one line naming the file and the problem, and no destination (nor a
 * temporary file) may be left behind.
 */
class BadInputTest {

    @TempDir
    Path dir;

    @Test
    void everyBrokenFileGivesOneLineAndLeavesNothing() throws Exception {
        Path in = Files.createDirectories(dir.resolve("in"));
        Path out = Files.createDirectories(dir.resolve("out"));
        BrokenFiles.writeAll(in);
        Map<String, Integer> perFormat = new LinkedHashMap<>();
        try (Stream<Path> s = Files.walk(in)) {
            s.filter(Files::isRegularFile).filter(p -> !p.toString().endsWith(".data"))
                    .forEach(p -> perFormat.merge(p.getParent().getFileName().toString(), 1, Integer::sum));
        }
        for (String f : List.of("safetensors", "gguf", "onnx", "pytorch")) {
            assertTrue(perFormat.getOrDefault(f, 0) >= 40, f + ": " + perFormat.get(f) + " broken files");
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                BadInputProbe.class.getName(), in.toString(), out.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        List<String> problems = new ArrayList<>();
        int files = 0;
        long heap = 0;
        Map<String, String> lines = new LinkedHashMap<>();
        for (String line : output.split("\n")) {
            String[] f = line.split("\t", 3);
            if (f[0].equals("DONE")) {
                files = Integer.parseInt(f[1]);
                heap = Long.parseLong(f[2].trim());
                continue;
            }
            if (f.length < 2) {
                problems.add("stray output: " + line);
                continue;
            }
            if (lines.put(f[1], line) != null) problems.add("two lines for " + f[1]);
            if (!f[0].equals("ERR")) {
                problems.add(line);
            } else if (!f[2].contains(Path.of(f[1]).getFileName().toString())) {
                problems.add("message does not name the file: " + line);
            } else if (f[2].contains("\\n") || f[2].isBlank()) {
                problems.add("not one line: " + line);
            }
        }
        assertTrue(heap <= 256L << 20, "probe ran with -Xmx256m: " + heap);
        assertEquals(files, lines.size(), output);
        assertTrue(problems.isEmpty(), String.join("\n", problems));
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of(), s.toList(), "no destination or temporary file left behind");
        }
        // keep a readable record of what each file produced (useful when a message regresses)
        Files.writeString(Path.of("target", "bad-input-messages.txt"), output);
        assertFalse(output.contains("pwned"));
    }
}
