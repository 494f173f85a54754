package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parallax.engine.UserError;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorEntry;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;

/**
 * Distributed checkpoints with ranks as threads of this JVM: a run resumed on the same
 * layout continues bit for bit; resumed on another layout (the checkpoint resharded) it
 * stays within 1e-5 relative of the uninterrupted run for the 20 steps that follow; a
 * checkpoint a crash left incomplete is passed over; damaged ones are refused in one line
 * and nothing in their directory changes.
 */
class CheckpointResumeTest {

    @TempDir
    Path tmp;

    static TrainSpec base(int steps) {
        return TrainSpec.defaults(GptConfig.tiny()).withSteps(steps).withBatch(8).withExport(true);
    }

    static TrainSpec layout(TrainSpec s, String l) {
        String[] f = l.split("/");
        int dp = Integer.parseInt(f[0]), tp = Integer.parseInt(f[1]), pp = Integer.parseInt(f[2]);
        s = s.withLayout(dp, tp, pp).withZero(Integer.parseInt(f[3]));
        if (pp > 1) s = s.withMicroBatches(2 * pp / dp > 0 ? 4 / dp : 1, PipelineParallel.Schedule.ONE_F_ONE_B);
        return s;
    }

    static TrainSpec saving(TrainSpec s, Path dir, int every) {
        return s.withFaultTolerance(s.faultTolerance().withSaving(every, dir.toString(), 5));
    }

    static TrainSpec resuming(TrainSpec s, Path from) {
        return s.withFaultTolerance(s.faultTolerance().withResume(from.toString()));
    }

    /** Runs {@code spec} as the coordinator would: its checkpoint flags checked first. */
    static List<RankResult> run(TrainSpec spec) throws Exception {
        return LocalGroups.run(Training.resolveCheckpoints(spec));
    }

    static double[] loss(List<RankResult> ranks) {
        int n = ranks.get(0).stepMs().length;
        return TrainingRun.globalLoss(ranks, n);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({
            "2/1/1/1, fp32, adamw",
            "2/1/1/3, fp16, sgd",
            "1/2/2/0, bf16, adamw",
    })
    void sameLayoutContinuesBitForBit(String l, String precision, String optimizer) throws Exception {
        TrainSpec spec = layout(base(20), l).withPrecision(DType.fromLabel(precision, DType.TRAINING).orElseThrow())
                .withOptimizer(optimizer, optimizer.equals("sgd") ? 0.05 : 1e-3);
        Path dir = tmp.resolve("ckpt");
        List<RankResult> whole = run(saving(spec, dir, 10));
        Path ten = DistributedCheckpoint.stepDir(dir, 10);
        assertEquals(List.of(ten, DistributedCheckpoint.stepDir(dir, 20)), DistributedCheckpoint.complete(dir));
        checkLayoutDescription(ten, spec);

        List<RankResult> resumed = run(resuming(spec, ten));
        double[] a = loss(whole), b = loss(resumed);
        assertEquals(10, b.length);
        for (int s = 0; s < 10; s++)
            assertEquals(Double.doubleToLongBits(a[10 + s]), Double.doubleToLongBits(b[s]), "step " + (11 + s) + ": " + a[10 + s] + " vs " + b[s]);
        Map<String, float[]> pw = TrainingRun.of(spec, whole).parameters();
        Map<String, float[]> pr = TrainingRun.of(spec.withSteps(20), resumed, new double[10],
                new RunHistory(10, ten.toString(), List.of(), List.of(), null, List.of(), List.of())).parameters();
        for (String name : pw.keySet()) assertArrayEquals(pw.get(name), pr.get(name), name + " after the resumed run");
        if (precision.equals("fp16")) {
            // The loss scale and its growth clock came back too: both runs end with the same scale.
            assertEquals(whole.get(0).finalLossScale(), resumed.get(0).finalLossScale());
        }
    }

    /** The metadata describes every tensor whole: its pieces tile the global shape, and every file opens as safetensors. */
    private static void checkLayoutDescription(Path stepDir, TrainSpec spec) {
        DistributedCheckpoint.Metadata md = DistributedCheckpoint.verify(stepDir);
        assertEquals(spec.world(), md.files().size());
        assertEquals(10, md.step());
        assertEquals(10, md.loss().length);
        int kinds = spec.optimizer().equals("adamw") ? 3 : 2;
        assertEquals(kinds * parallax.engine.model.Gpt.allParams(spec.model()).size(), md.tensors().size());
        for (DistributedCheckpoint.SavedTensor t : md.tensors().values()) {
            long want = Chunk.numel(t.shape()), got = 0;
            for (DistributedCheckpoint.SavedChunk c : t.chunks()) got += c.box().numel();
            assertEquals(want, got, t.kind() + "/" + t.name() + " pieces add up to the tensor");
        }
        for (DistributedCheckpoint.ShardFile f : md.files()) {
            try (Safetensors s = Safetensors.open(stepDir.resolve(f.name()))) {
                for (TensorEntry e : s.tensors()) assertEquals(DType.F32, e.dtype(), e.name());
            }
        }
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
            "4/1/1/0, 2/1/1/0",
            "1/2/1/0, 1/1/1/0",
            "2/1/1/3, 2/1/1/1",
            "1/1/2/0, 1/1/1/0",
            "2/1/1/1, 1/2/2/3",
    })
    void anotherLayoutContinuesWithin1e5(String from, String to) throws Exception {
        Path dir = tmp.resolve("ckpt");
        TrainSpec a = layout(base(30), from);
        List<RankResult> whole = run(saving(a, dir, 10));
        List<RankResult> resumed = run(resuming(layout(base(30), to), DistributedCheckpoint.stepDir(dir, 10)));
        double[] x = loss(whole), y = loss(resumed);
        assertEquals(20, y.length);
        for (int s = 0; s < 20; s++) {
            double rel = Math.abs(x[10 + s] - y[s]) / Math.abs(x[10 + s]);
            assertTrue(rel < 1e-5, "step " + (11 + s) + ": " + y[s] + " resumed on " + to + " vs " + x[10 + s] + " on " + from);
        }
    }

    @Test
    void aCheckpointACrashLeftIncompleteIsPassedOver() throws Exception {
        Path dir = tmp.resolve("ckpt");
        TrainSpec spec = layout(base(20), "2/1/1/1");
        List<RankResult> whole = run(saving(spec, dir, 10));
        // A crash while step 20 was being saved: one rank's file still under its temporary
        // name, the other's in place, no metadata.
        Path twenty = DistributedCheckpoint.stepDir(dir, 20);
        Files.delete(twenty.resolve(DistributedCheckpoint.METADATA));
        Files.move(twenty.resolve(DistributedCheckpoint.shardName(1)), twenty.resolve(".rank-00001.safetensors.123.part"));
        assertEquals(DistributedCheckpoint.stepDir(dir, 10), DistributedCheckpoint.latest(dir));
        List<RankResult> resumed = run(resuming(spec, dir)); // the directory: its newest complete checkpoint
        double[] a = loss(whole), b = loss(resumed);
        for (int s = 0; s < 10; s++) assertEquals(a[10 + s], b[s], 0.0, "step " + (11 + s));
    }

    /** Every file under {@code dir} with a digest of its bytes. */
    private static Map<String, String> digests(Path dir) throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList())
                out.put(dir.relativize(p).toString(), HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p))));
        }
        return out;
    }

    private static void assertOneLine(UserError e, String... parts) {
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' in: " + e.getMessage());
    }

    @Test
    void damagedCheckpointsAreRefusedInOneLineAndLeftAsTheyWere() throws Exception {
        Path dir = tmp.resolve("ckpt");
        TrainSpec spec = layout(base(12), "2/1/1/1");
        run(saving(spec, dir, 6));
        Path six = DistributedCheckpoint.stepDir(dir, 6);
        Path shard = six.resolve(DistributedCheckpoint.shardName(1));
        TrainSpec again = resuming(spec.withSteps(20), six);

        // a flipped byte in the middle of a piece: its CRC32C no longer matches
        Map<String, String> before = digests(dir);
        byte[] original = Files.readAllBytes(shard);
        long at;
        try (Safetensors s = Safetensors.open(shard)) {
            TensorEntry e = s.tensors().get(s.tensors().size() / 2);
            at = e.offset() + e.length() / 2;
        }
        flip(shard, at);
        Map<String, String> damaged = digests(dir);
        UserError e = assertThrows(UserError.class, () -> run(again));
        assertOneLine(e, "rank-00001.safetensors is corrupted", "CRC32C");
        assertEquals(damaged, digests(dir), "nothing written or removed");

        // truncated: shorter than the metadata records
        Files.write(shard, java.util.Arrays.copyOf(original, original.length - 100));
        damaged = digests(dir);
        e = assertThrows(UserError.class, () -> run(again));
        assertOneLine(e, "rank-00001.safetensors is " + (original.length - 100) + " bytes but the metadata records " + original.length);
        assertEquals(damaged, digests(dir));

        // the metadata names a shard that is not there
        Files.delete(shard);
        damaged = digests(dir);
        e = assertThrows(UserError.class, () -> run(again));
        assertOneLine(e, "the metadata names shard rank-00001.safetensors (rank 1), which is missing");
        assertEquals(damaged, digests(dir));

        // put back whole, the checkpoint loads again
        Files.write(shard, original);
        assertEquals(before, digests(dir));
        assertEquals(14, loss(run(again)).length);
    }

    private static void flip(Path file, long at) throws IOException {
        try (FileChannel c = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            c.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 0x10)).rewind();
            c.write(b, at);
        }
    }

    @Test
    void aDifferentRunIsRefusedInOneLine() throws Exception {
        Path dir = tmp.resolve("ckpt");
        TrainSpec spec = base(6).withLayout(2, 1, 1);
        run(saving(spec, dir, 6));
        Path six = DistributedCheckpoint.stepDir(dir, 6);
        assertOneLine(assertThrows(UserError.class, () -> Training.resolveCheckpoints(resuming(spec.withSeed(8).withSteps(10), six))),
                "--seed 7", "asks 8");
        assertOneLine(assertThrows(UserError.class, () -> Training.resolveCheckpoints(resuming(spec.withSteps(6), six))),
                "at step 6", "nothing to train");
        assertOneLine(assertThrows(UserError.class, () -> Training.resolveCheckpoints(resuming(spec.withModel(GptConfig.small()).withSteps(10), six))),
                "model tiny", "small");
        // saving a fresh run into a directory that holds another run's checkpoints
        assertOneLine(assertThrows(UserError.class, () -> Training.resolveCheckpoints(saving(base(6), dir, 3))), "already holds checkpoints");
    }
}
