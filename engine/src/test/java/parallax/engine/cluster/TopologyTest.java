package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

class TopologyTest {

    @Test
    void tpGroupsThatCrossNodesAreNamedAndOthersAreNot() {
        MeshShape dp2tp2 = new MeshShape(2, 2, 1);
        assertEquals(List.of(), Topology.crossNodeGroups(dp2tp2, List.of("a", "a", "b", "b")), "TP pairs inside nodes; DP crossing is fine");
        assertEquals(List.of(
                        "tp group [0, 1] spans nodes a and b: its all-reduces (four per layer per micro-batch) cross the link between nodes",
                        "tp group [2, 3] spans nodes a and b: its all-reduces (four per layer per micro-batch) cross the link between nodes"),
                Topology.crossNodeGroups(dp2tp2, List.of("a", "b", "a", "b")));
        assertEquals(1, Topology.crossNodeGroups(new MeshShape(1, 4, 1), List.of("a", "a", "b", "b")).size(), "tp=4 on 2-slot nodes");
    }

    @Test
    void theNoteExplainsHowToKeepTpInsideANode() {
        Nodes threeSlots = Nodes.parse("master_addr 10.0.0.1\n10.0.0.1 slots=3 launcher=local\n10.0.0.2 slots=3\n", "f");
        assertNull(Topology.placementNote(new MeshShape(1, 3, 2), threeSlots), "tp=3 divides 3 slots");
        String note = Topology.placementNote(new MeshShape(3, 2, 1), threeSlots);
        assertTrue(note.startsWith("tp group [2, 3] spans nodes 10.0.0.1 and 10.0.0.2"), note);
        assertTrue(note.endsWith("TP stays inside a node when tp (2) divides every node's slots (smallest here: 3)"), note);
        assertNull(Topology.placementNote(new MeshShape(1, 4, 1), Nodes.localDefault(4)), "one machine: nothing to say");
    }

    @Test
    void theReportShowsTheMatrixAndReadsTheConfiguredRate() {
        List<Topology.Pair> pairs = new ArrayList<>();
        List<String> nodes = List.of("n1", "n1", "n2");
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                if (i == j) continue;
                Topology.LinkKind k = Topology.kind(nodes, i, j);
                pairs.add(new Topology.Pair(i, j, k, k == Topology.LinkKind.NETWORK ? 0.12 : 2.0, k == Topology.LinkKind.NETWORK ? 200 : 50));
            }
        }
        Topology.Result r = new Topology.Result(nodes, pairs, 4 << 20, 3);
        assertEquals(0.12, r.medianGbps(Topology.LinkKind.NETWORK), 1e-12);
        var report = Topology.report(r, 1_000_000_000L);
        @SuppressWarnings("unchecked")
        Map<String, Object> data = (Map<String, Object>) report.data();
        assertEquals(0.96, (double) data.get("networkFractionOfConfigured"), 1e-9, "0.12 GB/s = 0.96 Gbit/s of 1 Gbit/s");
        Table links = report.parts().stream().filter(p -> p instanceof parallax.engine.report.Report.TablePart)
                .map(p -> ((parallax.engine.report.Report.TablePart) p).table()).filter(t -> t.name().equals("links")).findFirst().orElseThrow();
        assertEquals("X", links.stringColumn("r0").get(0));
        assertEquals("SHM", links.stringColumn("r1").get(0));
        assertEquals("NET", links.stringColumn("r2").get(0));
        assertTrue(report.toText().contains("the pairs read 0.96 of it"), report.toText());
    }
}
