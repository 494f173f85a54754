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
}
