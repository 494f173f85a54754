package parallax.magics;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;
import picocli.CommandLine;

/**
 * Runs one magic: finds it by name, parses its flags with picocli, binds the context
 * and calls it. Every user mistake becomes a {@link MagicError} with one clear line;
 * only a genuine bug escapes as another exception.
 */
public final class MagicRunner {

    private MagicRunner() {}

    /**
     * Runs {@code %name argLine} (body null) or {@code %%name argLine} with a body.
     *
     * @throws MagicError for an unknown magic, a bad flag or a user error from the engine
     */
    public static void run(String name, String argLine, String body, MagicContext context) throws Exception {
        Magics.Entry entry = context.find(name).orElseThrow(() -> unknown(name, context));
        boolean cell = body != null;
        if (cell && !entry.cell()) {
            throw new MagicError("%" + name + " is a line magic: write %" + name + " without the second %", null);
        }
        if (!cell && !entry.line()) {
            throw new MagicError("%%" + name + " is a cell magic: put it on the first line of a cell as %%" + name, null);
        }
        List<String> args = ArgLine.split(argLine == null ? "" : argLine);
        MagicCommand command = entry.factory().get();
        CommandLine cl = new CommandLine(command).setCaseInsensitiveEnumValuesAllowed(true);
        cl.setCommandName(cell ? "%%" + name : "%" + name);
        PrintWriter out = new PrintWriter(context.output().out(), true);
        cl.setOut(out);
        cl.setErr(out);
        bindAll(cl, context);
        command.bindCellBody(body);

        Exception[] failure = new Exception[1];
        cl.setParameterExceptionHandler((ParameterException ex, String[] a) -> {
            failure[0] = new MagicError(ex.getMessage() + suggestions(ex), usage(ex.getCommandLine()));
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            failure[0] = ex;
            return 1;
        });
        cl.execute(args.toArray(String[]::new));
        out.flush();
        if (failure[0] != null) throw translate(name, failure[0]);
    }

    private static void bindAll(CommandLine cl, MagicContext context) {
        if (cl.getCommand() instanceof MagicCommand mc) mc.bind(context);
        for (CommandLine sub : cl.getSubcommands().values()) bindAll(sub, context);
    }

    private static Exception translate(String name, Exception ex) {
        Throwable t = ex;
        while (t != null) {
            if (t instanceof MagicError me) return me;
            if (t instanceof UserError ue) return new MagicError("%" + name + ": " + ue.getMessage(), null);
            if (t instanceof InterruptedException) return (InterruptedException) t;
            t = t.getCause();
        }
        return ex;
    }

    /** picocli's own "did you mean" for a misspelt option or subcommand, as one clause. */
    static String suggestions(ParameterException ex) {
        if (!(ex instanceof UnmatchedArgumentException u)) return "";
        List<String> s = u.getSuggestions();
        return s.isEmpty() ? "" : ". Did you mean " + String.join(" or ", s.subList(0, Math.min(3, s.size()))) + "?";
    }

    static String usage(CommandLine cl) {
        StringWriter sw = new StringWriter();
        cl.usage(new PrintWriter(sw), CommandLine.Help.Ansi.OFF);
        return sw.toString();
    }

    private static MagicError unknown(String name, MagicContext context) {
        List<String> names = new ArrayList<>();
        context.magics().forEach(e -> names.add(e.name()));
        String hint = DidYouMean.hint(name, names).replace("Did you mean ", "Did you mean %");
        return new MagicError("Unknown magic %" + name + "." + hint + " %lsmagic lists them all.", null);
    }
}
