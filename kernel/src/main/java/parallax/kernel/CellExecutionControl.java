package parallax.kernel;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;

/**
 * Runs JShell snippets inside the kernel's JVM (so cells share the engine's classes and
 * can display through the kernel) on a thread of their own, so that an interrupt can
 * stop a runaway cell without killing the kernel. Keeps the last value as an object, not
 * only as JShell's string, so a cell ending in a chart renders as a chart.
 */
final class CellExecutionControl extends DirectExecutionControl {

    private final AtomicReference<Thread> running = new AtomicReference<>();
    private volatile boolean stopRequested;
    private volatile Object lastValue;

    /** The value of the most recent snippet that produced one. */
    Object takeLastValue() {
        Object v = lastValue;
        lastValue = null;
        return v;
    }

    @Override
    protected String invoke(Method doitMethod) throws Exception {
        stopRequested = false;
        Object[] result = new Object[1];
        Throwable[] failure = new Throwable[1];
        Thread worker = new Thread(() -> {
            try {
                result[0] = doitMethod.invoke(null);
            } catch (InvocationTargetException e) {
                failure[0] = e;
            } catch (Throwable t) {
                failure[0] = t;
            }
        }, "parallax-cell");
        worker.setContextClassLoader(Thread.currentThread().getContextClassLoader());
        worker.setDaemon(true);
        running.set(worker);
        worker.start();
        try {
            worker.join();
        } finally {
            running.set(null);
        }
        if (stopRequested) {
            throw new ExecutionControl.StoppedException();
        }
        if (failure[0] instanceof InvocationTargetException ite) {
            if (ite.getCause() instanceof ThreadDeath) throw new ExecutionControl.StoppedException();
            throw ite;
        }
        if (failure[0] instanceof Exception e) throw e;
        if (failure[0] instanceof Error err) throw err;
        lastValue = result[0];
        return valueString(result[0]);
    }

    @Override
    @SuppressWarnings({"deprecation", "removal"})
    public void stop() {
        Thread t = running.get();
        if (t == null) return;
        stopRequested = true;
        t.interrupt();
        // Give code that honours interruption a moment, then force it (JDK 17 still
        // supports Thread.stop; later JDKs refuse it and the interrupt is all we have).
        try {
            t.join(300);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) {
            try {
                t.stop();
            } catch (UnsupportedOperationException ignored) {
                // JDK 20+: cooperative interruption only.
            }
        }
    }

    /** Lets JShell build this control by name; one instance per JShell. */
    static final class Provider implements ExecutionControlProvider {
        private final CellExecutionControl control = new CellExecutionControl();

        CellExecutionControl control() {
            return control;
        }

        @Override
        public String name() {
            return "parallax";
        }

        @Override
        public ExecutionControl generate(ExecutionEnv env, Map<String, String> parameters) {
            return control;
        }
    }
}
