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
import parallax.engine.parallel.DeepSpeedConfig;
import parallax.engine.parallel.PipelineParallel;
import parallax.engine.parallel.TrainSpec;
import parallax.engine.report.Report;
import parallax.engine.torch.DType;

/** Flags and DeepSpeed configs become the right TrainSpec; bad input is one clear line. */
class ParallelTrainingTest {

    @TempDir
    Path dir;

    @Test
    void issueExampleFlags() {
        ParallelTraining.Flags f = new ParallelTraining.Flags();
        f.zero = 1; f.microBatches = 4; f.schedule = "1f1b"; f.precision = "bf16"; f.checkpoint = true;
        f.model = "tiny"; f.steps = 50; f.seed = 7L;
        TrainSpec s = ParallelTraining.spec(f, new MeshShape(2, 1, 2));
        assertEquals(2, s.dp());
        assertEquals(2, s.pp());
        assertEquals(1, s.zero());
        assertEquals(4, s.microBatches());
        assertEquals(PipelineParallel.Schedule.ONE_F_ONE_B, s.schedule());
        assertEquals(DType.BF16, s.precision());
        assertEquals(1, s.checkpointEvery());
        assertEquals(50, s.steps());
        s.validate(4);
    }

    @Test
    void compareItemsOverrideLayout() {
        ParallelTraining.Flags f = new ParallelTraining.Flags();
        TrainSpec base = ParallelTraining.spec(f, new MeshShape(1, 1, 1));
        TrainSpec s = ParallelTraining.override(base, "tp=2,dp=2,zero=1", f);
        assertEquals(2, s.tp());
        assertEquals(2, s.dp());
        assertEquals(1, s.zero());
        TrainSpec p = ParallelTraining.override(base, "pp=2,dp=2", f);
        assertEquals(4, p.microBatches(), "pipelines default to 2*pp micro-batches");
        UserError e = assertThrows(UserError.class, () -> ParallelTraining.override(base, "dp=2,zeor=1", f));
        assertTrue(e.getMessage().contains("zeor"), e.getMessage());
    }

    @Test
    void deepSpeedConfig() throws Exception {
        Path cfg = dir.resolve("ds.json");
        Files.writeString(cfg, "{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 2,"
                + " \"zero_optimization\": {\"stage\": 2}, \"bf16\": {\"enabled\": true}, \"activation_checkpointing\": {}}");
        ParallelTraining.Flags f = new ParallelTraining.Flags();
        f.config = cfg.toString();
        TrainSpec s = ParallelTraining.spec(f, new MeshShape(2, 1, 1));
        assertEquals(8, s.batch(), "micro 2 x accumulation 2 x dp 2");
        assertEquals(2, s.microBatches());
        assertEquals(2, s.zero());
        assertEquals(DType.BF16, s.precision());
        assertEquals(1, s.checkpointEvery());

        Files.writeString(cfg, "{\"zero_optimization\": {\"stage\": 3, \"offload_param\": {\"device\": \"cpu\"}}, \"gradient_clipping\": 1.0}");
        UserError e = assertThrows(UserError.class, () -> ParallelTraining.spec(f, new MeshShape(2, 1, 1)));
        assertTrue(e.getMessage().contains("gradient_clipping") && e.getMessage().contains("zero_optimization.offload_param"), e.getMessage());
    }

    @Test
    void deepSpeedAutoTakesTheFlagsAndTheReportSaysSo() throws Exception {
        Path cfg = dir.resolve("hf.json");
        Files.writeString(cfg, "{\"train_batch_size\": \"auto\", \"train_micro_batch_size_per_gpu\": \"auto\","
                + " \"gradient_accumulation_steps\": \"auto\", \"bf16\": {\"enabled\": \"auto\"},"
                + " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": \"auto\"}}, \"zero_optimization\": {\"stage\": 1}}");
        ParallelTraining.Flags f = new ParallelTraining.Flags();
        f.config = cfg.toString();
        f.batch = 16; f.microBatches = 2; f.precision = "bf16"; f.lr = 3e-4;
        DeepSpeedConfig.Applied a = ParallelTraining.specAndConfig(f, new MeshShape(2, 1, 1));
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
        UserError e = assertThrows(UserError.class, () -> ParallelTraining.spec(f, new MeshShape(2, 1, 1)));
        assertEquals("--config: zero_optimization must be an object such as {\"stage\": 2}, not 2", e.getMessage());
    }

    @Test
    void shapesThatDoNotDivide() {
        TrainSpec base = ParallelTraining.spec(new ParallelTraining.Flags(), new MeshShape(1, 1, 1));
        assertThrows(UserError.class, () -> base.withLayout(1, 3, 1).validate(3), "heads % tp");
        assertThrows(UserError.class, () -> base.withLayout(1, 1, 3).validate(3), "layers % pp");
        assertThrows(UserError.class, () -> base.withLayout(2, 1, 1).validate(4), "world % (dp*tp*pp)");
        assertThrows(UserError.class, () -> base.withLayout(2, 1, 1).withBatch(6).withMicroBatches(2, PipelineParallel.Schedule.GPIPE).validate(2), "batch % micro-batches");
    }
}
