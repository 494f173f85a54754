package parallax.engine.model;

import parallax.engine.torch.Device;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.SplittableRandom;
import org.bytedeco.pytorch.Tensor;

/**
 * Byte-level training data: the bytes of a small public-domain text shipped in the
 * resources (see SOURCES.md next to it), a user's UTF-8 text file, or a synthetic stream
 * with learnable structure.
 * Batch {@code step} is the same for every layout: its rows start at offsets drawn from
 * a generator seeded by (seed, step); a data-parallel rank takes its contiguous slice of
 * the rows and a pipeline splits that slice into micro-batches.
 */
public final class TextData {

    public enum Source { TEXT, SYNTHETIC, FILE }

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

        /** Each row's tokens at {@code positions} only (a context-parallel rank's part of the sequence); null: all. */
        public Batch columns(long[] positions) {
            if (positions == null) return this;
            long[] t = new long[rows * positions.length], g = new long[rows * positions.length];
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < positions.length; i++) {
                    t[r * positions.length + i] = tokens[r * seq + (int) positions[i]];
                    g[r * positions.length + i] = targets[r * seq + (int) positions[i]];
                }
            return new Batch(t, g, rows, positions.length);
        }

        public Tensor tokensTensor(Device device) { return device.fromLongs(tokens, rows, seq); }

        public Tensor targetsTensor(Device device) { return device.fromLongs(targets, rows, seq); }
    }

    private final byte[] stream;
    private final int seq;
    private final long seed;

    public TextData(Source source, GptConfig cfg, long seed) {
        this(source, cfg, seed, null);
    }

    /** {@code file}: the text for {@link Source#FILE} (null otherwise). */
    public TextData(Source source, GptConfig cfg, long seed, String file) {
        this.seq = cfg.sequence();
        this.seed = seed;
        this.stream = switch (source) {
            case TEXT -> corpus();
            case SYNTHETIC -> synthetic(cfg.vocab(), 1 << 16, seed);
            case FILE -> readText(java.nio.file.Path.of(file), seq, cfg.vocab());
        };
        if (stream.length < seq + 2) throw new IllegalStateException("corpus shorter than one sequence");
    }

    /**
     * The bytes of a UTF-8 text file, checked: a missing or unreadable file, one that is
     * not UTF-8, or one shorter than a sequence and its next token is one line.
     */
    public static byte[] readText(java.nio.file.Path file, int seq, int vocab) {
        byte[] b;
        try {
            if (java.nio.file.Files.isDirectory(file)) throw new parallax.engine.UserError("--data " + file + " is a directory, not a text file");
            b = java.nio.file.Files.readAllBytes(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new parallax.engine.UserError("--data " + file + ": no such file");
        } catch (IOException e) {
            throw new parallax.engine.UserError("--data " + file + ": " + e.getMessage());
        }
        try {
            java.nio.charset.StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(b));
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new parallax.engine.UserError("--data " + file + " is not UTF-8 text");
        }
        if (b.length < seq + 2)
            throw new parallax.engine.UserError("--data " + file + " has " + b.length + " bytes; a training sequence needs " + (seq + 2));
        if (vocab < 256) throw new parallax.engine.UserError("--data FILE needs a byte vocabulary (256), the model has " + vocab);
        return b;
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
