package parallax.magics;

import com.google.gson.GsonBuilder;
import java.util.concurrent.Callable;
import parallax.engine.report.Output;
import parallax.engine.report.Report;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Base of every magic. A subclass is a picocli command: annotated options, and
 * {@link #execute()} returning a {@link Report} (or null when it displayed everything
 * itself). The same class runs as {@code %name args} in a notebook and as
 * {@code parallax name args} on the command line.
 */
public abstract class MagicCommand implements Callable<Integer> {

    @Spec
    protected CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    protected boolean help;

    @Option(names = "--json", description = "Print the result as one JSON object instead of tables and charts.")
    protected boolean json;

    private MagicContext context;
    private String cellBody = "";

    final void bind(MagicContext context) {
        this.context = context;
    }

    final void bindCellBody(String body) {
        this.cellBody = body == null ? "" : body;
    }

    /** The cell's body for {@code %%name} (everything after the first line); empty for {@code %name}. */
    protected String cellBody() {
        return cellBody;
    }

    protected MagicContext context() {
        return context;
    }

    protected Output output() {
        return context.output();
    }

    /** Does the work; a returned report is displayed (or printed as JSON with --json). */
    protected abstract Report execute() throws Exception;

    @Override
    public final Integer call() throws Exception {
        Report report = execute();
        if (report != null) show(report);
        return 0;
    }

    /** Displays a report now, honouring --json. */
    protected void show(Report report) {
        if (json) {
            output().out().println(toJson(report));
        } else {
            output().display(report);
        }
    }

    static String toJson(Report report) {
        Object payload = report.data() != null ? report.data() : ReportJson.of(report);
        return new GsonBuilder().serializeSpecialFloatingPointValues().disableHtmlEscaping()
                .create().toJson(payload);
    }
}
