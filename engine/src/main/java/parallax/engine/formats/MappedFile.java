package parallax.engine.formats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A file opened for reading through memory maps of bounded windows. Every read checks its
 * range against the file size first, so a lying header becomes a {@link FormatError}
 * rather than an exception deep inside NIO.
 */
final class MappedFile implements AutoCloseable {

    private final Path path;
    private final FileChannel channel;
    private final long size;

    MappedFile(Path path) {
        this.path = path;
        try {
            this.channel = FileChannel.open(path, StandardOpenOption.READ);
            this.size = channel.size();
        } catch (NoSuchFileException e) {
            throw new parallax.engine.UserError(path + ": no such file");
        } catch (IOException e) {
            throw new parallax.engine.UserError(path + ": cannot open: " + e.getMessage());
        }
    }

    Path path() { return path; }

    long size() { return size; }

    /** Maps {@code path} and reads it with {@code reader}; the map is closed if reading fails. */
    static <T> T read(Path path, java.util.function.Function<MappedFile, T> reader) {
        MappedFile f = new MappedFile(path);
        try {
            return reader.apply(f);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /** Bytes [from, from + length) of a tensor stored in this file, checked against the tensor's extent. */
    ByteBuffer tensorBytes(TensorEntry t, long from, int length) {
        if (from < 0 || from + length > t.length()) throw new IndexOutOfBoundsException(t.name() + " [" + from + "+" + length + ")");
        return map(t.offset() + from, length);
    }

    /** A little-endian read-only map of [offset, offset + length). */
    ByteBuffer map(long offset, long length) {
        if (offset < 0 || length < 0 || length > Integer.MAX_VALUE || offset > size - length) {
            throw new FormatError(path, "truncated: needs bytes " + offset + ".." + (offset + length)
                    + " but the file has " + size);
        }
        if (length == 0) return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, offset, length).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Copies up to {@code length} bytes at {@code offset} onto the heap (for small headers). */
    byte[] read(long offset, int length) {
        ByteBuffer b = map(offset, length);
        byte[] out = new byte[length];
        b.get(out);
        return out;
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a read-only channel cannot lose data
        }
    }
}
