package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.cluster.Mesh;
import parallax.engine.cluster.MeshShape;

/**
 * Test double of the runtime's process groups: ranks are threads of this JVM and a
 * collective is a rendezvous on shared slots. Reductions add in rank order so every
 * member gets the identical sum. Used only to test strategies quickly in one process;
 * the real runs go through the cluster's Gloo groups.
 */
final class LocalGroups {

    private final int size;
    private final CyclicBarrier barrier;
    private final Tensor[] slots;
    /** Point-to-point messages by (src, dst, tag). */
    private final Map<String, BlockingQueue<Tensor>> mail = new java.util.concurrent.ConcurrentHashMap<>();

    LocalGroups(int size) {
        this.size = size;
        this.barrier = new CyclicBarrier(size);
        this.slots = new Tensor[size];
    }

    private BlockingQueue<Tensor> box(int src, int dst, int tag) {
        return mail.computeIfAbsent(src + ">" + dst + "#" + tag, k -> new LinkedBlockingQueue<>());
    }

    Comm member(int rank) {
        if (size == 1) return Comm.single();
        return new Comm() {
            @Override public int rank() { return rank; }
            @Override public int size() { return size; }

            @Override public void allReduce(Tensor t) {
                Tensor sum = exchange(rank, t, () -> {
                    Tensor acc = slots[0].clone();
                    for (int i = 1; i < size; i++) acc.add_(slots[i]);
                    return acc;
                });
                t.copy_(sum);
            }

            @Override public void allGather(Tensor out, Tensor in) {
                Tensor all = exchange(rank, in, () -> {
                    TensorVector v = new TensorVector();
                    for (Tensor s : slots) v.push_back(s.reshape(-1));
                    return torch.cat(v);
                });
                out.copy_(all.view(out.sizes()));
            }

            @Override public void reduceScatter(Tensor out, Tensor in) {
                long n = out.numel();
                Tensor mine = exchange(rank, in, () -> {
                    Tensor acc = slots[0].reshape(-1).clone();
                    for (int i = 1; i < size; i++) acc.add_(slots[i].reshape(-1));
                    return acc.narrow(0, rank * n, n).clone();
                });
                out.copy_(mine.view(out.sizes()));
            }

            @Override public void allToAll(Tensor out, Tensor in) {
                long n = in.numel() / size;
                Tensor mine = exchange(rank, in, () -> {
                    TensorVector v = new TensorVector();
                    for (Tensor s : slots) v.push_back(s.reshape(-1).narrow(0, rank * n, n));
                    return torch.cat(v);
                });
                out.copy_(mine.view(out.sizes()));
            }

            @Override public void send(Tensor t, int dst, int tag) {
                Tensor c = parallax.engine.torch.Torch.keep(t.detach().clone());
                box(rank, dst, tag).add(c);
            }

            @Override public void sendRecv(Tensor out, int dst, Tensor in, int src) {
                send(out, dst, -1);
                recv(in, src, -1);
            }

            @Override public void recv(Tensor t, int src, int tag) {
                try {
                    Tensor c = box(src, rank, tag).poll(10, TimeUnit.SECONDS);
                    if (c == null) throw new IllegalStateException("recv timed out");
                    try (NoGradGuard ng = new NoGradGuard()) { t.copy_(c); }
                    c.close();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
        };
    }

    private Tensor exchange(int rank, Tensor in, java.util.function.Supplier<Tensor> combine) {
        try (NoGradGuard ng = new NoGradGuard()) {
            slots[rank] = in.detach().clone();
            await();
            Tensor r = combine.get();
            await();
            return r;
        }
    }

    private void await() {
        try {
            barrier.await(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("collective did not complete: " + e, e);
        }
    }

    /**
     * Runs {@code spec} on dp*tp*pp threads with Megatron's rank order (tp fastest, then
     * dp, then pp) and returns every rank's result.
     */
    static List<RankResult> run(TrainSpec spec) throws Exception {
        int world = spec.world();
        spec.validate(world);
        MeshShape shape = spec.mesh();
        // One in-JVM group per group of the mesh, found by its members.
        Map<String, LocalGroups> groups = new HashMap<>();
        java.util.function.BiFunction<int[], Integer, Comm> member = (members, rank) -> {
            LocalGroups g = groups.computeIfAbsent(Arrays.toString(members), k -> new LocalGroups(members.length));
            for (int i = 0; i < members.length; i++) if (members[i] == rank) return g.member(i);
            throw new IllegalStateException(rank + " not in " + Arrays.toString(members));
        };
        // Expert groups are groups of their own even where their members are those of another
        // (dp2 ep2: the ep group is the dp group), as in the runtime: each has its own rendezvous.
        java.util.function.BiFunction<String, Integer, Comm> expertMember = (kind, rank) -> {
            int[] members = kind.equals("ep") ? Mesh.epGroup(shape, spec.ep(), rank) : Mesh.expertDpGroup(shape, spec.ep(), rank);
            LocalGroups g = groups.computeIfAbsent(kind + Arrays.toString(members), k -> new LocalGroups(members.length));
            for (int i = 0; i < members.length; i++) if (members[i] == rank) return g.member(i);
            throw new IllegalStateException(rank + " not in " + Arrays.toString(members));
        };
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<RankResult>> futures = new ArrayList<>();
            for (int rank = 0; rank < world; rank++) {
                TrainingLoop.Groups rankGroups = new TrainingLoop.Groups(member.apply(Mesh.dpGroup(shape, rank), rank),
                        member.apply(Mesh.tpGroup(shape, rank), rank), member.apply(Mesh.ppGroup(shape, rank), rank),
                        member.apply(Mesh.cpGroup(shape, rank), rank), member.apply(Mesh.dpCpGroup(shape, rank), rank),
                        spec.ep() > 1 ? expertMember.apply("ep", rank) : Comm.single(),
                        spec.ep() > 1 ? expertMember.apply("edp", rank) : member.apply(Mesh.dpCpGroup(shape, rank), rank));
                int r = rank;
                Mesh.Coords at = Mesh.coords(shape, rank);
                futures.add(pool.submit(() -> {
                    try {
                        return TrainingLoop.train(spec, r, at, parallax.engine.torch.Device.cpu(), rankGroups, TrainingLoop.StepListener.NONE);
                    } catch (RuntimeException e) {
                        // As the pool stops the others when a rank fails: break every group's wait at once.
                        for (LocalGroups g : groups.values()) g.barrier.reset();
                        throw e;
                    }
                }));
            }
            List<RankResult> out = new ArrayList<>();
            java.util.concurrent.ExecutionException first = null;
            for (Future<RankResult> f : futures) {
                try {
                    out.add(f.get(300, TimeUnit.SECONDS));
                } catch (java.util.concurrent.ExecutionException e) {
                    // A rank's own one-line error is what the coordinator reports, not the broken waits it caused.
                    if (e.getCause() instanceof parallax.engine.UserError u) throw u;
                    if (first == null) first = e;
                }
            }
            if (first != null) throw first;
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
