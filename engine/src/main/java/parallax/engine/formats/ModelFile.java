package parallax.engine.formats;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * An opened model file (or set of shards): metadata and a tensor table, with tensor bytes
 * read on demand through memory maps so the heap stays small whatever the file size.
 */
public interface ModelFile extends Closeable {

    Format format();

    Path path();

    /** Key/value metadata as stored (strings, numbers, booleans, lists). */
    Map<String, Object> metadata();

    List<TensorEntry> tensors();

    /**
     * {@code length} bytes of a tensor from byte {@code from}, little-endian, read-only.
     * The buffer is a memory map: nothing is copied onto the heap.
     */
    ByteBuffer bytes(TensorEntry tensor, long from, int length);

    @Override
    void close();
}
