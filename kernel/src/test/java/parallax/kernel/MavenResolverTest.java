package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;

/** %maven's resolver against a file:// repository the test builds: no network, no ~/.m2 written. */
class MavenResolverTest {

    @TempDir
    static Path tmp;
    static TestRepository repo;

    @BeforeAll
    static void publish() throws Exception {
        repo = new TestRepository(tmp.resolve("remote"));
        repo.publish("org.example", "greeter", "1.0",
                Map.of("org.example.greeter.Greeter", "package org.example.greeter; public class Greeter { public static String greet(String n) { return \"hello \" + n; } }"),
                List.of());
        repo.publish("org.example", "testonly", "1.0", Map.of(), List.of());
        repo.publish("org.example", "runtimeonly", "1.0", Map.of(), List.of());
        repo.publish("org.example", "app", "1.0",
                Map.of("org.example.app.App", "package org.example.app; public class App { public static String hi() { return \"app\"; } }"),
                List.of(new TestRepository.Dep("org.example", "greeter", "1.0", null),
                        new TestRepository.Dep("org.example", "runtimeonly", "1.0", "runtime"),
                        new TestRepository.Dep("org.example", "testonly", "1.0", "test")));
    }

    private static MavenResolver resolver(String name, String extraSettings) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        return new MavenResolver(TestRepository.settings(dir, dir.resolve("local"), extraSettings));
    }

    @Test
    void resolvesTransitivelyByMavensScopes() throws Exception {
        try (MavenResolver r = resolver("transitive", "")) {
            List<MavenResolver.Jar> jars = r.resolve(List.of(MavenResolver.dependency("org.example:app:1.0", "compile")),
                    List.of(MavenResolver.repository(repo.url(), 1)), false);
            List<String> names = jars.stream().map(MavenResolver.Jar::coordinates).toList();
            assertEquals(List.of("org.example:app:1.0", "org.example:greeter:1.0", "org.example:runtimeonly:1.0"), names);
            assertTrue(jars.get(0).direct());
            assertFalse(jars.get(1).direct());
            // the jars now sit in the local repository the settings named, in Maven's layout
            assertEquals(tmp.resolve("transitive/local/org/example/greeter/1.0/greeter-1.0.jar"), jars.get(1).path());
            assertTrue(Files.isRegularFile(jars.get(1).path()));
        }
    }

    @Test
    void aSecondResolutionWorksOfflineFromTheLocalRepository() throws Exception {
        try (MavenResolver r = resolver("cached", "")) {
            var dep = List.of(MavenResolver.dependency("org.example:greeter:1.0", "compile"));
            r.resolve(dep, List.of(MavenResolver.repository(repo.url(), 1)), false);
            List<MavenResolver.Jar> again = r.resolve(dep, List.of(MavenResolver.repository(repo.url(), 1)), true);
            assertEquals("org.example:greeter:1.0", again.get(0).coordinates());
        }
    }

    @Test
    void aMissingArtifactIsOneLineNamingItAndTheRepositories() throws Exception {
        try (MavenResolver r = resolver("missing", "")) {
            UserError e = assertThrows(UserError.class, () -> r.resolve(
                    List.of(MavenResolver.dependency("org.example:absent:2.0", "compile")),
                    List.of(MavenResolver.repository(repo.url(), 1)), true));
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertTrue(e.getMessage().startsWith("org.example:absent:2.0 "), e.getMessage());
            assertTrue(e.getMessage().contains("offline"), e.getMessage());
            assertTrue(e.getMessage().contains(repo.url()), e.getMessage());
        }
    }

    @Test
    void aMissingArtifactOnlineSaysNotFoundWhere() throws Exception {
        // central is mirrored to the test's repository, so nothing leaves this machine
        String mirror = "<mirrors><mirror><id>local-mirror</id><mirrorOf>*</mirrorOf><url>" + repo.url() + "</url></mirror></mirrors>";
        try (MavenResolver r = resolver("notfound", mirror)) {
            UserError e = assertThrows(UserError.class, () -> r.resolve(
                    List.of(MavenResolver.dependency("org.example:absent:2.0", "compile")), List.of(), false));
            assertTrue(e.getMessage().startsWith("org.example:absent:2.0 was not found in local-mirror (" + repo.url()), e.getMessage());
            assertTrue(e.getMessage().contains("local repository " + tmp.resolve("notfound/local")), e.getMessage());
        }
    }

    @Test
    void noNetworkIsOneLineNamingTheArtifactAndWhereItWasTried() throws Exception {
        // every repository mirrored to a loopback port where nothing listens: what "no network" looks like
        String nowhere = "<mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf><url>http://127.0.0.1:9/m2/</url></mirror></mirrors>";
        try (MavenResolver r = resolver("nonetwork", nowhere)) {
            UserError e = assertThrows(UserError.class, () -> r.resolve(
                    List.of(MavenResolver.dependency("org.example:greeter:1.0", "compile")), List.of(), false));
            assertTrue(e.getMessage().startsWith("could not download org.example:greeter:1.0 (pom) from nowhere (http://127.0.0.1:9/m2/): ")
                    || e.getMessage().startsWith("could not download org.example:greeter:1.0 from nowhere (http://127.0.0.1:9/m2/): "),
                    e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }

    @Test
    void settingsMirrorsAreUsedForCentral() throws Exception {
        String mirror = "<mirrors><mirror><id>local-mirror</id><mirrorOf>central</mirrorOf><url>" + repo.url() + "</url></mirror></mirrors>";
        try (MavenResolver r = resolver("mirrored", mirror)) {
            List<MavenResolver.Jar> jars = r.resolve(List.of(MavenResolver.dependency("org.example:greeter:1.0", "compile")), List.of(), false);
            assertEquals(1, jars.size());
        }
    }

    @Test
    void badCoordinatesRepositoriesAndSettingsAreOneLine() throws Exception {
        UserError coords = assertThrows(UserError.class, () -> MavenResolver.dependency("commons-lang3", "compile"));
        assertTrue(coords.getMessage().contains("'commons-lang3' is not a Maven coordinate"), coords.getMessage());
        UserError url = assertThrows(UserError.class, () -> MavenResolver.repository("repo.example.com/maven2", 1));
        assertTrue(url.getMessage().contains("is not a URL"), url.getMessage());
        assertEquals("inhouse", MavenResolver.repository("inhouse=https://repo.example.com/m2", 1).getId());
        Path broken = Files.createDirectories(tmp.resolve("broken")).resolve("settings.xml");
        Files.writeString(broken, "<settings><localRepository>x</localRepository>");
        UserError settings = assertThrows(UserError.class, () -> new MavenResolver(broken).settings());
        assertTrue(settings.getMessage().startsWith("cannot read Maven settings " + broken), settings.getMessage());
        assertFalse(settings.getMessage().contains("\n"));
    }

    /** The one test that reads the real local repository, offline: commons-lang3 as Maven left it there. */
    @Test
    void resolvesARealArtifactFromTheUsersLocalRepositoryOffline() {
        Path m2 = Path.of(System.getProperty("user.home"), ".m2", "repository", "org", "apache", "commons", "commons-lang3", "3.17.0");
        Assumptions.assumeTrue(Files.isRegularFile(m2.resolve("commons-lang3-3.17.0.jar")),
                "commons-lang3 3.17.0 is not in ~/.m2 (the kernel module's test scope puts it there)");
        try (MavenResolver r = new MavenResolver(tmp.resolve("no-such-settings.xml"))) {
            List<MavenResolver.Jar> jars = r.resolve(List.of(MavenResolver.dependency("org.apache.commons:commons-lang3:3.17.0", "compile")), List.of(), true);
            assertEquals("org.apache.commons:commons-lang3:3.17.0", jars.get(0).coordinates());
            assertEquals(m2.resolve("commons-lang3-3.17.0.jar"), jars.get(0).path());
        }
    }
}
