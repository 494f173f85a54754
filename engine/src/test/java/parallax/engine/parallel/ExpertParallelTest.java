package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parallax.engine.UserError;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.model.Trainer;

/**
 * Expert parallelism (ranks as threads of this JVM): experts sharded over the ep group,
 * tokens exchanged by all-to-all forward and backward, expert gradients reduced over the
 * expert-data-parallel group. The run reproduces the single-process one step by step, and
 * the experts gathered from the ranks that hold them are the single-process experts.
 */
class ExpertParallelTest {

    static final int STEPS = 20;

    @ParameterizedTest(name = "dp={0} pp={1} ep={2} zero={3} m={4} cf={5} tp={6}")
    @CsvSource({
            "2,1,2,0,1,0,1",
            "4,1,2,1,1,0,1",
            "2,2,2,0,2,0,1",
            "2,1,2,0,1,1.25,1",
            "2,1,2,0,1,0,2",
            "2,1,1,0,1,0,2",
    })
    void matchesSingleProcess(int dp, int pp, int ep, int zero, int m, double cf, int tp) throws Exception {
        GptConfig cfg = MoeTrainingTest.model(cf);
        Trainer.Result reference = Trainer.train(cfg, TextData.Source.TEXT, 7, STEPS, 8, "adamw", 1e-3, dp * m);
        TrainSpec spec = TrainSpec.defaults(cfg).withSteps(STEPS).withBatch(8).withExport(true).withLayout(dp, tp, pp).withZero(zero)
                .withMicroBatches(m, PipelineParallel.Schedule.ONE_F_ONE_B).withEp(ep);
        List<RankResult> ranks = LocalGroups.run(spec);
        Parity.losses(spec.label(), TrainingRun.globalLoss(ranks, STEPS), reference.loss(), STEPS);
        // each rank holds E/ep experts per block of its stage, not all of them, cut by tp like the dense MLP
        for (RankResult r : ranks) {
            assertTrue(r.paramInfo().stream().filter(p -> p.name().endsWith(".w1") && Gpt.isExpertWeight(p.name()))
                    .allMatch(p -> p.shardDim() == (tp > 1 ? 0 : -1)), "experts' fc1 cut by columns under tp");
            long held = r.paramInfo().stream().filter(p -> Gpt.isExpertWeight(p.name())).count();
            assertEquals((long) cfg.moe().experts() / ep * 4 * cfg.layers() / pp, held, "expert tensors on rank " + r.rank());
        }
        Parity.weights(spec.label(), TrainingRun.of(spec, ranks).parameters(), reference.parameters());
        // the all-to-alls are counted: four per block and micro-batch (dispatch and combine, forward and backward)
        for (RankResult r : ranks) {
            if (ep == 1) continue;
            RankResult.CommTotals a2a = r.comm().get("allToAll");
            assertTrue(a2a != null && a2a.bytesHanded() > 0, "rank " + r.rank() + " counts its all-to-all bytes");
            assertEquals((long) STEPS * m * 4 * cfg.layers() / pp, a2a.calls(), "all-to-alls on rank " + r.rank());
        }
        // every routed token copy is served by exactly one rank's experts (of each TP slice): the per-rank column adds up to the routing
        TrainingRun run = TrainingRun.of(spec, ranks);
        if (ep > 1) {
            long[] served = TrainingReport.servedByRank(run);
            long routedTotal = 0, servedTotal = 0;
            for (RankResult r : ranks) for (long[] block : r.experts().load()) for (long v : block) routedTotal += v;
            for (long v : served) {
                assertTrue(v > 0, "every rank's experts serve tokens");
                servedTotal += v;
            }
            assertEquals(routedTotal, servedTotal);
            tech.tablesaw.api.Table table = TrainingReport.rankTable(run);
            assertTrue(table.columnNames().containsAll(List.of("all-to-all MiB", "all-to-all ms/step", "tokens to its experts")), table.columnNames().toString());
        }
        long dropped = 0;
        for (RankResult r : ranks) dropped += r.experts().dropped();
        if (cf == 0) assertEquals(0, dropped, "capacity factor 0 drops nothing");
        else assertTrue(dropped > 0, "capacity factor " + cf + " drops some tokens");
    }

    @Test
    void badExpertParallelismIsRefusedInOneLine() {
        GptConfig moe = MoeTrainingTest.model(0);
        UserError notDividing = assertThrows(UserError.class, () -> TrainSpec.defaults(moe).withLayout(3, 1, 1).withBatch(6).withEp(2).validate(3));
        assertTrue(notDividing.getMessage().contains("--ep 2 must divide dp x cp = 3"), notDividing.getMessage());
        UserError experts = assertThrows(UserError.class, () -> TrainSpec.defaults(moe).withLayout(8, 1, 1).withEp(8).validate(8));
        assertTrue(experts.getMessage().contains("must divide the 4 experts"), experts.getMessage());
        UserError dense = assertThrows(UserError.class, () -> TrainSpec.defaults(GptConfig.tiny()).withLayout(2, 1, 1).withEp(2).validate(2));
        assertTrue(dense.getMessage().contains("--experts"), dense.getMessage());
    }
}
