package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * The streaming half every writer shares: after the header, tensors arrive in declared
 * order through {@link #beginTensor()} and {@link #write(ByteBuffer)}; the byte counts are
 * checked against the header, and only {@link #commit()} makes the destination appear.
 */
public abstract class TensorWriter implements AutoCloseable {

    protected final AtomicFile file;
    private final List<TensorSpec> tensors;
    private final long alignment;
    private int index = -1;
    private long written;

    protected TensorWriter(AtomicFile file, List<TensorSpec> tensors, long alignment) {
        this.file = file;
        this.tensors = List.copyOf(tensors);
        this.alignment = alignment;
    }

    public List<TensorSpec> tensors() { return tensors; }

    /** Starts the next tensor in declared order and returns its spec. */
    public TensorSpec beginTensor() {
        finishCurrent();
        index++;
        if (index >= tensors.size()) throw new IllegalStateException("more tensors than declared");
        if (alignment > 1) file.pad(alignment, (byte) 0);
        written = 0;
        return tensors.get(index);
    }

    public void write(ByteBuffer bytes) {
        if (index < 0) throw new IllegalStateException("beginTensor first");
        long need = tensors.get(index).bytes();
        if (written + bytes.remaining() > need) {
            throw new IllegalStateException(tensors.get(index).name() + ": more bytes than " + need);
        }
        written += bytes.remaining();
        writeData(bytes);
    }

    /** Where the data goes (the destination file unless a subclass stores it elsewhere). */
    protected void writeData(ByteBuffer bytes) {
        file.write(bytes);
    }

    private void finishCurrent() {
        if (index >= 0 && written != tensors.get(index).bytes()) {
            throw new IllegalStateException(tensors.get(index).name() + ": wrote " + written + " of "
                    + tensors.get(index).bytes() + " bytes");
        }
    }

    /** Checks every tensor was written in full, then renames the file into place. */
    public void commit() {
        finishCurrent();
        if (index != tensors.size() - 1) {
            throw new IllegalStateException("wrote " + (index + 1) + " of " + tensors.size() + " tensors");
        }
        finish();
        file.commit();
    }

    /** Trailing bytes or side files, written before the rename. */
    protected void finish() {}

    @Override
    public void close() {
        file.close();
    }
}
