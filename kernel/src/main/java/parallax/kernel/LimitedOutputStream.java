package parallax.kernel;

import java.io.IOException;
import java.io.OutputStream;

/**
 * Passes at most {@code limit} bytes of a cell's output to the front end and counts the
 * rest, so a cell printing megabytes cannot drown the notebook or the kernel's sockets.
 */
final class LimitedOutputStream extends OutputStream {

    private final OutputStream target;
    private final long limit;
    private long written;
    private long dropped;

    LimitedOutputStream(OutputStream target, long limit) {
        this.target = target;
        this.limit = limit;
    }

    @Override
    public synchronized void write(int b) throws IOException {
        if (written < limit) {
            target.write(b);
            written++;
        } else {
            dropped++;
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        long room = Math.max(0, limit - written);
        int pass = (int) Math.min(room, len);
        if (pass > 0) {
            target.write(b, off, pass);
            written += pass;
        }
        dropped += len - pass;
    }

    @Override
    public synchronized void flush() throws IOException {
        target.flush();
    }

    synchronized long dropped() {
        return dropped;
    }
}
