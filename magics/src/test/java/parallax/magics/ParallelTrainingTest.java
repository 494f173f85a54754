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
