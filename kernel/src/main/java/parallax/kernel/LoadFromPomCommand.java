package parallax.kernel;

import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.maven.model.Model;
import org.apache.maven.model.io.xpp3.MavenXpp3Reader;
import org.codehaus.plexus.util.xml.pull.XmlPullParserException;
import org.eclipse.aether.artifact.DefaultArtifact;
import org.eclipse.aether.graph.Dependency;
import org.eclipse.aether.graph.Exclusion;
import org.eclipse.aether.repository.RemoteRepository;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import parallax.magics.MagicCommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code %%loadFromPOM}: the cell is a POM, or just its {@code <dependencies>} (and
 * {@code <repositories>}, {@code <properties>}) block; its dependencies are resolved like
 * {@code %maven}'s and added to the class path.
 */
@Command(name = "loadFromPOM", description = {
        "Resolve the dependencies of a POM written in the cell and add them to the class path of this kernel",
        "and its %%parallel ranks. The cell may be a whole <project> or only <dependencies>, <repositories>,",
        "<properties> and <dependencyManagement> blocks. Test-scoped dependencies are left out."})
final class LoadFromPomCommand extends MagicCommand {

    @Option(names = "--offline", description = "Use only the local repository (as mvn -o).")
    boolean offline;

    private final MavenResolver resolver;
    private final KernelClasspath classpath;

    LoadFromPomCommand(MavenResolver resolver, KernelClasspath classpath) {
        this.resolver = resolver;
        this.classpath = classpath;
    }

    /** What a POM asks for: its dependencies and its repositories. */
    record Pom(List<Dependency> dependencies, List<RemoteRepository> repositories) {}

    @Override
    protected Report execute() {
        long t0 = System.nanoTime();
        Pom pom = parse(cellBody());
        if (pom.dependencies().isEmpty()) throw new UserError("the cell names no <dependency> to load");
        List<MavenResolver.Jar> jars = resolver.resolve(pom.dependencies(), pom.repositories(), offline);
        KernelClasspath.Outcome outcome = classpath.add(MavenCommand.candidates(jars), "%%loadFromPOM");
        MavenCommand.report(output().out(), outcome, jars, (System.nanoTime() - t0) / 1e9, json);
        return null;
    }

    private static final Pattern PROPERTY = Pattern.compile("\\$\\{([^}]+)}");

    /** Reads the cell as a POM; a malformed one is one line with the line and column. */
    static Pom parse(String body) {
        String xml = body.strip();
        if (xml.isEmpty()) throw new UserError("the cell is empty: write a <dependencies> block (or a whole POM) below %%loadFromPOM");
        if (xml.startsWith("<?xml")) xml = xml.substring(xml.indexOf("?>") + 2).strip();
        boolean whole = xml.startsWith("<project");
        if (!whole) xml = "<project>" + xml + "</project>";
        Model model;
        try {
            model = new MavenXpp3Reader().read(new StringReader(xml), false);
        } catch (XmlPullParserException e) {
            String where = e.getLineNumber() > 0 ? " (line " + e.getLineNumber() + ", column "
                    + Math.max(1, e.getColumnNumber() - (whole || e.getLineNumber() > 1 ? 0 : "<project>".length())) + ")" : "";
            String msg = e.getMessage() == null ? "malformed XML" : e.getMessage().lines().findFirst().orElse("malformed XML");
            msg = msg.replaceAll("\\s*\\(position:.*$", "");
            throw new UserError("the cell is not a valid POM: " + msg + where);
        } catch (IOException e) {
            throw new UserError("the cell cannot be read as a POM: " + e.getMessage());
        }
        Map<String, String> props = new HashMap<>();
        Properties p = model.getProperties();
        if (p != null) p.stringPropertyNames().forEach(k -> props.put(k, p.getProperty(k)));
        if (model.getVersion() != null) props.put("project.version", model.getVersion());

        Map<String, String> managed = new HashMap<>();
        if (model.getDependencyManagement() != null) {
            for (org.apache.maven.model.Dependency d : model.getDependencyManagement().getDependencies()) {
                if ("import".equals(d.getScope())) {
                    throw new UserError("an imported BOM (" + d.getGroupId() + ":" + d.getArtifactId()
                            + ", scope import) is not read: give each dependency its <version>");
                }
                managed.put(d.getGroupId() + ":" + d.getArtifactId(), interpolate(d.getVersion(), props));
            }
        }
        List<Dependency> deps = new ArrayList<>();
        for (org.apache.maven.model.Dependency d : model.getDependencies()) {
            String scope = d.getScope() == null ? "compile" : d.getScope();
            if (scope.equals("test")) continue;
            String group = interpolate(d.getGroupId(), props);
            String artifact = interpolate(d.getArtifactId(), props);
            if (group == null || artifact == null) throw new UserError("a <dependency> needs a <groupId> and an <artifactId>");
            String version = d.getVersion() != null ? interpolate(d.getVersion(), props) : managed.get(group + ":" + artifact);
            if (version == null || version.isBlank()) {
                throw new UserError(group + ":" + artifact + " has no <version> (nor one in <dependencyManagement>)");
            }
            if (version.contains("${")) throw new UserError(group + ":" + artifact + ": undefined property in version " + version);
            String type = d.getType() == null ? "jar" : d.getType();
            String classifier = d.getClassifier() == null ? "" : d.getClassifier();
            if (type.equals("test-jar")) {
                type = "jar";
                classifier = "tests";
            }
            List<Exclusion> exclusions = new ArrayList<>();
            for (org.apache.maven.model.Exclusion x : d.getExclusions()) {
                exclusions.add(new Exclusion(x.getGroupId(), x.getArtifactId(), "*", "*"));
            }
            // Nothing provides "provided" or "system" dependencies in a notebook: resolve them as compile.
            String resolvedScope = scope.equals("runtime") ? "runtime" : "compile";
            deps.add(new Dependency(new DefaultArtifact(group, artifact, classifier, type, version), resolvedScope, false, exclusions));
        }
        List<RemoteRepository> repos = new ArrayList<>();
        for (org.apache.maven.model.Repository r : model.getRepositories()) {
            String url = interpolate(r.getUrl(), props);
            repos.add(MavenResolver.repository((r.getId() == null ? "" : r.getId() + "=") + url, repos.size() + 1));
        }
        return new Pom(deps, repos);
    }

    private static String interpolate(String s, Map<String, String> props) {
        if (s == null) return null;
        Matcher m = PROPERTY.matcher(s);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String v = props.get(m.group(1));
            m.appendReplacement(out, Matcher.quoteReplacement(v == null ? m.group() : v));
        }
        m.appendTail(out);
        return out.toString().strip();
    }
}
