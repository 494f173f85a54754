package parallax.engine.parallel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32C;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.UserError;
import parallax.engine.cluster.Mesh;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorEntry;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.model.Gpt;
import parallax.engine.numerics.DType;

/**
 * One rank's checkpoint writer, on a thread of its own so that training goes on while the
 * bytes reach the disk (DCP's async_save): the training thread hands it a snapshot already
 * copied to host memory; the writer names each piece as a box of the full tensor, writes
 * the rank's safetensors file (temp name, fsync, rename) with every piece's CRC32C in the
 * header, and frees the snapshot. On rank 0 it then waits for every rank's file of the same
 * step and generation, writes checkpoint.json last and prunes to the newest {@code keep}.
 *
 * <p>Only one save is in flight: a save due while the last one is still writing waits for
 * it (the wait is counted as the save's stall).
 */
final class CheckpointWriter implements AutoCloseable {

    /** How long rank 0 waits for the other ranks' files before giving the checkpoint up. */
    static final long COMMIT_TIMEOUT_NANOS = 600_000_000_000L;
    /** Slice of a piece written at once, so a bandwidth cap can pace the writes. */
    private static final int WRITE_SLICE = 4 << 20;

    /** What one save cost this rank. */
    record Save(int step, long stateBytes, long fileBytes, double snapshotMs, double waitMs, double writeMs) {}

    /** What rank 0 needs for the metadata beside the files. */
    record RunState(DistributedCheckpoint.Layout layout, DistributedCheckpoint.Run run, double[] lossBefore) {}

    private final Path root;
    private final TrainSpec spec;
    private final int rank;
    private final Mesh.Coords at;
    private final int tpSize;
    private final RunState state;
    private final TrainingLoop.StepListener events;
    private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "parallax-checkpoint");
        t.setDaemon(true);
        return t;
    });
    private Future<?> pending;
    final List<Save> saves = new ArrayList<>();
    /** Wall-clock intervals [start, end] (nanoTime) during which a write ran. */
    final List<long[]> busy = new ArrayList<>();

    CheckpointWriter(Path root, TrainSpec spec, int rank, Mesh.Coords at, RunState state, TrainingLoop.StepListener events) {
        this.root = root;
        this.spec = spec;
        this.rank = rank;
        this.at = at;
        this.tpSize = spec.tp();
        this.state = state;
        this.events = events;
    }

    /**
     * Writes {@code slices} as step {@code step} in the background. {@code rankMeta}: the
     * rank's own facts (optimizer steps, loss scale, its loss history when it keeps one).
     */
    void save(int step, List<StoreState.UnitSlice> slices, Map<String, String> rankMeta, double snapshotMs) {
        long w0 = System.nanoTime();
        awaitPending();
        double waitMs = (System.nanoTime() - w0) / 1e6;
        pending = thread.submit(() -> {
            long t0 = System.nanoTime();
            try {
                long[] sizes = writeShard(step, slices, rankMeta);
                Save s = new Save(step, sizes[0], sizes[1], snapshotMs, waitMs, (System.nanoTime() - t0) / 1e6);
                synchronized (saves) { saves.add(s); }
                if (rank == 0) commit(step, t0);
            } finally {
                for (StoreState.UnitSlice u : slices) u.close();
                synchronized (busy) { busy.add(new long[] {t0, System.nanoTime()}); }
            }
            return null;
        });
    }

    /** Waits for the save in flight; a failed write ends the run with its one line. */
    void awaitPending() {
        if (pending == null) return;
        try {
            pending.get();
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            throw c instanceof UserError u ? u : new UserError("checkpoint write failed: " + c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while a checkpoint was being written");
        } finally {
            pending = null;
        }
    }

    /** Whether a write is running now. */
    boolean writing() { return pending != null && !pending.isDone(); }

    // ---- the rank's file ----

    /** One piece to write: its name, box and where its values lie in the snapshot. */
    private record Piece(String key, Chunk global, Tensor source, long at, long count) {}

    /** Writes this rank's file; returns {state bytes, file bytes}. */
    private long[] writeShard(int step, List<StoreState.UnitSlice> slices, Map<String, String> rankMeta) throws java.io.IOException {
        Path dir = DistributedCheckpoint.stepDir(root, step);
        Files.createDirectories(dir);
        List<Piece> pieces = new ArrayList<>();
        long stateBytes = 0;
        for (StoreState.UnitSlice u : slices) {
            stateBytes += u.stateBytes();
            for (int i = 0; i < u.specs().size(); i++) {
                Gpt.ParamSpec p = u.specs().get(i);
                // A tensor every TP rank holds whole is written by TP rank 0 alone.
                if (p.shardDim() < 0 && at.tpRank() != 0) continue;
                long a = Math.max(u.from(), u.offsets()[i]), b = Math.min(u.to(), u.offsets()[i] + p.numel());
                if (a >= b) continue;
                long pos = a - u.from();
                for (Chunk local : Chunk.ofFlatRange(p.shape(), a - u.offsets()[i], b - u.offsets()[i])) {
                    Chunk global = p.shardDim() < 0 ? local : local.shifted(p.shardDim(), at.tpRank() * p.shape()[p.shardDim()]);
                    for (Map.Entry<String, Tensor> e : u.tensors().entrySet())
                        pieces.add(new Piece(DistributedCheckpoint.key(e.getKey(), p.name(), global), global, e.getValue(), pos, local.numel()));
                    pos += local.numel();
                }
            }
        }
        Map<String, String> meta = new LinkedHashMap<>();
        String k = DistributedCheckpoint.KEY_PREFIX;
        meta.put(k + "format", DistributedCheckpoint.FORMAT);
        meta.put(k + "step", Integer.toString(step));
        meta.put(k + "generation", Integer.toString(spec.faultTolerance().generation()));
        meta.put(k + "run", runTag());
        meta.put(k + "rank", Integer.toString(rank));
        meta.put(k + "world", Integer.toString(spec.world()));
        meta.put(k + "coords", at.dpRank() + "," + at.tpRank() + "," + at.ppRank());
        meta.putAll(rankMeta);
        List<TensorSpec> specs = new ArrayList<>();
        for (Piece p : pieces) {
            specs.add(new TensorSpec(p.key(), DType.F32, p.global().sizes()));
            CRC32C crc = new CRC32C();
            crc.update(bytes(p));
            meta.put(DistributedCheckpoint.CRC_PREFIX + p.key(), String.format("%08x", crc.getValue()));
        }
        Path file = dir.resolve(DistributedCheckpoint.shardName(rank));
        long limit = spec.faultTolerance().saveBytesPerSecond();
        long t0 = System.nanoTime(), written = 0;
        try (TensorWriter w = Safetensors.writer(file, meta, specs)) {
            for (Piece p : pieces) {
                w.beginTensor();
                ByteBuffer all = bytes(p);
                while (all.hasRemaining()) {
                    ByteBuffer part = all.slice();
                    int n = Math.min(part.remaining(), WRITE_SLICE);
                    part.limit(n);
                    w.write(part);
                    all.position(all.position() + n);
                    written += n;
                    if (limit > 0) pace(t0, written, limit);
                }
            }
            w.commit();
        }
        DistributedCheckpoint.syncDirectory(dir);
        return new long[] {stateBytes, Files.size(file)};
    }

    /** The little-endian bytes of a piece, straight from the snapshot's host memory. */
    private static ByteBuffer bytes(Piece p) {
        FloatPointer f = p.source().data_ptr_float();
        f.position(p.at()).limit(p.at() + p.count());
        ByteBuffer b = f.asByteBuffer();
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) throw new IllegalStateException("big-endian hosts are not supported");
        return b;
    }

    /** Sleeps until {@code written} bytes fit {@code limit} bytes a second since {@code t0}. */
    private static void pace(long t0, long written, long limit) {
        long due = t0 + (long) (written * 1e9 / limit);
        long wait = due - System.nanoTime();
        if (wait > 0) {
            try {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---- rank 0: the metadata, after every file ----

    private void commit(int step, long t0) {
        Path dir = DistributedCheckpoint.stepDir(root, step);
        int world = spec.world();
        String tag = runTag();
        List<DistributedCheckpoint.ShardFile> files = new ArrayList<>();
        Map<String, DistributedCheckpoint.SavedTensor> tensors = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (Gpt.ParamSpec p : Gpt.allParams(spec.model())) shapes.put(p.name(), p.fullShape());
        double[] lossAfter = null;
        int lossRanks = 0;
        long optimizerSteps = 0;
        DistributedCheckpoint.Scaler scaler = null;
        long deadline = System.nanoTime() + COMMIT_TIMEOUT_NANOS;
        for (int r = 0; r < world; r++) {
            String name = DistributedCheckpoint.shardName(r);
            Path f = dir.resolve(name);
            Safetensors s = awaitShard(f, step, tag, deadline);
            try (s) {
                Map<String, Object> m = s.metadata();
                String k = DistributedCheckpoint.KEY_PREFIX;
                int[] c = Arrays.stream(String.valueOf(m.get(k + "coords")).split(",")).mapToInt(Integer::parseInt).toArray();
                files.add(new DistributedCheckpoint.ShardFile(name, r, c[0], c[1], c[2], Files.size(f)));
                if (r == 0) {
                    optimizerSteps = Long.parseLong(String.valueOf(m.get(k + "optimizer_steps")));
                    scaler = new DistributedCheckpoint.Scaler(Double.parseDouble(String.valueOf(m.get(k + "loss_scale"))),
                            Integer.parseInt(String.valueOf(m.get(k + "clean_steps"))));
                }
                if (m.get(k + "loss") instanceof String l) {
                    // the global loss as TrainingRun takes it: the last stage's ranks' own losses, summed in rank order, over their count
                    double[] mine = DistributedCheckpoint.GSON.fromJson(l, double[].class);
                    if (lossAfter == null) lossAfter = new double[mine.length];
                    for (int i = 0; i < Math.min(mine.length, lossAfter.length); i++) lossAfter[i] += mine[i];
                    lossRanks++;
                }
                for (TensorEntry e : s.tensors()) {
                    String key = e.name();
                    int slash = key.indexOf('/'), atSign = key.lastIndexOf('@');
                    String kind = key.substring(0, slash), param = key.substring(slash + 1, atSign);
                    long[] off = Arrays.stream(key.substring(atSign + 1).split(",")).mapToLong(Long::parseLong).toArray();
                    tensors.computeIfAbsent(kind + "/" + param, x -> new DistributedCheckpoint.SavedTensor(kind, param, shapes.get(param),
                            DType.F32.name(), new ArrayList<>())).chunks().add(new DistributedCheckpoint.SavedChunk(name, key, off, e.shape()));
                }
            } catch (java.io.IOException e) {
                throw new UserError("checkpoint " + dir + ": cannot read " + name + ": " + e.getMessage());
            }
        }
        double[] before = state.lossBefore();
        double[] after = lossAfter == null ? new double[0] : lossAfter;
        for (int i = 0; i < after.length; i++) after[i] /= Math.max(1, lossRanks);
        double[] loss = Arrays.copyOf(before, before.length + after.length);
        System.arraycopy(after, 0, loss, before.length, after.length);
        DistributedCheckpoint.Metadata md = new DistributedCheckpoint.Metadata(DistributedCheckpoint.FORMAT, DistributedCheckpoint.VERSION,
                step, spec.faultTolerance().generation(), Instant.now().toString(), state.layout(), spec.model(), state.run(), scaler,
                optimizerSteps, new DistributedCheckpoint.DataPosition(step, "batch s draws its rows from SplittableRandom(seed * 1000003 + s); "
                + "the next step to train is the whole data position (no other random state: no dropout)"), loss, files, tensors);
        DistributedCheckpoint.writeMetadata(dir, md);
        List<Path> removed = DistributedCheckpoint.prune(root, spec.faultTolerance().keep());
        Map<String, Object> ev = new LinkedHashMap<>();
        ev.put("step", step);
        ev.put("dir", dir.toString());
        ev.put("bytes", md.totalBytes());
        ev.put("files", files.size());
        ev.put("commitMs", (System.nanoTime() - t0) / 1e6);
        ev.put("removed", removed.stream().map(p -> p.getFileName().toString()).toList());
        events.event("checkpoint", ev);
    }

    /** This run and generation, as every file of a save names it. */
    private String runTag() {
        FaultTolerance ft = spec.faultTolerance();
        return (ft.runId() == null ? "-" : ft.runId()) + "/" + ft.generation();
    }

    /** Opens rank r's file of this step, run and generation once it is in place (polling), or gives the checkpoint up. */
    private Safetensors awaitShard(Path f, int step, String tag, long deadline) {
        while (true) {
            if (Files.isRegularFile(f)) {
                try {
                    Safetensors s = Safetensors.open(f);
                    Map<String, Object> m = s.metadata();
                    if (tag.equals(m.get(DistributedCheckpoint.KEY_PREFIX + "run"))
                            && String.valueOf(step).equals(m.get(DistributedCheckpoint.KEY_PREFIX + "step"))) return s;
                    s.close(); // another run's or generation's file of the same step (left by a crash): wait for this one's
                } catch (UserError e) {
                    // being replaced right now: look again
                }
            }
            if (System.nanoTime() > deadline)
                throw new UserError(String.format(Locale.ROOT, "checkpoint at step %d: %s did not appear within %d s; the checkpoint is incomplete",
                        step, f, COMMIT_TIMEOUT_NANOS / 1_000_000_000L));
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new UserError("interrupted while waiting for the other ranks' checkpoint files");
            }
        }
    }

    /** Waits for the last save, then stops the thread. */
    @Override
    public void close() {
        try {
            awaitPending();
        } finally {
            thread.shutdownNow();
        }
    }

    /** Stops without waiting (the run failed: a half-written file is deleted by its writer or left as a temp file). */
    void abandon() {
        thread.shutdownNow();
    }
}
