package parallax.engine.plan;

import com.google.gson.GsonBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.IntFunction;
import parallax.engine.UserError;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.RankResult;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.parallel.Training;
import parallax.engine.parallel.TrainingRun;

/**
 * Runs the engine's strategies on a small GPT over real worker ranks and records what
 * every rank measured, as {@link MemoryValidation.Measurement}s the planner is compared
 * against. Nothing here estimates: every byte comes from the ranks' own tensors.
 */
public final class ValidationRuns {

    /**
     * One strategy to measure. {@code checkpointEvery} > 0 turns on activation checkpointing;
     * {@code cp} context-parallel ranks, {@code sp} sequence parallelism (with tp > 1) and
     * {@code vpp} virtual stages (with the interleaved schedule).
     */
    public record Strategy(String name, int dp, int tp, int pp, int zero, int microBatches,
                           PipelineParallel.Schedule schedule, DType precision, int checkpointEvery, int cp, boolean sp, int vpp) {

        /** Without cp, sp or virtual stages. */
        public Strategy(String name, int dp, int tp, int pp, int zero, int microBatches, PipelineParallel.Schedule schedule,
                        DType precision, int checkpointEvery) {
            this(name, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, 1, false, 1);
        }

        public int world() { return dp * cp * tp * pp; }
    }

    private ValidationRuns() {}

    /** The strategies of a default validation: two ranks each; with {@code ranks} = 4 also 2-D layouts. */
    public static List<Strategy> defaults(int ranks) {
        if (ranks != 2 && ranks != 4) throw new UserError("validation runs on 2 or 4 ranks, not " + ranks);
        var f = PipelineParallel.Schedule.ONE_F_ONE_B;
        List<Strategy> s = new ArrayList<>(List.of(
                new Strategy("DP (ZeRO-0)", 2, 1, 1, 0, 1, f, DType.F32, 0),
                new Strategy("ZeRO-1", 2, 1, 1, 1, 1, f, DType.F32, 0),
                new Strategy("ZeRO-2", 2, 1, 1, 2, 1, f, DType.F32, 0),
                new Strategy("ZeRO-3", 2, 1, 1, 3, 1, f, DType.F32, 0),
                new Strategy("TP", 1, 2, 1, 0, 1, f, DType.F32, 0),
                new Strategy("PP 1F1B", 1, 1, 2, 0, 4, f, DType.F32, 0),
                new Strategy("PP GPipe", 1, 1, 2, 0, 4, PipelineParallel.Schedule.GPIPE, DType.F32, 0),
                new Strategy("ZeRO-1 bf16", 2, 1, 1, 1, 1, f, DType.BF16, 0),
                new Strategy("DP + checkpointing", 2, 1, 1, 0, 1, f, DType.F32, 1)));
        s.addAll(longContext(2));
        if (ranks == 4) {
            s.add(new Strategy("DP x TP", 2, 2, 1, 0, 1, f, DType.F32, 0));
            s.add(new Strategy("DP x PP ZeRO-1", 2, 1, 2, 1, 2, f, DType.F32, 0));
            s.add(new Strategy("TP x PP", 1, 2, 2, 0, 2, f, DType.F32, 0));
            s.addAll(longContext(4).subList(longContext(2).size(), longContext(4).size()));
        }
        return s;
    }

    /**
     * The sequence and pipeline layouts of issue 13: sequence parallelism (tp 2), context
     * parallelism (cp 2, ring attention), interleaved 1F1B (pp 2, two chunks per stage) and
     * ZB-H1 (pp 2); on 4 ranks also cp 2 x dp 2.
     */
    public static List<Strategy> longContext(int ranks) {
        if (ranks != 2 && ranks != 4) throw new UserError("validation runs on 2 or 4 ranks, not " + ranks);
        var f = PipelineParallel.Schedule.ONE_F_ONE_B;
        List<Strategy> s = new ArrayList<>(List.of(
                new Strategy("SP (TP 2)", 1, 2, 1, 0, 1, f, DType.F32, 0, 1, true, 1),
                new Strategy("CP 2", 1, 1, 1, 0, 1, f, DType.F32, 0, 2, false, 1),
                new Strategy("PP interleaved v2", 1, 1, 2, 0, 4, PipelineParallel.Schedule.INTERLEAVED, DType.F32, 0, 1, false, 2),
                new Strategy("PP ZB-H1", 1, 1, 2, 0, 4, PipelineParallel.Schedule.ZB_H1, DType.F32, 0, 1, false, 1)));
        if (ranks == 4) s.add(new Strategy("CP 2 x DP 2", 2, 1, 1, 1, 1, f, DType.F32, 0, 2, false, 1));
        return s;
    }

    /**
     * The planner's shape for one of the engine's GPT configurations; for a mixture of experts its
     * experts (each of the dense MLP's shape, with biases), top-k, router and shared expert.
     */
    public static ModelSpec spec(GptConfig c) {
        GptConfig.Moe moe = c.moe();
        if (moe == null)
            return new ModelSpec(c.name() + "-gpt", ModelSpec.Arch.PARALLAX_GPT, c.layers(), c.hidden(), c.heads(), c.heads(),
                    c.ffn(), c.vocab(), c.sequence(), 1, 1, false);
        // The planner's shapes call a one-expert MLP dense (no router): the engine's one-expert mixture keeps a router.
        if (moe.experts() < 2)
            throw new UserError("the planner counts a mixture of 2 or more experts; " + c.name() + " has " + moe.experts());
        return new ModelSpec(c.name() + "-gpt", ModelSpec.Arch.PARALLAX_GPT, c.layers(), c.hidden(), c.heads(), c.heads(),
                c.ffn(), c.vocab(), c.sequence(), moe.experts(), moe.topK(), false,
                new ModelSpec.Detail(0, 0, 0, moe.sharedExpert() ? 1 : 0, 0, 0, 0, 0, 0));
    }

    /**
     * The strategies of a default validation for {@code cfg}: {@link #defaults(int)}, less the
     * tensor-parallel ones for a mixture of experts (the engine does not cut experts by TP yet).
     */
    public static List<Strategy> defaults(int ranks, GptConfig cfg) {
        List<Strategy> all = defaults(ranks);
        return cfg.isMoe() ? all.stream().filter(s -> s.tp() == 1).toList() : all;
    }

    /** The planner's layout of an engine run: its micro-batch, recomputation and schedule as the engine runs them. */
    public static Layout layoutOf(TrainSpec s) {
        // One stage runs plain accumulation whatever the schedule says (PipelineParallel.step).
        Layout.Schedule schedule = s.pp() == 1 ? Layout.Schedule.ONE_F_ONE_B : Layout.Schedule.of(s.schedule().label());
        return new Layout(s.dp(), s.tp(), s.pp(), s.virtualStages(), s.zero(), s.batch() / s.dp() / s.microBatches(), s.microBatches(),
                s.model().sequence(), s.checkpointEvery() > 0 ? Layout.Recompute.FULL : Layout.Recompute.NONE, s.sequenceParallel(),
                Planner.optimizer(s.optimizer()), s.precision(), s.offloadOptimizer(), false, schedule, s.cp());
    }

    /**
     * Trains each strategy for {@code steps} steps of {@code batch} sequences on a pool from
     * {@code pools} (by world size) and returns every rank's measured memory.
     */
    public static List<MemoryValidation.Measurement> run(GptConfig cfg, List<Strategy> strategies, int steps, int batch,
                                                         IntFunction<WorkerPool> pools, BiConsumer<Integer, String> progress) {
        List<MemoryValidation.Measurement> out = new ArrayList<>();
        int i = 0;
        for (Strategy s : strategies) {
            progress.accept(i++, s.name());
            TrainSpec spec = TrainSpec.defaults(cfg).withLayout(s.dp(), s.tp(), s.pp()).withZero(s.zero())
                    .withMicroBatches(s.microBatches(), s.schedule()).withPrecision(s.precision())
                    .withCheckpoint(s.checkpointEvery()).withSteps(steps).withBatch(batch)
                    .withCp(s.cp()).withSequenceParallel(s.sp()).withVirtualStages(s.vpp());
            TrainingRun run = Training.run(pools.apply(s.world()), spec, null);
            // With checkpointing the engine recomputes each block's forward: only block inputs are kept.
            // (ZeRO-3 keeps activations: its parameters are re-gathered for the backward, not recomputed.)
            String recompute = s.checkpointEvery() > 0 ? "full" : "none";
            for (RankResult r : run.ranks()) {
                RankResult.RankMemory mem = r.memory();
                out.add(new MemoryValidation.Measurement(s.name(), r.rank(), s.dp(), s.tp(), s.pp(), s.zero(),
                        s.precision().label(), spec.optimizer(), batch / s.dp() / s.microBatches(), s.microBatches(),
                        cfg.sequence(), recompute, s.pp() == 1 ? "1f1b" : s.schedule().label(), mem.parameterBytes(), mem.gradientBytes(),
                        mem.optimizerBytes(), mem.activationBytes(), s.cp(), s.sp(), s.vpp()));
            }
        }
        progress.accept(i, "done");
        return out;
    }

    /** Writes a measurement record (temp file, then rename). */
    /** Refuses a --save target that cannot be written, before minutes of runs rather than after. */
    public static void checkSaveTarget(Path file) {
        Path target = file.toAbsolutePath();
        if (Files.isDirectory(target)) throw new UserError("--save " + file + " is a directory: give a file name such as measured.json");
        Path existing = target.getParent();
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null || !Files.isDirectory(existing) || !Files.isWritable(existing))
            throw new UserError("--save " + file + ": cannot create a file there (" + existing + " is not a writable directory)");
    }

    public static void save(String model, List<MemoryValidation.Measurement> runs, Path file) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (MemoryValidation.Measurement x : runs) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("strategy", x.strategy());
            r.put("rank", x.rank());
            r.put("dp", x.dp());
            r.put("tp", x.tp());
            r.put("pp", x.pp());
            r.put("zero", x.zero());
            r.put("dtype", x.dtype());
            r.put("optimizer", x.optimizer());
            r.put("micro_batch", x.microBatch());
            r.put("micro_batches", x.microBatches());
            r.put("seq", x.seq());
            r.put("recompute", x.recompute());
            r.put("schedule", x.schedule());
            r.put("cp", x.cp());
            r.put("sequence_parallel", x.sequenceParallel());
            r.put("vpp", x.virtualStages());
            r.put("param_bytes", x.paramBytes());
            r.put("grad_bytes", x.gradBytes());
            r.put("optimizer_bytes", x.optimizerBytes());
            r.put("activation_bytes", x.activationBytes());
            rows.add(r);
        }
        String json = new GsonBuilder().setPrettyPrinting().create().toJson(Map.of("model", model, "runs", rows));
        checkSaveTarget(file);
        Path tmp = null;
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, ".measured", ".tmp");
            Files.writeString(tmp, json);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            try {
                if (tmp != null) Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort: the name starts with a dot and ends in .tmp
            }
            throw new UserError("cannot write " + file + ": " + e.getMessage());
        }
    }
}
