package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The K-quant writers produce the same bytes as ggml's reference quantizers
 * (ggml-kquant-expected.txt, made by ggml's C code on the same values), so the error per
 * tensor is the reference's, not merely close to it; plus properties that hold whatever
 * the reference does.
 */
class KQuantizerTest {

    static float u(GgmlBlocksTest.SplitMix r) {
        return (float) (int) (r.next() >>> 32) * 0x1p-31f;
    }

    /** The values the C program quantized (see the resource's header). */
    static float[] values(long seed, int nb) {
        GgmlBlocksTest.SplitMix r = new GgmlBlocksTest.SplitMix(seed);
        float[] x = new float[256 * nb];
        for (int b = 0; b < nb; b++) {
            int kind = b % 9;
            for (int i = 0; i < 256; i++) {
                float v;
                switch (kind) {
                    case 0: v = u(r) * 0.02f; break;
                    case 1: v = (u(r) + u(r) + u(r) + u(r)) * 0.05f; break;
                    case 2: v = 0; break;
                    case 3: v = 0.5f; break;
                    case 4: v = u(r) * 1e-30f; break;
                    case 5: v = u(r) * 1e4f; if (i == 77) v = 6e4f; break;
                    case 6: v = (u(r) + 1.0f) * 0.3f; break;
                    case 7: v = u(r) * 0.01f; if (i % 61 == 5) v = (i & 1) != 0 ? 1.0f : -1.0f; break;
                    default: v = i == 200 ? -3.0f : 0.0f; break;
                }
                x[256 * b + i] = v;
            }
        }
        return x;
    }

    static List<String[]> expected() throws IOException {
        try (InputStream in = KQuantizerTest.class.getResourceAsStream("ggml-kquant-expected.txt")) {
            List<String[]> out = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.US_ASCII).split("\n")) {
                if (!line.startsWith("#") && !line.isBlank()) out.add(line.trim().split(" "));
            }
            return out;
        }
    }

    static long fnv(ByteBuffer b, int n) {
        long h = 0xcbf29ce484222325L;
        for (int i = 0; i < n; i++) {
            h ^= b.get(i) & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    @Test
    void q4KQ5KQ6KAndTheirFallbacksQ5_0Q5_1EqualGgmlsReferenceQuantizer() throws IOException {
        List<String[]> rows = expected();
        assertEquals(5, rows.size());
        List<String> wrong = new ArrayList<>();
        for (int row = 0; row < rows.size(); row++) {
            String[] r = rows.get(row);
            DType t = DType.valueOf(r[0]);
            int nb = Integer.parseInt(r[1]);
            float[] x = values(0xC0FFEE00L + row, nb);
            ByteBuffer out = ByteBuffer.allocate((int) t.bytesFor(x.length)).order(ByteOrder.LITTLE_ENDIAN);
            float[] decoded = new float[x.length];
            new FloatCodec().encodeBlocks(t, x, x.length, out, decoded);
            assertEquals(out.capacity(), out.position(), t + " bytes written");
            if (Long.parseUnsignedLong(r[2], 16) != fnv(out, out.capacity())) wrong.add(t.name());
            double s2 = 0;
            long c = 0;
            for (int b = 0; b < nb; b++) {
                int k = b % 9;
                if (k != 0 && k != 1 && k != 7) continue;
                for (int i = 0; i < 256; i++) {
                    double d = (double) x[256 * b + i] - decoded[256 * b + i];
                    s2 += d * d;
                    c++;
                }
            }
            assertEquals(Double.parseDouble(r[3]), Math.sqrt(s2 / c), 1e-12, t + ": RMSE equals the reference's");
        }
        assertTrue(wrong.isEmpty(), "bytes differ from ggml's reference quantizer: " + wrong);
    }

    @Test
    void decodedValuesAreWhatAReaderDecodesAndErrorsShrinkWithBits() {
        float[] x = values(99, 90);
        double prev = Double.MAX_VALUE;
        for (DType t : List.of(DType.Q4_K, DType.Q5_K, DType.Q6_K)) {
            ByteBuffer out = ByteBuffer.allocate(90 * t.blockBytes()).order(ByteOrder.LITTLE_ENDIAN);
            float[] decoded = new float[x.length];
            new KQuantizer().quantize(t, x, x.length, out, decoded);
            float[] read = new float[x.length];
            GgmlQuants.dequantize(t, out.flip(), read, x.length);
            assertArrayEquals(read, decoded, 0f, t + ": the decoded copy is what a reader gets");
            double s2 = 0;
            for (int b = 0; b < 90; b++) {
                if (b % 9 != 1) continue; // the Gaussian-like kind
                for (int i = 0; i < 256; i++) s2 += Math.pow(x[256 * b + i] - decoded[256 * b + i], 2);
            }
            double rmse = Math.sqrt(s2 / (10 * 256));
            assertTrue(rmse < prev * 0.7, t + " RMSE " + rmse + " is not well below the previous type's " + prev);
            prev = rmse;
            // zeros stay zeros, a constant block is close to its value
            for (int i = 2 * 256; i < 3 * 256; i++) assertEquals(0f, decoded[i], 0f, t + " zero block");
            for (int i = 3 * 256; i < 4 * 256; i++) assertEquals(0.5f, decoded[i], 0.5f * 0.01f, t + " constant block");
        }
    }

    @Test
    void nearestIntRoundsHalvesToEvenLikeGgml() {
        assertEquals(2, KQuantizer.nearestInt(2.5f));
        assertEquals(4, KQuantizer.nearestInt(3.5f));
        assertEquals(-2, KQuantizer.nearestInt(-2.5f));
        assertEquals(0, KQuantizer.nearestInt(0.49999997f));
        assertEquals(-7, KQuantizer.nearestInt(-6.6f));
    }

    /**
     * The vectorized search equals the plain transcription (which equals ggml on the fixture)
     * byte for byte on random super-blocks: Gaussian-like values at scales from 1e-6 to 1e3,
     * blocks with a few large outliers, all-positive and all-negative blocks, subnormal blocks
     * (whose inverse scales overflow) among normal ones, and a count of super-blocks that
     * leaves the last group partly filled.
     */
    @Test
    void theVectorizedSearchEqualsThePlainTranscriptionOnRandomBlocks() {
        int nb = 16 * 40 + 7;
        float[] x = new float[256 * nb];
        GgmlBlocksTest.SplitMix r = new GgmlBlocksTest.SplitMix(20261206L);
        for (int b = 0; b < nb; b++) {
            float scale = (float) Math.pow(10, -6 + (b % 10));
            int kind = (b / 10) % 5;
            for (int i = 0; i < 256; i++) {
                float v = (u(r) + u(r) + u(r)) * scale;
                if (kind == 1 && i % 37 == 3) v *= 40;
                if (kind == 2) v = Math.abs(v) + scale;
                if (kind == 3) v = -Math.abs(v) - 0.5f * scale;
                if (kind == 4 && b % 3 == 0) v *= 1e-35f; // subnormal: inverse scales overflow, the exact fallback path
                x[256 * b + i] = v;
            }
        }
        for (DType t : List.of(DType.Q4_K, DType.Q5_K, DType.Q6_K)) {
            ByteBuffer a = ByteBuffer.allocate((int) t.bytesFor(x.length)).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer b = ByteBuffer.allocate((int) t.bytesFor(x.length)).order(ByteOrder.LITTLE_ENDIAN);
            float[] da = new float[x.length], db = new float[x.length];
            new KQuantizer().quantize(t, x, x.length, a, da);
            new KQuantizerScalar().quantize(t, x, x.length, b, db);
            for (int i = 0; i < a.capacity(); i++) {
                if (a.get(i) != b.get(i)) {
                    throw new AssertionError(t + ": byte " + i + " (super-block " + i / t.blockBytes() + ") differs from the plain transcription");
                }
            }
            assertArrayEquals(db, da, 0f, t + ": the decoded copy");
        }
    }

    @Test
    void thePlainTranscriptionEqualsGgmlToo() throws IOException {
        List<String[]> rows = expected();
        for (int row = 0; row < rows.size(); row++) {
            DType t = DType.valueOf(rows.get(row)[0]);
            if (!KQuantizerScalar.writes(t)) continue;
            float[] x = values(0xC0FFEE00L + row, Integer.parseInt(rows.get(row)[1]));
            ByteBuffer out = ByteBuffer.allocate((int) t.bytesFor(x.length)).order(ByteOrder.LITTLE_ENDIAN);
            new KQuantizerScalar().quantize(t, x, x.length, out, null);
            assertEquals(Long.parseUnsignedLong(rows.get(row)[2], 16), fnv(out, out.capacity()), t + ": the oracle is ggml's reference");
        }
    }
}
