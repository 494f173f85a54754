package parallax.magics;

import com.google.gson.JsonElement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.cluster.AllReduceCheck;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.CollectiveBenchmark.Row;
import parallax.engine.cluster.CollectiveBenchmark;
import parallax.engine.cluster.MeshShape;
import parallax.engine.cluster.RankEvent;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * {@code %%parallel}: runs the cell's Java code on every rank (SPMD) with {@code dist} bound.
 * {@code %parallel --bench OP}: collective benchmarks (nccl-tests style).
 * {@code %parallel} with training flags: handed to {@link ParallelTraining}.
 */
@Command(name = "parallel", description = {
        "%%%%parallel [--ranks N | --dp a --tp b --pp c]: run the cell's Java code on every rank with `dist` bound;",
        "  output is prefixed [rank k], the last value of every rank is gathered into a table, variables persist.",
        "%%parallel --bench allreduce|allgather|reduce_scatter|broadcast|alltoall --ranks N --sizes 1KB..64MB: bandwidth benchmark.",
        "%%parallel --bench algorithms --worlds 2,3,4: ring, tree and parameter-server all-reduce vs the built-in one, checked against the exact sum.",
        "%%parallel --dp a --tp b --pp c --zero z --micro-batches m --schedule 1f1b --precision bf16 --checkpoint --steps N: train a GPT",
        "  with that layout (live progress, loss, per-rank memory and time split); --compare \"dp=2\" \"tp=2\" ... side by side; --config ds.json."})
public final class ParallelCommand extends MagicCommand {

    @Mixin
    TrainingOptions.Layout layout = new TrainingOptions.Layout();

    @Option(names = "--bench", description = "Benchmark a collective: allreduce, allgather, reduce_scatter, broadcast, alltoall (equal split); or 'algorithms'.")
    String bench;

    @Option(names = "--sizes", description = "Message sizes: FROM..TO (powers of two, KB/MB binary) or a list (default 1KB..64MB; algorithms 1KB..4MB).")
    String sizes;

    @Option(names = "--iters", defaultValue = "0", description = "Timed iterations per size (0: 20 up to 1 MiB, 10 up to 8 MiB, then 5).")
    int iters;

    @Option(names = "--baseline", description = "Also time raw ProcessGroupGloo and PyTorch torch.distributed (Gloo, /usr/bin/python3) in the same run; with training flags, train the same model with PyTorch DDP and report the step-time ratio.")
    boolean baseline;

    @Option(names = "--worlds", defaultValue = "2,3,4", description = "With --bench algorithms: world sizes to compare.")
    String worlds;

    @Mixin
    TrainingOptions.Flags training = new TrainingOptions.Flags();

    @Override
    protected Report execute() {
        if (!cellBody().isBlank()) {
            if (bench != null || training.requested()) throw new UserError("%%parallel runs the cell on every rank; --bench and training flags belong to the line magic %parallel");
            return spmd();
        }
        if (bench != null) {
            if (training.requested()) throw new UserError("give either --bench or training flags, not both");
            if (iters < 0) throw new UserError("--iters must be 0 (automatic) or more, not " + iters);
            return bench.equalsIgnoreCase("algorithms") ? algorithms() : bandwidth();
        }
        if (training.requested()) {
            MeshShape shape = shape();
            return ParallelTraining.run(this, training, shape, shape == null ? rankCount() : shape.world(),
                    spec.commandLine().getParseResult());
        }
        throw new UserError("nothing to do: write %%parallel with Java code below it, or %parallel --bench allreduce, or training flags (see %parallel --help)");
    }

    /** The mesh the flags ask for, or null when they name none (keep the pool's). */
    MeshShape shape() { return layout.shape(); }

    int rankCount() {
        MeshShape s = shape();
        if (s != null) return s.world();
        return Cluster.session().defaultRanks();
    }

    // ---------------------------------------------------------------- %%parallel cells

    private Report spmd() {
        MeshShape s = shape();
        WorkerPool pool = Cluster.session().pool(s != null ? s.world() : rankCount());
        List<JsonElement> values = pool.exec(cellBody(), s, ev -> {
            if (ev.isOutput()) output().out().println("[rank " + ev.rank() + "] " + ev.text());
        });
        output().out().flush();
        if (values.stream().allMatch(v -> v == null || v.isJsonNull())) return null;
        Table t = Table.create("values", IntColumn.create("rank"), StringColumn.create("value"));
        List<String> list = new ArrayList<>();
        for (int r = 0; r < values.size(); r++) {
            JsonElement v = values.get(r);
            String text = v == null || v.isJsonNull() ? "" : v.isJsonPrimitive() ? v.getAsString() : v.toString();
            t.intColumn("rank").append(r);
            t.stringColumn("value").append(text);
            list.add(text);
        }
        return Report.builder(null).table(t, "Last value of the cell on each rank").data(Map.of("values", list)).build();
    }

    // ---------------------------------------------------------------- benchmarks

    private Report bandwidth() {
        String op = CollectiveBenchmark.checkOp(bench);
        List<Long> sz = CollectiveBenchmark.parseSizes(sizes == null ? "1KB..64MB" : sizes);
        int n = rankCount();
        if (n < 2) throw new UserError("a collective benchmark needs at least 2 ranks");
        Cluster c = Cluster.session();
        boolean fresh = c.current() == null || c.current().size() != n;
        WorkerPool pool = c.pool(n);
        Map<String, Object> extra = new LinkedHashMap<>();
        if (fresh) {
            extra.put("poolStartSeconds", pool.startSeconds());
            extra.put("rankReadyMillis", pool.readyMillis());
        }
        List<WorkerPool.RankStatus> st = pool.status();
        long idleRss = st.stream().mapToLong(WorkerPool.RankStatus::rssBytes).max().orElse(-1);
        String backend = st.isEmpty() ? "gloo" : st.get(0).backend();
        extra.put("idleRankRssBytes", idleRss);
        extra.put("transport", st.isEmpty() ? backend : st.get(0).transport());
        extra.put("nodes", st.stream().map(WorkerPool.RankStatus::host).distinct().count());
        long shaped = c.shapedRate();
        if (shaped > 0) extra.put("linkBitsPerSecond", shaped);
        List<Row> rows = new ArrayList<>();
        List<String> impls = baseline ? List.of("runtime", "raw") : List.of("runtime");
        try (Progress p = output().progress("%parallel --bench " + op, (long) sz.size() * (baseline ? 2 : 1))) {
            long[] done = {0};
            rows.addAll(CollectiveBenchmark.measure(pool, op, sz, impls, iters, ev -> tick(p, ev, done)));
            if (baseline) {
                // Free the cores for the peer: the pool is restarted on next use. The peer's
                // ranks go where ours were (on a test bed: inside the same namespaces).
                var nodes = pool.nodes();
                c.stop();
                try {
                    rows.addAll(CollectiveBenchmark.torchPeer(op, nodes, n, sz, iters));
                } catch (UserError e) {
                    // The Gloo rows stand on their own; say why the PyTorch ones are missing.
                    extra.put(CollectiveBenchmark.TORCH_PEER_SKIPPED, e.getMessage());
                }
                p.update(done[0] + sz.size(), Map.of("impl", "torch.distributed"));
            }
        }
        return CollectiveBenchmark.report(op, n, backend, rows, extra);
    }

    private static void tick(Progress p, RankEvent ev, long[] done) {
        if (ev.rank() == 0 && "step".equals(ev.kind())) {
            done[0]++;
            p.update(done[0], Map.of("size", CollectiveBenchmark.human((long) ev.number("bytes"))));
        }
    }

    private Report algorithms() {
        List<Long> sz = CollectiveBenchmark.parseSizes(sizes == null ? "1KB..4MB" : sizes);
        List<Integer> ws = new ArrayList<>();
        for (String w : worlds.split(",")) {
            try {
                int v = Integer.parseInt(w.trim());
                if (v < 2) throw new NumberFormatException();
                ws.add(v);
            } catch (NumberFormatException e) {
                throw new UserError("--worlds takes world sizes of at least 2 separated by commas, such as 2,3,4: '" + worlds + "'");
            }
        }
        Cluster c = Cluster.session();
        List<Row> rows = new ArrayList<>();
        Map<Integer, AllReduceCheck.Outcome> checks = new LinkedHashMap<>();
        try (Progress p = output().progress("all-reduce algorithms", (long) ws.size() * sz.size())) {
            long[] done = {0};
            for (int w : ws) {
                WorkerPool pool = c.pool(w);
                // a wrong result stops here, with one line naming the algorithm, world, size and difference
                checks.put(w, CollectiveBenchmark.checkAllReduce(pool));
                rows.addAll(CollectiveBenchmark.measure(pool, "allreduce", sz, CollectiveBenchmark.ALGORITHMS, iters,
                        ev -> tick(p, ev, done)));
            }
        }
        return CollectiveBenchmark.algorithmsReport(checks, rows);
    }
}
