package parallax.engine.formats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A destination written under a temporary name beside it and renamed into place only by
 * {@link #commit()}; closing without commit deletes the temporary file. A failed or
 * interrupted conversion therefore never leaves a half-written destination.
 */
public final class AtomicFile implements AutoCloseable {

    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private boolean committed;

    public AtomicFile(Path target) {
        this.target = target.toAbsolutePath();
        if (Files.isDirectory(this.target))
            throw new parallax.engine.UserError(target + " is a directory: give a file name to write");
        Path dir = this.target.getParent();
        try {
            if (dir != null) Files.createDirectories(dir);
            // rw-r--r-- like a file written normally (createTempFile alone would give rw-------)
            boolean posix = dir != null && dir.getFileSystem().supportedFileAttributeViews().contains("posix");
            this.temp = posix
                    ? Files.createTempFile(dir, "." + this.target.getFileName() + ".", ".part",
                            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")))
                    : Files.createTempFile(dir, "." + this.target.getFileName() + ".", ".part");
            this.channel = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        } catch (IOException e) {
            throw new parallax.engine.UserError(target + ": cannot write: " + e.getMessage());
        }
    }

    public Path target() { return target; }

    public Path temp() { return temp; }

    public FileChannel channel() { return channel; }

    public long position() {
        try {
            return channel.position();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public void write(ByteBuffer b) {
        try {
            while (b.hasRemaining()) channel.write(b);
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": write failed", e);
        }
    }

    public void write(byte[] b) { write(ByteBuffer.wrap(b)); }

    /** Zero bytes up to the next multiple of {@code alignment}. */
    public void pad(long alignment, byte fill) {
        long pos = position();
        long pad = (alignment - pos % alignment) % alignment;
        if (pad > 0) {
            byte[] z = new byte[(int) pad];
            if (fill != 0) java.util.Arrays.fill(z, fill);
            write(z);
        }
    }

    /** Flushes, closes and renames the temporary file onto the target. */
    public void commit() {
        try {
            channel.force(false);
            channel.close();
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            committed = true;
        } catch (IOException e) {
            close();
            throw new parallax.engine.UserError(target + ": cannot finish writing: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (committed) return;
        try {
            channel.close();
        } catch (IOException ignored) {
            // the file is deleted next
        }
        try {
            Files.deleteIfExists(temp);
        } catch (IOException ignored) {
            // best effort: the name starts with a dot and ends in .part
        }
    }
}
