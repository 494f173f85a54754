package parallax.engine;

/**
 * A mistake in what the user asked for (a bad flag value, a file that is not what it
 * claims, a shape that does not divide). Shown as one line, never as a stack trace.
 */
public class UserError extends RuntimeException {

    public UserError(String message) {
        super(message);
    }

    public UserError(String message, Throwable cause) {
        super(message, cause);
    }
}
