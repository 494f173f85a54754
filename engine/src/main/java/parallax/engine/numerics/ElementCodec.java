package parallax.engine.numerics;

import java.nio.ByteBuffer;

/**
 * Bulk conversion between stored element types and float32, the seam where the precision
 * package's codecs plug in. Buffers are little-endian; {@code n} counts elements.
 */
public interface ElementCodec {

    /** Reads {@code n} elements of {@code type} from {@code src} into {@code dst[0..n)}. */
    void decode(DType type, ByteBuffer src, float[] dst, int n);

    /** Writes {@code n} floats as {@code type} into {@code dst}. */
    void encode(DType type, float[] src, int n, ByteBuffer dst);

    /** Whether this codec can write {@code type}. */
    boolean canEncode(DType type);
}
