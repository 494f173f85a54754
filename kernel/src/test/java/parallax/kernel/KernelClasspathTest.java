package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelClasspathTest {

    @TempDir
    Path tmp;

    private Path jar(String group, String artifact, String version) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(artifact + "-" + version));
        Path jar = dir.resolve(artifact + "-" + version + ".jar");
        TestRepository.writeJar(jar, group, artifact, version, TestRepository.compile(Map.of(), dir.resolve("c")));
        return jar;
    }

    private static KernelClasspath.Candidate candidate(Path p, String g, String a, String v) {
        return new KernelClasspath.Candidate(p, new KernelClasspath.Coordinates(g, a, v));
    }

    @Test
    void anotherVersionOfAKernelLibraryIsRefusedWithBothVersions() throws Exception {
        Path kernelPicocli = jar("info.picocli", "picocli", "4.7.7");
        List<List<Path>> sunk = new ArrayList<>();
        KernelClasspath cp = new KernelClasspath(List.of(kernelPicocli), sunk::add);
        Path old = jar("info.picocli", "picocli", "4.6.3");
        Path same = jar("info.picocli", "picocli", "4.7.7");
        Path fresh = jar("org.example", "greeter", "1.0");
        KernelClasspath.Outcome o = cp.add(List.of(candidate(old, "info.picocli", "picocli", "4.6.3"),
                candidate(same, "info.picocli", "picocli", "4.7.7"), candidate(fresh, "org.example", "greeter", "1.0")), "%maven");
        assertEquals(1, o.conflicts().size());
        String line = o.conflicts().get(0);
        assertTrue(line.contains("4.7.7") && line.contains("4.6.3") && line.startsWith("info.picocli:picocli:"), line);
        assertEquals(1, o.present().size());
        assertEquals(List.of(fresh), o.added().stream().map(KernelClasspath.Entry::path).toList());
        assertEquals(List.of(List.of(fresh)), sunk, "only the new jar reaches JShell and the ranks");
    }

    @Test
    void aKernelJarIsKnownByItsPomPropertiesOrElseByItsFileName() throws Exception {
        assertEquals(new KernelClasspath.Coordinates("info.picocli", "picocli", "4.7.7"),
                KernelClasspath.identify(jar("info.picocli", "picocli", "4.7.7")));
        Path bare = tmp.resolve("protobuf-java-3.25.5.jar");
        TestRepository.writeJar(bare, null, null, null, tmp);
        assertEquals(new KernelClasspath.Coordinates(null, "protobuf-java", "3.25.5"), KernelClasspath.identify(bare));
        // a jar named only by its file name still conflicts with a Maven artifact of the same name
        KernelClasspath cp = new KernelClasspath(List.of(bare), p -> {});
        var o = cp.add(List.of(candidate(jar("com.google.protobuf", "protobuf-java", "4.28.0"), "com.google.protobuf", "protobuf-java", "4.28.0")), "%maven");
        assertEquals(1, o.conflicts().size(), o.toString());
        assertTrue(o.conflicts().get(0).contains("3.25.5") && o.conflicts().get(0).contains("4.28.0"));
    }

    @Test
    void aSecondVersionOfSomethingAddedEarlierIsRefusedAndTheSameIsSkipped() throws Exception {
        List<List<Path>> sunk = new ArrayList<>();
        KernelClasspath cp = new KernelClasspath(List.of(), sunk::add);
        Path v1 = jar("org.example", "greeter", "1.0");
        cp.add(List.of(candidate(v1, "org.example", "greeter", "1.0")), "%maven");
        var again = cp.add(List.of(candidate(v1, "org.example", "greeter", "1.0")), "%jars");
        assertEquals(1, again.present().size());
        var other = cp.add(List.of(candidate(jar("org.example", "greeter", "2.0"), "org.example", "greeter", "2.0")), "%maven");
        assertEquals(1, other.conflicts().size());
        assertTrue(other.conflicts().get(0).contains("1.0 was added earlier (%maven)") && other.conflicts().get(0).contains("2.0"),
                other.conflicts().get(0));
        assertEquals(1, sunk.size());
        assertEquals(1, cp.added().size());
        assertEquals(List.of("added org.example:greeter:1.0 (greeter-1.0.jar)"),
                KernelClasspath.describe(new KernelClasspath.Outcome(cp.added(), List.of(), List.of())));
    }

    @Test
    void jarsExpandsGlobsAndRejectsWhatIsNotAJar() throws Exception {
        Path lib = Files.createDirectories(tmp.resolve("lib/sub"));
        Path a = jar("g", "a", "1");
        Path b = jar("g", "b", "1");
        Files.copy(a, tmp.resolve("lib/a-1.jar"));
        Files.copy(b, lib.resolve("b-1.jar"));
        Files.writeString(tmp.resolve("lib/notes.txt"), "x");
        assertEquals(List.of(tmp.resolve("lib/a-1.jar")), JarsCommand.expand("lib/*.jar", tmp));
        assertEquals(List.of(tmp.resolve("lib/a-1.jar"), lib.resolve("b-1.jar")), JarsCommand.expand("lib/**.jar", tmp));
        assertEquals(List.of(tmp.resolve("lib")), JarsCommand.expand("lib", tmp));
        var none = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class, () -> JarsCommand.expand("lib/*.war", tmp));
        assertTrue(none.getMessage().startsWith("no file matches 'lib/*.war'"), none.getMessage());
        var text = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class, () -> JarsCommand.expand("lib/notes.txt", tmp));
        assertTrue(text.getMessage().endsWith("is not a jar (it cannot be read as a zip file)"), text.getMessage());
    }

    @Test
    void loadFromPomReadsADependenciesBlock() {
        var pom = LoadFromPomCommand.parse("""
                <properties><lang.version>3.17.0</lang.version></properties>
                <dependencies>
                  <dependency><groupId>org.apache.commons</groupId><artifactId>commons-lang3</artifactId><version>${lang.version}</version></dependency>
                  <dependency><groupId>org.junit.jupiter</groupId><artifactId>junit-jupiter</artifactId><version>5.11.4</version><scope>test</scope></dependency>
                  <dependency><groupId>org.example</groupId><artifactId>rt</artifactId><version>1</version><scope>runtime</scope>
                    <exclusions><exclusion><groupId>x</groupId><artifactId>y</artifactId></exclusion></exclusions></dependency>
                </dependencies>
                <repositories><repository><id>inhouse</id><url>https://repo.example.com/m2</url></repository></repositories>
                """);
        assertEquals(2, pom.dependencies().size(), "test scope left out");
        assertEquals("org.apache.commons:commons-lang3:jar:3.17.0", pom.dependencies().get(0).getArtifact().toString());
        assertEquals("runtime", pom.dependencies().get(1).getScope());
        assertEquals(1, pom.dependencies().get(1).getExclusions().size());
        assertEquals("inhouse", pom.repositories().get(0).getId());
        var broken = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class,
                () -> LoadFromPomCommand.parse("<dependencies><dependency><groupId>a</groupId></dependencies>"));
        assertTrue(broken.getMessage().startsWith("the cell is not a valid POM: "), broken.getMessage());
        var noVersion = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class,
                () -> LoadFromPomCommand.parse("<dependencies><dependency><groupId>a</groupId><artifactId>b</artifactId></dependency></dependencies>"));
        assertEquals("a:b has no <version> (nor one in <dependencyManagement>)", noVersion.getMessage());
    }
}
