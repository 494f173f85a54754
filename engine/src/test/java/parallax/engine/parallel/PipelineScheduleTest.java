package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.parallel.PipelineParallel.Schedule;
import parallax.engine.parallel.PipelineSchedule.Kind;
import parallax.engine.parallel.PipelineSchedule.Op;

/** The pass orders of every schedule: complete, deadlock-free, and with the bubble the papers give. */
class PipelineScheduleTest {

    @Test
    void everyStageRunsEachPassOnceInADependencyOrder() {
        for (Schedule s : Schedule.values())
            for (int p : new int[] {2, 3, 4, 8})
                for (int v : s == Schedule.INTERLEAVED ? new int[] {2, 3, 4} : new int[] {1})
                    for (int m : new int[] {p, 2 * p, 3 * p, 8 * p}) {
                        for (int stage = 0; stage < p; stage++) {
                            List<Op> ops = PipelineSchedule.ops(s, p, v, m, stage);
                            Set<Op> seen = new HashSet<>(ops);
                            assertEquals(ops.size(), seen.size(), s + " repeats a pass");
                            int kinds = PipelineSchedule.splitsBackward(s) ? 3 : 2;
                            assertEquals(kinds * m * v, ops.size(), s.label() + " p=" + p + " v=" + v + " m=" + m);
                            // Within a stage: a chunk's B after its F, W after its B.
                            for (int i = 0; i < ops.size(); i++) {
                                Op op = ops.get(i);
                                if (op.kind() == Kind.B) assertTrue(ops.subList(0, i).contains(new Op(Kind.F, op.chunk(), op.microBatch())));
                                if (op.kind() == Kind.W) assertTrue(ops.subList(0, i).contains(new Op(Kind.B, op.chunk(), op.microBatch())));
                            }
                        }
                        // Across stages: the simulation runs to the end (it throws on a deadlock).
                        PipelineSchedule.simulate(s, p, v, m, 1, 2, 0, 0.1);
                    }
    }

    @Test
    void simulatedBubbleIsTheClosedForm() {
        for (int p : new int[] {2, 4, 8})
            for (int m : new int[] {p, 4 * p}) {
                // F 1, B 2 (W inside B): GPipe and 1F1B (p-1)/(m+p-1).
                for (Schedule s : new Schedule[] {Schedule.GPIPE, Schedule.ONE_F_ONE_B})
                    assertEquals((p - 1.0) / (m + p - 1), PipelineSchedule.simulate(s, p, 1, m, 1, 2, 0, 0).bubbleFraction(), 1e-12);
                // Interleaved: v times smaller, (p-1)/(vm+p-1).
                for (int v : new int[] {2, 4})
                    assertEquals((p - 1.0) / (v * m + p - 1),
                            PipelineSchedule.simulate(Schedule.INTERLEAVED, p, v, m, 1, 2, 0, 0).bubbleFraction(), 1e-12);
                // ZB-H1 with F = B = W: (p-1)(F+B-W) idle against 1F1B's (p-1)(F+B+W), a third.
                double zb = PipelineSchedule.simulate(Schedule.ZB_H1, p, 1, m, 1, 1, 1, 0).bubbleFraction();
                assertEquals((p - 1.0) / ((p - 1.0) + 3 * m), zb, 1e-12);
                assertEquals(zb, PipelineSchedule.bubbleFraction(Schedule.ZB_H1, p, 1, m, 1, 1, 1), 1e-12);
                double oneF = PipelineSchedule.simulate(Schedule.ONE_F_ONE_B, p, 1, m, 1, 1, 1, 0).bubbleFraction();
                assertTrue(zb < oneF / 2, "zb-h1 " + zb + " vs 1f1b " + oneF);
            }
    }

    @Test
    void zeroBubbleKeepsOneF1BsActivationMemoryWhileGPipeHoldsEveryMicroBatch() {
        for (int p : new int[] {2, 4, 8}) {
            int m = 4 * p;
            assertEquals(p, PipelineSchedule.simulate(Schedule.ONE_F_ONE_B, p, 1, m, 1, 2, 0, 0).peakInFlight());
            assertEquals(p, PipelineSchedule.simulate(Schedule.ZB_H1, p, 1, m, 1, 1, 1, 0).peakInFlight());
            assertEquals(m, PipelineSchedule.simulate(Schedule.GPIPE, p, 1, m, 1, 2, 0, 0).peakInFlight());
        }
    }

    @Test
    void stageOrdersFollowThePapers() {
        // 1F1B, stage 0 of 4: three warm-up forwards, then F/B pairs, then three backwards.
        assertEquals("[F0, F1, F2, F3, B0, F4, B1, F5, B2, F6, B3, F7, B4, B5, B6, B7]",
                PipelineSchedule.ops(Schedule.ONE_F_ONE_B, 4, 1, 8, 0).toString());
        // ZB-H1: stage s runs (F x, B x-(p-1-s), W x-(p-1)); the last stage defers p-1 Ws.
        assertEquals("[F0, B0, F1, B1, F2, B2, F3, B3, W0, F4, B4, W1, F5, B5, W2, F6, B6, W3, F7, B7, W4, W5, W6, W7]",
                PipelineSchedule.ops(Schedule.ZB_H1, 4, 1, 8, 3).toString());
        // Interleaved p 2, v 2, m 4, stage 0: forwards chunk by chunk in groups of p.
        assertEquals("[F0, F1, F0.1, F1.1, F2, B0.1, F3, B1.1, F2.1, B0, F3.1, B1, B2.1, B3.1, B2, B3]",
                PipelineSchedule.ops(Schedule.INTERLEAVED, 2, 2, 4, 0).toString());
    }

    @Test
    void impossibleShapesAreOneLine() {
        UserError e = assertThrows(UserError.class, () -> PipelineSchedule.ops(Schedule.INTERLEAVED, 4, 2, 6, 0));
        assertTrue(e.getMessage().contains("multiple of 4"), e.getMessage());
        assertThrows(UserError.class, () -> PipelineSchedule.ops(Schedule.ZB_H1, 2, 2, 4, 0));
    }
}
