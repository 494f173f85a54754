package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
 * Every ggml block type decodes bit-identically to ggml's own dequantize_row_* : the
 * expected outputs in ggml-dequant-expected.txt were produced by ggml's C code on the same
 * pseudo-random blocks this test makes (edge-case fp16 scales in the first 60 blocks,
 * random bytes everywhere else, so every grid index and sign pattern of the i-quants is
 * exercised). Plus decodings worked out by hand from the block layouts.
 */
class GgmlBlocksTest {

    /** splitmix64, as the C program that made the expected values used it. */
    static final class SplitMix {
        long s;

        SplitMix(long seed) { s = seed; }

        long next() {
            long z = (s += 0x9E3779B97F4A7C15L);
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }
    }

    static final int[] EDGE = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xfbff, 0x3555, 0x2e66, 0xa8f5, 0x1234};

    /** Byte offsets of the fp16 fields set to edge values: -1 none, -2 Q8_K's float32 d, -3 IQ1_M's split scale. */
    record Layout(DType type, int h1, int h2) {}

    static final List<Layout> LAYOUTS = List.of(
            new Layout(DType.Q4_0, 0, -1), new Layout(DType.Q4_1, 0, 2), new Layout(DType.Q5_0, 0, -1),
            new Layout(DType.Q5_1, 0, 2), new Layout(DType.Q8_0, 0, -1), new Layout(DType.Q2_K, 80, 82),
            new Layout(DType.Q3_K, 108, -1), new Layout(DType.Q4_K, 0, 2), new Layout(DType.Q5_K, 0, 2),
            new Layout(DType.Q6_K, 208, -1), new Layout(DType.Q8_K, -2, -1), new Layout(DType.IQ2_XXS, 0, -1),
            new Layout(DType.IQ2_XS, 0, -1), new Layout(DType.IQ2_S, 0, -1), new Layout(DType.IQ3_XXS, 0, -1),
            new Layout(DType.IQ3_S, 0, -1), new Layout(DType.IQ1_S, 0, -1), new Layout(DType.IQ1_M, -3, -1),
            new Layout(DType.IQ4_NL, 0, -1), new Layout(DType.IQ4_XS, 0, -1), new Layout(DType.TQ1_0, 52, -1),
            new Layout(DType.TQ2_0, 64, -1), new Layout(DType.Q1_0, 0, -1), new Layout(DType.Q2_0, 0, -1),
            new Layout(DType.MXFP4, -1, -1), new Layout(DType.NVFP4, -1, -1));

    static ByteBuffer randomBlocks(int row, int nb) {
        Layout l = LAYOUTS.get(row);
        int bytes = l.type().blockBytes();
        SplitMix r = new SplitMix(0x5EED0000L + row);
        ByteBuffer b = ByteBuffer.allocate(nb * bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < nb * bytes; i++) b.put(i, (byte) r.next());
        for (int i = 0; i < nb; i++) {
            int at = i * bytes;
            int e = i < 60 ? EDGE[i % EDGE.length] : (int) (r.next() & 0x7bff);
            if (i >= 60 && (i & 1) != 0) e |= 0x8000;
            if (l.h1() >= 0) b.putShort(at + l.h1(), (short) e);
            if (l.h2() >= 0) b.putShort(at + l.h2(), (short) EDGE[(i + 5) % EDGE.length]);
            if (l.h1() == -2) {
                float f = i < 60 ? MiniFloats.halfToFloat((short) e) : (float) (Long.remainderUnsigned(r.next(), 2000001) - 1000000) * 1e-6f;
                b.putFloat(at, f);
            }
            if (l.h1() == -3) {
                for (int k = 0; k < 4; k++) {
                    int sc = b.getShort(at + 48 + 2 * k) & 0xffff;
                    b.putShort(at + 48 + 2 * k, (short) ((sc & 0x0fff) | ((e >>> (4 * k)) & 0xf) << 12));
                }
            }
        }
        return b;
    }

    static long fnv(float[] y) {
        long h = 0xcbf29ce484222325L;
        for (float v : y) {
            int bits = Float.floatToRawIntBits(v);
            for (int k = 0; k < 4; k++) {
                h ^= (bits >>> (8 * k)) & 0xff;
                h *= 0x100000001b3L;
            }
        }
        return h;
    }

    static List<String[]> expected() throws IOException {
        try (InputStream in = GgmlBlocksTest.class.getResourceAsStream("ggml-dequant-expected.txt")) {
            List<String[]> out = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.US_ASCII).split("\n")) {
                if (!line.startsWith("#") && !line.isBlank()) out.add(line.trim().split(" "));
            }
            return out;
        }
    }

    @Test
    void everyBlockTypeDecodesBitIdenticallyToGgml() throws IOException {
        List<String[]> rows = expected();
        assertEquals(LAYOUTS.size(), rows.size(), "one expected line per type");
        List<String> wrong = new ArrayList<>();
        for (int row = 0; row < rows.size(); row++) {
            String[] r = rows.get(row);
            DType t = DType.valueOf(r[0]);
            assertEquals(LAYOUTS.get(row).type(), t);
            int nb = Integer.parseInt(r[1]);
            float[] y = new float[nb * t.blockElements()];
            ByteBuffer b = randomBlocks(row, nb);
            GgmlQuants.dequantize(t, b, y, y.length);
            assertEquals(b.capacity(), b.position(), t + ": the position moves past every block");
            int probe = Float.floatToRawIntBits(y[7 * t.blockElements() + 3]);
            if (Long.parseUnsignedLong(r[2], 16) != fnv(y) || (int) Long.parseLong(r[3], 16) != probe) {
                wrong.add(t + " (element " + (7 * t.blockElements() + 3) + ": " + Integer.toHexString(probe) + ", ggml " + r[3] + ")");
            }
        }
        assertTrue(wrong.isEmpty(), "decoded differently from ggml: " + wrong);
    }

    @Test
    void everyGgufBlockTypeIsDecodable() {
        for (DType t : DType.values()) {
            if (!t.isBlock()) continue;
            assertTrue(LAYOUTS.stream().anyMatch(l -> l.type() == t) || t == DType.Q8_1, t + " has no bit-exactness case");
            float[] y = new float[t.blockElements()];
            GgmlQuants.dequantize(t, ByteBuffer.allocate(t.blockBytes()).order(ByteOrder.LITTLE_ENDIAN), y, y.length);
            for (float v : y) assertEquals(0f, Math.abs(v), t + ": an all-zero block decodes to zeros");
        }
    }

    @Test
    void aTruncatedSuperBlockIsRefusedNotReadPastItsEnd() {
        ByteBuffer b = ByteBuffer.allocate(DType.Q4_K.blockBytes() - 1).order(ByteOrder.LITTLE_ENDIAN);
        assertThrows(java.nio.BufferUnderflowException.class, () -> GgmlQuants.dequantize(DType.Q4_K, b, new float[256], 256));
        assertThrows(IllegalArgumentException.class, () -> GgmlQuants.dequantize(DType.Q4_K, b, new float[300], 300));
    }

    /** Q4_K by hand: d = 1, dmin = 0.5, sub-block 0 scale 3 min 2, sub-block 5 scale 0x25 min 0x31 (split over the 12 bytes). */
    @Test
    void q4KScaleAndMinPackingByHand() {
        ByteBuffer b = ByteBuffer.allocate(144).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(0, MiniFloats.floatToHalf(1f));
        b.putShort(2, MiniFloats.floatToHalf(0.5f));
        b.put(4, (byte) 3);          // scale 0 (6 bits)
        b.put(8, (byte) 2);          // min 0
        // sub-block 5: scale = (byte 9 low nibble) | (byte 1 top 2 bits) << 4; min = (byte 9 high nibble) | (byte 5 top 2 bits) << 4
        b.put(13, (byte) (0x5 | 0x1 << 4));
        b.put(5, (byte) (2 << 6));
        b.put(9, (byte) (3 << 6));
        for (int l = 0; l < 32; l++) b.put(16 + l, (byte) (l % 16 | 7 << 4)); // sub-block 0 low nibbles, sub-block 1 = 7
        for (int l = 0; l < 32; l++) b.put(16 + 64 + l, (byte) (9 << 4));    // sub-block 5 = high nibbles of bytes 64..95
        float[] y = new float[256];
        GgmlQuants.dequantize(DType.Q4_K, b, y, 256);
        for (int l = 0; l < 32; l++) assertEquals(3f * (l % 16) - 0.5f * 2, y[l], "sub-block 0 element " + l);
        assertEquals(0x25 * 9 - 0.5f * 0x31, y[5 * 32], "sub-block 5: scale 0x25, min 0x31");
    }

    @Test
    void mxfp4UsesTheSharedE2M1TableAndGgmlsE8M0() {
        ByteBuffer b = ByteBuffer.allocate(17).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) 127);                       // 2^0
        for (int j = 0; j < 16; j++) b.put(1 + j, (byte) (j | (15 - j) << 4));
        float[] y = new float[32];
        GgmlQuants.dequantize(DType.MXFP4, b, y, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals(E2M1.value(j), y[j], 0f, "code " + j);
            assertEquals(E2M1.value(15 - j), y[j + 16], 0f);
        }
        assertEquals(6f, E2M1.MAX);
        // half of 2^(e - 127), built from bits: subnormal for e = 0 and 1, 2^127 for e = 255
        assertEquals(Math.scalb(1f, -128), Fp4Blocks.e8m0Half(0), 0f);
        assertEquals(Math.scalb(1f, -127), Fp4Blocks.e8m0Half(1), 0f);
        assertEquals(0.5f, Fp4Blocks.e8m0Half(127), 0f);
        assertEquals(Math.scalb(1f, 127), Fp4Blocks.e8m0Half(255), 0f);
    }
}
