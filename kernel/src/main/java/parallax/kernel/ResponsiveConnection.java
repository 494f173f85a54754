package parallax.kernel;

import io.github.spencerpark.jupyter.channels.JupyterConnection;
import io.github.spencerpark.jupyter.channels.ShellChannel;
import io.github.spencerpark.jupyter.channels.ShellHandler;
import io.github.spencerpark.jupyter.channels.ShellReplyEnvironment;
import io.github.spencerpark.jupyter.kernel.KernelConnectionProperties;
import io.github.spencerpark.jupyter.messages.HMACGenerator;
import io.github.spencerpark.jupyter.messages.Message;
import io.github.spencerpark.jupyter.messages.publish.PublishStatus;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.util.logging.Level;
import org.zeromq.ZMQ;

/**
 * basekernel 2.3.0's shell and control channels poll their socket without waiting and
 * then sleep 50 ms, which adds 0-50 ms to every request (a `1+1` round trip cannot get
 * under ~25 ms). This connection serves shell and control with channels that block in
 * the poll instead, so a request is handled as soon as it arrives; heartbeat, stdin and
 * IOPub are basekernel's own.
 */
final class ResponsiveConnection extends JupyterConnection {

    private final KernelConnectionProperties props;
    private final ZMQ.Context context = ZMQ.context(1);
    private final BlockingShellChannel shell;
    private final BlockingShellChannel control;
    private volatile boolean connected;

    ResponsiveConnection(KernelConnectionProperties props) throws NoSuchAlgorithmException, InvalidKeyException {
        super(props);
        this.props = props;
        HMACGenerator hmac = props.createHMACGenerator();
        this.shell = new BlockingShellChannel(context, hmac, false, this);
        this.control = new BlockingShellChannel(context, hmac, true, this);
    }

    @Override
    public synchronized void connect() {
        if (connected) return;
        heartbeat.bind(props);
        shell.bind(props);
        control.bind(props);
        stdin.bind(props);
        iopub.bind(props);
        getIOPub().sendMessage(new Message<>(null, PublishStatus.MESSAGE_TYPE, PublishStatus.STARTING));
        connected = true;
    }

    @Override
    public void close() {
        shell.close();
        control.close();
        super.close();
        context.close();
    }

    @Override
    public void waitUntilClose() {
        shell.waitUntilClose();
        control.waitUntilClose();
        super.waitUntilClose();
    }

    /** A shell (or control) channel whose loop waits in the poll, up to 100 ms at a time. */
    static final class BlockingShellChannel extends ShellChannel {
        private final boolean isControl;
        private final JupyterConnection connection;
        private volatile Thread loop;
        private volatile boolean running;

        BlockingShellChannel(ZMQ.Context context, HMACGenerator hmac, boolean isControl, JupyterConnection connection) {
            super(context, hmac, isControl, connection);
            this.isControl = isControl;
            this.connection = connection;
        }

        @Override
        public void bind(KernelConnectionProperties p) {
            if (loop != null) throw new IllegalStateException("channel already bound");
            super.bind(formatAddress(p.getTransport(), p.getIp(), isControl ? p.getControlPort() : p.getShellPort()));
            ZMQ.Poller poller = ctx.poller(1);
            poller.register(this, ZMQ.Poller.POLLIN);
            running = true;
            loop = new Thread(() -> {
                while (running) {
                    if (poller.poll(100) > 0 && running) handleOne();
                }
            }, isControl ? "parallax-control" : "parallax-shell");
            loop.setDaemon(true);
            loop.start();
        }

        @SuppressWarnings({"unchecked", "rawtypes"})
        private void handleOne() {
            Message message = readMessage();
            ShellHandler handler = connection.getHandler(message.getHeader().getType());
            if (handler == null) {
                logger.log(Level.WARNING, "Unhandled message: " + message.getHeader().getType().getName());
                return;
            }
            ShellReplyEnvironment env = connection.prepareReplyEnv(this, message);
            try {
                handler.handle(env, message);
            } catch (Exception e) {
                logger.log(Level.SEVERE, "Unhandled exception handling " + message.getHeader().getType().getName(), e);
            } finally {
                env.resolveDeferrals();
            }
            if (env.isMarkedForShutdown()) {
                running = false;
                new Thread(connection::close, "parallax-close").start();
            }
        }

        @Override
        public void close() {
            running = false;
            Thread t = loop;
            if (t != null && t != Thread.currentThread()) {
                try {
                    t.join(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            super.close();
        }

        @Override
        public void waitUntilClose() {
            Thread t = loop;
            if (t == null) return;
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
