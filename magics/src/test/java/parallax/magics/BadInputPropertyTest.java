package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.cluster.Cluster;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.numerics.DType;
import parallax.engine.report.Output;
import parallax.engine.report.Progress;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine;

/**
 * Bad input is one line everywhere, as a property of the code rather than of a list: every
 * magic in the registry, every picocli subcommand and every option or positional parameter
 * found in its {@link CommandSpec} gets values generated from its type (numbers that are
 * zero, negative, out of range or not numbers; missing files, directories, empty and
 * garbage files; unknown words and empty strings). Each run must either succeed, or fail
 * with a {@link MagicError} of one line; nothing else may escape and no stack trace may be
 * printed. After the sweep no worker process may be left over and the session still works.
 *
 * <p>A legal value must not start long work: a command that opens a progress display has
 * accepted its flags, so the test's output stops it there (flags are validated before any
 * work starts). Only contexts marked {@code runs} (cheap work on tiny files) go to the end.
 */
class BadInputPropertyTest {

    /** Thrown by the test's progress display: the flags were accepted and long work would start. */
    static final class Started extends RuntimeException {
        Started(String label) {
            super("started: " + label, null, false, false);
        }
    }

    /**
     * The smallest valid arguments that make a command reach the code that reads a given
     * option: positional parameters, other flags, a cell body. A command with no entry here
     * is swept with no other arguments, so a new magic or flag is covered without editing
     * this table.
     */
    record Context(List<String> positionals, List<String> options, String body, boolean runs) {
        static Context of(String... options) {
            return new Context(List.of(), List.of(options), null, false);
        }

        Context positional(String... p) {
            return new Context(List.of(p), options, body, runs);
        }

        Context runsToTheEnd() {
            return new Context(positionals, options, body, true);
        }

        Context body(String b) {
            return new Context(positionals, options, b, runs);
        }
    }

    record Case(String magic, List<String> path, Context context, String argument, String value, List<String> args) {
        String describe() {
            return (context.body != null ? "%%" : "%") + magic + " " + String.join(" ", args);
        }
    }

    @TempDir
    Path dir;

    /** Values a user may type by mistake, for each kind of parameter. */
    static final List<String> NUMBERS = List.of("0", "-1", "-2147483649", "999999999999", "NaN", "abc", "");
    static final List<String> FRACTIONS = List.of("Infinity");
    static final List<String> WORDS = List.of("nonsense", "", "0", "-1", "NaN", "999999999999");
    static final Pattern FILE_LIKE = Pattern.compile("file|dir|path|out|config|save|tmp");
    static final Pattern STACK_TRACE = Pattern.compile("at parallax\\.|\\b[A-Z]\\w*Exception\\b");

    /** Known failures, by "%magic --option=value"; strict: an entry that stops failing must be removed. */
    static final Set<String> AWAITING_REDESIGN = Set.of();

    Path missing, directory, empty, garbage, model;

    Map<String, List<Context>> contexts() {
        String src = model.toString();
        String dst = dir.resolve("out").resolve("converted.gguf").toString();
        Map<String, List<Context>> c = new LinkedHashMap<>();
        c.put("time", List.of(Context.of().body("1")));
        c.put("cluster", List.of(Context.of().positional("nodes"), Context.of().positional("start"),
                Context.of().positional("testbed", "up"), Context.of().positional("topology")));
        c.put("parallel", List.of(Context.of("--steps", "1", "--ranks", "1"),
                Context.of("--bench", "allreduce", "--ranks", "2", "--sizes", "1KB", "--iters", "1")));
        c.put("precision explain", List.of(Context.of().positional("0.1")));
        c.put("precision cast", List.of(Context.of("--from", "random", "--count", "1000")));
        c.put("precision train", List.of(Context.of("--steps", "1")));
        c.put("precision bench", List.of(Context.of("--values", "1024", "--reps", "3")));
        c.put("convert", List.of(Context.of().positional(src, dst).runsToTheEnd(),
                Context.of("--bench", "64", "--repeat", "1", "--tmp", dir.resolve("bench").toString())));
        c.put("inspect", List.of(Context.of().positional(src).runsToTheEnd()));
        c.put("plan", List.of(Context.of("--gpus", "8").positional("llama-2-7b"),
                Context.of("--gpus", "8", "--search").positional("llama-2-7b"),
                Context.of("--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "100", "--gpus", "2", "--tp", "2"),
                Context.of("--infer").positional("llama-2-7b"), Context.of("--validate"),
                Context.of("--gpus", "16", "--ep", "2").positional("mixtral-8x7b")));
        c.put("model", List.of(Context.of().positional("llama-2-7b")));
        return c;
    }

    @Test
    void everyMagicAndOptionTurnsBadValuesIntoOneLine() throws Exception {
        missing = dir.resolve("no-such-dir").resolve("absent.safetensors");
        directory = dir.resolve("folder.safetensors");
        empty = dir.resolve("empty.safetensors");
        garbage = dir.resolve("garbage.safetensors");
        model = tinyModel(dir.resolve("m.safetensors"));
        Files.createDirectories(dir.resolve("out"));
        Cluster session = Cluster.session();
        Path nodesFile = session.nodesFile();
        boolean defaultNodes = session.usingDefault();

        List<Case> cases = cases();
        assertTrue(cases.size() > 1000, "the sweep should cover every option: only " + cases.size() + " cases");
        List<String> problems = new ArrayList<>();
        Set<String> awaited = new TreeSet<>();
        Map<String, Integer> outcomes = new LinkedHashMap<>();
        ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "bad-input-sweep");
            t.setDaemon(true);
            return t;
        });
        try {
            for (Case c : cases) {
                List<String> found = new ArrayList<>();
                String outcome = check(c, runner, found);
                String key = "%" + c.magic + " " + c.argument + "=" + c.value;
                if (!found.isEmpty() && AWAITING_REDESIGN.contains(key)) awaited.add(key);
                else problems.addAll(found);
                outcomes.merge(outcome, 1, Integer::sum);
                if (!session.nodesFile().equals(nodesFile) || session.usingDefault() != defaultNodes) {
                    problems.add(c.describe() + " -> changed the session's nodes file");
                    if (defaultNodes) session.useDefault();
                    else session.useNodesFile(nodesFile);
                }
            }
        } finally {
            runner.shutdownNow();
        }
        assertTrue(problems.isEmpty(), problems.size() + " of " + cases.size() + " bad inputs misbehaved " + outcomes + ":\n"
                + String.join("\n", problems));
        assertEquals(new TreeSet<>(AWAITING_REDESIGN), awaited, "known failures that no longer fail: remove them");
        assertTrue(outcomes.getOrDefault("refused", 0) > cases.size() / 2, "most generated values are bad: " + outcomes);

        // No worker process outlives the sweep: the only JVMs left are the session pool's ranks.
        Set<Long> ranks = session.status().stream().map(s -> s.pid()).collect(Collectors.toSet());
        Set<Long> children = aliveChildren();
        assertTrue(ranks.containsAll(children), "processes left behind by the sweep: " + children + ", pool ranks: " + ranks);
        try (Stream<Path> files = Files.walk(dir)) {
            List<Path> partial = files.filter(p -> p.getFileName().toString().matches(".*\\.(part|tmp)")).toList();
            assertEquals(List.of(), partial, "half-written files left behind");
        }

        // The session is alive: a magic runs, and a cell runs on a worker rank.
        Captured lsmagic = new Captured(false);
        MagicRunner.run("lsmagic", "--json", null, new MagicContext(lsmagic, null));
        assertEquals("Available magics", JsonParser.parseString(lsmagic.text().strip()).getAsJsonObject().get("title").getAsString());
        Captured cell = new Captured(false);
        MagicRunner.run("parallel", "--ranks 1 --json", "20 + 22", new MagicContext(cell, null));
        assertEquals("{\"values\":[\"42\"]}", cell.text().strip());
        session.stop();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!aliveChildren().isEmpty() && System.nanoTime() < deadline) Thread.sleep(100);
        assertEquals(Set.of(), aliveChildren(), "worker processes still alive after the session stopped its pool");
    }

    /** Every (command, parameter, bad value) from the registry and the picocli model. */
    List<Case> cases() {
        Map<String, List<Context>> contexts = contexts();
        List<Case> cases = new ArrayList<>();
        for (Magics.Entry e : Magics.all()) {
            CommandLine root = new CommandLine(e.factory().get());
            collect(e, root, List.of(), contexts, cases);
        }
        return cases;
    }

    private void collect(Magics.Entry e, CommandLine cl, List<String> path, Map<String, List<Context>> contexts, List<Case> out) {
        String key = String.join(" ", concat(List.of(e.name()), path));
        List<Context> ctxs = contexts.getOrDefault(key, List.of(Context.of()));
        CommandSpec spec = cl.getCommandSpec();
        for (Context ctx : ctxs) {
            Context c = ctx.body == null && !e.line() ? ctx.body("1") : ctx;
            for (OptionSpec o : spec.options()) {
                if (o.usageHelp() || o.versionHelp()) continue;
                for (String v : values(o)) {
                    List<String> opts = withoutOption(c.options, o);
                    opts.add(o.longestName() + "=" + v);
                    out.add(new Case(e.name(), path, c, o.longestName(), v, arguments(path, opts, c.positionals)));
                }
            }
            for (PositionalParamSpec p : spec.positionalParameters()) {
                int at = p.index().min();
                for (String v : values(p)) {
                    List<String> pos = new ArrayList<>(c.positionals);
                    if (at < pos.size()) pos.set(at, v);
                    else pos.add(v);
                    out.add(new Case(e.name(), path, c, p.paramLabel(), v, arguments(path, new ArrayList<>(c.options), pos)));
                }
            }
        }
        for (Map.Entry<String, CommandLine> sub : cl.getSubcommands().entrySet()) {
            collect(e, sub.getValue(), concat(path, List.of(sub.getKey())), contexts, out);
        }
    }

    private static List<String> arguments(List<String> path, List<String> options, List<String> positionals) {
        List<String> args = new ArrayList<>(path);
        args.addAll(options);
        // A value such as -1 would read as an option: "--" ends the options.
        if (positionals.stream().anyMatch(p -> p.startsWith("-"))) args.add("--");
        args.addAll(positionals);
        return args;
    }

    /** The context's flags without {@code o} (and its value), so the swept value is the only one. */
    private static List<String> withoutOption(List<String> options, OptionSpec o) {
        List<String> out = new ArrayList<>();
        Set<String> names = Set.of(o.names());
        for (int i = 0; i < options.size(); i++) {
            if (names.contains(options.get(i))) {
                if (o.arity().max() > 0) i++;
                continue;
            }
            out.add(options.get(i));
        }
        return out;
    }

    /** Generated bad values by the parameter's type, and by its name for strings that are paths. */
    List<String> values(ArgSpec a) {
        Class<?> t = a.type();
        if ((Collection.class.isAssignableFrom(t) || t.isArray()) && a.auxiliaryTypes().length > 0) t = a.auxiliaryTypes()[0];
        if (a.arity().max() == 0) return List.of(); // a switch takes no value
        List<String> v = new ArrayList<>();
        if (t == int.class || t == Integer.class || t == long.class || t == Long.class || t == short.class || t == Short.class) {
            v.addAll(NUMBERS);
        } else if (t == double.class || t == Double.class || t == float.class || t == Float.class) {
            v.addAll(NUMBERS);
            v.addAll(FRACTIONS);
        } else if (Path.class.isAssignableFrom(t) || t == File.class) {
            v.addAll(files());
        } else if (t.isEnum()) {
            v.addAll(List.of("nonsense", ""));
        } else {
            v.addAll(WORDS);
            String label = (String.join(" ", a.isOption() ? ((OptionSpec) a).names() : new String[0]) + " " + a.paramLabel())
                    .toLowerCase(Locale.ROOT);
            if (FILE_LIKE.matcher(label).find()) v.addAll(files());
        }
        return v;
    }

    /** Puts the bad files back as they were: a legal run may have written over one. */
    private void resetFiles() throws IOException {
        for (Path p : List.of(missing.getParent(), directory)) {
            if (Files.exists(p)) {
                try (Stream<Path> s = Files.walk(p)) {
                    for (Path x : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(x);
                }
            }
        }
        Files.createDirectories(directory);
        Files.write(empty, new byte[0]);
        Files.write(garbage, "\u0007not a model, not JSON {[\"\n\0\0\0".getBytes(StandardCharsets.UTF_8));
    }

    private List<String> files() {
        return List.of(missing.toString(), directory.toString(), empty.toString(), garbage.toString());
    }

    /** Runs one case; returns its outcome and adds a line to {@code problems} when it misbehaved. */
    private String check(Case c, ExecutorService runner, List<String> problems) throws Exception {
        resetFiles();
        Captured output = new Captured(!c.context.runs);
        String line = c.args.stream().map(BadInputPropertyTest::quote).collect(Collectors.joining(" "));
        Future<?> f = runner.submit(() -> {
            MagicRunner.run(c.magic, line, c.context.body, new MagicContext(output, null));
            return null;
        });
        String outcome;
        try {
            f.get(60, TimeUnit.SECONDS);
            outcome = "accepted";
        } catch (TimeoutException e) {
            f.cancel(true);
            problems.add(c.describe() + " -> still running after 60 s");
            return "hung";
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable t = e.getCause();
            if (t instanceof Started) {
                outcome = "started";
            } else if (t instanceof MagicError me) {
                outcome = "refused";
                String m = String.valueOf(me.getMessage());
                if (m.contains("\n") || m.isBlank()) problems.add(c.describe() + " -> not one line: " + m.replace("\n", "\\n"));
                else if (STACK_TRACE.matcher(m).find()) problems.add(c.describe() + " -> an exception's name in the message: " + m);
            } else {
                problems.add(c.describe() + " -> " + t.getClass().getName() + ": " + t.getMessage() + " at " + where(t));
                return "escaped";
            }
        }
        String text = output.text();
        if (STACK_TRACE.matcher(text).find())
            problems.add(c.describe() + " -> printed: " + text.lines().filter(l -> STACK_TRACE.matcher(l).find()).findFirst().orElse(""));
        return outcome;
    }

    private static String where(Throwable t) {
        for (StackTraceElement s : t.getStackTrace()) if (s.getClassName().startsWith("parallax.")) return s.toString();
        return t.getStackTrace().length > 0 ? t.getStackTrace()[0].toString() : "?";
    }

    /** One argument for {@link ArgLine}: single quotes keep blanks and empty strings. */
    static String quote(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }

    private static Set<Long> aliveChildren() {
        return ProcessHandle.current().descendants().filter(ProcessHandle::isAlive).map(ProcessHandle::pid)
                .collect(Collectors.toSet());
    }

    private static <T> List<T> concat(List<T> a, List<T> b) {
        List<T> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    /** A safetensors file of two small float32 tensors. */
    static Path tinyModel(Path f) {
        List<TensorSpec> specs = List.of(new TensorSpec("h.0.attn.c_attn.weight", DType.F32, new long[] {24, 8}),
                new TensorSpec("wte.weight", DType.F32, new long[] {16, 8}));
        try (TensorWriter w = Safetensors.writer(f, Map.of("format", "pt"), specs)) {
            for (TensorSpec s : specs) {
                w.beginTensor();
                ByteBuffer b = ByteBuffer.allocate((int) s.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; b.hasRemaining(); i++) b.putFloat(i * 0.01f);
                b.flip();
                w.write(b);
            }
            w.commit();
        }
        return f;
    }

    /** Collects the text a magic prints; its progress display marks where long work would start. */
    static final class Captured implements Output {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        final boolean stopAtProgress;

        Captured(boolean stopAtProgress) {
            this.stopAtProgress = stopAtProgress;
        }

        @Override public PrintStream out() { return out; }

        @Override public void display(Object value) {
            if (value instanceof CharSequence s) out.println(s);
        }

        @Override public Progress progress(String label, long total) {
            if (stopAtProgress) throw new Started(label);
            return Progress.NONE;
        }

        String text() { return bytes.toString(StandardCharsets.UTF_8); }
    }
}
