package parallax.engine.model;

import parallax.engine.torch.Device;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.SplittableRandom;
import org.bytedeco.pytorch.Tensor;

/**
 * Byte-level training data: the bytes of a small public-domain text shipped in the
 * resources (see SOURCES.md next to it), or a synthetic stream with learnable structure.
 * Batch {@code step} is the same for every layout: its rows start at offsets drawn from
 * a generator seeded by (seed, step); a data-parallel rank takes its contiguous slice of
 * the rows and a pipeline splits that slice into micro-batches.
 */
public final class TextData {

    public enum Source { TEXT, SYNTHETIC }

    /** Token ids and next-token targets, {@code rows} x {@code seq}, row-major. */
    public record Batch(long[] tokens, long[] targets, int rows, int seq) {

        /** Rows [part * rows/parts, (part+1) * rows/parts). */
        public Batch slice(int part, int parts) {
            if (rows % parts != 0)
                throw new parallax.engine.UserError("batch of " + rows + " rows does not split into " + parts + " equal parts");
            int r = rows / parts;
            long[] t = new long[r * seq], g = new long[r * seq];
            System.arraycopy(tokens, part * r * seq, t, 0, r * seq);
            System.arraycopy(targets, part * r * seq, g, 0, r * seq);
            return new Batch(t, g, r, seq);
        }

        public Tensor tokensTensor(Device device) { return device.fromLongs(tokens, rows, seq); }

        public Tensor targetsTensor(Device device) { return device.fromLongs(targets, rows, seq); }
    }

    private final byte[] stream;
    private final int seq;
    private final long seed;

    public TextData(Source source, GptConfig cfg, long seed) {
        this.seq = cfg.sequence();
        this.seed = seed;
        this.stream = source == Source.TEXT ? corpus() : synthetic(cfg.vocab(), 1 << 16, seed);
        if (stream.length < seq + 2) throw new IllegalStateException("corpus shorter than one sequence");
    }

    public int length() { return stream.length; }

    /** The global batch of training step {@code step} (0-based), {@code rows} sequences. */
    public Batch batch(int step, int rows) {
        SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + step);
        long[] t = new long[rows * seq], g = new long[rows * seq];
        for (int r = 0; r < rows; r++) {
            int start = rnd.nextInt(stream.length - seq - 1);
            for (int i = 0; i < seq; i++) {
                t[r * seq + i] = stream[start + i] & 0xFF;
                g[r * seq + i] = stream[start + i + 1] & 0xFF;
            }
        }
        return new Batch(t, g, rows, seq);
    }

    static byte[] corpus() {
        try (InputStream in = TextData.class.getResourceAsStream("corpus.txt")) {
            if (in == null) throw new IllegalStateException("corpus.txt missing from resources");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A stream where each token mostly follows from the previous one by a fixed rule
     * (x' = 5x + 3 mod V) and sometimes jumps at random: a model can learn it, so the
     * loss falls, but not to zero.
     */
    static byte[] synthetic(int vocab, int n, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed ^ 0x5DEECE66DL);
        byte[] s = new byte[n];
        int x = 0;
        for (int i = 0; i < n; i++) {
            x = rnd.nextInt(10) == 0 ? rnd.nextInt(vocab) : (5 * x + 3) % vocab;
            s[i] = (byte) x;
        }
        return s;
    }
}
