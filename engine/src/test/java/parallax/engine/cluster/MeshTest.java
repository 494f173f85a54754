package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;

/** The Megatron rank layout (tp fastest, then dp, then pp) for several shapes. */
class MeshTest {

    /** Megatron's tp-cp-ep-dp-pp: ep runs of adjacent dp-cp ranks, expert-DP across the runs (issue 14). */
    @Test
    void expertGroupsAreCarvedOutOfDataParallelRanks() {
        MeshShape s = new MeshShape(4, 2, 2);   // world 16
        assertArrayEquals(new int[] {0, 2}, Mesh.epGroup(s, 2, 0));
        assertArrayEquals(new int[] {4, 6}, Mesh.epGroup(s, 2, 6));
        assertArrayEquals(new int[] {0, 4}, Mesh.expertDpGroup(s, 2, 0));
        assertArrayEquals(new int[] {2, 6}, Mesh.expertDpGroup(s, 2, 2));
        assertArrayEquals(new int[] {9, 11, 13, 15}, Mesh.epGroup(s, 4, 13));
        assertArrayEquals(new int[] {13}, Mesh.expertDpGroup(s, 4, 13));
        for (int r = 0; r < s.world(); r++) {
            int[] ep = Mesh.epGroup(s, 2, r), edp = Mesh.expertDpGroup(s, 2, r);
            assertEquals(2, ep.length);
            assertEquals(2, edp.length);
            Set<Integer> both = new HashSet<>();
            for (int x : ep) both.add(x);
            int common = 0;
            for (int x : edp) if (both.contains(x)) common++;
            assertEquals(1, common, "rank " + r + ": its ep and expert-dp groups meet in itself only");
            for (int x : ep) assertEquals(Mesh.coords(s, r).tpRank(), Mesh.coords(s, x).tpRank(), "same tp rank");
        }
        // with context parallelism the dp-cp group is cut, cp fastest
        MeshShape c = new MeshShape(2, 1, 1, 2);
        assertArrayEquals(new int[] {0, 1}, Mesh.epGroup(c, 2, 1));
        assertArrayEquals(new int[] {1, 3}, Mesh.expertDpGroup(c, 2, 1));
        assertTrue(assertThrows(UserError.class, () -> Mesh.epGroup(s, 3, 0)).getMessage().startsWith("--ep 3 must divide dp x cp = 4"));
    }

    @Test
    void megatronExampleDp2Tp2Pp2() {
        MeshShape s = new MeshShape(2, 2, 2);
        assertEquals(List.of("[0, 1]", "[2, 3]", "[4, 5]", "[6, 7]"), str(Mesh.allGroups(s, "tp")));
        assertEquals(List.of("[0, 2]", "[1, 3]", "[4, 6]", "[5, 7]"), str(Mesh.allGroups(s, "dp")));
        assertEquals(List.of("[0, 4]", "[1, 5]", "[2, 6]", "[3, 7]"), str(Mesh.allGroups(s, "pp")));
        assertEquals(new Mesh.Coords(1, 1, 1), Mesh.coords(s, 7));
        assertEquals(new Mesh.Coords(1, 0, 0), Mesh.coords(s, 2));
    }

    /**
     * Four dimensions in Megatron-core's tp-cp-ep-dp-pp order (the example in
     * docs/training.md#the-4d-mesh): tp fastest, then cp, dp, pp; the dp-cp group, where
     * gradients are averaged, joins the data- and context-parallel ranks of one tp and pp.
     */
    @Test
    void fourDimensionsDp2Cp2Tp2Pp2() {
        MeshShape s = new MeshShape(2, 2, 2, 2);
        assertEquals(List.of("[0, 1]", "[2, 3]", "[4, 5]", "[6, 7]", "[8, 9]", "[10, 11]", "[12, 13]", "[14, 15]"),
                str(Mesh.allGroups(s, "tp")));
        assertEquals(List.of("[0, 2]", "[1, 3]", "[4, 6]", "[5, 7]", "[8, 10]", "[9, 11]", "[12, 14]", "[13, 15]"),
                str(Mesh.allGroups(s, "cp")));
        assertEquals(List.of("[0, 4]", "[1, 5]", "[2, 6]", "[3, 7]", "[8, 12]", "[9, 13]", "[10, 14]", "[11, 15]"),
                str(Mesh.allGroups(s, "dp")));
        assertEquals(List.of("[0, 2, 4, 6]", "[1, 3, 5, 7]", "[8, 10, 12, 14]", "[9, 11, 13, 15]"), str(Mesh.allGroups(s, "dpcp")));
        assertEquals(List.of("[0, 8]", "[1, 9]", "[2, 10]", "[3, 11]", "[4, 12]", "[5, 13]", "[6, 14]", "[7, 15]"),
                str(Mesh.allGroups(s, "pp")));
        // rank 13 = ((pp 1 * 2 + dp 1) * 2 + cp 0) * 2 + tp 1
        assertEquals(new Mesh.Coords(1, 1, 1, 0), Mesh.coords(s, 13));
        for (int r = 0; r < s.world(); r++) {
            Mesh.Coords c = Mesh.coords(s, r);
            assertEquals(r, Mesh.rankOf(s, c.dpRank(), c.tpRank(), c.ppRank(), c.cpRank()));
            assertEquals(r, Mesh.cpGroup(s, r)[c.cpRank()]);
        }
    }

    @Test
    void everyShapeIsAConsistentPartition() {
        int[][] shapes = {{4, 1, 1}, {1, 4, 1}, {1, 1, 4}, {2, 1, 2}, {3, 2, 1}, {2, 3, 2}};
        for (int[] d : shapes) {
            MeshShape s = new MeshShape(d[0], d[1], d[2]);
            for (String kind : List.of("tp", "dp", "pp")) {
                Set<Integer> seen = new HashSet<>();
                for (int[] g : Mesh.allGroups(s, kind)) for (int r : g) assertTrue(seen.add(r), kind + " overlap in " + s);
                assertEquals(s.world(), seen.size(), kind + " groups cover the world in " + s);
            }
            for (int r = 0; r < s.world(); r++) {
                Mesh.Coords c = Mesh.coords(s, r);
                assertEquals(r, Mesh.rankOf(s, c.dpRank(), c.tpRank(), c.ppRank()));
                assertEquals(r, Mesh.tpGroup(s, r)[c.tpRank()]);
                assertEquals(r, Mesh.dpGroup(s, r)[c.dpRank()]);
                assertEquals(r, Mesh.ppGroup(s, r)[c.ppRank()]);
            }
        }
    }

    @Test
    void worldMustBeDivisible() {
        UserError e = assertThrows(UserError.class, () -> new MeshShape(2, 2, 1).requireWorld(6));
        assertTrue(e.getMessage().contains("world size 6 is not dp x tp x pp"), e.getMessage());
        assertArrayEquals(new int[] {0, 1, 2}, Mesh.ppGroup(new MeshShape(1, 1, 3), 1));
    }

    private static List<String> str(List<int[]> groups) {
        return groups.stream().map(java.util.Arrays::toString).toList();
    }
}
