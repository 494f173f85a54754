package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NodeLayoutTest {

    @Test
    void nodesInOrderOfFirstMemberAndLocalRanksInGroupOrder() {
        NodeLayout l = NodeLayout.of(new String[] {"b", "a", "b", "a"});
        assertArrayEquals(new int[][] {{0, 2}, {1, 3}}, l.nodes());
        assertEquals(1, l.nodeOf(3));
        assertEquals(1, l.localRank(2));
        assertTrue(l.evenWithSeveralPerNode());
        assertFalse(l.anyUnknown());
    }

    @Test
    void onlyEvenNodesOfAtLeastTwoAreHierarchical() {
        assertFalse(NodeLayout.of(new String[] {"a", "a", "b"}).evenWithSeveralPerNode(), "2 + 1");
        assertFalse(NodeLayout.of(new String[] {"a", "b"}).evenWithSeveralPerNode(), "one rank per node");
        assertFalse(NodeLayout.of(new String[] {"a", "a"}).evenWithSeveralPerNode(), "one node");
        assertTrue(NodeLayout.of(new String[] {"a", "a", "a", "b", "b", "b"}).evenWithSeveralPerNode());
        assertTrue(NodeLayout.of(new String[] {"a", "", "a"}).anyUnknown());
    }

    @Test
    void theNodeKeyTellsAddressesApartOnOneMachine() {
        String a = NodeLayout.thisNode("127.0.0.1"), b = NodeLayout.thisNode("127.0.0.2");
        if (a.isEmpty()) return;   // no /dev/shm here: nothing to tell apart
        assertNotEquals(a, b);
        assertEquals(a, NodeLayout.thisNode("127.0.0.1"));
    }
}
