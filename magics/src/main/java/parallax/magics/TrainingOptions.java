package parallax.magics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.cluster.MeshShape;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.DeepSpeedConfig;
import parallax.engine.parallel.FaultTolerance;
import parallax.engine.parallel.Fp8Recipe;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.TrainSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * The flag model of {@code %parallel} training: every training option, parsed by picocli,
 * and the one place they become a {@link TrainSpec} ({@link #toSpec}). A {@code --compare}
 * item such as {@code "dp=2,zero=3"} is parsed by the same options: each {@code key=value}
 * is the option {@code --key value}, applied over the command's own flags.
 */
final class TrainingOptions {

    /** The training flags, mixed into {@link ParallelCommand}. */
    static final class Flags {
        @Option(names = "--steps", description = "Train for this many optimizer steps (default 20).")
        Integer steps;

        @Option(names = "--compare", arity = "1..*", paramLabel = "LAYOUT",
                description = "Train several layouts side by side, e.g. \"dp=4\" \"dp=4,zero=3\" \"tp=2,dp=2\" \"pp=2,dp=2,mb=4\": "
                        + "each key=value is the training flag --key value (dp cp tp pp ep sp vpp zero mb schedule precision checkpoint localsgd ...).")
        List<String> compare;

        @Option(names = "--config", paramLabel = "FILE", description = "DeepSpeed-style JSON file (train_micro_batch_size_per_gpu, gradient_accumulation_steps, zero_optimization.stage, bf16/fp16.enabled, activation_checkpointing, optimizer; \"auto\" values are filled from the other flags).")
        String config;

        @Option(names = "--zero", description = "ZeRO stage 0-3 over the data-parallel group (default 0).")
        Integer zero;

        @Option(names = {"--micro-batches", "--mb"}, description = "Micro-batches per step (pipeline micro-batches, or gradient-accumulation steps when pp = 1; default 1, or 2*pp with --pp).")
        Integer microBatches;

        @Option(names = "--schedule", description = "Pipeline schedule: gpipe, 1f1b (default), interleaved (with --vpp), zb-h1 (zero bubble).")
        String schedule;

        @Option(names = "--vpp", description = "Virtual pipeline stages per rank for --schedule interleaved (Megatron's interleaved 1F1B).")
        Integer vpp;

        @Option(names = "--sp", description = "Sequence parallelism with --tp: LayerNorm and residual activations sliced along the sequence.")
        Boolean sp;

        @Option(names = "--precision", description = "fp32 (default), bf16, fp16 (dynamic loss scaling) or fp8 (the blocks' linear layers "
                + "in FP8: E4M3 inputs and weights, E5M2 gradients, per-tensor scales; the rest in --fp8-base).")
        String precision;

        @Option(names = "--fp8-scaling", paramLabel = "delayed|current|none", description = "FP8 scales: delayed (default: from the "
                + "amax history, TransformerEngine's recipe), current (from each tensor's own amax) or none (scale 1).")
        String fp8Scaling;

        @Option(names = "--fp8-history", paramLabel = "STEPS", description = "Steps of amax history for delayed scaling (default 1024, TransformerEngine's).")
        Integer fp8History;

        @Option(names = "--fp8-base", paramLabel = "bf16|fp32", description = "Precision around the FP8 matmuls: weights before the cast, "
                + "activations, other ops (default bf16, with fp32 master weights in the optimizer; fp32: fp32 weights throughout).")
        String fp8Base;

        @Option(names = {"--checkpoint", "--ckpt"}, arity = "0..1", fallbackValue = "1", paramLabel = "K",
                description = "Activation checkpointing: recompute blocks in backward, keeping one input per K blocks (default 1).")
        Integer checkpoint;

        @Option(names = "--checkpoint-every", hidden = true, description = "Same as --checkpoint K.")
        Integer checkpointEvery;

        @Option(names = "--model", description = "Model preset: tiny, moe-tiny (tiny with 4 experts, top-2), small, medium, gpt2-124m (GPT-2 small's shape, byte vocabulary; default tiny).")
        String model;

        @Option(names = "--experts", paramLabel = "E", description = "Mixture of experts: E expert MLPs and a router in each block (any preset; moe-tiny has 4).")
        Integer experts;

        @Option(names = "--top-k", paramLabel = "K", description = "Experts each token goes to, gates renormalised over the K (default 2, at most --experts).")
        Integer topK;

        @Option(names = "--capacity-factor", paramLabel = "F", description = "Each expert takes at most ceil(F x tokens x K / E) tokens of a micro-batch, the rest are dropped; 0: none dropped (default 1.25).")
        Double capacityFactor;

        @Option(names = "--shared-expert", description = "One more expert MLP every token goes through (DeepSeek-V3).")
        Boolean sharedExpert;

        @Option(names = "--aux-loss", paramLabel = "ALPHA", description = "Weight of Switch Transformer's load-balancing loss (default 0.01; 0: off).")
        Double auxLoss;

        @Option(names = "--ep", paramLabel = "N", description = "Expert parallelism: each block's experts sharded over N ranks carved out of dp x cp (tokens reach them by all-to-all); N divides dp x cp and the experts.")
        Integer ep;

        @Option(names = "--layers", description = "Blocks of the GPT (overrides the preset's).")
        Integer layers;

        @Option(names = "--hidden", description = "Width of the GPT (overrides the preset's; a multiple of --heads).")
        Integer hidden;

        @Option(names = "--heads", description = "Attention heads (overrides the preset's).")
        Integer heads;

        @Option(names = "--sequence", description = "Tokens per sequence, the context (overrides the preset's).")
        Integer sequence;

        @Option(names = "--seed", description = "Seed of weights and data order (default 7).")
        Long seed;

        @Option(names = "--batch", description = "Global batch in sequences per step (default 8).")
        Integer batch;

        @Option(names = "--optimizer", description = "adamw (default) or sgd.")
        String optimizer;

        @Option(names = "--lr", description = "Learning rate (default 1e-3 for AdamW, 0.05 for SGD).")
        Double lr;

        @Option(names = "--data", paramLabel = "text|synthetic|FILE", description = "text (default: byte-level public-domain text), synthetic, or the path of a UTF-8 text file (read by every rank at that path).")
        String data;

        @Option(names = "--offload", paramLabel = "optimizer", description = "optimizer: ZeRO-Offload, fp32 master weights and optimizer state in host memory and the step on the CPU (GPU ranks; on CPU ranks nothing moves).")
        String offload;

        @Option(names = "--tf32", description = "Let CUDA matmuls use TF32 (off by default, so fp32 runs match the CPU; no effect on CPU ranks).")
        Boolean tf32;

        @Option(names = {"--local-sgd", "--localsgd"}, paramLabel = "K", description = "Local SGD: no gradient all-reduce; average parameters every K steps.")
        Integer localSgd;

        @Option(names = "--save", paramLabel = "FILE.safetensors", description = "Write the trained model (gathered parameters, model shape and run in parallax.* metadata) as a safetensors checkpoint; %%convert turns it into GGUF or an ONNX graph.")
        String save;

        @Option(names = "--save-every", paramLabel = "K", description = "Write a distributed checkpoint every K steps (each rank its own shards in safetensors, then checkpoint.json; on a background thread).")
        Integer saveEvery;

        @Option(names = "--checkpoint-dir", paramLabel = "DIR", description = "Where --save-every writes its checkpoints (DIR/step-NNNNNNNN/); default: the --resume directory.")
        String checkpointDir;

        @Option(names = "--keep", paramLabel = "N", description = "Complete checkpoints to keep, newest first (default 2).")
        Integer keep;

        @Option(names = "--resume", paramLabel = "DIR", description = "Continue from the newest complete checkpoint in DIR (or from DIR itself, one step-NNNNNNNN directory), on this or another layout (resharded); --steps counts from the run's start.")
        String resume;

        @Option(names = "--max-restarts", paramLabel = "R", description = "Survive R lost ranks (killed, node gone, collective timed out): stop the rest, start a new generation, load the last checkpoint, train on (default 0).")
        Integer maxRestarts;

        @Option(names = "--min-ranks", paramLabel = "M", description = "Elastic: do not replace a lost rank; go on with fewer (DP shrinks, the global batch kept by accumulation), down to M ranks.")
        Integer minRanks;

        @Option(names = "--save-bandwidth", paramLabel = "MB/s", description = "Cap each rank's background checkpoint writes at this many MB/s (10^6 bytes; default: no cap).")
        Double saveBandwidth;

        @Option(names = "--kill-rank", paramLabel = "RANK@STEP", description = "A drill: kill rank RANK with SIGKILL once it reaches step STEP (local ranks), to watch --max-restarts recover.")
        String killRank;

        /** True when the user asked for training. */
        boolean requested() {
            return steps != null || compare != null || config != null || zero != null || microBatches != null
                    || schedule != null || precision != null || checkpoint != null || checkpointEvery != null
                    || model != null || experts != null || topK != null || capacityFactor != null || sharedExpert != null
                    || auxLoss != null || ep != null || seed != null || batch != null || optimizer != null || lr != null
                    || data != null || localSgd != null || save != null || layers != null || hidden != null || heads != null
                    || sequence != null || offload != null || tf32 != null || vpp != null || sp != null
                    || fp8Scaling != null || fp8History != null || fp8Base != null
                    || saveEvery != null || checkpointDir != null
                    || keep != null || resume != null || maxRestarts != null || minRanks != null || saveBandwidth != null || killRank != null;
        }

        /** True when a checkpoint or restart flag was given (they describe one run, not a comparison). */
        boolean faultTolerance() {
            return saveEvery != null || checkpointDir != null || keep != null || resume != null || maxRestarts != null
                    || minRanks != null || saveBandwidth != null || killRank != null;
        }
    }

    /** The mesh flags, shared by training, SPMD cells and benchmarks. */
    static final class Layout {
        @Option(names = "--ranks", description = "Number of ranks (default: the running pool, else the nodes file's slots, else 2).")
        Integer ranks;

        @Option(names = "--dp", description = "Data-parallel size.")
        Integer dp;

        @Option(names = "--tp", description = "Tensor-parallel size.")
        Integer tp;

        @Option(names = "--pp", description = "Pipeline-parallel size.")
        Integer pp;

        @Option(names = "--cp", description = "Context-parallel size: each sequence cut over this many ranks (ring attention).")
        Integer cp;

        /** The mesh these flags ask for, or null when they name none. */
        MeshShape shape() { return MeshShape.of(ranks, dp, tp, pp, cp); }
    }

    /** What one {@code --compare} item is parsed into: the same options as the command. */
    @Command(name = "--compare item")
    static final class Item {
        @CommandLine.Mixin Layout layout = new Layout();
        @CommandLine.Mixin Flags flags = new Flags();
    }

    private TrainingOptions() {}

    /** The preset with the mixture-of-experts flags applied (they start from the preset's experts, or from E alone). */
    static GptConfig moe(Flags f, GptConfig cfg) {
        if (f.experts == null && f.topK == null && f.capacityFactor == null && f.sharedExpert == null && f.auxLoss == null) return cfg;
        GptConfig.Moe m = cfg.moe();
        if (m == null && f.experts == null)
            throw new UserError("--top-k, --capacity-factor, --shared-expert and --aux-loss shape a mixture of experts: add --experts E or --model moe-tiny");
        int experts = f.experts != null ? f.experts : m.experts();
        int k = f.topK != null ? f.topK : m != null ? Math.min(m.topK(), experts) : Math.min(2, experts);
        return cfg.withMoe(new GptConfig.Moe(experts, k,
                f.capacityFactor != null ? f.capacityFactor : m != null ? m.capacityFactor() : 1.25,
                f.sharedExpert != null ? f.sharedExpert : m != null && m.sharedExpert(),
                f.auxLoss != null ? f.auxLoss : m != null ? m.auxLossWeight() : GptConfig.Moe.DEFAULT_AUX_WEIGHT));
    }

    /** The one place flags become a run (see {@link #resolve}). */
    static TrainSpec toSpec(Flags f, MeshShape layout) {
        return resolve(f, layout).spec();
    }

    /**
     * The one place flags become a run: the preset, the layout and every flag, then a
     * DeepSpeed config last, whose explicit values win and whose {@code "auto"} values take
     * the flags' (as the Hugging Face Trainer fills them); returns which "auto" keys were filled.
     */
    static DeepSpeedConfig.Applied resolve(Flags f, MeshShape layout) {
        GptConfig cfg = moe(f, GptConfig.preset(f.model == null ? "tiny" : f.model).reshaped(f.layers, f.hidden, f.heads, f.sequence));
        TrainSpec s = TrainSpec.defaults(cfg).withLayout(layout.dp(), layout.tp(), layout.pp()).withCp(layout.cp());
        if (f.ep != null) s = s.withEp(f.ep);
        if (f.steps != null) s = s.withSteps(f.steps);
        if (f.seed != null) s = s.withSeed(f.seed);
        if (f.batch != null) s = s.withBatch(f.batch);
        if (f.optimizer != null) {
            String o = f.optimizer.toLowerCase(Locale.ROOT);
            if (!o.equals("adamw") && !o.equals("sgd"))
                throw new UserError("unknown optimizer '" + f.optimizer + "'" + DidYouMean.hint(o, List.of("adamw", "sgd")) + " (adamw, sgd)");
            s = s.withOptimizer(o, o.equals("sgd") ? 0.05 : 1e-3);
        }
        if (f.lr != null) s = s.withOptimizer(s.optimizer(), f.lr);
        if (f.data != null) s = data(f.data, s);
        if (f.offload != null) {
            if (!f.offload.equalsIgnoreCase("optimizer"))
                throw new UserError("--offload takes optimizer (ZeRO-Offload), not '" + f.offload + "'");
            s = s.withOffloadOptimizer(true);
        }
        if (Boolean.TRUE.equals(f.tf32)) s = s.withTf32(true);
        if (s.pp() > 1 && f.microBatches == null && s.microBatches() == 1) s = s.withMicroBatches(2 * s.pp(), s.schedule());
        if (f.microBatches != null) s = s.withMicroBatches(f.microBatches, s.schedule());
        if (f.schedule != null) s = s.withMicroBatches(s.microBatches(), PipelineParallel.Schedule.parse(f.schedule));
        if (f.vpp != null) {
            s = s.withVirtualStages(f.vpp);
            if (f.schedule == null && f.vpp > 1) s = s.withMicroBatches(s.microBatches(), PipelineParallel.Schedule.INTERLEAVED);
        }
        if (Boolean.TRUE.equals(f.sp)) s = s.withSequenceParallel(true);
        if (f.zero != null) s = s.withZero(f.zero);
        if (f.precision != null) s = s.withPrecision(precision(f.precision));
        if (f.fp8Scaling != null || f.fp8History != null || f.fp8Base != null) {
            if (s.precision() != DType.F8_E4M3)
                throw new UserError("--fp8-scaling, --fp8-history and --fp8-base need --precision fp8");
            Fp8Recipe r = Fp8Recipe.defaults();
            if (f.fp8Scaling != null) r = r.withScaling(Fp8Recipe.Scaling.parse(f.fp8Scaling));
            if (f.fp8History != null) r = r.withHistory(f.fp8History);
            if (f.fp8Base != null) {
                String b = f.fp8Base.trim();
                r = r.withBase(DType.fromLabel(b, List.of(DType.BF16, DType.F32)).orElseThrow(() -> new UserError(
                        "--fp8-base takes bf16 or fp32, not '" + b + "'" + DidYouMean.hint(b, List.of("bf16", "fp32")))));
            }
            r.validate();
            s = s.withFp8(r);
        }
        Integer every = f.checkpointEvery != null ? f.checkpointEvery : f.checkpoint;
        if (every != null && every < 1) throw new UserError("--checkpoint K keeps one input per K blocks: K must be at least 1, not " + every);
        if (every != null) s = s.withCheckpoint(every);
        if (f.localSgd != null) s = s.withLocalSgd(f.localSgd);
        if (f.faultTolerance()) s = s.withFaultTolerance(faultTolerance(f));
        if (f.config == null) return new DeepSpeedConfig.Applied(s, List.of());
        return DeepSpeedConfig.resolve(readConfig(f.config), s);
    }

    /** The checkpoint and restart flags as the run's {@link FaultTolerance}. */
    private static FaultTolerance faultTolerance(Flags f) {
        String dir = f.checkpointDir;
        if (dir == null && f.resume != null && f.saveEvery != null) {
            // Saving on while resuming: into the directory resumed from (a step directory's parent).
            Path r = Path.of(f.resume);
            dir = (Files.isRegularFile(r.resolve("checkpoint.json")) && r.toAbsolutePath().getParent() != null
                    ? r.toAbsolutePath().getParent() : r).toString();
        }
        if (f.checkpointDir != null && f.saveEvery == null)
            throw new UserError("--checkpoint-dir names where checkpoints go: add --save-every K (steps between them)");
        if (f.keep != null && f.saveEvery == null) throw new UserError("--keep applies to checkpoints: add --save-every K and --checkpoint-dir DIR");
        FaultTolerance ft = FaultTolerance.NONE
                .withSaving(f.saveEvery == null ? 0 : f.saveEvery, dir, f.keep == null ? FaultTolerance.DEFAULT_KEEP : f.keep)
                .withResume(f.resume)
                .withRestarts(f.maxRestarts == null ? 0 : f.maxRestarts, f.minRanks == null ? 0 : f.minRanks);
        if (f.saveBandwidth != null) {
            if (!(f.saveBandwidth > 0)) throw new UserError("--save-bandwidth is in MB/s and must be positive, not " + f.saveBandwidth);
            ft = ft.withSaveBandwidth((long) (f.saveBandwidth * 1e6));
        }
        if (f.killRank != null) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)@(\\d+)").matcher(f.killRank.trim());
            if (!m.matches()) throw new UserError("--kill-rank takes RANK@STEP, e.g. 1@15, not '" + f.killRank + "'");
            ft = ft.withKill(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
        }
        return ft;
    }

    private static TrainSpec data(String d, TrainSpec s) {
        if (d.equalsIgnoreCase("text")) return s.withData(TextData.Source.TEXT);
        if (d.equalsIgnoreCase("synthetic")) return s.withData(TextData.Source.SYNTHETIC);
        Path file = Path.of(d);
        if (!Files.exists(file))
            throw new UserError("--data '" + d + "' is neither text, synthetic nor an existing file"
                    + DidYouMean.hint(d, List.of("text", "synthetic")));
        // Checked here too, so a bad file is one line before any rank starts.
        TextData.readText(file, s.model().sequence(), s.model().vocab());
        return s.withDataFile(file.toAbsolutePath().toString());
    }

    private static DType precision(String p) {
        return DType.fromLabel(p, DType.TRAINING).orElseThrow(() -> new UserError("unknown --precision '" + p + "'"
                + DidYouMean.hint(p, List.of("fp32", "bf16", "fp16", "fp8")) + " (fp32, bf16, fp16, fp8)"));
    }

    private static String readConfig(String file) {
        Path p = Path.of(file);
        if (Files.isDirectory(p)) throw new UserError("--config " + file + " is a directory, not a DeepSpeed JSON file");
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new UserError("cannot read --config " + file + ": " + (e instanceof java.nio.file.NoSuchFileException ? "no such file" : e.getMessage()));
        }
    }

    /**
     * The run of one {@code --compare} item: the command's own training and layout flags
     * ({@code given}: picocli's record of what was typed), then the item's keys as flags
     * over them, parsed by the same options and turned into a spec by {@link #toSpec}.
     * A layout the item does not name is 1 (items describe whole layouts).
     */
    static TrainSpec compareItem(String item, CommandLine.ParseResult given) {
        if (item.isBlank()) throw new UserError("--compare takes layouts such as \"dp=2\" \"tp=2,zero=1\": an empty one describes nothing");
        List<String> args = new ArrayList<>();
        for (OptionSpec o : given.matchedOptions()) {
            if (!isTrainingFlag(o) || o.longestName().equals("--compare")) continue;
            args.add(o.longestName());
            args.addAll(o.originalStringValues());
        }
        for (String kv : item.split(",")) {
            String t = kv.trim();
            if (t.isEmpty()) continue;
            int eq = t.indexOf('=');
            String key = (eq < 0 ? t : t.substring(0, eq)).trim().toLowerCase(Locale.ROOT);
            if (key.startsWith("-")) throw new UserError("--compare '" + item + "': write keys without dashes, as key=value (e.g. dp=2,zero=1)");
            args.add("--" + key);
            if (eq >= 0) args.add(t.substring(eq + 1).trim());
        }
        Item parsed = new Item();
        CommandLine cl = new CommandLine(parsed).setOverwrittenOptionsAllowed(true).setCaseInsensitiveEnumValuesAllowed(true);
        try {
            cl.parseArgs(args.toArray(String[]::new));
        } catch (CommandLine.ParameterException e) {
            throw new UserError("--compare '" + item + "': " + e.getMessage() + MagicRunner.suggestions(e));
        }
        Layout l = parsed.layout;
        MeshShape shape = MeshShape.of(null, l.dp == null ? 1 : l.dp, l.tp, l.pp, l.cp);
        return toSpec(parsed.flags, shape);
    }

    /** The names of the training flags (not --bench, --json, the layout ...). */
    private static final java.util.Set<String> TRAINING_FLAGS =
            CommandLine.Model.CommandSpec.forAnnotatedObject(new Flags()).optionsMap().keySet();

    private static boolean isTrainingFlag(OptionSpec o) { return TRAINING_FLAGS.contains(o.longestName()); }
}
