package parallax.engine.cluster;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * All-reduce written out with send/recv, two ways, to compare with the library's.
 *
 * <p><b>Ring</b> (Patarasuk and Yuan, "Bandwidth optimal all-reduce algorithms for clusters
 * of workstations", JPDC 2009; the scheme Baidu brought to deep learning and NCCL uses):
 * the tensor is cut into n chunks. In n-1 reduce-scatter steps each rank passes one chunk
 * to its right neighbour and adds the chunk arriving from its left, so that afterwards
 * rank r owns the full sum of chunk r+1. In n-1 all-gather steps the finished chunks travel
 * once more around the ring. Each rank sends 2(n-1)/n of the tensor, whatever n is, which
 * is why bus bandwidth, not the number of ranks, bounds it.
 *
 * <p><b>Parameter server</b>: every rank sends its tensor to rank 0, which adds them up and
 * sends the sum back. Rank 0 moves 2(n-1) whole tensors, so it becomes the bottleneck as
 * n grows.
 */
public final class RingAllReduce {

    private RingAllReduce() {}

    /** Ring all-reduce (sum) of a contiguous 1-D tensor over {@code g}, in place. */
    public static void ring(Collectives g, Tensor t) {
        int n = g.size();
        int r = g.rank();
        if (n == 1) return;
        int right = (r + 1) % n;
        int left = (r - 1 + n) % n;
        long len = t.numel();
        try (PointerScope s = new PointerScope()) {
            Tensor[] chunk = new Tensor[n];
            for (int i = 0; i < n; i++) {
                long from = len * i / n;
                long to = len * (i + 1) / n;
                chunk[i] = t.narrow(0, from, to - from);
            }
            Tensor incoming = torch.empty(len / n + 1);
            // Reduce-scatter: at step k send chunk (r - k), receive and accumulate chunk (r - k - 1).
            for (int k = 0; k < n - 1; k++) {
                int sendIdx = Math.floorMod(r - k, n);
                int recvIdx = Math.floorMod(r - k - 1, n);
                Tensor buf = incoming.narrow(0, 0, chunk[recvIdx].numel());
                g.sendRecv(chunk[sendIdx], right, buf, left);
                chunk[recvIdx].add_(buf);
            }
            // All-gather: rank r now owns the sum of chunk (r + 1); pass the finished chunks on.
            for (int k = 0; k < n - 1; k++) {
                int sendIdx = Math.floorMod(r + 1 - k, n);
                int recvIdx = Math.floorMod(r - k, n);
                Tensor buf = incoming.narrow(0, 0, chunk[recvIdx].numel());
                g.sendRecv(chunk[sendIdx], right, buf, left);
                chunk[recvIdx].copy_(buf);
            }
        }
    }

    /** Parameter-server all-reduce (sum): reduce to rank 0 with recv, then send the sum back. */
    public static void parameterServer(Collectives g, Tensor t) {
        int n = g.size();
        if (n == 1) return;
        try (PointerScope s = new PointerScope()) {
            if (g.rank() == 0) {
                Tensor buf = torch.empty_like(t);
                for (int q = 1; q < n; q++) {
                    g.recv(buf, q);
                    t.add_(buf);
                }
                for (int q = 1; q < n; q++) g.send(t, q);
            } else {
                g.send(t, 0);
                g.recv(t, 0);
            }
        }
    }
}
