package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;

/** DeepSpeed configs as Hugging Face writes them ("auto"), DeepSpeed's batch rules, and one line for every bad value. */
class DeepSpeedConfigTest {

    /** dp 2, global batch 16 in 2 micro-batches, bf16, lr 3e-4: what the flags of one %parallel run give. */
    static final TrainSpec RUN = TrainSpec.defaults(GptConfig.preset("tiny")).withLayout(2, 1, 1).withBatch(16)
            .withMicroBatches(2, PipelineParallel.Schedule.ONE_F_ONE_B).withPrecision(DType.BF16).withOptimizer("adamw", 3e-4);

    static String error(String json) {
        UserError e = assertThrows(UserError.class, () -> DeepSpeedConfig.resolve(json, RUN));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertFalse(e.getMessage().matches(".*\\b\\w+Exception\\b.*"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void autoTakesTheRunsValuesAndSaysWhichItFilled() {
        DeepSpeedConfig.Applied a = DeepSpeedConfig.resolve("""
                {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
                 "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto", "loss_scale": 0},
                 "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}},
                 "gradient_clipping": "auto", "zero_optimization": {"stage": 2}, "steps_per_print": 2000, "wall_clock_breakdown": false}
                """, RUN);
        TrainSpec s = a.spec();
        assertEquals(16, s.batch());
        assertEquals(2, s.microBatches());
        assertEquals(DType.BF16, s.precision());
        assertEquals(3e-4, s.lr());
        assertEquals(2, s.zero());
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("train_batch_size", 16L);
        expected.put("gradient_accumulation_steps", 2L);
        expected.put("train_micro_batch_size_per_gpu", 4L);
        expected.put("bf16.enabled", true);
        expected.put("fp16.enabled", false);
        expected.put("optimizer.params.lr", 3e-4);
        expected.put("optimizer.params.betas", List.of(0.9, 0.95));
        expected.put("optimizer.params.eps", 1e-8);
        expected.put("optimizer.params.weight_decay", 0.01);
        expected.put("gradient_clipping", 0.0);
        assertEquals(expected, a.filledValues());
        String note = a.note();
        assertTrue(note.contains("`train_micro_batch_size_per_gpu` = 4 (--batch 16 / (dp 2 x 2 micro-batches))"), note);
        assertTrue(note.contains("`bf16.enabled` = true (--precision bf16)"), note);
        assertTrue(note.contains("`optimizer.params.betas` = [0.9, 0.95]"), note);
    }

    @Test
    void theIssuesConfigsEachGiveOneLineOrARun() {
        // "auto" alone: the run's batch (and fp32 when the run is fp32).
        DeepSpeedConfig.Applied total = DeepSpeedConfig.resolve("{\"train_batch_size\": \"auto\"}", RUN);
        assertEquals(16, total.spec().batch());
        assertEquals(1, total.spec().microBatches(), "DeepSpeed: without gradient_accumulation_steps it is 1");
        assertEquals(Map.of("train_batch_size", 16L), total.filledValues());
        DeepSpeedConfig.Applied micro = DeepSpeedConfig.resolve("{\"train_micro_batch_size_per_gpu\": \"auto\"}", RUN.withMicroBatches(1, RUN.schedule()));
        assertEquals(16, micro.spec().batch());
        assertEquals(Map.of("train_micro_batch_size_per_gpu", 8L), micro.filledValues());
        TrainSpec fp32 = RUN.withPrecision(DType.F32);
        assertEquals(DType.F32, DeepSpeedConfig.apply("{\"bf16\": {\"enabled\": \"auto\"}}", fp32).precision());
        assertEquals(DType.BF16, DeepSpeedConfig.apply("{\"bf16\": {\"enabled\": \"auto\"}}", RUN).precision());

        assertEquals("--config: zero_optimization must be an object such as {\"stage\": 2}, not 2", error("{\"zero_optimization\": 2}"));
        assertEquals("--config: bf16 must be an object such as {\"enabled\": true}, not true", error("{\"bf16\": true}"));
        // DeepSpeed's own deprecated boolean form of zero_optimization: true is stage 1.
        assertEquals(1, DeepSpeedConfig.apply("{\"zero_optimization\": true}", RUN).zero());
        assertEquals(0, DeepSpeedConfig.apply("{\"zero_optimization\": false}", RUN.withZero(2)).zero());
    }

    @Test
    void batchesFollowDeepSpeedsRules() {
        // Two of the three given: the third is derived (runtime/config.py).
        TrainSpec s = DeepSpeedConfig.apply("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4}", RUN);
        assertEquals(32, s.batch());
        assertEquals(4, s.microBatches());
        s = DeepSpeedConfig.apply("{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 8}", RUN);
        assertEquals(32, s.batch());
        assertEquals(8, s.microBatches());
        s = DeepSpeedConfig.apply("{\"train_micro_batch_size_per_gpu\": 3, \"gradient_accumulation_steps\": 2}", RUN);
        assertEquals(12, s.batch());
        assertEquals(2, s.microBatches());

        assertEquals("--config: train_batch_size 16 != train_micro_batch_size_per_gpu 2 x gradient_accumulation_steps 2 x dp 2 = 8",
                error("{\"train_batch_size\": 16, \"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 2}"));
        assertEquals("--config: train_batch_size 16 != train_micro_batch_size_per_gpu 4 x gradient_accumulation_steps 4 x dp 2 = 32",
                error("{\"train_batch_size\": \"auto\", \"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 4}"));
        assertEquals("--config: train_batch_size 30 is not divisible by train_micro_batch_size_per_gpu 4 x dp 2 = 8",
                error("{\"train_batch_size\": 30, \"train_micro_batch_size_per_gpu\": 4}"));
        UserError e = assertThrows(UserError.class,
                () -> DeepSpeedConfig.resolve("{\"train_micro_batch_size_per_gpu\": \"auto\"}", RUN.withBatch(10)));
        assertEquals("--config: train_micro_batch_size_per_gpu \"auto\" needs the run's batch 10 to divide into dp 2 x 2 micro-batches",
                e.getMessage());
    }

    @Test
    void everyBadValueIsOneLineNamingTheKey() {
        assertEquals("--config is not valid JSON (line 1, column 13)", error("{\"a\": [1, 2}"));
        assertEquals("--config is empty: expected a JSON object {...}", error(""));
        assertEquals("--config must hold one JSON object {...}, not an array", error("[1, 2]"));
        for (String bad : new String[] {"\"abc\"", "0", "-1", "2.5", "1e20", "true", "null", "[]", "{}"}) {
            String m = error("{\"train_batch_size\": " + bad + "}");
            assertTrue(m.startsWith("--config: train_batch_size"), m);
        }
        assertTrue(error("{\"gradient_accumulation_steps\": \"many\"}").contains("gradient_accumulation_steps must be a positive whole number or \"auto\", not \"many\""));
        assertEquals("--config: zero_optimization.stage must be 0, 1, 2 or 3, not 4", error("{\"zero_optimization\": {\"stage\": 4}}"));
        assertEquals("--config: zero_optimization.stage must be 0, 1, 2 or 3, not \"auto\"", error("{\"zero_optimization\": {\"stage\": \"auto\"}}"));
        assertEquals("--config: fp16.enabled must be true, false or \"auto\", not \"yes\"", error("{\"fp16\": {\"enabled\": \"yes\"}}"));
        assertEquals("--config: bf16.enabled and fp16.enabled are both true; pick one",
                error("{\"fp16\": {\"enabled\": true}, \"bf16\": {\"enabled\": \"auto\"}}"));
        assertEquals("--config: optimizer.params.lr must be a positive number, not 0", error("{\"optimizer\": {\"params\": {\"lr\": 0}}}"));
        assertEquals("--config: optimizer must be an object such as {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}, not \"adam\"",
                error("{\"optimizer\": \"adam\"}"));
        assertEquals("--config: unsupported DeepSpeed key(s): scheduler, optimizer.params.betas [0.9,0.999] (this engine's AdamW uses"
                        + " [0.9, 0.95]), gradient_clipping 1.0 (this engine does not clip gradients: write 0 or \"auto\")",
                error("{\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"betas\": [0.9, 0.999]}}, \"gradient_clipping\": 1.0,"
                        + " \"scheduler\": {\"type\": \"WarmupLR\"}}"));
    }
}
