package parallax.engine.parallel;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A box of a tensor: where it starts in every dimension and how far it reaches, the way
 * torch.distributed.checkpoint describes a saved piece (ChunkStorageMetadata: offsets and
 * sizes in the global tensor). A checkpoint stores each rank's pieces as such boxes of the
 * full, unsharded tensors, so any other layout finds what it needs by intersecting boxes.
 *
 * <p>A rank owns a flat range of a unit's buffer (its ZeRO slice), which cuts a 2-D weight
 * mid-row; {@link #ofFlatRange} turns such a range into at most three boxes per dimension
 * level (the end of one row, whole rows, the start of another), in row-major order, so the
 * boxes' elements laid one after another are exactly the range
 * (docs/reference.md#checkpoint-layout).
 */
record Chunk(long[] offsets, long[] sizes) {

    long numel() {
        long n = 1;
        for (long s : sizes) n *= s;
        return n;
    }

    /** The boxes covering elements [from, to) of a row-major tensor of {@code shape}, in order. */
    static List<Chunk> ofFlatRange(long[] shape, long from, long to) {
        if (from < 0 || to > numel(shape) || from > to)
            throw new IllegalArgumentException("range [" + from + ", " + to + ") outside " + Arrays.toString(shape));
        List<Chunk> out = new ArrayList<>();
        cover(shape, 0, new long[shape.length], from, to, out);
        return out;
    }

    /** Covers [from, to) of the sub-tensor at {@code prefix} (dimensions before {@code dim} fixed). */
    private static void cover(long[] shape, int dim, long[] prefix, long from, long to, List<Chunk> out) {
        if (from >= to) return;
        if (dim == shape.length - 1) {
            out.add(box(shape, dim, prefix, from, to - from));
            return;
        }
        long inner = 1;
        for (int d = dim + 1; d < shape.length; d++) inner *= shape[d];
        long first = from / inner, last = (to - 1) / inner;
        if (first == last) {
            long[] p = prefix.clone();
            p[dim] = first;
            cover(shape, dim + 1, p, from - first * inner, to - first * inner, out);
            return;
        }
        long wholeFrom = from % inner == 0 ? first : first + 1;
        long wholeTo = to % inner == 0 ? last + 1 : last;
        if (from % inner != 0) {
            long[] p = prefix.clone();
            p[dim] = first;
            cover(shape, dim + 1, p, from - first * inner, inner, out);
        }
        if (wholeFrom < wholeTo) out.add(box(shape, dim, prefix, wholeFrom, wholeTo - wholeFrom));
        if (to % inner != 0) {
            long[] p = prefix.clone();
            p[dim] = last;
            cover(shape, dim + 1, p, 0, to - last * inner, out);
        }
    }

    /** The box at {@code prefix} that spans [start, start+count) in {@code dim} and everything after it. */
    private static Chunk box(long[] shape, int dim, long[] prefix, long start, long count) {
        long[] off = new long[shape.length], size = new long[shape.length];
        for (int d = 0; d < shape.length; d++) {
            if (d < dim) { off[d] = prefix[d]; size[d] = 1; }
            else if (d == dim) { off[d] = start; size[d] = count; }
            else { off[d] = 0; size[d] = shape[d]; }
        }
        return new Chunk(off, size);
    }

    /** This box moved by {@code by} along {@code dim} (a TP shard's box in the full tensor). */
    Chunk shifted(int dim, long by) {
        long[] off = offsets.clone();
        off[dim] += by;
        return new Chunk(off, sizes.clone());
    }

    /** The common part of two boxes, or null when they do not meet. */
    Chunk intersect(Chunk o) {
        long[] off = new long[offsets.length], size = new long[offsets.length];
        for (int d = 0; d < offsets.length; d++) {
            long lo = Math.max(offsets[d], o.offsets[d]);
            long hi = Math.min(offsets[d] + sizes[d], o.offsets[d] + o.sizes[d]);
            if (hi <= lo) return null;
            off[d] = lo;
            size[d] = hi - lo;
        }
        return new Chunk(off, size);
    }

    /**
     * Copies the elements of {@code region} (inside both boxes) from {@code src}'s row-major
     * data to {@code dst}'s, which starts at {@code dstAt} in {@code dstData}.
     */
    static void copy(Chunk region, Chunk src, FloatBuffer srcData, Chunk dst, float[] dstData, int dstAt) {
        int n = region.offsets.length;
        int run = (int) region.sizes[n - 1];
        long[] idx = new long[n]; // position inside region, last dimension always 0
        while (true) {
            long s = 0, d = 0;
            for (int k = 0; k < n; k++) {
                long g = region.offsets[k] + idx[k];
                s = s * src.sizes[k] + (g - src.offsets[k]);
                d = d * dst.sizes[k] + (g - dst.offsets[k]);
            }
            srcData.get((int) s, dstData, dstAt + (int) d, run);
            int k = n - 2;
            while (k >= 0 && ++idx[k] == region.sizes[k]) idx[k--] = 0;
            if (k < 0) return;
        }
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    /** "1,64": the offsets, as a saved piece's name ends. */
    String offsetsText() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < offsets.length; i++) b.append(i == 0 ? "" : ",").append(offsets[i]);
        return b.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Chunk c && Arrays.equals(offsets, c.offsets) && Arrays.equals(sizes, c.sizes);
    }

    @Override
    public int hashCode() { return Arrays.hashCode(offsets) * 31 + Arrays.hashCode(sizes); }

    @Override
    public String toString() { return "offsets " + Arrays.toString(offsets) + " sizes " + Arrays.toString(sizes); }
}
