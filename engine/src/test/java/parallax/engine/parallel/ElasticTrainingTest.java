package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.WorkerPool;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.model.Trainer;

/**
 * Elastic restarts over real worker JVMs: a rank killed with SIGKILL at a random step, or
 * while its checkpoint file is being written, and the run still ends with the weights of
 * the run nobody killed; four ranks that lose one go on as two, keeping the global batch;
 * no worker of any generation is left running.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ElasticTrainingTest {

    static final int STEPS = 15, EVERY = 5;

    private Path work;
    private WorkerPool pool;
    private final List<Long> pids = new ArrayList<>();
    private TrainingRun uninterrupted;

    /** Starts a pool; {@code current} is told of it and of every generation after it, whose pids are recorded. */
    private WorkerPool start(int world, java.util.function.Consumer<WorkerPool> current) {
        WorkerPool p = WorkerPool.start(Nodes.localDefault(world), world,
                WorkerPool.Options.defaults().withLogDir(work.resolve("logs-" + world)).withTimeouts(60_000, 60_000));
        for (long pid : p.workerPids()) pids.add(pid);
        current.accept(p);
        p.onSuccessor(next -> {
            for (long pid : next.workerPids()) pids.add(pid);
            current.accept(next);
        });
        return p;
    }

    static TrainSpec spec() {
        return TrainSpec.defaults(GptConfig.tiny()).withLayout(2, 1, 1).withZero(1).withSteps(STEPS).withBatch(8).withExport(true);
    }

    private FaultTolerance saving(String name) {
        return FaultTolerance.NONE.withSaving(EVERY, work.resolve(name).toString(), 2).withRestarts(1, 0);
    }

    @BeforeAll
    void uninterruptedRun() throws Exception {
        work = Files.createTempDirectory("parallax-elastic");
        start(2, p -> pool = p);
        uninterrupted = Training.run(pool, spec().withFaultTolerance(saving("reference")), null);
        assertTrue(uninterrupted.history().restarts().isEmpty());
        assertEquals(List.of(5, 10, 15), uninterrupted.history().checkpoints());
    }

    @AfterAll
    void nothingLeftRunning() throws Exception {
        if (pool != null) pool.close();
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < end && pids.stream().anyMatch(ElasticTrainingTest::alive)) Thread.sleep(100);
        for (long pid : pids) assertFalse(alive(pid), "worker " + pid + " still running");
        try (Stream<Path> s = Files.walk(work)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    private void sameAsUninterrupted(TrainingRun run) {
        for (int s = 0; s < STEPS; s++)
            assertEquals(Double.doubleToLongBits(uninterrupted.loss()[s]), Double.doubleToLongBits(run.loss()[s]),
                    "step " + (s + 1) + ": " + run.loss()[s] + " vs " + uninterrupted.loss()[s]);
        Map<String, float[]> want = uninterrupted.parameters(), got = run.parameters();
        assertEquals(want.keySet(), got.keySet());
        for (String n : want.keySet()) assertArrayEquals(want.get(n), got.get(n), n + ": the final weights of the run nobody killed");
    }

    @Test
    void aRankKilledAtARandomStepIsReplacedAndTheRunEndsWithTheSameWeights() throws Exception {
        long seed = System.nanoTime();
        int killAt = EVERY + 1 + new SplittableRandom(seed).nextInt(STEPS - EVERY - 2);
        System.out.println("kill -9 of rank 1 at step " + killAt + " (seed " + seed + ")");
        WorkerPool first = livePool();
        int generation = first.generation(), restarts = first.restarts();
        TrainSpec spec = spec().withFaultTolerance(saving("random-kill").withKill(1, killAt));
        TrainingRun run = Training.run(first, spec, null);

        assertEquals(1, run.history().restarts().size());
        RunHistory.Restart r = run.history().restarts().get(0);
        System.out.println("restart: " + r);
        assertTrue(r.cause().startsWith("rank 1 on localhost") && r.cause().contains("killed by signal 9"), r.cause());
        assertTrue(r.resumedFromStep() % EVERY == 0 && r.resumedFromStep() <= r.lastReportedStep() && r.lastReportedStep() >= killAt, r.toString());
        assertEquals(r.lastReportedStep() - r.resumedFromStep(), r.lostSteps());
        assertTrue(r.detectSeconds() >= 0 && r.detectSeconds() < 10, "kill to detection " + r.detectSeconds());
        assertTrue(r.recoverySeconds() > 0 && r.recoverySeconds() < 120, "detection to the next generation's first step " + r.recoverySeconds());
        assertEquals(2, r.ranksAfter());
        assertEquals(r.resumedFromStep(), run.history().firstStep());
        assertFalse(first.alive());
        assertEquals(generation + 1, pool.generation());
        assertEquals(restarts + 1, pool.restarts());
        sameAsUninterrupted(run);

        String log = Files.readString(first.events().file());
        for (String action : List.of("drill", "ranks-lost", "recovering", "restart", "pool-start", "recovered", "checkpoint"))
            assertTrue(log.contains("\"event.action\":\"" + action + "\""), action + " in the coordinator's JSON log:\n" + log);
        assertTrue(log.lines().allMatch(l -> l.startsWith("{\"@timestamp\":\"")), "ECS-shaped lines");
    }

    @Test
    void aRankKilledWhileWritingItsCheckpointLeavesThePreviousOneToResumeFrom() throws Exception {
        Path dir = work.resolve("kill-during-save");
        // Each rank writes about 410 kB a save; capped at 300 kB/s the write of step 10 lasts long enough to be caught.
        TrainSpec spec = spec().withFaultTolerance(saving("kill-during-save").withSaveBandwidth(300_000));
        WorkerPool first = livePool();
        AtomicBoolean killed = new AtomicBoolean();
        Thread killer = new Thread(() -> {
            Path five = DistributedCheckpoint.stepDir(dir, 5), ten = DistributedCheckpoint.stepDir(dir, 10);
            long end = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (System.nanoTime() < end && !killed.get()) {
                boolean writing = false;
                if (Files.isRegularFile(five.resolve(DistributedCheckpoint.METADATA)) && Files.isDirectory(ten)) {
                    try (Stream<Path> s = Files.list(ten)) {
                        writing = s.anyMatch(p -> p.getFileName().toString().startsWith(".rank-00001.safetensors.")
                                && p.getFileName().toString().endsWith(".part"));
                    } catch (java.io.IOException ignored) {
                        // listed again next time
                    }
                }
                if (writing) {
                    first.kill(1);
                    killed.set(true);
                }
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "killer");
        killer.start();
        TrainingRun run = Training.run(first, spec, null);
        killer.join();
        assertTrue(killed.get(), "rank 1 was killed while writing step 10");

        RunHistory.Restart r = run.history().restarts().get(0);
        assertEquals(5, r.resumedFromStep(), "the checkpoint before the interrupted save");
        sameAsUninterrupted(run);
        DistributedCheckpoint.Metadata ten = DistributedCheckpoint.verify(DistributedCheckpoint.stepDir(dir, 10));
        assertEquals(1, ten.generation(), "step 10 written again by the next generation");
    }

    /** The shared 2-rank pool, started again if a test left it stopped. */
    private WorkerPool livePool() {
        if (pool == null || !pool.alive()) start(2, p -> pool = p);
        return pool;
    }

    @Test
    void aRunOutOfRestartsEndsWithOneLine() throws Exception {
        WorkerPool first = livePool();
        // the next generation loses its rank 1 as soon as it is up: a second loss, with one restart allowed
        first.onSuccessor(next -> {
            for (long pid : next.workerPids()) pids.add(pid);
            pool = next;
            next.kill(1);
        });
        TrainSpec spec = spec().withFaultTolerance(saving("out-of-restarts").withKill(1, 3));
        parallax.engine.UserError e = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class,
                () -> Training.run(first, spec, null));
        System.out.println("out of restarts: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
        assertTrue(e.getMessage().startsWith("rank 1 on localhost") && e.getMessage().endsWith("; no restarts left after 1 (--max-restarts 1)"),
                e.getMessage());
        assertFalse(pool.alive(), "the second generation is stopped too");
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < end && pids.stream().anyMatch(ElasticTrainingTest::alive)) Thread.sleep(100);
        for (long pid : pids) assertFalse(alive(pid), "worker " + pid + " still running");
    }

    @Test
    void shrinkingKeepsTpAndPpAndTheGlobalBatch() {
        TrainSpec s = TrainSpec.defaults(GptConfig.tiny()).withLayout(4, 1, 1);
        TrainSpec two = ElasticRun.shrink(s, 3, 2, "lost");
        assertEquals(List.of(2, 1, 1, 2), List.of(two.dp(), two.tp(), two.pp(), two.microBatches()));
        TrainSpec hybrid = TrainSpec.defaults(GptConfig.tiny()).withLayout(4, 2, 1).withMicroBatches(2, PipelineParallel.Schedule.ONE_F_ONE_B);
        TrainSpec h = ElasticRun.shrink(hybrid, 7, 2, "lost");
        assertEquals(List.of(2, 2, 1, 4), List.of(h.dp(), h.tp(), h.pp(), h.microBatches()), "dp 4 -> 2 (3 does not divide 4), tp kept");
        assertEquals(8, h.batch());
        h.validate(h.world());
        parallax.engine.UserError e = org.junit.jupiter.api.Assertions.assertThrows(parallax.engine.UserError.class,
                () -> ElasticRun.shrink(s, 1, 2, "rank 3 lost"));
        assertEquals("rank 3 lost; the 1 ranks left cannot hold the run with at least --min-ranks 2 ranks (tp x pp = 1, dp must divide 4)",
                e.getMessage());
    }

    @Test
    void fourRanksLosingOneGoOnAsTwoKeepingTheGlobalBatch() {
        int steps = 20;
        Trainer.Result reference = Trainer.train(GptConfig.tiny(), TextData.Source.TEXT, 7, steps, 8, "adamw", 1e-3);
        WorkerPool[] latest = new WorkerPool[1];
        WorkerPool four = start(4, p -> latest[0] = p);
        TrainSpec spec = TrainSpec.defaults(GptConfig.tiny()).withLayout(4, 1, 1).withSteps(steps).withBatch(8).withExport(true)
                .withFaultTolerance(FaultTolerance.NONE.withSaving(EVERY, work.resolve("shrink").toString(), 2).withRestarts(1, 2).withKill(3, 8));
        TrainingRun run;
        try {
            run = Training.run(four, spec, null);
        } finally {
            latest[0].close();
        }
        assertFalse(four.alive());
        RunHistory.Restart r = run.history().restarts().get(0);
        assertEquals("dp=4", r.layoutBefore());
        assertEquals("dp=2,accum=2", r.layoutAfter(), "DP halved, twice the micro-batches: the same global batch");
        assertEquals(2, r.ranksAfter());
        assertEquals(2, run.spec().dp());
        assertEquals(2, run.spec().microBatches());
        assertEquals(2, run.ranks().size());
        for (int s = 0; s < steps; s++) {
            double rel = Math.abs(run.loss()[s] - reference.loss()[s]) / reference.loss()[s];
            assertTrue(rel < 1e-5, "step " + (s + 1) + ": " + run.loss()[s] + " vs one process " + reference.loss()[s]);
        }
        Map<String, float[]> got = run.parameters();
        for (Map.Entry<String, float[]> e : reference.parameters().entrySet())
            for (int i = 0; i < e.getValue().length; i++)
                assertEquals(e.getValue()[i], got.get(e.getKey())[i], 1e-4 + 1e-3 * Math.abs(e.getValue()[i]), e.getKey() + "[" + i + "]");
    }
}
