package parallax.magics;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * {@code parallax NAME [args]}: every magic as a command-line subcommand. With
 * {@code --out DIR} (anywhere before the magic name) charts are saved as PNG and SVG.
 * Exit status: 0 done, 2 a user mistake (one line on stderr), 1 an internal error.
 */
public final class Cli {

    private Cli() {}

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    static int run(String[] argv) {
        Path outDir = null;
        int i = 0;
        while (i < argv.length && argv[i].startsWith("--")) {
            if (argv[i].equals("--out") && i + 1 < argv.length) {
                outDir = Path.of(argv[i + 1]);
                i += 2;
            } else if (argv[i].equals("--help")) {
                printHelp();
                return 0;
            } else {
                System.err.println("parallax: unknown option " + argv[i] + " (options before the magic name: --out DIR, --help)");
                return 2;
            }
        }
        if (i >= argv.length) {
            printHelp();
            return 2;
        }
        String name = argv[i];
        String[] rest = Arrays.copyOfRange(argv, i + 1, argv.length);
        // Re-quote so the magic parser sees the same words the shell gave us.
        String argLine = Arrays.stream(rest).map(Cli::quote).collect(Collectors.joining(" "));
        TextOutput output = new TextOutput(System.out, System.err, outDir);
        try {
            String body = null;
            var entry = Magics.find(name);
            if (entry.isPresent() && !entry.get().line()) {
                body = new String(System.in.readAllBytes());
            }
            MagicRunner.run(name, argLine, body, new MagicContext(output, null));
            System.out.flush();
            return 0;
        } catch (MagicError e) {
            System.out.flush();
            System.err.println("parallax " + name + ": " + e.getMessage().replaceFirst("^%" + name + ": ", ""));
            if (e.usage() != null) System.err.print(e.usage());
            return 2;
        } catch (Exception e) {
            System.err.println("parallax " + name + ": internal error: " + e);
            e.printStackTrace();
            return 1;
        }
    }

    static String quote(String word) {
        if (!word.isEmpty() && word.chars().noneMatch(c -> Character.isWhitespace(c) || "'\"\\".indexOf(c) >= 0)) return word;
        return "'" + word.replace("'", "'\"'\"'") + "'";
    }

    private static void printHelp() {
        System.out.println("Usage: parallax [--out DIR] MAGIC [ARGS...]\n\nMagics:");
        for (Magics.Entry e : Magics.all()) {
            System.out.printf("  %-10s %s%n", e.name(), e.summary());
        }
        System.out.println("\n'parallax MAGIC --help' shows the flags of one.");
    }
}
