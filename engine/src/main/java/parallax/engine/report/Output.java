package parallax.engine.report;

import java.io.PrintStream;

/**
 * Where a command sends what it shows. The kernel implements it with Jupyter display
 * messages, the CLI with text on the terminal (and files with --out).
 */
public interface Output {

    /** Text written while the command runs (streamed to the cell's stdout). */
    PrintStream out();

    /** Shows a value now: a {@link Report}, a Tablesaw table, an XChart chart or a string. */
    void display(Object value);

    /** Starts a live progress display of {@code total} steps named {@code label}. */
    Progress progress(String label, long total);
}
