package parallax.kernel;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.report.Report;
import parallax.magics.MagicCommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** {@code %classpath}: what the session added to the class path, and the kernel's own. */
@Command(name = "classpath", description = "Show the class path: the jars added with %%maven, %%jars and %%%%loadFromPOM, and (with --all) the kernel's own.")
final class ClasspathCommand extends MagicCommand {

    @Option(names = "--all", description = "Also list the kernel's own class path.")
    boolean all;

    private final KernelClasspath classpath;

    ClasspathCommand(KernelClasspath classpath) {
        this.classpath = classpath;
    }

    @Override
    protected Report execute() {
        List<KernelClasspath.Entry> added = classpath.added();
        List<Path> own = classpath.kernelEntries();
        StringColumn path = StringColumn.create("path");
        StringColumn coords = StringColumn.create("artifact");
        StringColumn via = StringColumn.create("added by");
        for (KernelClasspath.Entry e : added) {
            path.append(e.path().toString());
            coords.append(e.coordinates() == null ? "" : e.coordinates().toString());
            via.append(e.via());
        }
        if (all) {
            for (Path p : own) {
                path.append(p.toString());
                coords.append("");
                via.append("kernel");
            }
        }
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("added", added.stream().map(e -> e.path().toString()).toList());
        data.put("kernel", own.stream().map(Path::toString).toList());
        String summary = (added.isEmpty() ? "Nothing added yet (%maven, %jars or %%loadFromPOM add jars)."
                : added.size() + " entr" + (added.size() == 1 ? "y" : "ies") + " added in this session.")
                + " The kernel's own class path has " + own.size() + " entries" + (all ? "." : " (%classpath --all lists them).");
        Report.Builder r = Report.builder("Class path").text(summary);
        if (path.size() > 0) r.table(Table.create("class path", path, coords, via));
        return r.data(data).build();
    }
}
