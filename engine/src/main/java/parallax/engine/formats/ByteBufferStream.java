package parallax.engine.formats;

import java.io.InputStream;
import java.nio.ByteBuffer;

/** An InputStream over a (memory-mapped) buffer, so parsers stream instead of copying. */
final class ByteBufferStream extends InputStream {

    private final ByteBuffer buf;

    ByteBufferStream(ByteBuffer buf) { this.buf = buf.duplicate(); }

    @Override
    public int read() {
        return buf.hasRemaining() ? buf.get() & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) {
        if (!buf.hasRemaining()) return -1;
        int n = Math.min(len, buf.remaining());
        buf.get(b, off, n);
        return n;
    }

    @Override
    public int available() { return buf.remaining(); }
}
