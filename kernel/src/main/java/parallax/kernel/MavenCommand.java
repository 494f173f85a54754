package parallax.kernel;

import com.google.gson.GsonBuilder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.aether.graph.Dependency;
import org.eclipse.aether.repository.RemoteRepository;
import org.eclipse.aether.util.artifact.JavaScopes;
import parallax.engine.report.Report;
import parallax.magics.MagicCommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code %maven group:artifact:version ...}: resolves the artifacts and their dependencies
 * with Maven's resolver and adds the jars to this kernel's class path and its ranks'. A
 * kernel magic: it changes JShell's class path, so it has no command-line twin.
 */
@Command(name = "maven", description = {
        "Resolve Maven artifacts with their dependencies (compile and runtime scope) and add the jars to the class path",
        "of this kernel and of its %%parallel ranks. Uses ~/.m2/settings.xml (local repository, mirrors, proxies,",
        "credentials, offline) and the local repository Maven uses, so cached artifacts are not downloaded again.",
        "Examples: %%maven org.apache.commons:commons-lang3:3.17.0",
        "          %%maven com.example:lib:1.0 --repository https://repo.example.com/maven2",
        "          %%maven org.example:native:jar:linux-x86_64:2.1   (group:artifact:extension:classifier:version)"})
final class MavenCommand extends MagicCommand {

    @Parameters(arity = "1..*", paramLabel = "GROUP:ARTIFACT:VERSION", description = "Artifacts to add.")
    List<String> coordinates;

    @Option(names = "--repository", paramLabel = "URL", description = "Another repository to search (URL or id=URL; repeatable), after central.")
    List<String> repositories = new ArrayList<>();

    @Option(names = "--offline", description = "Use only the local repository (as mvn -o).")
    boolean offline;

    private final MavenResolver resolver;
    private final KernelClasspath classpath;

    MavenCommand(MavenResolver resolver, KernelClasspath classpath) {
        this.resolver = resolver;
        this.classpath = classpath;
    }

    @Override
    protected Report execute() {
        long t0 = System.nanoTime();
        List<Dependency> deps = new ArrayList<>();
        for (String c : coordinates) deps.add(MavenResolver.dependency(c, JavaScopes.COMPILE));
        List<RemoteRepository> extra = new ArrayList<>();
        for (int i = 0; i < repositories.size(); i++) extra.add(MavenResolver.repository(repositories.get(i), i + 1));
        List<MavenResolver.Jar> jars = resolver.resolve(deps, extra, offline);
        KernelClasspath.Outcome outcome = classpath.add(candidates(jars), "%maven");
        report(output().out(), outcome, jars, (System.nanoTime() - t0) / 1e9, json);
        return null;
    }

    static List<KernelClasspath.Candidate> candidates(List<MavenResolver.Jar> jars) {
        List<KernelClasspath.Candidate> out = new ArrayList<>();
        for (MavenResolver.Jar j : jars) {
            out.add(new KernelClasspath.Candidate(j.path(),
                    new KernelClasspath.Coordinates(j.groupId(), j.artifactId(), j.version())));
        }
        return out;
    }

    /** Prints what was added (a dependency says so), what was there, what conflicted, and the time. */
    static void report(java.io.PrintStream out, KernelClasspath.Outcome outcome, List<MavenResolver.Jar> jars,
                       double seconds, boolean json) {
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>(KernelClasspath.json(outcome));
            m.put("resolved", jars.size());
            m.put("seconds", seconds);
            out.println(new GsonBuilder().disableHtmlEscaping().create().toJson(m));
            return;
        }
        for (String line : KernelClasspath.describe(outcome)) {
            boolean dependency = jars.stream().anyMatch(j -> !j.direct()
                    && line.equals("added " + j.groupId() + ":" + j.artifactId() + ":" + j.version() + " (" + j.path().getFileName() + ")"));
            out.println(dependency ? line.substring(0, line.length() - 1) + ", a dependency)" : line);
        }
        out.printf("%d jar%s resolved, %d added in %.2f s%n", jars.size(), jars.size() == 1 ? "" : "s",
                outcome.added().size(), seconds);
    }
}
