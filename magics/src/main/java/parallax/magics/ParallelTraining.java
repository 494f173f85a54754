package parallax.magics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.MeshShape;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.Checkpoint;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.parallel.DdpPeer;
import parallax.engine.parallel.DeepSpeedConfig;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.Training;
import parallax.engine.parallel.TrainingReport;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import parallax.engine.torch.DType;
import picocli.CommandLine.Option;

/**
 * The training side of {@code %parallel}: its flags and the hook {@link ParallelCommand}
 * calls when any of them is given. Builds a {@link TrainSpec} from the flags (and an
 * optional DeepSpeed-style --config), runs it on the worker pool with a live progress
 * bar, and returns the engine's report.
 */
final class ParallelTraining {

    private ParallelTraining() {}

    /** Training flags, mixed into ParallelCommand. The names are a contract (issue 4). */
    static final class Flags {
        @Option(names = "--steps", description = "Train for this many optimizer steps (default 20).")
        Integer steps;

        @Option(names = "--compare", arity = "1..*", description = "Train several layouts side by side, e.g. \"dp=4\" \"dp=4,zero=3\" \"tp=2,dp=2\" \"pp=2,dp=2\" (keys: dp tp pp zero mb schedule precision checkpoint localsgd).")
        List<String> compare;

        @Option(names = "--config", description = "DeepSpeed-style JSON file (train_micro_batch_size_per_gpu, gradient_accumulation_steps, zero_optimization.stage, bf16/fp16.enabled, activation_checkpointing, optimizer).")
        String config;

        @Option(names = "--zero", description = "ZeRO stage 0-3 over the data-parallel group (default 0).")
        Integer zero;

        @Option(names = "--micro-batches", description = "Micro-batches per step (pipeline micro-batches, or gradient-accumulation steps when pp = 1; default 1, or 2*pp with --pp).")
        Integer microBatches;

        @Option(names = "--schedule", description = "Pipeline schedule: gpipe or 1f1b (default 1f1b).")
        String schedule;

        @Option(names = "--precision", description = "fp32 (default), bf16 or fp16 (fp16 uses dynamic loss scaling).")
        String precision;

        @Option(names = "--checkpoint", description = "Activation checkpointing: recompute each block in backward.")
        Boolean checkpoint;

        @Option(names = "--checkpoint-every", description = "With checkpointing, keep one input per K blocks (default 1).")
        Integer checkpointEvery;

        @Option(names = "--model", description = "Model preset: tiny, small, medium (default tiny).")
        String model;

        @Option(names = "--seed", description = "Seed of weights and data order (default 7).")
        Long seed;

        @Option(names = "--batch", description = "Global batch in sequences per step (default 8).")
        Integer batch;

        @Option(names = "--optimizer", description = "adamw (default) or sgd.")
        String optimizer;

        @Option(names = "--lr", description = "Learning rate (default 1e-3 for AdamW, 0.05 for SGD).")
        Double lr;

        @Option(names = "--data", description = "text (default: byte-level public-domain text) or synthetic.")
        String data;

        @Option(names = "--local-sgd", description = "Local SGD: no gradient all-reduce; average parameters every K steps.")
        Integer localSgd;

        @Option(names = "--save", paramLabel = "FILE.safetensors", description = "Write the trained model (gathered parameters, model shape and run in parallax.* metadata) as a safetensors checkpoint; %%convert turns it into GGUF or an ONNX graph.")
        String save;

        /** True when the user asked for training. */
        boolean requested() {
            return steps != null || compare != null || config != null || zero != null || microBatches != null
                    || schedule != null || precision != null || checkpoint != null || checkpointEvery != null
                    || model != null || seed != null || batch != null || optimizer != null || lr != null
                    || data != null || localSgd != null || save != null;
        }
    }

    /** Largest model whose weights a plain run gathers to the coordinator without --save. */
    static final long EXPORT_LIMIT_PARAMETERS = 10_000_000;

    /** Runs training with the given mesh on {@code ranks} ranks. */
    static Report run(ParallelCommand command, Flags flags, MeshShape shape, int ranks) {
        MeshShape layout = shape != null ? shape : MeshShape.dataParallel(ranks);
        DeepSpeedConfig.Applied config = specAndConfig(flags, layout);
        TrainSpec base = config.spec();
        Path save = null;
        if (flags.save != null) {
            save = Path.of(flags.save);
            if (!save.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors"))
                throw new UserError("--save writes a safetensors checkpoint: give a FILE.safetensors, not " + flags.save);
            if (flags.compare != null && !flags.compare.isEmpty())
                throw new UserError("--save keeps one trained model: drop --compare (or train the layout to keep on its own)");
            Path dir = save.toAbsolutePath().getParent();
            if (dir != null && !Files.isDirectory(dir)) throw new UserError("--save: directory " + dir + " does not exist");
            base = base.withExport(true);
        }
        // A single run keeps its trained weights in Training.lastRun() (for cells and for
        // %precision cast --from model) when they are small enough to gather cheaply.
        boolean single = flags.compare == null || flags.compare.isEmpty();
        if (single && base.model().parameterCount() <= EXPORT_LIMIT_PARAMETERS) base = base.withExport(true);
        if (flags.compare != null && !flags.compare.isEmpty()) {
            List<TrainSpec> specs = new ArrayList<>();
            for (String c : flags.compare) {
                TrainSpec s = override(base, c, flags);
                s.validate(s.world()); // every item checked before anything runs
                specs.add(s);
            }
            List<Training.Run> runs = new ArrayList<>();
            for (int i = 0; i < specs.size(); i++) runs.add(train(command, specs.get(i), flags.compare.get(i)));
            Training.remember(runs);
            return withConfig(TrainingReport.compare(runs), config);
        }
        if (command.baseline && (base.tp() > 1 || base.pp() > 1))
            throw new UserError("--baseline compares with PyTorch DDP: use a pure data-parallel layout (--dp N only)");
        Training.Run run = train(command, base, TrainingReport.label(base));
        Training.remember(List.of(run));
        DdpPeer.Result peer = null;
        if (command.baseline) {
            // The box is shared: alternate ours and PyTorch's three times so that both see
            // the same load, and compare the medians of the per-round medians.
            List<Double> ours = new ArrayList<>(), theirs = new ArrayList<>();
            List<double[]> peerSteps = new ArrayList<>();
            ours.add(run.medianStepMs());
            for (int round = 0; round < 3; round++) {
                if (round > 0) ours.add(train(command, base, TrainingReport.label(base) + " (round " + (round + 1) + ")").medianStepMs());
                Cluster.session().stop(); // free the cores for the peer
                DdpPeer.Result r = DdpPeer.run(base.model(), base.dp(), base.batch(), base.steps(), base.seed());
                theirs.add(r.medianStepMs());
                peerSteps.add(r.stepMs());
            }
            peer = new DdpPeer.Result(peerSteps.get(0), null, median(ours), median(theirs), ours, theirs);
        }
        Report report = withConfig(TrainingReport.single(run, peer), config);
        if (save == null) return report;
        Checkpoint.save(run, save);
        return withText(report, String.format(Locale.ROOT,
                "Saved the trained model to **%s** (%,d bytes: %d float32 tensors, %,d parameters; model shape and run in `parallax.*` metadata). "
                        + "Convert it with `%%convert %s model.onnx --check` or `... model.gguf --to q8_0`.",
                save, sizeOf(save), Checkpoint.shapes(base.model()).size(), base.model().parameterCount(), save));
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

    private static Training.Run train(ParallelCommand command, TrainSpec spec, String label) {
        spec.validate(spec.world());
        WorkerPool pool = Cluster.session().pool(spec.world());
        int reporter = (spec.pp() - 1) * spec.dp() * spec.tp(); // last stage, dp 0, tp 0
        try (Progress p = command.output().progress("%parallel " + label, spec.steps())) {
            return Training.run(pool, spec, ev -> {
                if (ev.rank() == reporter && "step".equals(ev.kind()) && ev.fields() != null) {
                    Object loss = ev.fields().get("loss");
                    p.update(ev.step(), Map.of("loss", loss instanceof Number n ? String.format(Locale.ROOT, "%.4f", n.doubleValue()) : "-"));
                }
            });
        }
    }

    private static double median(List<Double> v) {
        double[] a = new double[v.size()];
        for (int i = 0; i < a.length; i++) a[i] = v.get(i);
        return Training.median(a, 0);
    }

    static TrainSpec spec(Flags f, MeshShape layout) {
        return specAndConfig(f, layout).spec();
    }

    /** The run the flags ask for, with --config applied, and the config's "auto" keys it filled. */
    static DeepSpeedConfig.Applied specAndConfig(Flags f, MeshShape layout) {
        GptConfig cfg = GptConfig.preset(f.model == null ? "tiny" : f.model);
        TrainSpec s = TrainSpec.defaults(cfg).withLayout(layout.dp(), layout.tp(), layout.pp());
        if (f.steps != null) s = s.withSteps(f.steps);
        if (f.seed != null) s = s.withSeed(f.seed);
        if (f.batch != null) s = s.withBatch(f.batch);
        if (f.optimizer != null) {
            String o = f.optimizer.toLowerCase(Locale.ROOT);
            if (!o.equals("adamw") && !o.equals("sgd")) throw new UserError("unknown optimizer '" + f.optimizer + "'" + DidYouMean.hint(o, List.of("adamw", "sgd")) + " (adamw, sgd)");
            s = s.withOptimizer(o, o.equals("sgd") ? 0.05 : 1e-3);
        }
        if (f.lr != null) s = s.withOptimizer(s.optimizer(), f.lr);
        if (f.data != null) {
            if (f.data.equalsIgnoreCase("text")) s = s.withData(TextData.Source.TEXT);
            else if (f.data.equalsIgnoreCase("synthetic")) s = s.withData(TextData.Source.SYNTHETIC);
            else throw new UserError("unknown --data '" + f.data + "' (text, synthetic)");
        }
        if (s.pp() > 1 && f.microBatches == null && s.microBatches() == 1) s = s.withMicroBatches(2 * s.pp(), s.schedule());
        if (f.microBatches != null) s = s.withMicroBatches(f.microBatches, s.schedule());
        if (f.schedule != null) s = s.withMicroBatches(s.microBatches(), PipelineParallel.Schedule.parse(f.schedule));
        if (f.zero != null) s = s.withZero(f.zero);
        if (f.precision != null) {
            DType d = DType.parse(f.precision);
            if (d == null) throw new UserError("unknown --precision '" + f.precision + "'" + DidYouMean.hint(f.precision, List.of("fp32", "bf16", "fp16")) + " (fp32, bf16, fp16)");
            s = s.withPrecision(d);
        }
        if (Boolean.TRUE.equals(f.checkpoint) || f.checkpointEvery != null)
            s = s.withCheckpoint(f.checkpointEvery == null ? 1 : f.checkpointEvery);
        if (f.localSgd != null) s = s.withLocalSgd(f.localSgd);
        // Last, so that its "auto" values can take the flags' values.
        if (f.config == null) return new DeepSpeedConfig.Applied(s, List.of());
        String text;
        try {
            text = Files.readString(Path.of(f.config));
        } catch (IOException e) {
            throw new UserError("cannot read --config " + f.config + ": " + e.getMessage());
        }
        return DeepSpeedConfig.resolve(text, s);
    }

    /** One --compare item, e.g. "tp=2,dp=2,zero=1", applied over the base flags. */
    static TrainSpec override(TrainSpec base, String item, Flags f) {
        TrainSpec s = base.withLayout(1, 1, 1);
        boolean mbGiven = false;
        for (String kv : item.split(",")) {
            String t = kv.trim();
            if (t.isEmpty()) continue;
            String[] p = t.split("=", 2);
            String k = p[0].trim().toLowerCase(Locale.ROOT), v = p.length > 1 ? p[1].trim() : "";
            try {
                switch (k) {
                    case "dp": s = s.withLayout(Integer.parseInt(v), s.tp(), s.pp()); break;
                    case "tp": s = s.withLayout(s.dp(), Integer.parseInt(v), s.pp()); break;
                    case "pp": s = s.withLayout(s.dp(), s.tp(), Integer.parseInt(v)); break;
                    case "zero": s = s.withZero(Integer.parseInt(v)); break;
                    case "mb": case "micro-batches": s = s.withMicroBatches(Integer.parseInt(v), s.schedule()); mbGiven = true; break;
                    case "schedule": s = s.withMicroBatches(s.microBatches(), PipelineParallel.Schedule.parse(v)); break;
                    case "precision": {
                        DType d = DType.parse(v);
                        if (d == null) throw new UserError("--compare '" + item + "': unknown precision '" + v + "'");
                        s = s.withPrecision(d);
                        break;
                    }
                    case "checkpoint": case "ckpt": s = s.withCheckpoint(v.isEmpty() ? 1 : Integer.parseInt(v)); break;
                    case "localsgd": case "local-sgd": s = s.withLocalSgd(Integer.parseInt(v)); break;
                    default:
                        throw new UserError("--compare '" + item + "': unknown key '" + k + "'"
                                + DidYouMean.hint(k, List.of("dp", "tp", "pp", "zero", "mb", "schedule", "precision", "checkpoint", "localsgd")));
                }
            } catch (NumberFormatException e) {
                throw new UserError("--compare '" + item + "': '" + v + "' is not a number for " + k);
            }
        }
        if (s.pp() > 1 && !mbGiven && f.microBatches == null && s.microBatches() == 1) s = s.withMicroBatches(2 * s.pp(), s.schedule());
        return s;
    }
}
