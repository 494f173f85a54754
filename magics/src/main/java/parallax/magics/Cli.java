package parallax.magics;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * {@code parallax NAME [args]}: every magic as a command-line subcommand. With
 * {@code --out DIR} (anywhere before the magic name) charts are saved as PNG and SVG. With
 * {@code --testbed NODESxSLOTS[:RATE[:DELAY]]} (root) the command runs on a multi-node test
 * bed built for it and removed after it, such as {@code --testbed 2x2:1gbit}.
 * Exit status: 0 done, 2 a user mistake (one line on stderr), 1 an internal error.
 */
public final class Cli {

    private Cli() {}

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    static int run(String[] argv) {
        Path outDir = null;
        String testBed = null;
        int i = 0;
        while (i < argv.length && argv[i].startsWith("--")) {
            if (argv[i].equals("--out") && i + 1 < argv.length) {
                outDir = Path.of(argv[i + 1]);
                i += 2;
            } else if (argv[i].equals("--testbed") && i + 1 < argv.length) {
                testBed = argv[i + 1];
                i += 2;
            } else if (argv[i].equals("--help")) {
                printHelp();
                return 0;
            } else {
                System.err.println("parallax: unknown option " + argv[i] + " (options before the magic name: --out DIR, --testbed NxS[:RATE[:DELAY]], --help)");
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
            if (testBed != null) buildTestBed(testBed);
            MagicRunner.run(name, argLine, body, new MagicContext(output, null));
            System.out.flush();
            return 0;
        } catch (parallax.engine.UserError e) {
            System.err.println("parallax: " + e.getMessage());
            return 2;
        } catch (MagicError e) {
            System.out.flush();
            System.err.println("parallax " + name + ": " + e.getMessage().replaceFirst("^%" + name + ": ", ""));
            if (e.usage() != null) System.err.print(e.usage());
            return 2;
        } catch (Exception e) {
            System.err.println("parallax " + name + ": internal error: " + e);
            e.printStackTrace();
            return 1;
        } finally {
            if (testBed != null) parallax.engine.cluster.Cluster.session().removeTestBed();
        }
    }

    /** {@code NODESxSLOTS[:RATE[:DELAY]]}, such as 2x2:1gbit or 2x2:100mbit:0.5ms. */
    static void buildTestBed(String spec) {
        String[] f = spec.split(":");
        String[] ns = f[0].toLowerCase(java.util.Locale.ROOT).split("x");
        int nodes, slots;
        try {
            nodes = Integer.parseInt(ns[0]);
            slots = Integer.parseInt(ns[1]);
        } catch (RuntimeException e) {
            throw new parallax.engine.UserError("--testbed takes NODESxSLOTS[:RATE[:DELAY]], such as 2x2:1gbit, not '" + spec + "'");
        }
        var link = parallax.engine.cluster.TestBed.Link.parse(f.length > 1 ? f[1] : null, f.length > 2 ? f[2] : null);
        parallax.engine.cluster.Cluster.session().buildTestBed(nodes, slots, link);
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
