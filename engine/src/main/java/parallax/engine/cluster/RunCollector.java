package parallax.engine.cluster;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.reflect.TypeToken;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import parallax.engine.cluster.RankChannel.Incoming;

/**
 * One task on every rank, from the command to the per-rank results: sends the command,
 * streams each rank's output and events to the listener on the calling thread, gathers
 * one result or error per rank, and decides the outcome. Anything that leaves the ranks
 * out of step stops them all (through {@code stopAll}, the pool's close) and throws a
 * one-line {@link ClusterError}: a rank that dies, an interrupt of the calling thread,
 * ranks still running 2 s after another failed (stuck in a collective it left), or a
 * collective timeout.
 */
final class RunCollector {

    /** How long the other ranks get to finish (or fail the same way) after one reports an error. */
    private static final long ERROR_GRACE_NANOS = 2_000_000_000L;

    private final List<RankChannel> ranks;
    private final BlockingQueue<Incoming> inbox;
    private final Runnable stopAll;
    private final Supplier<MetricsServer> metrics;
    private final Consumer<RankEvent> listener;
    private final long id;
    /** A rank silent this long (no answer to the pings) is cut off: its node or its link is down. */
    private final long silenceNanos;

    private final JsonElement[] results;
    private final String[] errors;
    private final boolean[] done;
    private int finished;
    private long errorDeadline = Long.MAX_VALUE;

    /**
     * @param id the run's id: messages carrying another (from an earlier run) are ignored
     * @param collectiveTimeoutMs the ranks' collective timeout: a rank that stops answering is
     *        declared lost within half of it (between 5 and 10 s), before the others time out
     */
    RunCollector(List<RankChannel> ranks, BlockingQueue<Incoming> inbox, Runnable stopAll, Supplier<MetricsServer> metrics,
                 Consumer<RankEvent> listener, long id, long collectiveTimeoutMs) {
        this.silenceNanos = Math.max(5_000, Math.min(collectiveTimeoutMs / 2, 10_000)) * 1_000_000L;
        this.ranks = ranks;
        this.inbox = inbox;
        this.stopAll = stopAll;
        this.metrics = metrics;
        this.listener = listener;
        this.id = id;
        results = new JsonElement[ranks.size()];
        errors = new String[ranks.size()];
        done = new boolean[ranks.size()];
    }

    /** Sends {@code cmd} (with this run's id) to every rank and returns each rank's value, index = rank. */
    List<JsonElement> run(JsonObject cmd) {
        cmd.addProperty("id", id);
        for (RankChannel r : ranks) {
            r.lastStep = -1;
            sendTo(r, cmd);
        }
        while (finished < ranks.size()) {
            Incoming in = next();
            stopIfSilent();
            if (in == null) {
                stopIfGraceIsOver();
            } else if (in.msg() == null) {
                rankGone(in.rank());
            } else {
                handle(in.rank(), in.msg());
            }
        }
        return outcome();
    }

    private void sendTo(RankChannel r, JsonObject m) {
        try {
            r.send(m);
        } catch (IOException | RuntimeException e) {
            String msg = FailureReport.death(r, "before the run");
            List<Integer> lost = deadRanks(r.rank());
            stopAll.run();
            throw new RanksLost(msg, lost, lastStep());
        }
    }

    /** The next message, or null after 200 ms (or when the error grace is over). */
    private Incoming next() {
        try {
            long wait = errorDeadline == Long.MAX_VALUE ? 200 : Math.max(1, (errorDeadline - System.nanoTime()) / 1_000_000);
            return inbox.poll(wait, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            stopAll.run();
            Thread.currentThread().interrupt();
            throw new ClusterError("interrupted: all " + ranks.size() + " ranks stopped");
        }
    }

    /**
     * Ranks still running when the grace after an error is over are stuck (in a collective the
     * failed rank left), or cut off: those that do not even answer a status request are
     * named first, with their nodes, since their loss is what the others timed out on.
     */
    private void stopIfGraceIsOver() {
        if (System.nanoTime() < errorDeadline) return;
        List<Integer> pending = new ArrayList<>();
        for (int i = 0; i < done.length; i++) if (!done[i]) pending.add(i);
        List<Integer> silent = unanswered(pending);
        int bad = firstError();
        stopAll.run();
        String cutOff = silent.isEmpty() ? "" : "rank(s) " + silent + " on " + hosts(silent)
                + " stopped answering (the node or its link is down); ";
        throw new ClusterError(cutOff + "rank " + bad + " on " + ranks.get(bad).host() + " failed: "
                + errors[bad] + FailureReport.lastStep(ranks.get(bad)) + "; ranks " + pending + " were stopped");
    }

    /** Ranks that have not answered the coordinator's pings for the silence limit: the run ends now, naming them. */
    private void stopIfSilent() {
        long now = System.nanoTime();
        List<Integer> silent = new ArrayList<>();
        boolean any = false;
        for (int i = 0; i < done.length; i++) any |= !done[i] && now - ranks.get(i).lastHeardNanos > silenceNanos;
        if (!any) return;
        // Ranks cut off together (one node's link) fall silent within a ping of each other: the
        // first past the limit ends the run, and every rank silent for half of it is named too
        // (a rank that is heard answers each second).
        for (int i = 0; i < done.length; i++) if (!done[i] && now - ranks.get(i).lastHeardNanos > silenceNanos / 2) silent.add(i);
        // Their connections cannot be closed politely (nothing gets through): end them first.
        for (int i : silent) ranks.get(i).process.destroyForcibly();
        stopAll.run();
        throw new ClusterError("rank(s) " + silent + " on " + hosts(silent) + " stopped answering (nothing for "
                + silenceNanos / 1_000_000_000L + " s: the node or its link is down); all " + ranks.size() + " ranks were stopped");
    }

    /** Of {@code pending}, the ranks that do not answer a status request within a second. */
    private List<Integer> unanswered(List<Integer> pending) {
        java.util.Set<Integer> answered = new java.util.HashSet<>();
        for (int r : pending) {
            try {
                ranks.get(r).send(Wire.msg("status"));
            } catch (IOException | RuntimeException e) {
                // cannot even be written to: unanswered
            }
        }
        long deadline = System.nanoTime() + PROBE_NANOS;
        while (answered.size() < pending.size()) {
            long wait = deadline - System.nanoTime();
            Incoming in;
            try {
                in = wait <= 0 ? null : inbox.poll(wait, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            if (in == null) break;
            if (in.msg() != null && "status".equals(in.msg().get("type").getAsString())) answered.add(in.rank());
            else if (in.msg() != null && pending.contains(in.rank())) answered.add(in.rank());   // it spoke
        }
        List<Integer> out = new ArrayList<>(pending);
        out.removeAll(answered);
        return out;
    }

    /** How long a stuck rank gets to answer a status request before it counts as cut off. */
    private static final long PROBE_NANOS = 1_000_000_000L;

    private String hosts(List<Integer> rs) {
        return String.join(", ", rs.stream().map(i -> ranks.get(i).host()).distinct().toList());
    }

    /** A rank's process exited or its connection broke: fine after its result if it is still alive, else the run ends. */
    private void rankGone(int rank) {
        RankChannel r = ranks.get(rank);
        if (done[rank] && r.process.isAlive()) return;
        String msg = FailureReport.death(r, "during the run");
        List<Integer> lost = deadRanks(rank);
        stopAll.run();
        throw new RanksLost(msg + "; the other ranks were stopped", lost, lastStep());
    }

    /** {@code first} and every other rank whose process has already ended (before the survivors are stopped). */
    private List<Integer> deadRanks(int first) {
        List<Integer> dead = new ArrayList<>(List.of(first));
        for (RankChannel r : ranks) if (r.rank() != first && !r.process.isAlive()) dead.add(r.rank());
        return dead;
    }

    /** The last step any rank reported. */
    private long lastStep() {
        long s = -1;
        for (RankChannel r : ranks) s = Math.max(s, r.lastStep);
        return s;
    }

    private void handle(int rank, JsonObject m) {
        String type = m.get("type").getAsString();
        if (m.has("id") && m.get("id").getAsLong() != id) return;   // stale, from an earlier run
        switch (type) {
            case "out" -> listener.accept(new RankEvent(rank, "out", -1, null, m.get("text").getAsString()));
            case "event" -> event(rank, m);
            case "result", "error" -> finish(rank, type, m);
            case "fatal" -> errors[rank] = m.get("message").getAsString();
            default -> { }
        }
    }

    private void event(int rank, JsonObject m) {
        long step = m.get("step").getAsLong();
        if (m.get("kind").getAsString().equals("step")) ranks.get(rank).lastStep = step;
        Map<String, Object> fields = Wire.GSON.fromJson(m.get("fields"), new TypeToken<Map<String, Object>>() { }.getType());
        RankEvent ev = new RankEvent(rank, m.get("kind").getAsString(), step, fields, null);
        MetricsServer ms = metrics.get();
        if (ms != null) ms.onEvent(ev);
        listener.accept(ev);
    }

    private void finish(int rank, String type, JsonObject m) {
        if (done[rank]) return;
        done[rank] = true;
        finished++;
        RankChannel r = ranks.get(rank);
        r.lastStep = Math.max(r.lastStep, m.get("lastStep").getAsLong());
        if (type.equals("result")) {
            results[rank] = m.get("value");
            return;
        }
        errors[rank] = m.get("message").getAsString();
        // Give the others a moment to finish (or fail the same way, as a compile error does);
        // ranks stuck in a collective get stopped.
        if (errorDeadline == Long.MAX_VALUE) errorDeadline = System.nanoTime() + ERROR_GRACE_NANOS;
    }

    /** Every rank answered: the results, or the first error (a collective timeout also stops the pool). */
    private List<JsonElement> outcome() {
        int bad = firstError();
        if (bad >= 0 && errors[bad].contains(Collectives.TIMEOUT_MARK)) {
            // The ranks' groups are out of step after a timeout: start clean next time.
            List<Integer> finishedOk = new ArrayList<>();
            for (int i = 0; i < results.length; i++) if (done[i] && errors[i] == null) finishedOk.add(i);
            stopAll.run();
            throw new RanksLost("rank " + bad + " failed: " + errors[bad] + FailureReport.lastStep(ranks.get(bad))
                    + (finishedOk.isEmpty() ? "" : "; rank(s) " + finishedOk + " had finished without calling it")
                    + "; all ranks were stopped (a group that timed out cannot be reused)", List.of(), lastStep());
        }
        if (bad >= 0) {
            long same = Arrays.stream(errors).filter(e -> errors[bad].equals(e)).count();
            throw new ClusterError((same == ranks.size() ? "every rank failed: " : "rank " + bad + " failed: ")
                    + errors[bad] + FailureReport.lastStep(ranks.get(bad)));
        }
        return Arrays.asList(results);
    }

    private int firstError() {
        for (int i = 0; i < errors.length; i++) if (errors[i] != null) return i;
        return -1;
    }
}
