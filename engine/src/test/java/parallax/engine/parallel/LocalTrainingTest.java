package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.model.Trainer;

/**
 * Every layout reproduces the single-process fp32 reference (loss per step within 1e-5
 * relative, final weights close), with ranks as threads of this JVM. The same cases run
 * over real worker JVMs and Gloo in the cluster-backed test.
 */
class LocalTrainingTest {

    static final int STEPS = 20;
    static Trainer.Result reference;

    static TrainSpec base() {
        return TrainSpec.defaults(GptConfig.tiny()).withSteps(STEPS).withBatch(8).withExport(true);
    }

    @BeforeAll
    static void reference() {
        reference = Trainer.train(GptConfig.tiny(), TextData.Source.TEXT, 7, STEPS, 8, "adamw", 1e-3);
        assertTrue(reference.loss()[STEPS - 1] < reference.loss()[0], "reference loss must fall");
    }

    @ParameterizedTest(name = "dp={0} tp={1} pp={2} zero={3} m={4} {5} ckpt={6}")
    @CsvSource({
            "1,1,1,0,1,1f1b,0",
            "2,1,1,0,1,1f1b,0",
            "4,1,1,0,1,1f1b,0",
            "2,1,1,1,1,1f1b,0",
            "2,1,1,2,1,1f1b,0",
            "2,1,1,3,1,1f1b,0",
            "1,2,1,0,1,1f1b,0",
            "1,1,2,0,4,gpipe,0",
            "1,1,2,0,4,1f1b,0",
            "2,2,1,0,1,1f1b,0",
            "1,2,2,0,4,1f1b,0",
            "2,1,2,0,2,1f1b,0",
            "2,1,1,0,2,1f1b,1",
            "1,2,2,0,2,gpipe,2",
            "2,1,2,1,2,1f1b,1",
            "4,1,1,0,1,1f1b,1",
            "2,1,1,1,1,1f1b,1",
            "2,1,1,2,1,1f1b,1",
            "1,2,1,0,1,1f1b,1",
            "1,1,2,0,4,gpipe,1",
            "1,1,2,0,4,1f1b,1",
            "2,2,1,0,1,1f1b,2",
            "1,2,2,0,4,1f1b,1",
            "2,1,2,0,2,1f1b,1",
            "1,1,4,0,4,1f1b,0",
    })
    void matchesSingleProcess(int dp, int tp, int pp, int zero, int m, String schedule, int ckpt) throws Exception {
        TrainSpec spec = base().withLayout(dp, tp, pp).withZero(zero)
                .withMicroBatches(m, PipelineParallel.Schedule.parse(schedule)).withCheckpoint(ckpt);
        List<RankResult> ranks = LocalGroups.run(spec);
        Parity.losses(spec.label(), TrainingRun.globalLoss(ranks, STEPS), reference.loss(), STEPS);
        Parity.weights(spec.label(), TrainingRun.of(spec, ranks).parameters(), reference.parameters());
    }

    /** The measured model-state bytes are exactly what the storage layout says (docs/training.md). */
    @ParameterizedTest(name = "zero={0} {1}")
    @CsvSource({"0,fp32", "1,fp32", "2,fp32", "3,fp32", "0,bf16", "1,bf16", "3,bf16"})
    void modelStateBytesAreExact(int zero, String precision) throws Exception {
        parallax.engine.numerics.DType d = parallax.engine.numerics.DType.fromLabel(precision, parallax.engine.numerics.DType.TRAINING).orElse(null);
        TrainSpec spec = base().withSteps(2).withExport(false).withLayout(2, 1, 1).withZero(zero).withPrecision(d);
        List<RankResult> ranks = LocalGroups.run(spec);
        parallax.engine.model.Gpt gpt = new parallax.engine.model.Gpt(GptConfig.tiny());
        long numel = 0, padded = 0;
        for (int u = 0; u < gpt.units(); u++) {
            long n = 0;
            for (parallax.engine.model.Gpt.ParamSpec p : gpt.params(u)) n += p.numel();
            numel += n;
            padded += (n + 1) / 2 * 2;
        }
        long shard = padded / 2, c = d.bytes();
        long params = zero == 3 ? c * shard : c * padded;
        long grads = zero >= 2 ? 4 * shard : c * numel;
        long state = 8 * (zero == 0 ? padded : shard);
        long master = d == parallax.engine.numerics.DType.F32 ? 0 : 4 * (zero == 0 ? padded : shard);
        for (RankResult r : ranks) {
            assertEquals(params, r.memory().parameterBytes(), "parameters");
            assertEquals(grads, r.memory().gradientBytes(), "gradients");
            assertEquals(state + master, r.memory().optimizerBytes(), "optimizer");
            assertTrue(r.memory().activationBytes() > 0, "activations counted");
        }
    }

    /**
     * Local SGD with k = 4: right after an average every rank holds the same weights; two
     * local steps later they differ; and the DP all-reduce moves k times fewer bytes than
     * plain DP's per-step gradient all-reduce (the same padded fp32 buffers, k times less often).
     */
    @org.junit.jupiter.api.Test
    void localSgdAveragesEveryKSteps() throws Exception {
        TrainSpec spec = base().withLayout(2, 1, 1).withOptimizer("sgd", 0.05).withLocalSgd(4).withSteps(8);
        List<RankResult> afterAverage = LocalGroups.run(spec);
        Map<String, float[]> a = afterAverage.get(0).parameters(), b = afterAverage.get(1).parameters();
        assertEquals(a.keySet(), b.keySet());
        for (String name : a.keySet()) assertTrue(java.util.Arrays.equals(a.get(name), b.get(name)), name + " differs right after an average");

        List<RankResult> between = LocalGroups.run(spec.withSteps(6));
        Map<String, float[]> c = between.get(0).parameters(), d = between.get(1).parameters();
        long differing = c.keySet().stream().filter(n -> !java.util.Arrays.equals(c.get(n), d.get(n))).count();
        assertTrue(differing > c.size() / 2, "two local steps after the average most tensors differ, got " + differing + " of " + c.size());

        long local = afterAverage.get(0).bytesHanded("allReduce");
        long plain = LocalGroups.run(spec.withLocalSgd(0).withExport(false)).get(0).bytesHanded("allReduce");
        assertTrue(local > 0, "local SGD averages over the DP group");
        assertEquals(plain, 4 * local, "k = 4 times fewer bytes handed to the all-reduce");
    }

    /**
     * ZeRO-Offload's path (separate fp32 master and optimizer state where the optimizer
     * lives, gradients down, weights back up) reproduces the single-process run at every
     * ZeRO stage. On these CPU ranks nothing changes memory, but every copy is made.
     */
    @ParameterizedTest(name = "offload zero={0}")
    @CsvSource({"0", "1", "2", "3"})
    void offloadedOptimizerMatchesSingleProcess(int zero) throws Exception {
        TrainSpec spec = base().withLayout(2, 1, 1).withZero(zero).withOffloadOptimizer(true);
        List<RankResult> ranks = LocalGroups.run(spec);
        Parity.losses(spec.label(), TrainingRun.globalLoss(ranks, STEPS), reference.loss(), STEPS);
        for (RankResult r : ranks) assertEquals("cpu", r.memory().optimizerDevice());
        // fp32 with offload keeps its own master copy: 4 bytes more per owned parameter than without.
        RankResult plain = LocalGroups.run(spec.withOffloadOptimizer(false).withSteps(2).withExport(false)).get(0);
        RankResult off = LocalGroups.run(spec.withSteps(2).withExport(false)).get(0);
        assertEquals(plain.memory().optimizerBytes() * 3 / 2, off.memory().optimizerBytes(), "AdamW's 8 bytes + a 4-byte master");
    }

    /**
     * Sequence and context parallelism, interleaved and zero-bubble pipelines, and a layout
     * using four dimensions at once reproduce the single-process run, with and without
     * activation checkpointing (issue 13).
     */
    @ParameterizedTest(name = "dp={0} cp={1} tp={2} sp={3} pp={4} vpp={5} zero={6} m={7} {8} ckpt={9}")
    @CsvSource({
            "1,1,2,true,1,1,0,1,1f1b,0",
            "1,1,2,true,1,1,0,1,1f1b,1",
            "1,2,1,false,1,1,0,1,1f1b,0",
            "1,2,1,false,1,1,0,1,1f1b,1",
            "2,2,1,false,1,1,0,1,1f1b,0",
            "2,2,1,false,1,1,1,1,1f1b,0",
            "1,2,2,false,1,1,0,1,1f1b,0",
            "1,2,2,true,1,1,0,1,1f1b,1",
            "2,1,2,true,1,1,3,2,1f1b,0",
            "1,1,1,false,2,2,0,2,interleaved,0",
            "1,1,1,false,2,2,0,4,interleaved,0",
            "2,1,1,false,2,2,1,4,interleaved,1",
            "1,1,2,true,2,2,0,4,interleaved,0",
            "1,1,1,false,4,1,0,8,zb-h1,0",
            "1,1,1,false,2,1,0,4,zb-h1,1",
            "2,1,1,false,2,1,2,4,zb-h1,0",
            "1,1,2,true,2,1,0,4,zb-h1,0",
            "1,1,2,false,2,1,0,2,zb-h1,0",
            "1,2,1,false,2,1,0,2,zb-h1,0",
            "2,2,2,true,2,1,1,2,1f1b,0",
            "2,2,2,false,2,2,0,2,interleaved,0",
    })
    void sequenceAndContextLayoutsMatchSingleProcess(int dp, int cp, int tp, boolean sp, int pp, int vpp, int zero, int m,
                                                     String schedule, int ckpt) throws Exception {
        TrainSpec spec = base().withLayout(dp, tp, pp).withCp(cp).withSequenceParallel(sp).withVirtualStages(vpp).withZero(zero)
                .withMicroBatches(m, PipelineParallel.Schedule.parse(schedule)).withCheckpoint(ckpt);
        List<RankResult> ranks = LocalGroups.run(spec);
        Parity.losses(spec.label(), TrainingRun.globalLoss(ranks, STEPS), reference.loss(), STEPS);
        Parity.weights(spec.label(), TrainingRun.of(spec, ranks).parameters(), reference.parameters());
    }
}
