package parallax.magics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.MeshShape;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.Topology;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.Checkpoint;
import parallax.engine.parallel.DdpPeer;
import parallax.engine.parallel.DeepSpeedConfig;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.Training;
import parallax.engine.parallel.TrainingReport;
import parallax.engine.parallel.TrainingRun;
import parallax.engine.plan.RunEstimate;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import parallax.engine.report.Stats;
import parallax.engine.torch.Device;
import parallax.engine.torch.Flops;
import parallax.engine.torch.Memory;
import picocli.CommandLine;

/**
 * The training side of {@code %parallel}: turns the flags into runs
 * ({@link TrainingOptions}), trains them on the worker pool with a live progress bar
 * showing the global loss, remembers them in the {@link Session}, optionally runs the
 * PyTorch DDP peer and saves the trained model, and returns the engine's report.
 */
final class ParallelTraining {

    private ParallelTraining() {}

    /** Trains with the given mesh on {@code ranks} ranks; {@code given} is what picocli parsed. */
    static Report run(ParallelCommand command, TrainingOptions.Flags flags, MeshShape shape, int ranks,
                      CommandLine.ParseResult given) {
        MeshShape layout = shape != null ? shape : MeshShape.dataParallel(ranks);
        DeepSpeedConfig.Applied config = TrainingOptions.resolve(flags, layout);
        TrainSpec base = config.spec();
        boolean compare = flags.compare != null && !flags.compare.isEmpty();
        Path save = flags.save == null ? null : saveTarget(flags.save, compare);
        if (compare && flags.faultTolerance())
            throw new UserError("checkpoints, --resume and restarts belong to one run: drop --compare (or run the layout on its own)");
        if (compare) {
            List<TrainSpec> specs = new ArrayList<>();
            for (String item : flags.compare) {
                TrainSpec s = TrainingOptions.compareItem(item, given);
                s.validate(s.world()); // every item checked before anything runs
                specs.add(s);
            }
            java.util.Map<String, String> seen = new java.util.HashMap<>();
            for (int i = 0; i < specs.size(); i++) {
                String earlier = seen.putIfAbsent(specs.get(i).label(), flags.compare.get(i));
                if (earlier != null)
                    throw new UserError("--compare items '" + earlier + "' and '" + flags.compare.get(i) + "' describe the same run ("
                            + specs.get(i).label() + "): make them differ or drop one");
            }
            List<TrainingRun> runs = new ArrayList<>();
            for (int i = 0; i < specs.size(); i++) runs.add(train(command, specs.get(i), flags.compare.get(i)));
            Session.remember(runs);
            Report report = withConfig(TrainingReport.compare(runs), config);
            for (int i = 0; i < specs.size(); i++) report = withPlacement(report, specs.get(i), flags.compare.get(i) + ": ");
            return report;
        }
        base.validate(base.world());
        if (command.baseline && (base.tp() > 1 || base.pp() > 1))
            throw new UserError("--baseline compares with PyTorch DDP: use a pure data-parallel layout (--dp N only)");
        // A single run hands its trained weights back (for cells and %precision cast --from
        // model) when the workers' heap allows; --save needs them.
        long heap = Cluster.session().workerOptions().heapBytes();
        boolean keep = save != null || Training.exportFits(base, heap);
        TrainingRun run = train(command, base.withExport(keep), base.label());
        Session.remember(List.of(run));
        DdpPeer.Result peer = command.baseline ? ddpPeer(command, base, run) : null;
        Report report = withPlacement(withConfig(TrainingReport.single(run, peer), config), base, "");
        if (!keep) report = withText(report, String.format(Locale.ROOT, "The trained weights were not handed back: %s needs about "
                + "%,d MiB of worker heap for that, more than the workers' %,d MiB allow (raise it with PARALLAX_WORKER_OPTS=-Xmx...).",
                base.model().name(), Training.exportHeapBytes(base) >> 20, heap >> 20));
        if (save == null) return report;
        run.saveCheckpoint(save);
        return withText(report, String.format(Locale.ROOT,
                "Saved the trained model to **%s** (%,d bytes: %d float32 tensors, %,d parameters; model shape and run in `parallax.*` metadata). "
                        + "Convert it with `%%convert %s model.onnx --check` or `... model.gguf --to q8_0`.",
                save, sizeOf(save), Checkpoint.shapes(base.model()).size(), base.model().parameterCount(), save));
    }

    /** Says so when the nodes force a TP group of {@code spec} across nodes (the slow link). */
    private static Report withPlacement(Report r, TrainSpec spec, String prefix) {
        MeshShape shape = new MeshShape(spec.dp(), spec.tp(), spec.pp());
        String note = Topology.placementNote(shape, Cluster.session().nodes(shape.world()));
        return note == null ? r : withText(r, "**Placement:** " + prefix + note + ".");
    }

    private static Path saveTarget(String file, boolean compare) {
        Path save = Path.of(file);
        if (save.getFileName() == null || !save.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors"))
            throw new UserError("--save writes a safetensors checkpoint: give a FILE.safetensors, not " + file);
        if (compare) throw new UserError("--save keeps one trained model: drop --compare (or train the layout to keep on its own)");
        if (Files.isDirectory(save)) throw new UserError("--save: " + file + " is a directory");
        Path dir = save.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) throw new UserError("--save: directory " + dir + " does not exist");
        return save;
    }

    /**
     * PyTorch DDP on the same shape, batch and steps. The box is shared: ours and PyTorch's
     * alternate three times so that both see the same load, and the medians of the
     * per-round medians are compared.
     */
    private static DdpPeer.Result ddpPeer(ParallelCommand command, TrainSpec base, TrainingRun first) {
        List<Double> ours = new ArrayList<>(), theirs = new ArrayList<>();
        List<double[]> peerSteps = new ArrayList<>();
        ours.add(first.medianStepMs());
        for (int round = 0; round < 3; round++) {
            if (round > 0) ours.add(train(command, base, base.label() + " (round " + (round + 1) + ")").medianStepMs());
            Cluster.session().stop(); // free the cores for the peer
            // on the session's nodes, placed as our ranks are (a test bed: inside the same namespaces)
            DdpPeer.Result r = DdpPeer.run(base.model(), Cluster.session().nodes(base.dp()), base.dp(), base.batch(), base.steps(), base.seed());
            theirs.add(r.medianStepMs());
            peerSteps.add(r.stepMs());
        }
        return new DdpPeer.Result(peerSteps.get(0), null, median(ours), median(theirs), ours, theirs);
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }

    /** The report with one more paragraph at the end (same title and data). */
    static Report withText(Report r, String markdown) {
        return withText(r, markdown, r.data());
    }

    private static Report withText(Report r, String markdown, Object data) {
        Report.Builder b = Report.builder(r.title());
        for (Report.Part p : r.parts()) {
            if (p instanceof Report.Text t) b.text(t.markdown());
            else if (p instanceof Report.TablePart t) b.table(t.table(), t.caption());
            else if (p instanceof Report.ChartPart t) b.chart(t.chart(), t.caption());
        }
        return b.text(markdown).data(data).build();
    }

    /** Says which "auto" keys of the DeepSpeed config took which values (text, and "deepspeed_auto" in the data). */
    @SuppressWarnings("unchecked")
    static Report withConfig(Report r, DeepSpeedConfig.Applied config) {
        if (config.filled().isEmpty()) return r;
        Map<String, Object> data = r.data() instanceof Map<?, ?> m ? new java.util.LinkedHashMap<>((Map<String, Object>) m)
                : new java.util.LinkedHashMap<>();
        data.put("deepspeed_auto", config.filledValues());
        return withText(r, config.note(), data);
    }

    /** One run on the session's pool, with a live bar of the global loss. */
    private static TrainingRun train(ParallelCommand command, TrainSpec spec, String label) {
        spec.validate(spec.world());
        beforeTheRun(command, spec);
        WorkerPool pool = Cluster.session().pool(spec.world());
        try (Progress p = command.output().progress("%parallel " + label, spec.steps())) {
            return Training.run(pool, spec, (step, loss) ->
                    p.update(step, Map.of("loss", Double.isFinite(loss) ? String.format(Locale.ROOT, "%.4f", loss) : "-")));
        }
    }

    /**
     * Before a run starts, from the planner's formulas: refuses a shape whose fullest rank
     * cannot fit the memory this machine has for its ranks (when they all run here), and
     * for a shape that will take a while on CPU ranks, says how long a step should take at
     * this machine's measured matmul rate.
     */
    static void beforeTheRun(ParallelCommand command, TrainSpec spec) {
        Nodes nodes = Cluster.session().nodes(spec.world());
        boolean allHere = nodes.nodes().stream().allMatch(Nodes.Node::local);
        boolean gpus = nodes.nodes().stream().anyMatch(n -> n.devices().stream().anyMatch(d -> d.startsWith("cuda")));
        RunEstimate estimate = RunEstimate.of(spec);
        long available = Memory.availableBytes();
        if (allHere && !gpus && available > 0)
            estimate.requireFits((double) available / spec.world(),
                    "this machine has available for each of its " + spec.world() + " rank" + (spec.world() == 1 ? "" : "s"));
        if (gpus) return;
        // Small shapes take well under a second a step: measuring the rate is not worth it.
        if (estimate.flopsPerStep() / spec.world() < 2e10) return;
        double rate = Flops.measureMatmul(Device.cpu(), 256, 3);
        double seconds = estimate.secondsPerStep(rate);
        command.output().out().println(String.format(Locale.ROOT,
                "%s: %.2f TFLOP a step (6·Ψ·tokens); at this machine's measured matmul rate, %.1f GFLOP/s per rank, at least "
                        + "%.1f s a step and %.0f s for %d steps (attention, softmax and other memory-bound work add to it).",
                spec.model().name(), estimate.flopsPerStep() / 1e12, rate / 1e9, seconds, seconds * spec.steps(), spec.steps()));
        command.output().out().flush();
    }

    private static double median(List<Double> v) {
        double[] a = new double[v.size()];
        for (int i = 0; i < a.length; i++) a[i] = v.get(i);
        return Stats.median(a, 0);
    }
}
