package parallax.kernel;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Properties;
import java.util.function.Consumer;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The session's class path: the kernel's own jars, and what the user added with
 * {@code %maven}, {@code %jars} or {@code %%loadFromPOM}. An added jar goes to JShell (the
 * next cell can use it) and to the {@code %%parallel} ranks. Classes load parent first, so
 * a second version of a library the kernel already has (picocli, gson, protobuf, ...) would
 * never be used: such a jar is not added and one line names both versions.
 */
final class KernelClasspath {

    /** A jar's identity as Maven names it; {@code groupId} is null when only the file name told. */
    record Coordinates(String groupId, String artifactId, String version) {
        String key() {
            return groupId == null ? artifactId : groupId + ":" + artifactId;
        }

        @Override
        public String toString() {
            return key() + ":" + version;
        }
    }

    /** A jar or classes folder to add, with its coordinates when known. */
    record Candidate(Path path, Coordinates coordinates) {}

    /** One entry the user added, and by which magic. */
    record Entry(Path path, Coordinates coordinates, String via) {}

    /** What one call to {@link #add} did. */
    record Outcome(List<Entry> added, List<Candidate> present, List<String> conflicts) {}

    private final List<Path> kernelEntries;
    private final Consumer<List<Path>> sink;
    private final List<Entry> added = new ArrayList<>();
    private List<Candidate> kernelJars;

    /**
     * @param kernelEntries the kernel's own class path
     * @param sink          makes new entries visible: JShell's class path and the ranks'
     */
    KernelClasspath(List<Path> kernelEntries, Consumer<List<Path>> sink) {
        this.kernelEntries = List.copyOf(kernelEntries);
        this.sink = sink;
    }

    /** The class path of this JVM, as the kernel was started with it. */
    static List<Path> ofThisJvm() {
        List<Path> out = new ArrayList<>();
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!e.isBlank()) out.add(Path.of(e));
        }
        return out;
    }

    List<Path> kernelEntries() {
        return kernelEntries;
    }

    synchronized List<Entry> added() {
        return List.copyOf(added);
    }

    /**
     * Adds what is new; skips what the kernel or an earlier cell already has in the same
     * version; refuses, with one line each, a different version of a library already there.
     */
    synchronized Outcome add(List<Candidate> candidates, String via) {
        List<Entry> fresh = new ArrayList<>();
        List<Candidate> present = new ArrayList<>();
        List<String> conflicts = new ArrayList<>();
        for (Candidate c : candidates) {
            Path path = c.path().toAbsolutePath().normalize();
            if (kernelEntries.contains(path) || added.stream().anyMatch(e -> e.path().equals(path))
                    || fresh.stream().anyMatch(e -> e.path().equals(path))) {
                present.add(c);
                continue;
            }
            Coordinates want = c.coordinates();
            if (want != null) {
                Candidate kernel = sameLibrary(want, kernelJars());
                if (kernel != null) {
                    if (kernel.coordinates().version().equals(want.version())) {
                        present.add(c);
                    } else {
                        conflicts.add(want.key() + ": the kernel has " + kernel.coordinates().version()
                                + " (" + kernel.path().getFileName() + "), " + via + " asked for " + want.version()
                                + "; not added, the kernel's " + kernel.coordinates().version() + " is used");
                    }
                    continue;
                }
                Entry earlier = null;
                for (Entry e : added) {
                    if (e.coordinates() != null && same(e.coordinates(), want)) earlier = e;
                }
                for (Entry e : fresh) {
                    if (e.coordinates() != null && same(e.coordinates(), want)) earlier = e;
                }
                if (earlier != null) {
                    if (earlier.coordinates().version().equals(want.version())) {
                        present.add(c);
                    } else {
                        conflicts.add(want.key() + ": " + earlier.coordinates().version() + " was added earlier ("
                                + earlier.via() + "), " + via + " asked for " + want.version()
                                + "; not added (restart the kernel to change versions)");
                    }
                    continue;
                }
            }
            fresh.add(new Entry(path, want, via));
        }
        if (!fresh.isEmpty()) {
            sink.accept(fresh.stream().map(Entry::path).toList());
            added.addAll(fresh);
        }
        return new Outcome(fresh, present, conflicts);
    }

    private static Candidate sameLibrary(Coordinates want, List<Candidate> jars) {
        for (Candidate k : jars) {
            if (k.coordinates() != null && same(k.coordinates(), want)) return k;
        }
        return null;
    }

    /** Same group and artifact; by artifact alone when either side's group is unknown. */
    private static boolean same(Coordinates a, Coordinates b) {
        if (!a.artifactId().equals(b.artifactId())) return false;
        return a.groupId() == null || b.groupId() == null || a.groupId().equals(b.groupId());
    }

    private List<Candidate> kernelJars() {
        if (kernelJars == null) {
            List<Candidate> jars = new ArrayList<>();
            for (Path p : kernelEntries) {
                if (Files.isRegularFile(p) && p.toString().endsWith(".jar")) jars.add(new Candidate(p, identify(p)));
            }
            kernelJars = jars;
        }
        return kernelJars;
    }

    private static final Pattern VERSIONED_NAME = Pattern.compile("(.+?)-(\\d[^-]*(?:-.+)?)\\.jar");

    /**
     * What a jar is: the META-INF/maven pom.properties Maven writes into every jar it builds
     * (the one matching the file name if a jar holds several), else name-version.jar.
     */
    static Coordinates identify(Path jar) {
        Matcher m = VERSIONED_NAME.matcher(jar.getFileName().toString());
        Coordinates fromName = m.matches() ? new Coordinates(null, m.group(1), m.group(2)) : null;
        List<Coordinates> inside = new ArrayList<>();
        try (JarFile jf = new JarFile(jar.toFile(), false)) {
            Enumeration<JarEntry> entries = jf.entries();
            while (entries.hasMoreElements()) {
                JarEntry e = entries.nextElement();
                String n = e.getName();
                if (!n.startsWith("META-INF/maven/") || !n.endsWith("/pom.properties")) continue;
                Properties p = new Properties();
                try (InputStream in = jf.getInputStream(e)) {
                    p.load(in);
                }
                String g = p.getProperty("groupId");
                String a = p.getProperty("artifactId");
                String v = p.getProperty("version");
                if (g != null && a != null && v != null) inside.add(new Coordinates(g.strip(), a.strip(), v.strip()));
            }
        } catch (IOException | SecurityException e) {
            return fromName;
        }
        if (inside.size() == 1) return inside.get(0);
        for (Coordinates c : inside) {
            if (fromName != null && c.artifactId().equals(fromName.artifactId())) return c;
        }
        return fromName;
    }

    /** What an outcome says to the user, one line per jar and per conflict. */
    static List<String> describe(Outcome o) {
        List<String> lines = new ArrayList<>();
        for (Entry e : o.added()) {
            lines.add("added " + (e.coordinates() == null ? e.path().toString()
                    : e.coordinates() + " (" + e.path().getFileName() + ")"));
        }
        for (Candidate c : o.present()) {
            lines.add("already on the class path: " + (c.coordinates() == null ? c.path().toString() : c.coordinates().toString()));
        }
        for (String c : o.conflicts()) lines.add("not added: " + c);
        return lines;
    }

    /** The same as data, for --json. */
    static java.util.Map<String, Object> json(Outcome o) {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("added", o.added().stream().map(e -> java.util.Map.of(
                "path", e.path().toString(), "coordinates", e.coordinates() == null ? "" : e.coordinates().toString())).toList());
        m.put("present", o.present().stream().map(c -> c.path().toString()).toList());
        m.put("conflicts", o.conflicts());
        return m;
    }
}
