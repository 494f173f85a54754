package parallax.engine.parallel;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import parallax.engine.UserError;
import parallax.engine.formats.AtomicFile;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorEntry;
import parallax.engine.model.GptConfig;

/**
 * The on-disk form of a distributed checkpoint, after torch.distributed.checkpoint: one
 * directory per saved step ({@code step-00000010/}) holding each rank's own pieces in a
 * safetensors file ({@code rank-00003.safetensors}, readable by {@code %inspect}) and one
 * metadata file, {@code checkpoint.json}, that describes the layout and, for every saved
 * tensor (the fp32 weights and each optimizer state of every parameter), its global shape
 * and which box of it lies in which file under which name.
 *
 * <p>Every file is written under a temporary name, flushed to disk and renamed; the
 * metadata goes last, after every rank's file is in place. A checkpoint is complete exactly
 * when its metadata exists, so a crash during a save leaves the previous one as the latest.
 * Each piece carries a CRC32C of its bytes in its file's header, checked when it is read.
 */
public final class DistributedCheckpoint {

    /** The value of {@code format} in the metadata. */
    static final String FORMAT = "parallax-distributed-checkpoint";
    static final int VERSION = 1;
    static final String METADATA = "checkpoint.json";
    /** Keys of a shard file's {@code __metadata__}. */
    static final String KEY_PREFIX = "parallax.checkpoint.";
    static final String CRC_PREFIX = "crc32c/";

    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{8})");
    static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().setPrettyPrinting().create();

    private DistributedCheckpoint() {}

    // ---- what checkpoint.json holds ----

    /** The layout the checkpoint was saved from. */
    public record Layout(int dp, int tp, int pp, int zero, int microBatches, String precision, int world) {
        public String label() { return "dp=" + dp + ",tp=" + tp + ",pp=" + pp + ",zero=" + zero; }
    }

    /** What a resumed run must share with the saved one. */
    public record Run(long seed, int batch, String optimizer, double lr, String data, String dataFile, int steps) {}

    /** fp16's dynamic loss scale and its growth clock. */
    public record Scaler(double scale, int cleanSteps) {}

    /**
     * Where the data stands: batch s is drawn from a generator seeded by (seed, s)
     * ({@code TextData}), so the next step is the whole data position; the model has no
     * other random state (no dropout).
     */
    public record DataPosition(int nextStep, String rule) {}

    /** One rank's file. */
    public record ShardFile(String name, int rank, int dpRank, int tpRank, int ppRank, long bytes) {}

    /** One box of a saved tensor: where it lies in the global tensor, and in which file under which name. */
    public record SavedChunk(String file, String key, long[] offsets, long[] sizes) {
        Chunk box() { return new Chunk(offsets, sizes); }
    }

    /** A saved tensor: kind ("param", "exp_avg", ...), parameter name, global shape, its boxes. */
    public record SavedTensor(String kind, String name, long[] shape, String dtype, List<SavedChunk> chunks) {}

    /** checkpoint.json. {@code loss}: the global loss of steps 1..step. */
    public record Metadata(String format, int version, int step, int generation, String savedAt, Layout layout,
                           GptConfig model, Run run, Scaler lossScaler, long optimizerSteps, DataPosition data,
                           double[] loss, List<ShardFile> files, Map<String, SavedTensor> tensors) {

        /** Bytes of every shard file together. */
        public long totalBytes() {
            long b = 0;
            for (ShardFile f : files) b += f.bytes();
            return b;
        }
    }

    // ---- names ----

    static Path stepDir(Path root, int step) { return root.resolve(String.format("step-%08d", step)); }

    static String shardName(int rank) { return String.format("rank-%05d.safetensors", rank); }

    /** The name a piece is stored under in its rank's file: kind/parameter@offsets. */
    static String key(String kind, String name, Chunk global) { return kind + "/" + name + "@" + global.offsetsText(); }

    // ---- finding, reading, checking ----

    /** The newest complete checkpoint under {@code root}, or null when there is none. */
    public static Path latest(Path root) {
        List<Path> done = complete(root);
        return done.isEmpty() ? null : done.get(done.size() - 1);
    }

    /** Complete checkpoints under {@code root}, oldest first. */
    static List<Path> complete(Path root) {
        List<Path> out = new ArrayList<>();
        for (Path d : stepDirs(root)) if (Files.isRegularFile(d.resolve(METADATA))) out.add(d);
        return out;
    }

    private static List<Path> stepDirs(Path root) {
        if (!Files.isDirectory(root)) return List.of();
        try (Stream<Path> s = Files.list(root)) {
            return s.filter(p -> Files.isDirectory(p) && STEP_DIR.matcher(p.getFileName().toString()).matches())
                    .sorted(Comparator.comparing(p -> p.getFileName().toString())).toList();
        } catch (IOException e) {
            throw new UserError("cannot list checkpoints in " + root + ": " + e.getMessage());
        }
    }

    /**
     * What {@code --resume PATH} names: a checkpoint (a directory with checkpoint.json), or a
     * checkpoint directory whose newest complete checkpoint is taken.
     */
    public static Path resolve(Path given) {
        if (Files.isRegularFile(given.resolve(METADATA))) return given;
        if (!Files.isDirectory(given)) throw new UserError("--resume " + given + ": no such directory");
        Path latest = latest(given);
        if (latest == null)
            throw new UserError("--resume " + given + ": no complete checkpoint there (a step-NNNNNNNN directory with " + METADATA + ")");
        return latest;
    }

    /** Reads a checkpoint's metadata; one line when it is missing or unreadable. */
    public static Metadata read(Path stepDir) {
        Path m = stepDir.resolve(METADATA);
        String text;
        try {
            text = Files.readString(m, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new UserError("checkpoint " + stepDir + " is incomplete: it has no " + METADATA);
        } catch (IOException e) {
            throw new UserError("checkpoint " + m + " cannot be read: " + e.getMessage());
        }
        Metadata md;
        try {
            md = GSON.fromJson(text, Metadata.class);
        } catch (JsonParseException | IllegalStateException e) {
            throw new UserError("checkpoint " + m + " is not valid metadata: " + firstLine(e.getMessage()));
        }
        if (md == null || !FORMAT.equals(md.format()))
            throw new UserError("checkpoint " + m + " is not a Parallax distributed checkpoint (format is not " + FORMAT + ")");
        if (md.version() != VERSION) throw new UserError("checkpoint " + m + " has version " + md.version() + "; this build reads " + VERSION);
        if (md.files() == null || md.tensors() == null || md.layout() == null || md.model() == null || md.run() == null)
            throw new UserError("checkpoint " + m + " lacks its layout, model, run, files or tensors");
        return md;
    }

    /**
     * Reads the metadata and checks every file it names against it: present, of the size
     * recorded, a safetensors header naming every piece with the recorded shape, from the
     * same step. (The pieces' bytes are checked against their CRC32C when ranks read them.)
     * One line for the first problem found.
     */
    public static Metadata verify(Path stepDir) {
        Metadata md = read(stepDir);
        Map<String, Set<String>> keysByFile = new LinkedHashMap<>();
        for (SavedTensor t : md.tensors().values())
            for (SavedChunk c : t.chunks()) keysByFile.computeIfAbsent(c.file(), k -> new HashSet<>()).add(c.key());
        for (ShardFile f : md.files()) {
            Path p = stepDir.resolve(f.name());
            if (!Files.isRegularFile(p))
                throw new UserError("checkpoint " + stepDir + ": the metadata names shard " + f.name() + " (rank " + f.rank() + "), which is missing");
            long size = sizeOf(p);
            if (size != f.bytes())
                throw new UserError("checkpoint " + stepDir + ": shard " + f.name() + " is " + size + " bytes but the metadata records "
                        + f.bytes() + " (truncated or replaced)");
            try (Safetensors s = Safetensors.open(p)) {
                Object step = s.metadata().get(KEY_PREFIX + "step");
                if (!String.valueOf(md.step()).equals(step))
                    throw new UserError("checkpoint " + stepDir + ": shard " + f.name() + " was saved at step " + step + ", not " + md.step());
                Map<String, TensorEntry> byName = new LinkedHashMap<>();
                for (TensorEntry e : s.tensors()) byName.put(e.name(), e);
                for (String key : keysByFile.getOrDefault(f.name(), Set.of())) {
                    if (!byName.containsKey(key))
                        throw new UserError("checkpoint " + stepDir + ": shard " + f.name() + " lacks piece " + key + " that the metadata lists");
                }
            } catch (UserError e) {
                if (e.getMessage().startsWith("checkpoint ")) throw e;
                throw new UserError("checkpoint " + stepDir + ": shard " + f.name() + " is damaged: " + e.getMessage());
            }
        }
        for (String file : keysByFile.keySet())
            if (md.files().stream().noneMatch(f -> f.name().equals(file)))
                throw new UserError("checkpoint " + stepDir + ": a piece lies in " + file + ", which the metadata does not list");
        return md;
    }

    /**
     * Checks that {@code spec} can continue the saved run: the same model, optimizer, seed,
     * global batch and data (the data position assumes them), and steps left to train.
     * The layout (dp, tp, pp, ZeRO stage, micro-batches) may differ: resharding covers it.
     */
    static void requireCompatible(Metadata md, TrainSpec spec, Path where) {
        String p = "--resume " + where + ": ";
        GptConfig a = md.model(), b = spec.model();
        if (a.layers() != b.layers() || a.hidden() != b.hidden() || a.heads() != b.heads() || a.vocab() != b.vocab()
                || a.sequence() != b.sequence() || a.ffn() != b.ffn())
            throw new UserError(p + "the checkpoint holds model " + a.name() + " (" + a.layers() + " layers, hidden " + a.hidden()
                    + ", " + a.heads() + " heads); this run builds " + b.name() + " (" + b.layers() + " layers, hidden " + b.hidden()
                    + ", " + b.heads() + " heads)");
        if (!md.run().optimizer().equals(spec.optimizer()))
            throw new UserError(p + "the checkpoint's optimizer state is " + md.run().optimizer() + "'s; this run uses " + spec.optimizer());
        if (md.run().seed() != spec.seed())
            throw new UserError(p + "the checkpoint was trained with --seed " + md.run().seed() + " (its data order); this run asks " + spec.seed());
        if (md.run().batch() != spec.batch())
            throw new UserError(p + "the checkpoint was trained with global batch " + md.run().batch() + "; this run asks " + spec.batch()
                    + " (change the layout, not the batch: accumulation keeps it)");
        String data = spec.data().toString().toLowerCase(java.util.Locale.ROOT);
        if (!md.run().data().equals(data) || !java.util.Objects.equals(md.run().dataFile(), spec.dataFile()))
            throw new UserError(p + "the checkpoint was trained on data " + md.run().data()
                    + (md.run().dataFile() == null ? "" : " " + md.run().dataFile()) + "; this run reads " + data
                    + (spec.dataFile() == null ? "" : " " + spec.dataFile()));
        if (md.step() >= spec.steps())
            throw new UserError(p + "the checkpoint is at step " + md.step() + "; --steps " + spec.steps()
                    + " leaves nothing to train (--steps counts from the run's start)");
    }

    // ---- writing the metadata, keeping N ----

    /** Writes {@code md} as the step's checkpoint.json: temp file, fsync, rename, then the directory flushed. */
    static void writeMetadata(Path stepDir, Metadata md) {
        try (AtomicFile f = new AtomicFile(stepDir.resolve(METADATA))) {
            f.write(GSON.toJson(md).getBytes(StandardCharsets.UTF_8));
            f.commit();
        }
        syncDirectory(stepDir);
    }

    /**
     * Keeps the newest {@code keep} complete checkpoints: deletes older ones, incomplete
     * directories older than the newest complete one (left by a crash), and in the kept
     * ones any file the metadata does not name (a killed writer's temp file, a larger
     * world's shard from before a shrink).
     */
    static List<Path> prune(Path root, int keep) {
        List<Path> done = complete(root);
        List<Path> removed = new ArrayList<>();
        if (done.isEmpty()) return removed;
        int newest = stepOf(done.get(done.size() - 1));
        for (int i = 0; i < done.size() - keep; i++) removed.add(done.get(i));
        for (Path d : stepDirs(root)) if (!Files.isRegularFile(d.resolve(METADATA)) && stepOf(d) < newest) removed.add(d);
        for (Path d : removed) deleteTree(d);
        for (int i = Math.max(0, done.size() - keep); i < done.size(); i++) {
            Path d = done.get(i);
            Set<String> named = new HashSet<>();
            named.add(METADATA);
            try {
                for (ShardFile f : read(d).files()) named.add(f.name());
            } catch (UserError e) {
                continue; // unreadable metadata: leave the directory as it is
            }
            try (Stream<Path> s = Files.list(d)) {
                for (Path f : s.toList()) if (!named.contains(f.getFileName().toString())) Files.deleteIfExists(f);
            } catch (IOException ignored) {
                // best effort: a stray file does not make the checkpoint wrong
            }
        }
        return removed;
    }

    static int stepOf(Path stepDir) {
        Matcher m = STEP_DIR.matcher(stepDir.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    private static void deleteTree(Path d) {
        try (Stream<Path> s = Files.walk(d)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort: an old checkpoint left behind costs disk, not correctness
        }
    }

    /** Flushes a directory's entries (the renames in it) to disk. */
    static void syncDirectory(Path dir) {
        try (FileChannel c = FileChannel.open(dir, StandardOpenOption.READ)) {
            c.force(true);
        } catch (IOException ignored) {
            // not every filesystem lets a directory be opened; the rename is still atomic
        }
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "unreadable";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }
}
