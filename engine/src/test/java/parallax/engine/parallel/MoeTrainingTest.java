package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.model.Trainer;

/**
 * A mixture of experts trained through the one training loop, experts replicated on every
 * DP rank, reproduces the single-process run (ranks as threads of this JVM). Its
 * load-balancing loss and capacity are taken per micro-batch, so the reference cuts each
 * batch into the same dp x m pieces.
 */
class MoeTrainingTest {

    static final int STEPS = 20;

    static GptConfig model(double capacityFactor) {
        return GptConfig.moeTiny().withMoe(new GptConfig.Moe(4, 2, capacityFactor, false, 0.01));
    }

    @ParameterizedTest(name = "dp={0} pp={1} zero={2} m={3} ckpt={4} cf={5} {6} vpp={7}")
    @CsvSource({
            "1,1,0,1,0,0,1f1b,1",
            "2,1,0,1,0,0,1f1b,1",
            "2,1,1,1,0,0,1f1b,1",
            "1,2,0,4,0,0,1f1b,1",
            "2,2,3,2,1,0,1f1b,1",
            "2,1,0,2,0,1.25,1f1b,1",
            "1,2,0,4,0,0,zb-h1,1",
            "1,2,0,4,0,0,interleaved,2",
    })
    void matchesSingleProcess(int dp, int pp, int zero, int m, int ckpt, double cf, String schedule, int vpp) throws Exception {
        GptConfig cfg = model(cf);
        Trainer.Result reference = Trainer.train(cfg, TextData.Source.TEXT, 7, STEPS, 8, "adamw", 1e-3, dp * m);
        assertTrue(reference.loss()[STEPS - 1] < reference.loss()[0], "reference loss must fall");
        TrainSpec spec = TrainSpec.defaults(cfg).withSteps(STEPS).withBatch(8).withExport(true).withLayout(dp, 1, pp).withZero(zero)
                .withMicroBatches(m, PipelineParallel.Schedule.parse(schedule)).withVirtualStages(vpp).withCheckpoint(ckpt);
        List<RankResult> ranks = LocalGroups.run(spec);
        Parity.losses(spec.label(), TrainingRun.globalLoss(ranks, STEPS), reference.loss(), STEPS);
        Parity.weights(spec.label(), TrainingRun.of(spec, ranks).parameters(), reference.parameters());
        // every assignment of every block is counted once, on the rank whose stage holds the block
        long routed = 0, dropped = 0;
        for (RankResult r : ranks) {
            routed += r.experts().routedPerStep();
            dropped += r.experts().dropped();
            for (int l = 0; l < cfg.layers(); l++) {
                long sum = 0;
                for (long v : r.experts().load()[l]) sum += v;
                boolean holds = vpp > 1 || l * pp / cfg.layers() == r.ppRank();
                if (vpp == 1) assertEquals(holds ? (long) STEPS * 8 / dp * cfg.sequence() * 2 : 0, sum, "rank " + r.rank() + " block " + l);
            }
        }
        assertEquals((long) 8 * cfg.sequence() * 2 * cfg.layers(), routed, "tokens x k x blocks in a step");
        if (cf == 0) assertEquals(0, dropped, "capacity factor 0 drops nothing");
        else assertTrue(dropped > 0, "capacity factor " + cf + " drops some of a random router's tokens");
    }

    @Test
    void sequenceParallelMoeIsRefusedInOneLine() {
        UserError e = assertThrows(UserError.class,
                () -> TrainSpec.defaults(model(0)).withLayout(1, 2, 1).withSequenceParallel(true).validate(2));
        assertTrue(e.getMessage().contains("drop --sp"), e.getMessage());
    }
}
