package parallax.kernel;

import java.util.List;

/**
 * What went wrong in a cell, as Jupyter shows it: a name (ename), one line (evalue) and
 * the traceback lines. Compile errors carry line, column and the offending code; runtime
 * errors a stack trimmed to the user's own frames; magic errors one line and the usage.
 */
final class CellException extends Exception {

    private final String name;
    private final List<String> traceback;

    CellException(String name, String message, List<String> traceback) {
        super(message);
        this.name = name;
        this.traceback = List.copyOf(traceback);
    }

    String name() {
        return name;
    }

    List<String> traceback() {
        return traceback;
    }
}
