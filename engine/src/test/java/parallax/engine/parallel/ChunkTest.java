package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.FloatBuffer;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The box arithmetic a checkpoint reshards with: flat ranges to boxes, intersections, copies. */
class ChunkTest {

    /** The row-major flat index of {@code idx} in {@code shape}. */
    private static long flat(long[] shape, long[] idx) {
        long f = 0;
        for (int d = 0; d < shape.length; d++) f = f * shape[d] + idx[d];
        return f;
    }

    @Test
    void aFlatRangeBecomesBoxesWhoseElementsAreTheRangeInOrder() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int trial = 0; trial < 500; trial++) {
            int dims = 1 + rnd.nextInt(3);
            long[] shape = new long[dims];
            for (int d = 0; d < dims; d++) shape[d] = 1 + rnd.nextInt(7);
            long n = Chunk.numel(shape);
            long from = rnd.nextLong(n + 1), to = from + rnd.nextLong(n - from + 1);
            List<Chunk> boxes = Chunk.ofFlatRange(shape, from, to);
            assertTrue(boxes.size() <= 2 * dims - 1, "at most 2·dims-1 boxes, got " + boxes.size());
            // Walking every box in row-major order visits exactly from, from+1, ..., to-1.
            long next = from;
            for (Chunk b : boxes) {
                long[] idx = new long[dims];
                for (long k = 0; k < b.numel(); k++) {
                    long rem = k;
                    for (int d = dims - 1; d >= 0; d--) {
                        idx[d] = b.offsets()[d] + rem % b.sizes()[d];
                        rem /= b.sizes()[d];
                    }
                    assertEquals(next++, flat(shape, idx), "shape " + java.util.Arrays.toString(shape) + " range [" + from + "," + to + ")");
                }
            }
            assertEquals(to, next);
        }
    }

    @Test
    void aRowSplitMidwayGivesTheEndOfOneRowWholeRowsAndTheStartOfAnother() {
        List<Chunk> b = Chunk.ofFlatRange(new long[] {4, 10}, 7, 33);
        assertEquals(List.of(new Chunk(new long[] {0, 7}, new long[] {1, 3}), new Chunk(new long[] {1, 0}, new long[] {2, 10}),
                new Chunk(new long[] {3, 0}, new long[] {1, 3})), b);
    }

    @Test
    void intersectionsAndCopiesMoveTheRightElements() {
        // A 6x8 tensor whose element (i, j) is 100i + j, saved as two boxes; read back a third.
        long[] shape = {6, 8};
        Chunk a = new Chunk(new long[] {0, 0}, new long[] {6, 5}), b = new Chunk(new long[] {0, 5}, new long[] {6, 3});
        Chunk want = new Chunk(new long[] {2, 3}, new long[] {3, 4});
        float[] out = new float[12];
        for (Chunk src : List.of(a, b)) {
            float[] data = new float[(int) src.numel()];
            for (int i = 0; i < src.sizes()[0]; i++)
                for (int j = 0; j < src.sizes()[1]; j++)
                    data[(int) (i * src.sizes()[1] + j)] = 100 * (src.offsets()[0] + i) + src.offsets()[1] + j;
            Chunk common = src.intersect(want);
            Chunk.copy(common, src, FloatBuffer.wrap(data), want, out, 0);
        }
        float[] expect = new float[12];
        for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) expect[i * 4 + j] = 100 * (2 + i) + 3 + j;
        assertArrayEquals(expect, out);
        assertNull(new Chunk(new long[] {0}, new long[] {4}).intersect(new Chunk(new long[] {4}, new long[] {2})));
        assertEquals(shape.length, want.offsets().length);
    }

    @Test
    void aTensorParallelShardShiftsIntoTheFullTensor() {
        // Column-parallel rank 1 of 2 holds rows 3..5 of a 6-row weight: its local box moves down 3 rows.
        Chunk local = new Chunk(new long[] {0, 0}, new long[] {3, 4});
        assertEquals(new Chunk(new long[] {3, 0}, new long[] {3, 4}), local.shifted(0, 3));
        assertEquals("3,0", local.shifted(0, 3).offsetsText());
    }
}
