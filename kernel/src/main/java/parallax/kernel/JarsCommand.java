package parallax.kernel;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import parallax.magics.MagicCommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code %jars PATH-OR-GLOB ...}: adds jars (or a classes folder) to the class path of the kernel and its ranks. */
@Command(name = "jars", description = {
        "Add jars to the class path of this kernel and of its %%parallel ranks. A path may be a glob",
        "(* within a folder, ** across folders); a folder is added as a classes folder.",
        "Examples: %%jars lib/*.jar",
        "          %%jars ~/work/target/classes build/libs/**/*.jar"})
final class JarsCommand extends MagicCommand {

    @Parameters(arity = "1..*", paramLabel = "PATH", description = "Jar files, globs of them, or classes folders.")
    List<String> paths;

    private final KernelClasspath classpath;

    JarsCommand(KernelClasspath classpath) {
        this.classpath = classpath;
    }

    @Override
    protected Report execute() throws IOException {
        List<KernelClasspath.Candidate> candidates = new ArrayList<>();
        for (String p : paths) {
            for (Path file : expand(p, Path.of("").toAbsolutePath())) {
                candidates.add(new KernelClasspath.Candidate(file,
                        Files.isDirectory(file) ? null : KernelClasspath.identify(file)));
            }
        }
        KernelClasspath.Outcome outcome = classpath.add(candidates, "%jars");
        if (json) {
            output().out().println(new com.google.gson.Gson().toJson(KernelClasspath.json(outcome)));
        } else {
            KernelClasspath.describe(outcome).forEach(output().out()::println);
        }
        return null;
    }

    /**
     * The files {@code spec} names, relative to {@code base}, sorted: one path, or a glob
     * (java.nio's glob syntax); each must be a readable jar or a folder.
     */
    static List<Path> expand(String spec, Path base) throws IOException {
        String s = spec.startsWith("~/") ? System.getProperty("user.home") + spec.substring(1) : spec;
        int glob = indexOfGlob(s);
        if (glob < 0) {
            Path p = base.resolve(s).normalize();
            if (!Files.exists(p)) throw new UserError("no such file or folder: " + p);
            if (!Files.isDirectory(p)) checkJar(p);
            return List.of(p);
        }
        int cut = s.lastIndexOf('/', glob);
        Path root = base.resolve(cut < 0 ? "" : s.substring(0, Math.max(cut, 1))).normalize();
        String pattern = cut < 0 ? s : s.substring(cut + 1);
        if (!Files.isDirectory(root)) throw new UserError("no such folder: " + root + " (in '" + spec + "')");
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern);
        int depth = pattern.contains("**") ? Integer.MAX_VALUE : pattern.split("/").length;
        List<Path> out = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(root, depth)) {
            walk.filter(Files::isRegularFile).filter(f -> matcher.matches(root.relativize(f))).sorted().forEach(out::add);
        }
        if (out.isEmpty()) throw new UserError("no file matches '" + spec + "' (looked in " + root + ")");
        for (Path p : out) checkJar(p);
        return out;
    }

    private static int indexOfGlob(String s) {
        for (int i = 0; i < s.length(); i++) if ("*?[{".indexOf(s.charAt(i)) >= 0) return i;
        return -1;
    }

    private static void checkJar(Path p) {
        try (ZipFile z = new ZipFile(p.toFile())) {
            z.size();
        } catch (IOException e) {
            throw new UserError(p + " is not a jar (it cannot be read as a zip file)");
        }
    }
}
