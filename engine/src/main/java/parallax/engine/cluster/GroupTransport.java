package parallax.engine.cluster;

import org.bytedeco.pytorch.Tensor;

/**
 * A way for a group to move CPU tensors other than its c10d backend: shared memory when
 * every member is on one machine ({@link SharedMemoryGroup}), shared memory inside each
 * node plus the backend across nodes when the group spans nodes ({@link HierarchicalGroup}).
 * {@link Collectives} hands it all-reduce, all-gather and reduce-scatter of contiguous CPU
 * tensors; every member calls the same operations in the same order, as with Gloo.
 * {@code what} names the call for messages; a member that does not arrive within
 * {@code timeoutMs} ends the call with a {@link ClusterError} carrying
 * {@link Collectives#TIMEOUT_MARK}.
 */
interface GroupTransport extends AutoCloseable {

    /** "shm", or "shm+gloo" for the hierarchical path: what {@link Collectives#transport()} reports. */
    String name();

    /** Sums {@code t} over the group, in place; every member ends with the same bits. */
    void allReduce(Tensor t, long timeoutMs, String what);

    /** {@code out} (group size x the elements of {@code in}) receives every member's {@code in}, in group-rank order. */
    void allGather(Tensor out, Tensor in, long timeoutMs, String what);

    /** {@code out} receives part {@code rank} of the group-wide sum of {@code in} (group size equal parts). */
    void reduceScatter(Tensor out, Tensor in, long timeoutMs, String what);

    @Override
    void close();
}
