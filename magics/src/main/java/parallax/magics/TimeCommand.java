package parallax.magics;

import java.lang.management.ManagementFactory;
import parallax.engine.UserError;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;

/**
 * {@code %%time}: runs the cell and prints its CPU and wall time, as IPython's magic
 * does. CPU time is the whole kernel process's (user + system), since JShell may run
 * the snippet on a thread of its own and work may fan out to other threads.
 */
@Command(name = "time", description = "Run the cell and report its wall time and the process CPU time it used.")
public final class TimeCommand extends MagicCommand implements CellMagic {

    private String body = "";

    @Override
    public void cellBody(String body) {
        this.body = body;
    }

    @Override
    protected Report execute() throws Exception {
        CellEvaluator evaluator = context().cellEvaluator()
                .orElseThrow(() -> new UserError("%%time needs a notebook kernel to run the cell"));
        long cpu0 = processCpuNanos();
        long wall0 = System.nanoTime();
        Object value;
        try {
            value = evaluator.eval(body);
        } finally {
            long wall = System.nanoTime() - wall0;
            long cpu = processCpuNanos() - cpu0;
            output().out().println("CPU times: total " + human(cpu) + (cpu < 0 ? " (unavailable)" : ""));
            output().out().println("Wall time: " + human(wall));
        }
        if (value != null) output().display(value);
        return null;
    }

    static long processCpuNanos() {
        var os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) return sun.getProcessCpuTime();
        return -1;
    }

    /** IPython-style duration: ns, µs, ms or s with three significant digits. */
    static String human(long nanos) {
        if (nanos < 0) return "n/a";
        if (nanos < 1_000) return nanos + " ns";
        if (nanos < 1_000_000) return String.format("%.3g µs", nanos / 1e3);
        if (nanos < 1_000_000_000) return String.format("%.3g ms", nanos / 1e6);
        return String.format("%.3g s", nanos / 1e9);
    }
}
