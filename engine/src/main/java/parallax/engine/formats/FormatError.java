package parallax.engine.formats;

import java.nio.file.Path;
import parallax.engine.UserError;

/** A model file that is not what it claims to be: one line naming the file and the problem. */
public final class FormatError extends UserError {

    public FormatError(Path file, String problem) {
        super(file + ": " + problem);
    }

    public FormatError(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
