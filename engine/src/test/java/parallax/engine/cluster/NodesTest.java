package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;

class NodesTest {

    @Test
    void parsesHostfileAndPlacesRanksInOrder() {
        Nodes n = Nodes.parse("""
                # two nodes
                master_addr 10.0.0.1
                master_port 29500
                ssh_options -p 2222
                localhost slots=2
                gpu1 slots=2 devices=cuda:0,cuda:1 addr=10.0.0.2
                """, "nodes");
        assertEquals("10.0.0.1", n.masterAddr());
        assertEquals(29500, n.masterPort());
        assertEquals(List.of("-p", "2222"), n.sshOptions());
        assertEquals(4, n.slots());
        List<Nodes.Placement> p = n.place(3);
        assertEquals("localhost", p.get(1).node().host());
        assertTrue(p.get(0).node().local());
        assertEquals("gpu1", p.get(2).node().host());
        assertEquals(0, p.get(2).localRank());
        assertEquals("cuda:0", p.get(2).device());
        assertEquals("nccl", Nodes.backendOf(p.get(2).device()));
        assertEquals("ssh", p.get(2).node().launcher());
        assertEquals(n, Nodes.parse(n.toText(), "round trip"));
    }

    @Test
    void theCoordinatorMayListenElsewhereThanTheStore() {
        Nodes n = Nodes.parse("master_addr 10.77.3.2\ncoordinator_addr 10.77.3.1\n10.77.3.2 slots=2\n", "bed");
        assertEquals("10.77.3.2", n.masterAddr());
        assertEquals("10.77.3.1", n.coordinatorAddr());
        assertEquals(n, Nodes.parse(n.toText(), "round trip"));
        assertEquals("10.0.0.5", Nodes.parse("master_addr 10.0.0.5\nh slots=1", "f").coordinatorAddr(), "default: master_addr");
        assertEquals("f line 1: coordinator_addr needs an address",
                assertThrows(UserError.class, () -> Nodes.parse("coordinator_addr\nh", "f")).getMessage());
    }

    @Test
    void cyclicDistributionDealsRanksRoundTheNodes() {
        Nodes n = Nodes.parse("distribution cyclic\na slots=2 launcher=local\nb slots=3 launcher=local\n", "f");
        assertEquals(List.of("a", "b", "a", "b", "b"), n.place(5).stream().map(p -> p.node().host()).toList());
        assertEquals(List.of(0, 0, 1, 1, 2), n.place(5).stream().map(Nodes.Placement::localRank).toList());
        assertEquals(n, Nodes.parse(n.toText(), "round trip"));
        assertEquals(List.of("a", "a", "b"), n.withDistribution(Nodes.Distribution.BLOCK).place(3).stream().map(p -> p.node().host()).toList());
        assertEquals("f line 1: distribution is block or cyclic, got 'round'",
                assertThrows(UserError.class, () -> Nodes.parse("distribution round\na", "f")).getMessage());
    }

    @Test
    void theSshLauncherForwardsTheTransportSettings() {
        assertEquals(List.of("PARALLAX_SHM=0", "PARALLAX_HIERARCHICAL=0"),
                Launcher.forwardedEnv(java.util.Map.of("PARALLAX_HIERARCHICAL", "0", "PARALLAX_SHM", "0", "HOME", "/root")));
    }

    @Test
    void localDefaultIsLoopbackCpu() {
        Nodes n = Nodes.localDefault(3);
        assertEquals("127.0.0.1", n.masterAddr());
        assertEquals("cpu", n.place(3).get(2).device());
        assertEquals("gloo", Nodes.backendOf("cpu"));
    }

    @Test
    void badFilesAreOneLine() {
        assertEquals("f line 1: slots must be a positive whole number, got 'x'",
                assertThrows(UserError.class, () -> Nodes.parse("localhost slots=x", "f")).getMessage());
        assertEquals("f line 2: unknown key 'slot' Did you mean slots?",
                assertThrows(UserError.class, () -> Nodes.parse("# c\nlocalhost slot=2", "f")).getMessage());
        assertEquals("f line 1: master_port must be a port number 0..65535, got '99999'",
                assertThrows(UserError.class, () -> Nodes.parse("master_port 99999\nlocalhost", "f")).getMessage());
        assertEquals("f line 1: device 'gpu0' is not cpu or cuda:N",
                assertThrows(UserError.class, () -> Nodes.parse("h slots=1 devices=gpu0", "f")).getMessage());
        assertEquals("f: no nodes (add a line such as 'localhost slots=2')",
                assertThrows(UserError.class, () -> Nodes.parse("master_addr 127.0.0.1", "f")).getMessage());
        assertEquals("5 ranks asked but the nodes file has 2 slots; add nodes or slots",
                assertThrows(UserError.class, () -> Nodes.parse("localhost slots=2", "f").place(5)).getMessage());
    }

    /** One GPU per rank unless the node says share_gpus=yes; "cuda" alone means cuda:LOCAL_RANK (torchrun, Slurm). */
    @Test
    void gpusAreOnePerRankUnlessShared() {
        assertEquals("f line 1: two ranks on cuda:0: give each rank its own GPU, or add share_gpus=yes to share one",
                assertThrows(UserError.class, () -> Nodes.parse("g slots=2 devices=cuda:0,cuda:0", "f")).getMessage());
        Nodes shared = Nodes.parse("g slots=2 devices=cuda:0,cuda:0 share_gpus=yes", "f");
        assertEquals("cuda:0", shared.place(2).get(1).device());
        assertEquals("nccl", Nodes.backendOf(shared.place(2).get(1).device()));
        assertEquals("f line 1: share_gpus is yes or no, got 'maybe'",
                assertThrows(UserError.class, () -> Nodes.parse("g slots=1 share_gpus=maybe", "f")).getMessage());
        assertEquals("cuda:3", WorkerMain.rankDevice("cuda", 3));
        assertEquals("cuda:1", WorkerMain.rankDevice("cuda:1", 0));
        assertEquals("cpu", WorkerMain.rankDevice("cpu", 5));
        assertThrows(UserError.class, () -> WorkerMain.rankDevice("tpu", 0));
    }
}
