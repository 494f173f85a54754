package parallax.magics;

/**
 * A magic that could not run as asked: an unknown name, a bad flag, or a {@link
 * parallax.engine.UserError} from the engine. Carries one line for the user and, for
 * flag mistakes, the usage text.
 */
public final class MagicError extends Exception {

    private final String usage;

    public MagicError(String message, String usage) {
        super(message);
        this.usage = usage;
    }

    /** The command's usage text, or null when it would not help. */
    public String usage() {
        return usage;
    }
}
