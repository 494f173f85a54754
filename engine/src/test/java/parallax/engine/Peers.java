package parallax.engine;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The outside programs the cross-checks run (Debian's PyTorch, ONNX, NumPy, OpenSSH). Where
 * one is missing, a test does not pass quietly without its check: under
 * {@code PARALLAX_REQUIRE_PEERS=1}, which install/test.sh (and so CI) sets after installing
 * every peer, it fails; elsewhere it is skipped with a line naming what is missing and the
 * package that provides it.
 */
public final class Peers {

    public static final Path PYTHON = Path.of("/usr/bin/python3");

    private Peers() {}

    /** Whether the run promises every peer (install/test.sh installs them). */
    public static boolean required() { return "1".equals(System.getenv("PARALLAX_REQUIRE_PEERS")); }

    /** Stops the test unless Debian's /usr/bin/python3 imports {@code module} (from {@code debianPackage}). */
    public static void python(String module, String debianPackage) {
        if (!hasPythonModule(module)) unavailable("Python module " + module + " (Debian package " + debianPackage + ") at " + PYTHON);
    }

    /** Stops the test unless {@code program} is executable (from {@code debianPackage}). */
    public static void executable(Path program, String debianPackage) {
        if (!Files.isExecutable(program)) unavailable(program + " (Debian package " + debianPackage + ")");
    }

    /** The peer the test needs cannot run here: a failure where peers are required, else a skip saying why. */
    public static void unavailable(String what) {
        if (required()) fail(what + " is not available, but PARALLAX_REQUIRE_PEERS=1 (install/test.sh installs every peer): "
                + "the cross-check must run");
        Assumptions.abort("cross-check skipped: " + what + " is not available (install/test.sh installs it)");
    }

    static boolean hasPythonModule(String module) {
        if (!Files.isExecutable(PYTHON)) return false;
        try {
            Process p = new ProcessBuilder(PYTHON.toString(), "-c", "import " + module).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
