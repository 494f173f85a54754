package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The install scripts' checks: a wrong Java version or a JDK without jdk.jshell stops the
 * set-up with one clear line, before anything is built or installed.
 */
class InstallChecksIT {

    @TempDir
    Path tmp;

    private Path fakeJdk(String name, String specVersion, boolean withJshell) throws Exception {
        Path bin = tmp.resolve(name).resolve("bin");
        Files.createDirectories(bin);
        String java = "#!/bin/sh\n"
                + "case \"$1\" in\n"
                + "  --list-modules) echo java.base@" + specVersion + (withJshell ? "; echo jdk.jshell@" + specVersion : "") + " ;;\n"
                + "  *) echo '    java.specification.version = " + specVersion + "' >&2 ;;\n"
                + "esac\n";
        for (String tool : List.of("java", "javac")) {
            Path f = bin.resolve(tool);
            Files.writeString(f, java);
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return bin.getParent();
    }

    private String[] checkJava(Path javaHome) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", "source install/common.sh && check_java && echo OK")
                .directory(JupyterHarness.ROOT.toFile());
        pb.environment().put("JAVA_HOME", javaHome.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new String[] {String.valueOf(p.exitValue()), out};
    }

    @Test
    void oldJavaIsOneClearLine() throws Exception {
        String[] r = checkJava(fakeJdk("jdk11", "11", true));
        assertEquals("1", r[0]);
        assertEquals(1, r[1].lines().count(), r[1]);
        assertTrue(r[1].contains("Java 11") && r[1].contains("needs Java 17 or newer"), r[1]);
    }

    @Test
    void jdkWithoutJShellIsOneClearLine() throws Exception {
        String[] r = checkJava(fakeJdk("jre17", "17", false));
        assertEquals("1", r[0]);
        assertEquals(1, r[1].lines().count(), r[1]);
        assertTrue(r[1].contains("lacks the jdk.jshell module"), r[1]);
    }

    @Test
    void theRealJdkPasses() throws Exception {
        String[] r = checkJava(Path.of(System.getProperty("java.home")));
        assertEquals("0", r[0], r[1]);
        assertTrue(r[1].endsWith("OK"));
    }

    /** Without a GPU, install/gpu-check.sh says so in one line and exits 2, before building anything. */
    @Test
    void gpuCheckWithoutAGpuIsOneLine() throws Exception {
        boolean gpu = new ProcessBuilder("sh", "-c", "nvidia-smi -L").start().waitFor() == 0;
        org.junit.jupiter.api.Assumptions.assumeFalse(gpu, "this machine has a GPU: run install/gpu-check.sh itself");
        ProcessBuilder pb = new ProcessBuilder("bash", "install/gpu-check.sh").directory(JupyterHarness.ROOT.toFile());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue(), out);
        assertEquals(1, out.lines().count(), out);
        assertTrue(out.contains("no GPU on this machine"), out);
    }
}
