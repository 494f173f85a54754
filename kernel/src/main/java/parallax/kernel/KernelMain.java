package parallax.kernel;

import io.github.spencerpark.jupyter.channels.JupyterConnection;
import io.github.spencerpark.jupyter.channels.JupyterSocket;
import io.github.spencerpark.jupyter.kernel.KernelConnectionProperties;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code java parallax.kernel.KernelMain [--verbose] CONNECTION_FILE}: starts the kernel on
 * the sockets the connection file names. Quiet by default (basekernel logs every message
 * at INFO); {@code --verbose} or PARALLAX_KERNEL_LOG=debug brings the message log back.
 * The kernel exits when the process that started it dies, so no JVM outlives its client.
 */
public final class KernelMain {

    private KernelMain() {}

    public static void main(String[] args) throws Exception {
        boolean verbose = "debug".equalsIgnoreCase(System.getenv("PARALLAX_KERNEL_LOG"));
        String connectionFile = null;
        for (String a : args) {
            if (a.equals("--verbose")) verbose = true;
            else if (connectionFile == null) connectionFile = a;
            else {
                System.err.println("parallax kernel: unexpected argument " + a);
                System.exit(2);
            }
        }
        if (connectionFile == null) {
            System.err.println("parallax kernel: usage: KernelMain [--verbose] CONNECTION_FILE");
            System.exit(2);
        }
        Path path = Path.of(connectionFile);
        if (!Files.isReadable(path)) {
            System.err.println("parallax kernel: cannot read connection file " + path);
            System.exit(2);
        }
        configureLogging(verbose);
        System.setProperty("java.awt.headless", "true");

        // The kernel first: it starts JShell on a thread of its own, which then works while
        // the sockets are bound and the client connects.
        ParallaxKernel kernel = new ParallaxKernel();
        KernelConnectionProperties props = KernelConnectionProperties.parse(Files.readString(path));
        JupyterConnection connection = new ResponsiveConnection(props);
        kernel.becomeHandlerForConnection(connection);
        ParentWatch.start(() -> {
            kernel.onShutdown(false);
            Runtime.getRuntime().halt(0);
        });
        connection.connect();
        connection.waitUntilClose();
        kernel.onShutdown(false);
        System.exit(0);
    }

    static void configureLogging(boolean verbose) {
        Level level = verbose ? Level.ALL : Level.WARNING;
        Logger root = Logger.getLogger("");
        root.setLevel(level);
        for (var h : root.getHandlers()) h.setLevel(level);
        if (root.getHandlers().length == 0) {
            ConsoleHandler h = new ConsoleHandler();
            h.setLevel(level);
            root.addHandler(h);
        }
        JupyterSocket.JUPYTER_LOGGER.setLevel(level);
    }
}
