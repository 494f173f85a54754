package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.cluster.MeshShape;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.DeepSpeedConfig;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.report.Report;
import picocli.CommandLine;

/** Flags, --compare items and DeepSpeed configs become the right TrainSpec; bad input is one clear line. */
class ParallelTrainingTest {

    @TempDir
    Path dir;

    /** Parses {@code args} as %parallel does and returns the command with picocli's record of them. */
    static String[] words(String args) {
        return args.isBlank() ? new String[0] : args.trim().split("\\s+");
    }

    static ParallelCommand parse(String args) {
        ParallelCommand c = new ParallelCommand();
        new CommandLine(c).parseArgs(words(args));
        return c;
    }

    static TrainSpec spec(String args) {
        ParallelCommand c = parse(args);
        MeshShape shape = c.shape();
        return TrainingOptions.toSpec(c.training, shape == null ? MeshShape.dataParallel(1) : shape);
    }

    static TrainSpec item(String args, String item) {
        ParallelCommand c = new ParallelCommand();
        CommandLine cl = new CommandLine(c);
        cl.parseArgs(words(args));
        return TrainingOptions.compareItem(item, cl.getParseResult());
    }

    @Test
    void issueExampleFlags() {
        TrainSpec s = spec("--dp 2 --pp 2 --zero 1 --micro-batches 4 --schedule 1f1b --precision bf16 --checkpoint --model tiny --steps 50 --seed 7");
        assertEquals(2, s.dp());
        assertEquals(2, s.pp());
        assertEquals(1, s.zero());
        assertEquals(4, s.microBatches());
        assertEquals(PipelineParallel.Schedule.ONE_F_ONE_B, s.schedule());
        assertEquals(DType.BF16, s.precision());
        assertEquals(1, s.checkpointEvery());
        assertEquals(50, s.steps());
        s.validate(4);
        assertEquals(3, spec("--checkpoint 3").checkpointEvery(), "--checkpoint K keeps one input per K blocks");
        assertEquals(2, spec("--checkpoint-every 2").checkpointEvery());
        assertEquals(4, spec("--pp 2").microBatches(), "pipelines default to 2*pp micro-batches");
    }

    /** Issue 14: the mixture-of-experts flags on a preset, on moe-tiny, and in --compare items; their bad values in one line. */
    @Test
    void mixtureOfExpertsFlags() {
        GptConfig.Moe m = spec("--model moe-tiny").model().moe();
        assertEquals(new GptConfig.Moe(4, 2, 1.25, false, 0.01), m);
        assertEquals(new GptConfig.Moe(8, 1, 0, true, 0.0),
                spec("--model small --experts 8 --top-k 1 --capacity-factor 0 --shared-expert --aux-loss 0").model().moe());
        assertEquals(new GptConfig.Moe(6, 2, 1.25, false, 0.01), spec("--model moe-tiny --experts 6").model().moe(), "the preset's k and cf kept");
        assertEquals(new GptConfig.Moe(1, 1, 1.25, false, 0.01), spec("--experts 1").model().moe(), "k defaults to 2, at most E");
        assertEquals(null, spec("--model tiny").model().moe());
        assertEquals(0.0, item("--model moe-tiny", "dp=2,capacity-factor=0").model().moe().capacityFactor());
        assertEquals("--top-k must be between 1 and the number of experts (4), not 5",
                assertThrows(UserError.class, () -> spec("--model moe-tiny --top-k 5")).getMessage());
        assertTrue(assertThrows(UserError.class, () -> spec("--top-k 2")).getMessage().contains("add --experts E"));
        assertEquals(2, spec("--model moe-tiny --tp 2").tp(), "experts are cut by tensor parallelism");
        assertTrue(assertThrows(UserError.class, () -> spec("--model moe-tiny --tp 2 --sp").validate(2)).getMessage().contains("drop --sp"));
        assertEquals(2, spec("--model moe-tiny --dp 2 --ep 2").ep());
        assertEquals(1, spec("--model moe-tiny --dp 2").ep(), "experts are replicated unless --ep is given");
        assertEquals(2, item("--model moe-tiny", "dp=4,ep=2").ep());
        assertEquals("--ep 2 must divide dp x cp = 3 (expert parallelism is carved out of the data-parallel ranks)",
                assertThrows(UserError.class, () -> spec("--model moe-tiny --dp 3 --batch 6 --ep 2").validate(3)).getMessage());
    }

    @Test
    void compareItemsAreTheSameFlags() {
        TrainSpec s = item("--compare x --steps 5 --precision bf16", "tp=2,dp=2,zero=1");
        assertEquals(2, s.tp());
        assertEquals(2, s.dp());
        assertEquals(1, s.zero());
        assertEquals(5, s.steps(), "the command's own flags apply to every item");
        assertEquals(DType.BF16, s.precision());
        TrainSpec p = item("--compare x", "pp=2,dp=2");
        assertEquals(4, p.microBatches(), "pipelines default to 2*pp micro-batches");
        assertEquals(2, item("--compare x", "pp=2,mb=2,schedule=gpipe").microBatches());
        assertEquals(PipelineParallel.Schedule.GPIPE, item("--compare x", "pp=2,mb=2,schedule=gpipe").schedule());
        assertEquals(1, item("--compare x", "dp=2,ckpt").checkpointEvery());
        assertEquals(2, item("--compare x", "dp=2,checkpoint=2").checkpointEvery());
        assertEquals(4, item("--compare x", "dp=2,localsgd=4").localSgdEvery());
        assertEquals(DType.F16, item("--compare x --precision bf16", "dp=2,precision=fp16").precision(), "an item overrides the command");
        assertEquals(1, item("--compare x --dp 4", "zero=1").dp(), "an item describes a whole layout");

        UserError e = assertThrows(UserError.class, () -> item("--compare x", "dp=2,zeor=1"));
        assertTrue(e.getMessage().contains("zeor") && e.getMessage().contains("--zero"), e.getMessage());
        UserError n = assertThrows(UserError.class, () -> item("--compare x", "dp=two"));
        assertTrue(n.getMessage().contains("dp=two") && n.getMessage().contains("two"), n.getMessage());
        UserError pr = assertThrows(UserError.class, () -> item("--compare x", "dp=2,precision=fp13"));
        assertTrue(pr.getMessage().contains("fp13"), pr.getMessage());
    }

    @Test
    void deepSpeedConfig() throws Exception {
        Path cfg = dir.resolve("ds.json");
        Files.writeString(cfg, "{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 2,"
                + " \"zero_optimization\": {\"stage\": 2}, \"bf16\": {\"enabled\": true}, \"activation_checkpointing\": {}}");
        TrainSpec s = spec("--dp 2 --config " + cfg);
        assertEquals(8, s.batch(), "micro 2 x accumulation 2 x dp 2");
        assertEquals(2, s.microBatches());
        assertEquals(2, s.zero());
        assertEquals(DType.BF16, s.precision());
        assertEquals(1, s.checkpointEvery());

        Files.writeString(cfg, "{\"zero_optimization\": {\"stage\": 3, \"offload_param\": {\"device\": \"cpu\"}}, \"gradient_clipping\": 1.0}");
        UserError e = assertThrows(UserError.class, () -> spec("--dp 2 --config " + cfg));
        assertTrue(e.getMessage().contains("gradient_clipping") && e.getMessage().contains("zero_optimization.offload_param"), e.getMessage());
        UserError d = assertThrows(UserError.class, () -> spec("--config " + dir));
        assertTrue(d.getMessage().contains("directory"), d.getMessage());
    }

    @Test
    void deepSpeedAutoTakesTheFlagsAndTheReportSaysSo() throws Exception {
        Path cfg = dir.resolve("hf.json");
        Files.writeString(cfg, "{\"train_batch_size\": \"auto\", \"train_micro_batch_size_per_gpu\": \"auto\","
                + " \"gradient_accumulation_steps\": \"auto\", \"bf16\": {\"enabled\": \"auto\"},"
                + " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": \"auto\"}}, \"zero_optimization\": {\"stage\": 1}}");
        ParallelCommand c = parse("--dp 2 --config " + cfg + " --batch 16 --micro-batches 2 --precision bf16 --lr 3e-4");
        DeepSpeedConfig.Applied a = TrainingOptions.resolve(c.training, c.shape());
        assertEquals(16, a.spec().batch());
        assertEquals(2, a.spec().microBatches());
        assertEquals(DType.BF16, a.spec().precision());
        assertEquals(3e-4, a.spec().lr());
        assertEquals(1, a.spec().zero());
        assertEquals(4L, a.filledValues().get("train_micro_batch_size_per_gpu"), "16 sequences / (dp 2 x 2 micro-batches)");

        Report r = ParallelTraining.withConfig(Report.builder("run").text("trained").data(Map.of("steps", 1)).build(), a);
        assertTrue(r.toText().contains("`train_micro_batch_size_per_gpu` = 4"), r.toText());
        @SuppressWarnings("unchecked")
        Map<String, Object> data = (Map<String, Object>) r.data();
        assertEquals(1, data.get("steps"));
        assertEquals(a.filledValues(), data.get("deepspeed_auto"));
        Report plain = Report.builder("run").text("trained").build();
        assertSame(plain, ParallelTraining.withConfig(plain, new DeepSpeedConfig.Applied(a.spec(), java.util.List.of())));

        Files.writeString(cfg, "{\"zero_optimization\": 2}");
        UserError e = assertThrows(UserError.class, () -> spec("--dp 2 --config " + cfg));
        assertEquals("--config: zero_optimization must be an object such as {\"stage\": 2}, not 2", e.getMessage());
    }

    @Test
    void shapesThatDoNotDivide() {
        TrainSpec base = spec("");
        assertThrows(UserError.class, () -> base.withLayout(1, 3, 1).validate(3), "heads % tp");
        assertThrows(UserError.class, () -> base.withLayout(1, 1, 3).validate(3), "layers % pp");
        assertThrows(UserError.class, () -> base.withLayout(2, 1, 1).validate(4), "world % (dp*tp*pp)");
        assertThrows(UserError.class, () -> base.withLayout(2, 1, 1).withBatch(6).withMicroBatches(2, PipelineParallel.Schedule.GPIPE).validate(2), "batch % micro-batches");
        assertThrows(UserError.class, () -> spec("--ranks 6 --tp 4"), "ranks % (tp*pp)");
    }

    /** The sequence dimension and the newer schedules: each impossible layout is one line naming it (issue 13). */
    @Test
    void sequenceAndScheduleLayoutsThatCannotRun() {
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("--cp 3 --model tiny", "sequence 32 is not divisible by 2 x --cp 3");
        cases.put("--sp --model tiny", "--sp shards the sequence over the tensor-parallel ranks: it needs --tp 2 or more");
        cases.put("--pp 2 --vpp 4 --model tiny", "layers 4 are not divisible by --pp x --vpp = 2 x 4");
        cases.put("--pp 2 --vpp 2 --micro-batches 1 --model tiny", "the interleaved schedule runs micro-batches in groups of --pp: --micro-batches 1 is not a multiple of 2");
        cases.put("--pp 2 --vpp 2 --micro-batches 3 --batch 6 --model tiny", "--micro-batches 3 is not a multiple of 2");
        cases.put("--vpp 2 --model tiny", "--vpp interleaves virtual stages of a pipeline: it needs --pp 2 or more");
        cases.put("--pp 2 --schedule interleaved --model tiny", "--schedule interleaved needs --vpp 2 or more virtual stages per rank");
        cases.put("--schedule zb-h1 --model tiny", "--schedule zb-h1 fills a pipeline's bubble: it needs --pp 2 or more");
        cases.put("--pp 2 --schedule zb-h1 --zero 3 --model tiny", "use --zero 0, 1 or 2 with it");
        cases.put("--tp 2 --sp --cp 2 --sequence 34 --model tiny", "is not divisible by 2 x --cp 2");
        cases.put("--tp 4 --sp --cp 2 --sequence 44 --model tiny", "--sp: the 22-token sequence of each context-parallel rank is not divisible by --tp 4");
        cases.put("--pp 2 --schedule zigzag --model tiny", "unknown schedule 'zigzag' (gpipe, 1f1b, interleaved, zb-h1)");
        cases.put("--cp 2 --model tiny --save-every 2 --checkpoint-dir /tmp/parallax-no-such-ckpt", "not yet --cp 2: drop one of them");
        cases.put("--pp 2 --vpp 2 --micro-batches 2 --model tiny --save-every 2 --checkpoint-dir /tmp/parallax-no-such-ckpt", "not yet --vpp 2");
        cases.put("--pp 2 --schedule zb-h1 --precision fp8 --model tiny", "defers the weight gradients: use 1f1b or interleaved with fp8");
        cases.put("--tp 2 --sp --precision fp8 --model tiny", "--precision fp8 with --sp is not supported yet");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            UserError e = assertThrows(UserError.class, () -> {
                TrainSpec s = spec(c.getKey());
                s.validate(s.world());
            }, c.getKey());
            assertTrue(e.getMessage().contains(c.getValue()), c.getKey() + ": " + e.getMessage());
            assertTrue(!e.getMessage().contains("\n"), c.getKey() + ": one line");
        }
    }

    /** Two --compare items that make the same run would draw two series of one name: one line instead. */
    @Test
    void compareItemsThatDescribeTheSameRunAreOneLine() {
        ParallelCommand c = new ParallelCommand();
        CommandLine cl = new CommandLine(c);
        cl.parseArgs(words("--compare dp=2 dp=2 --model tiny"));
        UserError e = assertThrows(UserError.class, () -> ParallelTraining.run(c, c.training, null, 2, cl.getParseResult()));
        assertEquals("--compare items 'dp=2' and 'dp=2' describe the same run (dp=2): make them differ or drop one", e.getMessage());
    }

    @Test
    void checkpointAndRestartFlags() throws Exception {
        TrainSpec s = spec("--dp 2 --save-every 10 --checkpoint-dir " + dir + " --keep 3 --max-restarts 2 --min-ranks 1 --save-bandwidth 2.5 --kill-rank 1@15 --steps 30");
        var ft = s.faultTolerance();
        assertEquals(10, ft.saveEvery());
        assertEquals(dir.toString(), ft.checkpointDir());
        assertEquals(3, ft.keep());
        assertEquals(2, ft.maxRestarts());
        assertEquals(1, ft.minRanks());
        assertEquals(2_500_000L, ft.saveBytesPerSecond());
        assertEquals(1, ft.killRank());
        assertEquals(15, ft.killAtStep());
        s.validate(2);
        assertEquals(2, spec("").faultTolerance().keep(), "two checkpoints kept by default");
        assertEquals(0, spec("").faultTolerance().saveEvery());
        // resuming and saving on: into the directory resumed from
        assertEquals(dir.toString(), spec("--resume " + dir + " --save-every 5").faultTolerance().checkpointDir());
        Path step = Files.createDirectories(dir.resolve("step-00000010"));
        Files.writeString(step.resolve("checkpoint.json"), "{}");
        assertEquals(dir.toAbsolutePath().toString(), spec("--resume " + step + " --save-every 5").faultTolerance().checkpointDir());
    }

    @Test
    void badCheckpointFlagsAreOneLine() {
        Map<String, String> cases = Map.of(
                "--checkpoint-dir /tmp/x", "--checkpoint-dir names where checkpoints go: add --save-every K (steps between them)",
                "--save-every 5", "--save-every needs --checkpoint-dir DIR (where the checkpoints go)",
                "--keep 2", "--keep applies to checkpoints: add --save-every K and --checkpoint-dir DIR",
                "--kill-rank one", "--kill-rank takes RANK@STEP, e.g. 1@15, not 'one'",
                "--save-bandwidth -1 --save-every 1 --checkpoint-dir /tmp/x", "--save-bandwidth is in MB/s and must be positive, not -1.0",
                "--dp 2 --min-ranks 3", "--min-ranks 3 must be between 1 and the run's 2 ranks",
                "--dp 2 --local-sgd 2 --save-every 1 --checkpoint-dir /tmp/x", "checkpoints with --local-sgd are not supported: its replicas differ between averages; drop one of them",
                "--dp 2 --kill-rank 2@3", "--kill-rank 2 is not a rank of this 2-rank run");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            UserError e = assertThrows(UserError.class, () -> {
                TrainSpec t = spec(c.getKey());
                t.validate(t.world());
            }, c.getKey());
            assertEquals(c.getValue(), e.getMessage(), c.getKey());
        }
        UserError e = assertThrows(UserError.class, () -> ParallelTraining.run(parse("--compare dp=1 dp=2 --save-every 2 --checkpoint-dir " + dir),
                parse("--compare dp=1 dp=2 --save-every 2 --checkpoint-dir " + dir).training, null, 2, null));
        assertEquals("checkpoints, --resume and restarts belong to one run: drop --compare (or run the layout on its own)", e.getMessage());
    }

    @Test
    void fp8FlagsMakeARecipe() {
        TrainSpec d = spec("--precision fp8 --dp 2");
        assertEquals(DType.F8_E4M3, d.precision());
        assertEquals(parallax.engine.parallel.Fp8Recipe.defaults(), d.fp8Recipe(), "TransformerEngine's defaults");
        assertEquals(DType.BF16, d.computeDType(), "bf16 around the FP8 matmuls by default");
        assertEquals("dp=2,fp8", d.label());
        TrainSpec c = spec("--precision fp8 --fp8-scaling current --fp8-history 16 --fp8-base fp32");
        assertEquals(parallax.engine.parallel.Fp8Recipe.Scaling.CURRENT, c.fp8Recipe().scaling());
        assertEquals(16, c.fp8Recipe().history());
        assertEquals(DType.F32, c.computeDType());
        TrainSpec none = item("--compare x --precision fp8", "dp=2,fp8-scaling=none");
        assertEquals(parallax.engine.parallel.Fp8Recipe.Scaling.NONE, none.fp8Recipe().scaling());
        assertEquals("dp=2,fp8-noscale", none.label());
        assertTrue(assertThrows(UserError.class, () -> spec("--fp8-scaling none")).getMessage().contains("need --precision fp8"));
        assertTrue(assertThrows(UserError.class, () -> spec("--precision fp8 --fp8-scaling delayd")).getMessage().contains("Did you mean delayed"));
        assertTrue(assertThrows(UserError.class, () -> spec("--precision fp8 --fp8-base fp16")).getMessage().contains("bf16 or fp32"));
        assertTrue(assertThrows(UserError.class, () -> spec("--precision fp8 --fp8-history 0")).getMessage().contains("at least 1"));
        assertTrue(assertThrows(UserError.class, () -> spec("--precision fp9")).getMessage().contains("fp8"));
    }
}
