package parallax.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;

/**
 * Java cells through JShell: splits a cell into snippets, evaluates them in order, and
 * turns what goes wrong into {@link CellException}s with the cell's own line numbers.
 */
final class JavaEvaluator implements AutoCloseable {

    /**
     * Imports every cell starts with, so lessons read naturally: the display helpers and
     * the session's last training runs ({@code lastRun()}, {@code lastRuns()}). They are
     * imported one by one: a static import on demand ("Display.*") makes javac search the
     * whole class path on every snippet (docs/kernel.md has the cost).
     */
    static final List<String> STARTUP = List.of(
            "import java.util.*;",
            "import java.util.stream.*;",
            "import static parallax.kernel.Display.display;",
            "import static parallax.kernel.Display.displayWithId;",
            "import static parallax.kernel.Display.updateDisplay;",
            "import static parallax.kernel.Display.clearOutput;",
            "import static parallax.kernel.Display.markdown;",
            "import static parallax.kernel.Display.html;",
            "import static parallax.kernel.Display.progress;",
            "import static parallax.kernel.Display.heatmap;",
            "import static parallax.magics.Session.lastRun;",
            "import static parallax.magics.Session.lastRuns;");

    private final JShell shell;
    private final CellExecutionControl control;
    /**
     * JShell keeps every expression's value as a temporary variable ($1, $2, ...) and
     * imports all of them into each new snippet, so compiling slows down as a session
     * grows. Only the most recent ones are kept.
     */
    static final int KEPT_TEMPORARIES = 20;

    private final java.util.ArrayDeque<Snippet> temporaries = new java.util.ArrayDeque<>();

    /** Cell line where each snippet (by JShell id) started, to map stack frames back. */
    private final java.util.Map<String, Integer> snippetLines = new java.util.concurrent.ConcurrentHashMap<>();

    JavaEvaluator() {
        CellExecutionControl.Provider provider = new CellExecutionControl.Provider();
        this.control = provider.control();
        this.shell = JShell.builder()
                .executionEngine(provider, null)
                .compilerOptions("-Xlint:none", "-proc:none")
                .build();
        // The compiler needs the kernel's class path (the snippets' classes load through the
        // kernel's own loader). One call, and through addToClasspath rather than a -classpath
        // compiler option, which would hide every jar added later (%maven, %jars).
        shell.addToClasspath(System.getProperty("java.class.path"));
        for (String s : STARTUP) shell.eval(s);
    }

    /**
     * Snippets of each kind a first cell is made of (an expression, a declaration with
     * generics and a lambda, a method, a class), compiled once and dropped, so that javac's
     * classes are loaded and its hot paths compiled before the user's first cell arrives.
     */
    static final List<String> WARM_UP = List.of(
            "1 + 1",
            "var $warm = new ArrayList<String>(List.of(\"a\", \"b\")).stream().map(s -> s + 1).collect(Collectors.toList());",
            "int $warmF(int x) { return x < 2 ? x : $warmF(x - 1) + $warmF(x - 2); }",
            "class $Warm { double v = Math.sqrt(2); }",
            "String.format(\"%d\", $warmF(5))");

    /**
     * Compiles and runs {@link #WARM_UP} (dropping each snippet afterwards), then exercises
     * completion and documentation once; stops before the next step when {@code stop} says a
     * cell is waiting. Returns how many snippets ran.
     */
    int warmUp(java.util.function.BooleanSupplier stop) {
        int done = 0;
        for (String source : WARM_UP) {
            if (stop.getAsBoolean()) return done;
            synchronized (this) {
                for (SnippetEvent ev : shell.eval(source)) {
                    if (ev.causeSnippet() == null && ev.snippet() != null) shell.drop(ev.snippet());
                }
                control.takeLastValue();
            }
            done++;
        }
        if (stop.getAsBoolean()) return done;
        synchronized (this) {
            SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
            sca.analyzeCompletion("int x = 1; x");
            sca.completionSuggestions("\"abc\".len", 10, new int[1]);
            sca.documentation("Math.max(", 9, false);
        }
        return done;
    }

    /** Temporary ($N) variables JShell still holds. */
    long activeTemporaries() {
        return shell.variables().filter(v -> v.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND)
                .filter(v -> shell.status(v).isActive()).count();
    }

    /** Adds a jar or classes folder to what later snippets compile and run against (after any warm-up step). */
    synchronized void addToClasspath(String path) {
        shell.addToClasspath(path);
    }

    SourceCodeAnalysis analysis() {
        return shell.sourceCodeAnalysis();
    }

    /** Stops the snippet now running, if any. */
    void stop() {
        shell.stop();
    }

    /**
     * Evaluates the Java source of a cell (or a run of Java lines in it).
     *
     * @param code      the source
     * @param firstLine the 1-based line in the cell where {@code code} starts
     * @return the value of the last snippet when it is an expression or variable, else empty
     */
    synchronized Optional<Object> eval(String code, int firstLine) throws CellException {
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        String remaining = code;
        int consumed = 0;
        Optional<Object> last = Optional.empty();
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(remaining);
            String source;
            if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY) break;
            if (info.completeness().isComplete()) {
                source = info.source();
                remaining = info.remaining();
            } else if (info.completeness() == SourceCodeAnalysis.Completeness.DEFINITELY_INCOMPLETE
                    || info.completeness() == SourceCodeAnalysis.Completeness.CONSIDERED_INCOMPLETE) {
                // Let the compiler say what is missing (e.g. "reached end of file").
                source = remaining;
                remaining = "";
            } else {
                source = remaining;
                remaining = "";
            }
            int snippetStart = code.indexOf(source.strip(), consumed);
            if (snippetStart < 0) snippetStart = consumed;
            consumed = snippetStart + source.strip().length();
            int lineOffset = firstLine - 1 + countLines(code, snippetStart);
            last = evalSnippet(source.stripLeading(), lineOffset);
        }
        return last;
    }

    private Optional<Object> evalSnippet(String source, int lineOffset) throws CellException {
        List<SnippetEvent> events = shell.eval(source);
        Optional<Object> value = Optional.empty();
        for (SnippetEvent ev : events) {
            if (ev.causeSnippet() != null) continue; // updates to dependent snippets
            Snippet snippet = ev.snippet();
            snippetLines.put(snippet.id(), lineOffset);
            if (ev.exception() != null) throw runtimeError(ev.exception(), snippet);
            if (ev.status() == Snippet.Status.REJECTED) throw compileError(snippet, lineOffset);
            if (ev.status() == Snippet.Status.RECOVERABLE_DEFINED || ev.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED) {
                String missing = shell.diagnostics(snippet).map(d -> d.getMessage(Locale.ROOT)).collect(Collectors.joining("; "));
                if (!missing.isEmpty()) throw compileError(snippet, lineOffset);
            }
            if (snippet.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND) {
                temporaries.addLast(snippet);
                while (temporaries.size() > KEPT_TEMPORARIES) shell.drop(temporaries.removeFirst());
            }
            Snippet.Kind kind = snippet.kind();
            // Like IPython: an expression shows its value; declarations and assignments do not.
            boolean producesValue = (kind == Snippet.Kind.EXPRESSION && snippet.subKind() != Snippet.SubKind.ASSIGNMENT_SUBKIND)
                    || snippet.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
            if (producesValue && ev.value() != null) {
                value = Optional.ofNullable(control.takeLastValue());
                if (value.isEmpty() && !"null".equals(ev.value())) value = Optional.of(ev.value());
            } else {
                control.takeLastValue();
                value = Optional.empty();
            }
        }
        return value;
    }

    private CellException compileError(Snippet snippet, int lineOffset) {
        String src = snippet.source();
        List<String> lines = new ArrayList<>();
        String first = null;
        for (Diag d : shell.diagnostics(snippet).collect(Collectors.toList())) {
            if (!d.isError()) continue;
            long pos = Math.max(0, d.getStartPosition());
            int line = 1 + countLines(src, (int) Math.min(pos, src.length()));
            int lineStart = src.lastIndexOf('\n', (int) Math.min(pos, src.length()) - 1) + 1;
            int col = (int) pos - lineStart + 1;
            int lineEnd = src.indexOf('\n', lineStart);
            String text = src.substring(lineStart, lineEnd < 0 ? src.length() : lineEnd);
            String msg = d.getMessage(Locale.ROOT).lines().findFirst().orElse("");
            String where = "line " + (line + lineOffset) + ", column " + col;
            if (first == null) first = msg + " (" + where + ")";
            lines.add(where + ": " + msg);
            lines.add("    " + text);
            lines.add("    " + " ".repeat(Math.max(0, col - 1)) + "^");
        }
        if (first == null) {
            first = "the snippet could not be compiled";
            lines.add(first + ": " + src.strip());
        }
        return new CellException("CompilationError", first, lines);
    }

    private CellException runtimeError(Exception ex, Snippet snippet) {
        if (ex instanceof UnresolvedReferenceException ure) {
            String msg = "uses something not yet defined: " + ure.getSnippet().source().strip();
            return new CellException("UnresolvedReference", msg, List.of(msg));
        }
        String name = ex instanceof EvalException ee ? ee.getExceptionClassName() : ex.getClass().getName();
        String message = ex.getMessage() == null ? "" : ex.getMessage();
        List<String> trace = new ArrayList<>();
        trace.add(name + (message.isEmpty() ? "" : ": " + message));
        Throwable t = ex;
        int depth = 0;
        while (t != null && depth++ < 5) {
            if (t != ex) {
                String cn = t instanceof EvalException e2 ? e2.getExceptionClassName() : t.getClass().getName();
                trace.add("Caused by: " + cn + (t.getMessage() == null ? "" : ": " + t.getMessage()));
            }
            int shown = 0;
            for (StackTraceElement el : t.getStackTrace()) {
                // Trim at the snippet boundary: frames below it are JShell's machinery.
                if (el.getClassName().startsWith("jdk.jshell.") || el.getClassName().startsWith("jdk.internal.reflect")
                        || el.getClassName().startsWith("java.lang.reflect.") || el.getClassName().startsWith("parallax.kernel.CellExecutionControl")) break;
                trace.add("    at " + describe(el));
                if (++shown >= 12) {
                    trace.add("    ...");
                    break;
                }
            }
            t = t.getCause();
        }
        String simple = name.substring(name.lastIndexOf('.') + 1);
        return new CellException(simple, message, trace);
    }

    private String describe(StackTraceElement el) {
        String file = el.getFileName();
        if (file != null && file.startsWith("#")) {
            // JShell names snippet frames "#id"; show the line in the cell instead.
            Integer offset = snippetLines.get(file.substring(1));
            String method = el.getMethodName() == null || el.getMethodName().isEmpty() ? "" : el.getMethodName() + ", ";
            return offset == null ? method + "snippet " + file + ", line " + el.getLineNumber()
                    : method + "cell line " + (offset + el.getLineNumber());
        }
        if (el.getClassName().startsWith("REPL.")) return el.getMethodName() + " (cell)";
        return el.toString();
    }

    static int countLines(String s, int upTo) {
        int n = 0;
        for (int i = 0; i < upTo && i < s.length(); i++) if (s.charAt(i) == '\n') n++;
        return n;
    }

    @Override
    public void close() {
        shell.close();
    }
}
