package parallax.engine.cluster;

import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import java.util.List;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;

/**
 * The JShell of one rank for {@code %%parallel} cells. It executes snippets inside the
 * worker JVM ("local" execution engine), so a cell's {@code dist} is the live {@link Dist}
 * of this rank, tensors stay where the collectives can reach them, and variables persist
 * from one cell to the next, like ipyparallel's engines.
 */
final class SpmdShell {

    /** The Dist of the cell now running, read by the {@code dist} binding inside JShell. */
    private static volatile Dist current;

    private final JShell shell;

    SpmdShell() {
        // The class path goes through addToClasspath only: a -classpath compiler option would
        // hide the jars the kernel adds later (addToClasspath below).
        shell = JShell.builder()
                .executionEngine("local")
                .build();
        shell.addToClasspath(System.getProperty("java.class.path"));
        for (String s : List.of(
                "import java.util.*;",
                "import org.bytedeco.javacpp.*;",
                "import org.bytedeco.pytorch.*;",
                "import org.bytedeco.pytorch.global.torch;",
                "import parallax.engine.cluster.*;",
                "Dist dist = null;")) {
            evalOne(s);
        }
    }

    /** Makes a jar or classes folder the kernel added (%maven, %jars) visible to later cells. */
    void addToClasspath(String path) {
        shell.addToClasspath(path);
    }

    static Dist dist() {
        return current;
    }

    /**
     * Runs a cell; returns the value of its last expression as text (JShell's rendering),
     * or null. A compile error or exception stops the cell and is thrown with its message.
     */
    JsonElement eval(String code, Dist dist) {
        current = dist;
        evalOne("dist = parallax.engine.cluster.SpmdAccess.dist();");
        String value = null;
        String rest = code;
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        while (!rest.isBlank()) {
            SourceCodeAnalysis.CompletionInfo ci = sca.analyzeCompletion(rest);
            String src = ci.source();
            if (src == null || ci.completeness() == SourceCodeAnalysis.Completeness.DEFINITELY_INCOMPLETE
                    || ci.completeness() == SourceCodeAnalysis.Completeness.EMPTY && ci.remaining().equals(rest)) {
                src = rest;
                rest = "";
            } else {
                rest = ci.remaining();
            }
            if (src.isBlank()) continue;
            value = evalOne(src);
        }
        return value == null ? null : new JsonPrimitive(value);
    }

    private String evalOne(String src) {
        String value = null;
        for (SnippetEvent e : shell.eval(src)) {
            if (e.exception() != null) {
                Throwable ex = e.exception();
                String m;
                if (ex instanceof EvalException ee) {
                    String cls = ee.getExceptionClassName();
                    boolean ours = cls.equals(ClusterError.class.getName()) || cls.equals(parallax.engine.UserError.class.getName());
                    m = ours ? ee.getMessage() : cls.substring(cls.lastIndexOf('.') + 1) + ": " + ee.getMessage();
                } else {
                    m = ex.toString();
                }
                throw new ClusterError(m == null ? "exception in cell" : m.lines().findFirst().orElse(m));
            }
            if (e.status() == Snippet.Status.REJECTED) {
                String diag = shell.diagnostics(e.snippet()).map(d -> d.getMessage(null)).findFirst().orElse("rejected");
                throw new ClusterError("does not compile: " + diag.lines().findFirst().orElse(diag)
                        + " in: " + src.strip().lines().findFirst().orElse(""));
            }
            Snippet sn = e.snippet();
            boolean expression = sn.kind() == Snippet.Kind.EXPRESSION
                    || sn.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
            if (e.causeSnippet() == null && e.value() != null && expression) {
                value = e.value();
            }
        }
        return value;
    }
}
