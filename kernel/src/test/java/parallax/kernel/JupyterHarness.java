package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs Debian's Jupyter (through /usr/bin/python3) against this build of the kernel: a
 * kernelspec written under target/jupyter points at target/lib and the kernel jar, and
 * JUPYTER_PATH makes the client find it, so the tests never depend on what a user
 * installed.
 */
final class JupyterHarness {

    static final String PYTHON = "/usr/bin/python3";
    static final Path MODULE = Path.of(System.getProperty("user.dir"));
    static final Path TARGET = MODULE.resolve("target");
    static final Path ROOT = MODULE.getParent();

    private JupyterHarness() {}

    /** Writes target/jupyter/kernels/parallax/kernel.json for this build; returns target/jupyter. */
    static Path kernelspec() throws IOException {
        Path lib = TARGET.resolve("lib");
        Path jar = TARGET.resolve("parallax-kernel.jar");
        assertTrue(Files.isDirectory(lib) && Files.isRegularFile(jar),
                "the kernel is not packaged yet (run the integration tests with mvn verify)");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String template = Files.readString(ROOT.resolve("install/kernelspec/kernel.json.in"));
        String spec = template.replace("@JAVA@", java).replace("@CP@", lib + "/*:" + jar);
        // A build with libtorch's GPU natives (mvn -Pcuda) has only those: the kernel must ask for them.
        try (var files = Files.list(lib)) {
            if (files.anyMatch(f -> f.getFileName().toString().matches("pytorch-.*-gpu\\.jar")))
                spec = spec.replace("\"-cp\"", "\"-Dorg.bytedeco.javacpp.platform.extension=-gpu\", \"-cp\"");
        }
        Path dir = TARGET.resolve("jupyter/kernels/parallax");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("kernel.json"), spec);
        return TARGET.resolve("jupyter");
    }

    record Result(int exitCode, String output) {}

    /** Runs {@code python3 args...} with JUPYTER_PATH set; output goes to target/python-logs/NAME.log too. */
    static Result python(String logName, long timeoutSeconds, Map<String, String> env, String... args) throws Exception {
        Path jupyterPath = kernelspec();
        List<String> cmd = new ArrayList<>();
        cmd.add(PYTHON);
        cmd.addAll(List.of(args));
        Path logs = TARGET.resolve("python-logs");
        Files.createDirectories(logs);
        Path log = logs.resolve(logName + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("JUPYTER_PATH", jupyterPath.toString());
        pb.environment().put("PYTHONUNBUFFERED", "1");
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " did not finish in " + timeoutSeconds + " s; log: " + log
                    + "\n" + tail(Files.readString(log, StandardCharsets.UTF_8)));
        }
        return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    }

    static void assertPythonPasses(String logName, long timeoutSeconds, String... args) throws Exception {
        Result r = python(logName, timeoutSeconds, Map.of(), args);
        if (r.exitCode() != 0) fail(String.join(" ", args) + " failed (exit " + r.exitCode() + "):\n" + tail(r.output()));
    }

    static String tail(String s) {
        return s.length() <= 8000 ? s : "...\n" + s.substring(s.length() - 8000);
    }
}
