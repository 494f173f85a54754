package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import parallax.engine.report.Stats;

/**
 * The fault-tolerance part of a run's report: where it resumed from, what its checkpoints
 * cost (state and file bytes per rank, the copy to memory the training thread waited for,
 * the background write, the step time while a write ran against the rest), and for each
 * restart what was lost and how long recovery took. All from the ranks' and the
 * coordinator's own measurements.
 */
final class ResilienceReport {

    private static final double MIB = 1024.0 * 1024.0;

    private ResilienceReport() {}

    /** Medians of what the saves cost; NaN where nothing was measured. */
    record SaveSummary(int saves, double stateBytes, double fileBytes, double snapshotMs, double waitMs, double writeMs,
                       double stepMsWhileWriting, double stepMsOtherwise) {

        /** State bytes a millisecond of the copy to memory moved, in GB/s (10^9 bytes). */
        double copyGBps() { return stateBytes / snapshotMs / 1e6; }

        /** File bytes a millisecond of the background write put on disk, in GB/s. */
        double writeGBps() { return fileBytes / writeMs / 1e6; }

        /** Step time while a background write ran, over the step time without one. */
        double slowdown() { return stepMsWhileWriting / stepMsOtherwise; }
    }

    static SaveSummary summary(TrainingRun run) {
        RunHistory h = run.history();
        List<RunHistory.SaveCost> saves = h.saves();
        double[] state = new double[saves.size()], file = new double[saves.size()], snap = new double[saves.size()],
                wait = new double[saves.size()], write = new double[saves.size()];
        for (int i = 0; i < saves.size(); i++) {
            RunHistory.SaveCost c = saves.get(i);
            state[i] = c.stateBytes();
            file[i] = c.fileBytes();
            snap[i] = c.snapshotMs();
            wait[i] = c.waitMs();
            write[i] = c.writeMs();
        }
        // Slowest rank per step, split by whether a rank's background write ran during it
        // (the first trained step left out as warm-up).
        double[] worst = run.slowestStepMs();
        List<Double> during = new ArrayList<>(), otherwise = new ArrayList<>();
        for (int i = 1; i < worst.length; i++) (h.overlappedSteps().contains(h.firstStep() + i) ? during : otherwise).add(worst[i]);
        return new SaveSummary(saves.isEmpty() ? 0 : (int) saves.stream().mapToInt(RunHistory.SaveCost::step).distinct().count(),
                med(state), med(file), med(snap), med(wait), med(write), med(during), med(otherwise));
    }

    private static double med(double[] v) { return v.length == 0 ? Double.NaN : Stats.median(v, 0); }

    private static double med(List<Double> v) { return med(v.stream().mapToDouble(Double::doubleValue).toArray()); }

    /** The paragraph for the run's report, or "" for a run without checkpoints or restarts. */
    static String text(TrainingRun run) {
        RunHistory h = run.history();
        if (!h.eventful()) return "";
        StringBuilder b = new StringBuilder();
        if (h.firstStep() > 0 && h.restarts().isEmpty())
            b.append(String.format(Locale.ROOT, "Resumed at step %d from the checkpoint in %s. ", h.firstStep(), h.resumedFrom()));
        if (!h.checkpoints().isEmpty()) {
            SaveSummary s = summary(run);
            b.append(String.format(Locale.ROOT, "Checkpoints complete at step%s %s (last: %s). ", h.checkpoints().size() == 1 ? "" : "s",
                    h.checkpoints(), h.lastCheckpoint()));
            if (s.saves() > 0) {
                b.append(String.format(Locale.ROOT, "Per save and rank (medians): %.2f MiB of state, a %.2f MiB file; the training "
                                + "thread waited %.2f ms to copy the state to memory (%.2f GB/s) and %.2f ms for an earlier save, the "
                                + "background write took %.1f ms. ",
                        s.stateBytes() / MIB, s.fileBytes() / MIB, s.snapshotMs(), s.copyGBps(), s.waitMs(), s.writeMs()));
                b.append(Double.isNaN(s.stepMsWhileWriting()) || Double.isNaN(s.stepMsOtherwise())
                        ? "No trained step ran beside a write (each ended before the next step, or after the last). "
                        : String.format(Locale.ROOT, "Steps while a write ran: %.1f ms, others %.1f ms (%.2fx). ",
                                s.stepMsWhileWriting(), s.stepMsOtherwise(), s.slowdown()));
            }
        }
        for (RunHistory.Restart r : h.restarts()) {
            b.append(String.format(Locale.ROOT, "%n%n**Restart %d**: %s. The last step reported was %d; generation %d resumed from %s, "
                            + "so %d step%s were trained again; %s%.1f s from detection to its first step, on %d ranks (%s%s).",
                    r.generation(), r.cause(), r.lastReportedStep(), r.generation(),
                    r.resumedFromStep() == 0 ? "the start (no checkpoint yet)" : "the checkpoint of step " + r.resumedFromStep(),
                    r.lostSteps(), r.lostSteps() == 1 ? "" : "s",
                    Double.isNaN(r.detectSeconds()) ? "" : String.format(Locale.ROOT, "the kill was detected after %.2f s, then ", r.detectSeconds()),
                    r.recoverySeconds(), r.ranksAfter(), r.layoutAfter(),
                    r.layoutAfter().equals(r.layoutBefore()) ? "" : ", was " + r.layoutBefore()));
        }
        return b.toString().strip();
    }

    /** The --json part: the history and the save summary. */
    static Map<String, Object> data(TrainingRun run) {
        Map<String, Object> m = new LinkedHashMap<>();
        RunHistory h = run.history();
        m.put("firstStep", h.firstStep());
        m.put("resumedFrom", h.resumedFrom());
        m.put("checkpoints", h.checkpoints());
        m.put("lastCheckpoint", h.lastCheckpoint());
        m.put("restarts", h.restarts());
        List<Double> killToFirstStep = new ArrayList<>();
        for (RunHistory.Restart r : h.restarts()) killToFirstStep.add(r.killToFirstStepSeconds());
        m.put("killToFirstStepSeconds", killToFirstStep);
        if (!h.saves().isEmpty()) {
            SaveSummary s = summary(run);
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("saves", s.saves());
            x.put("stateBytesPerRank", s.stateBytes());
            x.put("fileBytesPerRank", s.fileBytes());
            x.put("snapshotMs", s.snapshotMs());
            x.put("copyGBps", s.copyGBps());
            x.put("waitMs", s.waitMs());
            x.put("writeMs", s.writeMs());
            x.put("writeGBps", s.writeGBps());
            x.put("stepMsWhileWriting", s.stepMsWhileWriting());
            x.put("stepMsOtherwise", s.stepMsOtherwise());
            x.put("slowdownWhileWriting", s.slowdown());
            x.put("perRank", h.saves());
            x.put("overlappedSteps", h.overlappedSteps());
            m.put("saveCosts", x);
        }
        return m;
    }

    /** Marks each restart on a loss chart: a vertical line at the last step reported before the failure. */
    static void markRestarts(XYChart chart, TrainingRun run) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double l : run.loss()) if (Double.isFinite(l)) { lo = Math.min(lo, l); hi = Math.max(hi, l); }
        if (!Double.isFinite(lo)) return;
        for (RunHistory.Restart r : run.history().restarts()) {
            String name = String.format(Locale.ROOT, "restart %d: lost after step %d, resumed from %d", r.generation(),
                    r.lastReportedStep(), r.resumedFromStep());
            XYSeries s = chart.addSeries(name, new double[] {r.lastReportedStep(), r.lastReportedStep()}, new double[] {lo, hi});
            s.setMarker(SeriesMarkers.NONE);
        }
    }
}
