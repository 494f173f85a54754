package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.parallel.ContextParallel.Block;
import parallax.engine.parallel.ContextParallel.RingBlock;
import parallax.engine.parallel.ContextParallel.RingSteps;

/** Ring attention step by step: the pairs each rank meets, their causal kind, and zig-zag's balance. */
class RingStepsTest {

    @Test
    void zigZagChunksAreTheTokensTheEngineGivesEachRank() {
        for (int cp = 2; cp <= 8; cp++) {
            int seq = 2 * cp * 3, c = seq / (2 * cp);
            for (int r = 0; r < cp; r++) {
                long[] pos = ContextParallel.positions(r, cp, seq);
                int[] ch = ContextParallel.chunks(r, cp, true);
                assertArrayEquals(new int[] {(int) (pos[0] / c), (int) (pos[c] / c)}, ch, "cp=" + cp + " rank " + r);
                for (int i = 0; i < c; i++) {
                    assertEquals(ch[0] * c + i, pos[i]);
                    assertEquals(ch[1] * c + i, pos[c + i]);
                }
            }
        }
    }

    @Test
    void everyPairIsMetOnceByTheRankHoldingItsQueriesWithItsCausalKind() {
        for (boolean zigzag : new boolean[] {true, false})
            for (int cp = 1; cp <= 8; cp++) {
                RingSteps ring = ContextParallel.ringSteps(cp, zigzag);
                int n = 2 * cp;
                assertEquals(cp * cp * 4, ring.blocks().size());
                Map<Long, RingBlock> seen = new HashMap<>();
                for (RingBlock b : ring.blocks()) {
                    assertEquals(null, seen.put((long) b.queryChunk() * n + b.keyChunk(), b), "pair met twice: " + b);
                    int[] q = ContextParallel.chunks(b.rank(), cp, zigzag), k = ContextParallel.chunks(b.owner(), cp, zigzag);
                    assertEquals(true, b.queryChunk() == q[0] || b.queryChunk() == q[1]);
                    assertEquals(true, b.keyChunk() == k[0] || b.keyChunk() == k[1]);
                    // Causality by token: key chunk j's tokens all precede query chunk i's when j < i.
                    Block want = b.keyChunk() < b.queryChunk() ? Block.FULL : b.keyChunk() == b.queryChunk() ? Block.DIAGONAL : Block.MASKED;
                    assertEquals(want, b.kind(), b.toString());
                }
                assertEquals(n * n, seen.size());
            }
    }

    @Test
    void keyBlocksTravelToTheNextRankOneHopPerStep() {
        int cp = 4;
        for (int r = 0; r < cp; r++) {
            assertEquals(r, ContextParallel.keyOwner(r, 0, cp), "step 0 is the rank's own block");
            // What rank r holds at step s is what rank r-1 held at step s-1 (sends go to rank + 1).
            for (int s = 1; s < cp; s++)
                assertEquals(ContextParallel.keyOwner(Math.floorMod(r - 1, cp), s - 1, cp), ContextParallel.keyOwner(r, s, cp));
        }
        assertEquals(3, ContextParallel.keyOwner(0, 1, cp));
    }

    @Test
    void zigZagGivesEveryRankTheSameWorkAtEveryStep() {
        for (int cp = 1; cp <= 8; cp++) {
            RingSteps ring = ContextParallel.ringSteps(cp);
            for (int r = 0; r < cp; r++) {
                assertEquals(2 * cp - 1, ring.count(r, Block.FULL), "cp=" + cp + " rank " + r);
                assertEquals(2, ring.count(r, Block.DIAGONAL));
                assertEquals(2 * cp - 1, ring.count(r, Block.MASKED));
                assertEquals(2 * cp, ring.rankWork(r), 1e-12);
                for (int s = 0; s < cp; s++) assertEquals(2.0, ring.work(s, r), 1e-12, "cp=" + cp + " step " + s + " rank " + r);
            }
            assertEquals(2 * cp, ring.criticalPath(), 1e-12);
        }
    }

    @Test
    void contiguousChunksLeaveTheFirstRanksIdleAndLengthenTheRing() {
        RingSteps ring = ContextParallel.ringSteps(4, false);
        // Rank r holds chunks 2r and 2r+1: 4r+1 full pairs and 2 diagonal ones.
        for (int r = 0; r < 4; r++) assertEquals(4 * r + 2, ring.rankWork(r), 1e-12);
        assertEquals(0.0, ring.work(1, 0), 1e-12);   // rank 0 holds rank 3's keys: all in its future
        assertEquals(4.0, ring.work(1, 3), 1e-12);   // rank 3 holds rank 2's keys: all in its past
        assertEquals(2 + 4 * 3, ring.criticalPath(), 1e-12);
        assertEquals(8, ContextParallel.ringSteps(4, true).criticalPath(), 1e-12);
    }

    @Test
    void aSizeBelowOneIsOneLine() {
        UserError e = assertThrows(UserError.class, () -> ContextParallel.ringSteps(0));
        assertEquals("context-parallel size must be at least 1, not 0", e.getMessage());
    }
}
