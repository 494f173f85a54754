package parallax.engine.cluster;

import parallax.engine.torch.Device;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parallax.engine.torch.Torch;

/**
 * The shared-memory collectives, with the members as threads of this JVM mapping one
 * segment (the worker tests run them across real rank processes). A small slot makes
 * every tensor go through in several pieces.
 */
class SharedMemoryGroupTest {

    private static final long SLOT = 4096;      // 1024 floats: forces pieces
    private final List<SharedMemoryGroup> open = new ArrayList<>();
    private Path file;

    @BeforeAll
    static void init() { Torch.init(); }

    @AfterEach
    void close() throws Exception {
        for (SharedMemoryGroup g : open) g.close();
        if (file != null) Files.deleteIfExists(file);
    }

    private SharedMemoryGroup[] group(int size) throws Exception {
        file = Files.createTempFile(Path.of(Files.isDirectory(Path.of("/dev/shm")) ? "/dev/shm" : System.getProperty("java.io.tmpdir")),
                "parallax-test-", "");
        Files.delete(file);
        SharedMemoryGroup[] g = new SharedMemoryGroup[size];
        g[0] = SharedMemoryGroup.create(file, 1234L, size, SLOT);
        for (int r = 1; r < size; r++) g[r] = SharedMemoryGroup.open(file, 1234L, r, size, SLOT);
        for (SharedMemoryGroup m : g) open.add(m);
        return g;
    }

    /** Runs {@code body} as every rank at once and returns each rank's floats. */
    private static float[][] onEveryRank(int size, RankBody body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(size);
        try {
            List<java.util.concurrent.Future<float[]>> f = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rank = r;
                f.add(pool.submit(() -> {
                    try (PointerScope s = new PointerScope()) {
                        return body.run(rank);
                    }
                }));
            }
            float[][] out = new float[size][];
            for (int r = 0; r < size; r++) out[r] = f.get(r).get(60, TimeUnit.SECONDS);
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private interface RankBody {
        float[] run(int rank) throws Exception;
    }

    private static float[] ramp(int n, int rank) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (i % 97) * 0.5f + rank * 1000f;
        return a;
    }

    @Test
    void allReduceSumsAcrossPiecesAndCallsForEveryRank() throws Exception {
        // small pieces (one hand-off, every rank sums all slots) and large ones
        // (reduce-scatter, then all-gather), for 2 and 3 ranks
        for (long small : new long[] {SharedMemoryGroup.SMALL_BYTES, 0})
            for (int size : new int[] {2, 3}) allReduceOnce(size, small);
    }

    private void allReduceOnce(int size, long small) throws Exception {
        {
            SharedMemoryGroup[] g = group(size);
            for (SharedMemoryGroup m : g) m.smallBytes(small);
            int n = 2500;   // 3 pieces of at most 1024, parts not multiples of 16
            float[][] got = onEveryRank(size, rank -> {
                float[] last = null;
                for (int call = 0; call < 3; call++) {   // the counters carry over between calls
                    Tensor t = Device.cpu().fromFloats(ramp(n, rank + call), n);
                    g[rank].allReduce(t, 10_000, "test");
                    last = Device.hostFloats(t);
                }
                return last;
            });
            float[] want = new float[n];
            for (int r = 0; r < size; r++) {
                float[] a = ramp(n, r + 2);
                for (int i = 0; i < n; i++) want[i] += a[i];
            }
            for (int r = 0; r < size; r++) assertArrayEquals(want, got[r], 1e-3f, "rank " + r + " of " + size + ", small " + small);
            for (int r = 1; r < size; r++) assertArrayEquals(got[0], got[r], "every rank holds the same bits");
            close();
            open.clear();
        }
    }

    /**
     * Two nodes of two ranks as threads, each node with its own segment; the step across nodes
     * is an in-process exchange between the two ranks holding the same part. Many pieces go
     * through the two alternating buffers per slot, with the counters carried across calls
     * and across an all-gather in between.
     */
    @Test
    void allReduceAcrossNodesSumsEveryPieceThroughBothBuffers() throws Exception {
        int perNode = 2, n = 5000;   // half a slot is 512 floats: 10 pieces
        SharedMemoryGroup[][] nodes = new SharedMemoryGroup[2][];
        List<Path> files = new ArrayList<>();
        for (int j = 0; j < 2; j++) {
            nodes[j] = group(perNode);
            files.add(file);
            nodes[j][0].labels(new int[] {2 * j, 2 * j + 1});
        }
        java.util.concurrent.ConcurrentHashMap<String, java.util.concurrent.CompletableFuture<float[]>[]> exchange =
                new java.util.concurrent.ConcurrentHashMap<>();
        float[][] got = onEveryRank(4, rank -> {
            int node = rank / perNode, local = rank % perNode;
            long[] calls = {0};
            SharedMemoryGroup.Across across = part -> {
                String key = local + "/" + calls[0]++;
                @SuppressWarnings("unchecked")
                java.util.concurrent.CompletableFuture<float[]>[] slots = exchange.computeIfAbsent(key, k ->
                        new java.util.concurrent.CompletableFuture[] {new java.util.concurrent.CompletableFuture<>(), new java.util.concurrent.CompletableFuture<>()});
                slots[node].complete(parallax.engine.torch.Device.hostFloats(part));
                return () -> {
                    try {
                        float[] a = slots[0].get(10, TimeUnit.SECONDS), b = slots[1].get(10, TimeUnit.SECONDS);
                        float[] sum = new float[a.length];
                        for (int i = 0; i < a.length; i++) sum[i] = a[i] + b[i];   // node order: the same bits on both
                        part.copy_(parallax.engine.torch.Device.cpu().fromFloats(sum, sum.length));
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                };
            };
            float[] last = null;
            for (int call = 0; call < 2; call++) {
                Tensor t = parallax.engine.torch.Device.cpu().fromFloats(ramp(n, rank + call), n);
                nodes[node][local].allReduceAcross(t, 10_000, "test", across);
                last = parallax.engine.torch.Device.hostFloats(t);
                Tensor out = torch.empty(perNode * 7L);
                nodes[node][local].allGather(out, parallax.engine.torch.Device.cpu().fromFloats(ramp(7, rank), 7), 10_000, "test");
            }
            return last;
        });
        float[] want = new float[n];
        for (int r = 0; r < 4; r++) {
            float[] a = ramp(n, r + 1);
            for (int i = 0; i < n; i++) want[i] += a[i];
        }
        for (int r = 0; r < 4; r++) assertArrayEquals(want, got[r], 1e-2f, "rank " + r);
        for (int r = 1; r < 4; r++) assertArrayEquals(got[0], got[r], "every rank holds the same bits");
        for (Path f : files) Files.deleteIfExists(f);
    }

    @Test
    void allGatherAndReduceScatterMatchTheirDefinitions() throws Exception {
        int size = 2, n = 1500;   // 2 all-gather pieces; reduce-scatter pieces of 512 per part
        SharedMemoryGroup[] g = group(size);
        float[][] gathered = onEveryRank(size, rank -> {
            Tensor out = torch.empty(size * (long) n);
            g[rank].allGather(out, Device.cpu().fromFloats(ramp(n, rank), n), 10_000, "test");
            return Device.hostFloats(out);
        });
        float[] want = new float[size * n];
        for (int r = 0; r < size; r++) System.arraycopy(ramp(n, r), 0, want, r * n, n);
        for (int r = 0; r < size; r++) assertArrayEquals(want, gathered[r], "all-gather on rank " + r);

        float[][] scattered = onEveryRank(size, rank -> {
            Tensor out = torch.empty(n);
            g[rank].reduceScatter(out, Device.cpu().fromFloats(ramp(size * n, rank), size * (long) n), 10_000, "test");
            return Device.hostFloats(out);
        });
        for (int r = 0; r < size; r++) {
            float[] part = new float[n];
            for (int q = 0; q < size; q++) {
                float[] a = ramp(size * n, q);
                for (int i = 0; i < n; i++) part[i] += a[r * n + i];
            }
            assertArrayEquals(part, scattered[r], 1e-3f, "reduce-scatter on rank " + r);
        }
    }

    @Test
    void bf16TensorsAreSummedInTheirOwnType() throws Exception {
        SharedMemoryGroup[] g = group(2);
        float[][] got = onEveryRank(2, rank -> {
            Tensor t = Device.cpu().fromFloats(ramp(3000, rank), 3000).to(torch.ScalarType.BFloat16);
            g[rank].allReduce(t, 10_000, "test");
            return Device.hostFloats(t.to(torch.ScalarType.Float));
        });
        assertArrayEquals(got[0], got[1], "both ranks hold the same bf16 sum");
        assertTrue(Math.abs(got[0][5] - (2.5f + 2.5f + 1000f)) < 8f, "bf16 sum near 1005: " + got[0][5]);
    }

    @Test
    void aTensorThatRequiresGradIsWrittenOutsideAutograd() throws Exception {
        SharedMemoryGroup[] g = group(2);
        float[][] got = onEveryRank(2, rank -> {
            Tensor leaf = Device.cpu().fromFloats(ramp(100, rank), 100);
            leaf.requires_grad_(true);          // as Gloo does, the sum lands in the leaf's memory
            g[rank].allReduce(leaf, 10_000, "test");
            assertTrue(leaf.is_leaf() && leaf.requires_grad(), "still a leaf, no autograd history");
            return Device.hostFloats(leaf.detach());
        });
        assertArrayEquals(got[0], got[1]);
        assertTrue(Math.abs(got[0][3] - (1.5f + 1001.5f)) < 1e-3f, "sum " + got[0][3]);
    }

    @Test
    void aMemberThatNeverArrivesTimesOutWithTheGroupsMessage() throws Exception {
        SharedMemoryGroup[] g = group(2);
        Tensor t = torch.ones(10);
        ClusterError e = assertThrows(ClusterError.class, () -> g[0].allReduce(t, 300, "allreduce on group dp"));
        assertTrue(e.getMessage().startsWith("allreduce on group dp " + Collectives.TIMEOUT_MARK), e.getMessage());
        assertTrue(e.getMessage().contains("group rank 1 did not arrive"), e.getMessage());
    }

    @Test
    void segmentsADeadRankLeftBehindAreRemovedByPid() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(Path.of("/dev/shm")));
        long pid = 2_000_000_000L + (System.nanoTime() & 0xffff);   // no such process
        Path left = SharedMemoryGroup.segmentFile(pid, 0xabcL);
        Path other = SharedMemoryGroup.segmentFile(pid + 1, 0xabcL);
        Files.write(left, new byte[16]);
        Files.write(other, new byte[16]);
        try {
            SharedMemoryGroup.removeLeftovers(pid);
            assertFalse(Files.exists(left));
            assertTrue(Files.exists(other), "another process's segment stays");
        } finally {
            Files.deleteIfExists(left);
            Files.deleteIfExists(other);
        }
    }

    @Test
    void aSegmentFromAnotherMachineOrGroupIsRefused() throws Exception {
        group(2);
        assertThrows(IllegalStateException.class, () -> SharedMemoryGroup.open(file, 999L, 1, 2, SLOT));
        Path missing = file.resolveSibling(file.getFileName() + "-missing");
        assertThrows(IllegalStateException.class, () -> SharedMemoryGroup.open(missing, 1234L, 1, 2, SLOT));
        assertFalse(Files.exists(missing), "opening never creates a segment");
    }

    @Test
    void aSegmentThatCannotBeWrittenOutFailsAtCreationNotLater(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path nowhere = dir.resolve("no-such-dir").resolve("segment");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SharedMemoryGroup.create(nowhere, 1L, 2, SLOT));
        assertTrue(e.getMessage().startsWith("cannot make " + nowhere), e.getMessage());
        assertFalse(Files.exists(nowhere));
    }
}
