package parallax.kernel;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * A Maven repository on disk, made by a test: tiny jars compiled from source with the
 * JDK's compiler, each with its POM (dependencies and scopes) and the pom.properties Maven
 * writes into jars, laid out as Maven's default layout so file:// URLs resolve it.
 */
final class TestRepository {

    /** A dependency line of a POM. */
    record Dep(String groupId, String artifactId, String version, String scope) {}

    final Path root;

    TestRepository(Path root) {
        this.root = root;
    }

    String url() {
        return root.toUri().toString();
    }

    /** Publishes group:artifact:version with Java classes (name -> source) and dependencies. */
    Path publish(String group, String artifact, String version, Map<String, String> sources, List<Dep> deps) throws IOException {
        Path dir = root.resolve(group.replace('.', '/')).resolve(artifact).resolve(version);
        Files.createDirectories(dir);
        Path jar = dir.resolve(artifact + "-" + version + ".jar");
        writeJar(jar, group, artifact, version, compile(sources, dir.resolve("classes-tmp")));
        Files.writeString(dir.resolve(artifact + "-" + version + ".pom"), pom(group, artifact, version, deps));
        return jar;
    }

    static String pom(String group, String artifact, String version, List<Dep> deps) {
        StringBuilder sb = new StringBuilder("<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n"
                + "  <modelVersion>4.0.0</modelVersion>\n"
                + "  <groupId>" + group + "</groupId><artifactId>" + artifact + "</artifactId><version>" + version + "</version>\n"
                + "  <dependencies>\n");
        for (Dep d : deps) {
            sb.append("    <dependency><groupId>").append(d.groupId()).append("</groupId><artifactId>").append(d.artifactId())
                    .append("</artifactId><version>").append(d.version()).append("</version>")
                    .append(d.scope() == null ? "" : "<scope>" + d.scope() + "</scope>").append("</dependency>\n");
        }
        return sb.append("  </dependencies>\n</project>\n").toString();
    }

    /** Compiles the sources (class name -> source) against the test's class path; returns the classes folder. */
    static Path compile(Map<String, String> sources, Path out) throws IOException {
        Files.createDirectories(out);
        Path src = out.resolve("src");
        List<String> files = new ArrayList<>();
        for (Map.Entry<String, String> e : sources.entrySet()) {
            Path f = src.resolve(e.getKey().replace('.', '/') + ".java");
            Files.createDirectories(f.getParent());
            Files.writeString(f, e.getValue());
            files.add(f.toString());
        }
        if (files.isEmpty()) return out;
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        List<String> args = new ArrayList<>(List.of("-d", out.resolve("bin").toString(), "--release", "17",
                "-cp", System.getProperty("java.class.path")));
        args.addAll(files);
        int rc = javac.run(null, null, null, args.toArray(String[]::new));
        if (rc != 0) throw new IOException("javac failed for " + sources.keySet());
        return out.resolve("bin");
    }

    static void writeJar(Path jar, String group, String artifact, String version, Path classes) throws IOException {
        Manifest mf = new Manifest();
        mf.getMainAttributes().putValue("Manifest-Version", "1.0");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), mf)) {
            if (Files.isDirectory(classes)) {
                try (var walk = Files.walk(classes)) {
                    for (Path p : walk.filter(Files::isRegularFile).sorted().toList()) {
                        out.putNextEntry(new JarEntry(classes.relativize(p).toString().replace('\\', '/')));
                        Files.copy(p, out);
                        out.closeEntry();
                    }
                }
            }
            if (group != null) {
                out.putNextEntry(new JarEntry("META-INF/maven/" + group + "/" + artifact + "/pom.properties"));
                OutputStream o = out;
                o.write(("groupId=" + group + "\nartifactId=" + artifact + "\nversion=" + version + "\n").getBytes(StandardCharsets.UTF_8));
                out.closeEntry();
            }
        }
    }

    /** A settings.xml using {@code localRepo}, with optional extra XML inside <settings>. */
    static Path settings(Path dir, Path localRepo, String extra) throws IOException {
        Path f = dir.resolve("settings.xml");
        Files.writeString(f, "<settings><localRepository>" + localRepo + "</localRepository>" + extra + "</settings>\n");
        return f;
    }
}
