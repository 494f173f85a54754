package parallax.engine.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.Locale;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * llama.cpp as an outside reader of the GGUF files Parallax writes, through the npm package
 * node-llama-cpp 3.21.1 (its prebuilt CPU binaries; install/test.sh installs it into
 * ~/.parallax/node, or PARALLAX_NODE_LLAMA_CPP names another folder). Each call starts
 * {@code node} on llama-judge.mjs with one JSON request and reads one JSON answer: the
 * log-probabilities llama.cpp computes after each prefix of a token sequence, greedy
 * continuations, or llama.cpp's tokenization of a text. Nothing here links llama.cpp into
 * the JVM; a missing node or package is one line saying how to install it.
 */
public final class LlamaCpp {

    public static final String VERSION = "3.21.1";
    /** How long one node process may run before it is killed. */
    static final int TIMEOUT_SECONDS = 300;

    private LlamaCpp() {}

    /** The folder holding node_modules/node-llama-cpp. */
    public static Path home() {
        String env = System.getenv("PARALLAX_NODE_LLAMA_CPP");
        return env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".parallax", "node");
    }

    /** Empty when node and node-llama-cpp {@value #VERSION} are installed, else why not, in one line. */
    public static Optional<String> missing() {
        Path pkg = home().resolve("node_modules/node-llama-cpp/package.json");
        if (!Files.isRegularFile(pkg)) {
            return Optional.of("llama.cpp is not installed: run install/test.sh, or npm i -E --omit=optional --prefix " + home()
                    + " node-llama-cpp@" + VERSION + " @node-llama-cpp/linux-x64@" + VERSION);
        }
        try {
            String v = JsonParser.parseString(Files.readString(pkg)).getAsJsonObject().get("version").getAsString();
            if (!VERSION.equals(v)) return Optional.of("node-llama-cpp " + v + " is installed in " + home() + "; Parallax is tested with " + VERSION);
        } catch (IOException | RuntimeException e) {
            return Optional.of(pkg + " is unreadable: " + e.getMessage());
        }
        if (node() == null) return Optional.of("node is not on PATH (Debian: apt-get install nodejs)");
        return Optional.empty();
    }

    private static String node() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            Path p = Path.of(dir, "node");
            if (Files.isExecutable(p)) return p.toString();
        }
        return null;
    }

    /** A session's requests: every op runs in one node process, on one loaded model. */
    public static final class Request {
        private final Path model;
        private final int contextSize;
        private final boolean f32Cache;
        private final JsonArray ops = new JsonArray();

        /** @param f32Cache keep llama.cpp's K/V cache in F32 (its default is F16) so an F32 model is compared at full precision */
        public Request(Path model, int contextSize, boolean f32Cache) {
            this.model = model;
            this.contextSize = contextSize;
            this.f32Cache = f32Cache;
        }

        /** After each prefix tokens[0..i], the log-probability of every token. */
        public Request logProbs(long[] tokens) {
            JsonObject o = op("logprobs");
            o.add("tokens", ids(tokens));
            ops.add(o);
            return this;
        }

        /** {@code n} tokens chosen by argmax after {@code prompt}. */
        public Request greedy(long[] prompt, int n) {
            JsonObject o = op("greedy");
            o.add("tokens", ids(prompt));
            o.addProperty("n", n);
            ops.add(o);
            return this;
        }

        /** llama.cpp's tokens for {@code text} (no BOS, special tokens as text). */
        public Request tokenize(String text) {
            JsonObject o = op("tokenize");
            o.addProperty("text", text);
            ops.add(o);
            return this;
        }

        private static JsonObject op(String name) {
            JsonObject o = new JsonObject();
            o.addProperty("op", name);
            return o;
        }

        private static JsonArray ids(long[] tokens) {
            JsonArray a = new JsonArray();
            for (long t : tokens) a.add(t);
            return a;
        }

        /** Runs every op; the answers in order (float[][] for logProbs, long[] for greedy and tokenize). */
        public List<Object> run() {
            missing().ifPresent(m -> {
                throw new UserError(m);
            });
            JsonObject req = new JsonObject();
            req.addProperty("model", model.toAbsolutePath().toString());
            req.addProperty("contextSize", contextSize);
            req.addProperty("f32Cache", f32Cache);
            req.addProperty("threads", 1);
            req.add("ops", ops);
            Path dir = null;
            try {
                dir = Files.createTempDirectory("parallax-llama-");
                Path script = dir.resolve("llama-judge.mjs");
                try (InputStream in = LlamaCpp.class.getResourceAsStream("llama-judge.mjs")) {
                    Files.write(script, in.readAllBytes());
                }
                Path json = dir.resolve("request.json");
                Files.writeString(json, req.toString());
                ProcessBuilder pb = new ProcessBuilder(node(), script.toString(), json.toString());
                pb.environment().put("PARALLAX_NODE_LLAMA_CPP", home().toAbsolutePath().toString());
                // both streams to files: a process that stops answering cannot block a reader, only time out
                pb.redirectOutput(dir.resolve("stdout.txt").toFile());
                pb.redirectError(dir.resolve("stderr.txt").toFile());
                Process p = pb.start();
                if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                    throw new UserError("llama.cpp did not answer within " + TIMEOUT_SECONDS + " s for " + model.getFileName());
                }
                String text = Files.readString(dir.resolve("stdout.txt")).trim();
                String last = text.isEmpty() ? "" : text.substring(text.lastIndexOf('\n') + 1);
                if (last.isEmpty()) {
                    String err = Files.readString(dir.resolve("stderr.txt")).trim();
                    throw new UserError("llama.cpp (node-llama-cpp) exited with " + p.exitValue() + " on " + model.getFileName()
                            + (err.isEmpty() ? "" : ": " + err.lines().reduce((a, b) -> b).orElse("")));
                }
                JsonObject answer = JsonParser.parseString(last).getAsJsonObject();
                if (answer.has("error")) throw new UserError("llama.cpp could not run " + model.getFileName() + ": " + answer.get("error").getAsString());
                List<Object> results = new ArrayList<>();
                JsonArray rs = answer.getAsJsonArray("results");
                for (int i = 0; i < ops.size(); i++) {
                    String op = ops.get(i).getAsJsonObject().get("op").getAsString();
                    JsonArray r = rs.get(i).getAsJsonArray();
                    if (op.equals("logprobs")) {
                        float[][] rows = new float[r.size()][];
                        for (int t = 0; t < r.size(); t++) {
                            JsonArray row = r.get(t).getAsJsonArray();
                            rows[t] = new float[row.size()];
                            for (int k = 0; k < row.size(); k++) {
                                JsonElement e = row.get(k);
                                rows[t][k] = e.isJsonNull() ? Float.NEGATIVE_INFINITY : e.getAsFloat();
                            }
                        }
                        results.add(rows);
                    } else {
                        long[] ids = new long[r.size()];
                        for (int k = 0; k < ids.length; k++) ids[k] = r.get(k).getAsLong();
                        results.add(ids);
                    }
                }
                return results;
            } catch (IOException e) {
                throw new UserError("could not run llama.cpp through node: " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new UserError("interrupted while llama.cpp ran");
            } finally {
                if (dir != null) deleteTree(dir);
            }
        }
    }

    private static void deleteTree(Path dir) {
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
        } catch (IOException ignored) {
            // our own temp folder; best effort
        }
    }

    /**
     * What a notebook cell shows: the same prompt continued greedily by llama.cpp running
     * {@code gguf} and by the engine running {@code model} (its libtorch forward), side by
     * side, with how many tokens agree. Never throws for a missing llama.cpp: the report then
     * is the one line saying what to install.
     */
    public static Report sideBySide(Checkpoint.Loaded model, Path gguf, String prompt, int tokens) {
        Report.Builder r = Report.builder("llama.cpp vs the engine");
        Optional<String> missing = missing();
        if (missing.isPresent()) return r.text(missing.get()).build();
        long[] ids = CheckpointGguf.byteIds(prompt);
        if (ids.length + tokens > model.config().sequence())
            return r.text("prompt (" + ids.length + " tokens) and continuation (" + tokens + ") must fit the model's context of "
                    + model.config().sequence()).build();
        long[] ours = CheckpointGguf.greedy(model, ids, tokens);
        long[] theirs;
        try {
            theirs = (long[]) new Request(gguf, model.config().sequence(), true).greedy(ids, tokens).run().get(0);
        } catch (UserError e) {
            return r.text(e.getMessage()).build();
        }
        int same = 0;
        while (same < Math.min(ours.length, theirs.length) && ours[same] == theirs[same]) same++;
        StringColumn who = StringColumn.create("model");
        StringColumn text = StringColumn.create("continuation");
        IntColumn n = IntColumn.create("tokens");
        who.append("llama.cpp (node-llama-cpp " + VERSION + ") on " + gguf.getFileName());
        text.append(CheckpointGguf.text(theirs));
        n.append(theirs.length);
        who.append("engine (libtorch) on the checkpoint");
        text.append(CheckpointGguf.text(ours));
        n.append(ours.length);
        return r.text(String.format(Locale.ROOT, "Greedy continuation of %s: the first %d of %d tokens are the same.",
                        "\"" + prompt + "\"", same, tokens))
                .table(Table.create("greedy generation", who, text, n), "argmax at every step, " + tokens + " tokens after the prompt")
                .data(new SideBySide(prompt, theirs, ours, same)).build();
    }

    /** The tokens each side chose and how many agree from the start. */
    public record SideBySide(String prompt, long[] llamaCpp, long[] engine, int sameFromStart) {}
}
