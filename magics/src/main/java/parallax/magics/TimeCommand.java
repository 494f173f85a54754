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
public final class TimeCommand extends MagicCommand {

    @Override
    protected Report execute() throws Exception {
        CellEvaluator evaluator = context().cellEvaluator()
                .orElseThrow(() -> new UserError("%%time needs a notebook kernel to run the cell"));
        long[] times0 = userSysNanos();
        long cpu0 = processCpuNanos();
        long wall0 = System.nanoTime();
        Object value;
        try {
            value = evaluator.eval(cellBody());
        } finally {
            long wall = System.nanoTime() - wall0;
            long cpu = processCpuNanos() - cpu0;
            long[] times1 = userSysNanos();
            if (times0 != null && times1 != null) {
                long user = times1[0] - times0[0];
                long sys = times1[1] - times0[1];
                output().out().println("CPU times: user " + human(user) + ", sys: " + human(sys)
                        + ", total: " + human(user + sys));
            } else {
                output().out().println("CPU times: total: " + human(cpu));
            }
            output().out().println("Wall time: " + human(wall));
        }
        if (value != null) output().display(value);
        return null;
    }

    /**
     * User and system CPU time of this process from /proc/self/stat (fields 14 and 15, in
     * clock ticks of 1/100 s on Linux), or null where there is no /proc.
     */
    static long[] userSysNanos() {
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/stat"));
            // The command name (field 2) may contain blanks; fields after it are plain.
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long ticksPerSecond = 100;
            return new long[] {Long.parseLong(f[11]) * 1_000_000_000L / ticksPerSecond,
                    Long.parseLong(f[12]) * 1_000_000_000L / ticksPerSecond};
        } catch (Exception e) {
            return null;
        }
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
