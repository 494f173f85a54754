package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every collective across real worker JVMs on 127.0.0.1 over Gloo, checked against known sums. */
class WorkerPoolTest {

    @TempDir
    Path logs;

    private static float[] floats(JsonElement e) {
        var a = e.getAsJsonArray();
        float[] f = new float[a.size()];
        for (int i = 0; i < f.length; i++) f[i] = a.get(i).getAsFloat();
        return f;
    }

    private void checkCollectives(int world, MeshShape shape) {
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 30_000);
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(world), world, opts)) {
            List<RankEvent> events = Collections.synchronizedList(new ArrayList<>());
            List<JsonElement> res = pool.run(CollectiveCheckTask.class.getName(), "{}", shape, events::add);
            assertEquals(world, res.size());
            float total = world * (world + 1) / 2f;          // sum of (r + 1)
            for (int r = 0; r < world; r++) {
                JsonObject o = res.get(r).getAsJsonObject();
                float[] ar = new float[4];
                java.util.Arrays.fill(ar, total);
                assertArrayEquals(ar, floats(o.get("allReduce")), "allReduce on rank " + r);

                float[] ag = new float[2 * world];
                for (int i = 0; i < ag.length; i++) ag[i] = i / 2;
                assertArrayEquals(ag, floats(o.get("allGather")), "allGather on rank " + r);

                // sum over ranks q of (i + q) = world * i + world(world-1)/2, rank r keeps i in [2r, 2r+2)
                float[] rs = new float[2];
                for (int i = 0; i < 2; i++) rs[i] = world * (2 * r + i) + world * (world - 1) / 2f;
                assertArrayEquals(rs, floats(o.get("reduceScatter")), "reduceScatter on rank " + r);

                assertArrayEquals(new float[] {42, 42, 42}, floats(o.get("broadcast")), "broadcast on rank " + r);
                // all-to-all: block q of rank r's output is block r of rank q's input
                float[] a2a = new float[2 * world];
                for (int q = 0; q < world; q++) for (int i = 0; i < 2; i++) a2a[2 * q + i] = 100 * q + 2 * r + i;
                assertArrayEquals(a2a, floats(o.get("allToAll")), "allToAll on rank " + r);
                int prev = (r - 1 + world) % world;
                assertArrayEquals(new float[] {10f * prev, 10f * prev}, floats(o.get("recvFromPrev")), "recv on rank " + r);

                // subgroup sums follow the Megatron layout
                assertEquals(sum(Mesh.tpGroup(shape, r)), o.get("tpSum").getAsFloat(), "tp sum on rank " + r);
                assertEquals(sum(Mesh.dpGroup(shape, r)), o.get("dpSum").getAsFloat(), "dp sum on rank " + r);
                assertEquals(sum(Mesh.ppGroup(shape, r)), o.get("ppSum").getAsFloat(), "pp sum on rank " + r);
                Mesh.Coords c = Mesh.coords(shape, r);
                var coords = o.get("coords").getAsJsonArray();
                assertEquals(c.dpRank(), coords.get(0).getAsInt());
                assertEquals(c.tpRank(), coords.get(1).getAsInt());
                assertEquals(c.ppRank(), coords.get(2).getAsInt());
                // every rank is on this machine: the world group moves data through shared memory
                // (Gloo only where this machine has no writable /dev/shm)
                String expected = java.nio.file.Files.isWritable(java.nio.file.Path.of("/dev/shm")) ? "shm" : "gloo";
                assertEquals(expected, o.get("worldTransport").getAsString(), "transport on rank " + r);
                // 1 world + 3 subgroup all-reduces of 4 and 1 floats
                assertEquals(4, o.get("allReduceCalls").getAsLong());
                assertEquals(4 * 4 + 3 * 4, o.get("allReduceBytes").getAsLong());
            }
            long steps = events.stream().filter(e -> e.kind().equals("step")).count();
            assertEquals(2L * world, steps, "two step events per rank streamed to the coordinator");
            assertTrue(pool.status().stream().allMatch(s -> s.health().equals("idle") && s.rssBytes() > 0));
            // the coordinator keeps a JSON-lines log per rank
            for (int r = 0; r < world; r++) {
                java.nio.file.Path log = logs.resolve("rank-" + r + ".jsonl");
                List<String> lines = assertDoesNotThrow(() -> java.nio.file.Files.readAllLines(log));
                assertTrue(lines.stream().anyMatch(l -> l.contains("\"kind\":\"step\"") && l.contains("\"ts\":")), lines.toString());
            }
        }
    }

    private static float sum(int[] ranks) {
        float s = 0;
        for (int r : ranks) s += r;
        return s;
    }

    @Test
    void twoRanks() {
        checkCollectives(2, new MeshShape(2, 1, 1));
    }

    @Test
    void fourRanksWithMesh() {
        checkCollectives(4, new MeshShape(2, 2, 1));
    }
}
