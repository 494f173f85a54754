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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.model.Trainer;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.Training;
import parallax.engine.parallel.TrainingRun;

/**
 * Ranks on two nodes that are network namespaces of this machine ({@link TestBed}: a bridge,
 * one address and one sshd per node, a /dev/shm per node), started over ssh as on a real
 * cluster. Runs as root (CI does); elsewhere skipped with the reason.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MultiNodeTest {

    static final String WORKER = WorkerMain.class.getName();
    static TestBed bed;

    @TempDir
    Path logs;

    @BeforeAll
    static void build() {
        String why = TestBed.unavailableReason();
        Assumptions.assumeTrue(why == null, () -> "multi-node test bed skipped: " + why);
        bed = TestBed.build(2, 2, TestBed.Link.UNSHAPED);
    }

    @AfterAll
    static void teardown() {
        if (bed != null) bed.close();
    }

    WorkerPool.Options opts(long collectiveTimeoutMs, String... jvmArgs) {
        List<String> jvm = new ArrayList<>(WorkerPool.Options.defaults().jvmArgs());
        jvm.addAll(List.of(jvmArgs));
        return WorkerPool.Options.defaults().withLogDir(logs).withTimeouts(90_000, collectiveTimeoutMs).withJvmArgs(jvm);
    }

    /** No worker process and no shared-memory segment of ours on any node. */
    static void nothingLeft() throws InterruptedException {
        for (int k = 0; k < bed.nodes().size(); k++) {
            for (int i = 0; i < 100 && !bed.processes(k, WORKER).isEmpty(); i++) Thread.sleep(200);
            assertEquals(List.of(), bed.processes(k, WORKER), "worker processes left on node " + k);
            assertTrue(bed.sharedMemoryFiles(k).stream().noneMatch(f -> f.startsWith("parallax-")),
                    "segments left in node " + k + "'s /dev/shm: " + bed.sharedMemoryFiles(k));
        }
    }

    /** Runs after the failures below: a pool on the same nodes after them shows the session goes on. */
    @Test
    @Order(3)
    void ranksOnTwoNodesGoHierarchicalAndTrainLikeOneProcess() throws Exception {
        Trainer.Result reference = Trainer.train(GptConfig.tiny(), TextData.Source.TEXT, 7, 6, 8, "adamw", 1e-3);
        try (WorkerPool pool = WorkerPool.start(bed.nodesConfig(), 4, opts(60_000))) {
            List<String> addrs = bed.nodes().stream().map(TestBed.Node::addr).toList();
            assertEquals(List.of(addrs.get(0), addrs.get(0), addrs.get(1), addrs.get(1)),
                    pool.status().stream().map(WorkerPool.RankStatus::host).toList());
            assertTrue(pool.status().stream().allMatch(s -> s.transport().equals("shm+gloo")), pool.status().toString());
            for (int k = 0; k < 2; k++) assertEquals(2, bed.processes(k, WORKER).size(), "two ranks in node " + k + "'s namespace");

            List<JsonElement> res = pool.run(HierarchicalCheckTask.class.getName(), HierarchicalCollectivesTest.SIZES,
                    new MeshShape(2, 2, 1), e -> { });
            for (JsonElement r : res) {
                JsonObject o = r.getAsJsonObject();
                assertEquals("shm+gloo", o.get("world").getAsString());
                assertEquals("shm", o.get("tp").getAsString(), "a TP pair shares its node's /dev/shm");
                assertEquals("gloo", o.get("dp").getAsString(), "a DP pair spans the nodes, one rank on each");
            }
            HierarchicalCollectivesTest.checkResults(res);

            // %parallel --dp 4 across the nodes (its gradient all-reduce hierarchical) reproduces the single-process loss
            for (int[] layout : new int[][] {{4, 1, 1}}) {
                TrainSpec spec = TrainSpec.defaults(GptConfig.tiny()).withSteps(6).withBatch(8).withLayout(layout[0], layout[1], layout[2]);
                TrainingRun run = Training.run(pool, spec, null);
                for (int s = 0; s < 6; s++) {
                    assertEquals(reference.loss()[s], run.loss()[s], 1e-5 * reference.loss()[s],
                            "dp=" + layout[0] + " tp=" + layout[1] + " step " + (s + 1));
                }
            }
        }
        nothingLeft();
    }

    @Test
    @Order(1)
    void aNodeWhoseLinkGoesDownIsNamedAndEveryRankStops() throws Exception {
        long timeoutMs = 10_000;
        WorkerPool pool = WorkerPool.start(bed.nodesConfig(), 4, opts(timeoutMs, "-Dparallax.control.silenceMs=6000"));
        String cutNode = bed.nodes().get(1).addr();
        long[] cutAt = new long[1];
        Thread cut = new Thread(() -> {
            try {
                Thread.sleep(3000);
                bed.link(1, false);
                cutAt[0] = System.nanoTime();
            } catch (InterruptedException ignored) {
                // the test ends
            }
        });
        try {
            cut.start();
            ClusterError e = assertThrows(ClusterError.class, () -> pool.exec(String.join("\n",
                    "org.bytedeco.pytorch.Tensor t = org.bytedeco.pytorch.global.torch.ones(65536);",
                    "for (int i = 0; i < 100000; i++) { dist.allReduce(t); t.fill_(new org.bytedeco.pytorch.Scalar(1f)); }"),
                    null, ev -> { }));
            long caught = System.nanoTime();
            cut.join();
            double seconds = (caught - cutAt[0]) / 1e9;
            System.out.printf("link down -> reported after %.1f s (collective timeout %.0f s): %s%n", seconds, timeoutMs / 1e3, e.getMessage());
            // the coordinator misses the cut-off ranks' answers to its pings before the collective times out
            assertTrue(seconds < timeoutMs / 1e3, "reported " + seconds + " s after the link went down");
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertTrue(e.getMessage().contains("[2, 3] on " + cutNode), "names the cut-off ranks and their node: " + e.getMessage());
            assertFalse(pool.alive(), "every rank was stopped");
        } finally {
            pool.close();
            bed.link(1, true);
        }
        // the cut-off node's ranks exit by themselves once the coordinator has been silent long enough
        nothingLeft();
    }

    @Test
    @Order(4)
    void thePyTorchPeerRunsInTheSameNamespacesOnTheNodesAddresses() throws Exception {
        parallax.engine.Peers.python("torch", "python3-torch");
        List<String> lines = PeerJob.run(parallax.engine.parallel.DdpPeer.class, "torch_ddp_gpt.py", "PyTorch DDP peer",
                bed.nodesConfig(), 4, 600, List.of("--layers", "1", "--hidden", "16", "--heads", "2", "--vocab", "64", "--seq", "8",
                        "--batch", "8", "--steps", "2", "--seed", "7"));
        assertEquals(4, lines.size(), lines.toString());
        for (String line : lines) {
            JsonObject o = com.google.gson.JsonParser.parseString(line).getAsJsonObject();
            int rank = o.get("rank").getAsInt();
            assertEquals(bed.nodes().get(rank / 2).addr(), o.get("node").getAsString(), "rank " + rank + " on its node");
            assertEquals("eth0", o.get("ifname").getAsString(), "rank " + rank + "'s Gloo binds the node's link");
            assertEquals(2, o.getAsJsonArray("loss").size());
        }
        nothingLeft();
    }

    @Test
    @Order(2)
    void aRefusedLoginOrAnUnreachableNodeAtStartIsOneLine() throws Exception {
        String text = Files.readString(bed.nodesFile());
        Path otherKey = logs.resolve("not-authorized");
        Process kg = new ProcessBuilder("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey.toString()).start();
        assertTrue(kg.waitFor(30, TimeUnit.SECONDS) && kg.exitValue() == 0);
        String refused = text.replaceFirst("-i \\S+", "-i " + otherKey);
        ClusterError e = assertThrows(ClusterError.class,
                () -> WorkerPool.start(Nodes.parse(refused, "refused"), 4, opts(60_000)));
        System.out.println("refused login: " + e.getMessage());
        assertTrue(e.getMessage().matches("rank \\d on 10\\.77\\.\\d+\\.\\d+ died before joining: ssh failed .*Permission denied.*"),
                e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        nothingLeft();

        String lastNode = bed.nodes().get(1).addr();
        String absent = lastNode.substring(0, lastNode.lastIndexOf('.')) + ".250";
        String unreachable = text.replace(lastNode + " slots", absent + " slots");
        e = assertThrows(ClusterError.class, () -> WorkerPool.start(Nodes.parse(unreachable, "unreachable"), 4, opts(60_000)));
        System.out.println("unreachable node: " + e.getMessage());
        assertTrue(e.getMessage().matches("rank [23] on " + absent.replace(".", "\\.") + " died before joining: ssh failed .*"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        nothingLeft();
    }
}
