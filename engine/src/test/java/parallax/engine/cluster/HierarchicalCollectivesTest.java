package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hierarchical collectives across real worker JVMs, with two nodes made of two loopback
 * addresses of this machine (127.0.0.1 and 127.0.0.2, two ranks each, local launcher): each
 * nodes-file line is a node, so the world group is shared memory inside each and Gloo across.
 * The namespace test bed ({@code MultiNodeTest}) runs the same across real network namespaces.
 */
class HierarchicalCollectivesTest {

    @TempDir
    Path logs;

    static final String TWO_NODES = String.join("\n",
            "master_addr 127.0.0.1",
            "127.0.0.1 slots=2",
            "127.0.0.2 slots=2 launcher=local", "");

    /** Sizes: fewer elements than ranks, odd counts, and two pieces through both buffers of a slot. */
    static final String SIZES = "{\"sizes\": [1, 3, 1001, 600003]}";

    private WorkerPool start(String... jvmArgs) {
        Assumptions.assumeTrue(Files.isWritable(Path.of("/dev/shm")), "no writable /dev/shm here");
        List<String> jvm = new ArrayList<>(WorkerPool.Options.defaults().jvmArgs());
        jvm.addAll(List.of(jvmArgs));
        return WorkerPool.start(Nodes.parse(TWO_NODES, "two-nodes"), 4,
                WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(60_000, 8_000).withJvmArgs(jvm));
    }

    @Test
    void groupsThatSpanNodesSumInsideEachNodeThenAcrossAndEveryRankHoldsTheSameBits() {
        WorkerPool pool = start();
        try {
            List<JsonElement> res = pool.run(HierarchicalCheckTask.class.getName(), SIZES, new MeshShape(2, 2, 1), e -> { });
            for (int r = 0; r < 4; r++) {
                JsonObject o = res.get(r).getAsJsonObject();
                assertEquals("shm+gloo", o.get("world").getAsString(), "world group spans both nodes, two ranks on each");
                assertEquals("shm", o.get("tp").getAsString(), "tp groups [0,1] and [2,3] stay inside a node");
                assertEquals("gloo", o.get("dp").getAsString(), "dp groups [0,2] and [1,3] have one rank per node");
                float tpSum = 1 + 2, dpSum = 1 + 2;
                assertEquals(tpSum, o.get("tpSum").getAsFloat());
                assertEquals(dpSum, o.get("dpSum").getAsFloat());
            }
            checkResults(res);
            assertTrue(pool.status().stream().allMatch(s -> s.transport().equals("shm+gloo")), pool.status().toString());

            res = pool.run(HierarchicalCheckTask.class.getName(), "{\"sizes\": [257]}", new MeshShape(4, 1, 1), e -> { });
            for (JsonElement r : res) assertEquals("shm+gloo", r.getAsJsonObject().get("dp").getAsString(), "dp=4 spans both nodes");
            checkResults(res);

            // a member that never calls: the others fail after the timeout, naming the group, and the pool stops
            ClusterError e = assertThrows(ClusterError.class, () -> pool.exec(
                    "org.bytedeco.pytorch.Tensor t = org.bytedeco.pytorch.global.torch.ones(5000);\n"
                            + "if (dist.rank() != 3) dist.allReduce(t);", null, ev -> { }));
            assertTrue(e.getMessage().contains("all_reduce on group world") && e.getMessage().contains(Collectives.TIMEOUT_MARK),
                    e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertFalse(pool.alive(), "a group that timed out is not reused");
        } finally {
            pool.close();
        }
    }

    @Test
    void theSwitchTurnsItOff() {
        try (WorkerPool pool = start("-D" + Rendezvous.HIERARCHICAL_PROPERTY + "=false")) {
            List<JsonElement> res = pool.run(HierarchicalCheckTask.class.getName(), "{\"sizes\": [257]}", new MeshShape(2, 2, 1), e -> { });
            for (JsonElement r : res) {
                JsonObject o = r.getAsJsonObject();
                assertEquals("gloo", o.get("world").getAsString(), "switched off: flat Gloo across nodes");
                assertEquals("shm", o.get("tp").getAsString(), "inside a node shared memory stays");
            }
            checkResults(res);
        }
    }

    /** Every sum within the float32 bound, every gather exact, every rank's all-reduce the same bits. */
    static void checkResults(List<JsonElement> res) {
        JsonObject first = res.get(0).getAsJsonObject();
        for (String key : first.keySet()) {
            if (!key.contains("/")) continue;
            for (int r = 0; r < res.size(); r++) {
                JsonObject c = res.get(r).getAsJsonObject().getAsJsonObject(key);
                if (c.has("overTolerance"))
                    assertTrue(c.get("overTolerance").getAsDouble() <= 1.0, key + " on rank " + r + ": " + c);
                if (c.has("firstWrong")) assertEquals(-1, c.get("firstWrong").getAsInt(), key + " on rank " + r);
                if (c.has("crc"))
                    assertEquals(first.getAsJsonObject(key).get("crc").getAsLong(), c.get("crc").getAsLong(),
                            key + ": rank " + r + " holds other bits than rank 0");
            }
        }
    }
}
