package parallax.engine.numerics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import parallax.engine.formats.PythonPeer;
import parallax.engine.formats.TestData;

/**
 * Q8_0 / Q4_0 against their definitions (docs/reference.md#ggml-block-types, ggml-quants.c reference code):
 * block bytes, and the error of each element against the block's quantization step.
 * The step is d = max|x|/127 (Q8_0) or |m|/8 (Q4_0), stored as fp16; rounding x/d to an
 * integer costs at most d/2, and the fp16 rounding of d adds |q| |d - fp16(d)|, at most
 * 127 * 2^-11 d (Q8_0) or 8 * 2^-11 d (Q4_0). Q4_0 clamps q to 15, so values within half
 * a step of +8d (the side opposite the extreme) can be off by up to one step.
 */
class GgmlQuantsTest {

    static ByteBuffer buf(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void q8_0BlockLayoutAndHalfStepError() {
        int n = 32 * 500;
        float[] x = TestData.gaussian(n, 1, 11);
        for (int b = 0; b < 500; b++) for (int j = 0; j < 32; j++) x[b * 32 + j] *= (float) Math.pow(10, (b % 9) - 4); // scales 1e-4..1e4
        x[40] = 0; // a block may hold zeros; an all-zero block:
        for (int j = 64; j < 96; j++) x[j] = 0;
        ByteBuffer q = buf(n / 32 * 34);
        GgmlQuants.quantizeQ8_0(x, n, q);
        assertEquals(n / 32 * 34, q.position(), "34 bytes per block: fp16 d + 32 int8");
        q.flip();
        float[] y = new float[n];
        GgmlQuants.dequantize(DType.Q8_0, q.duplicate().order(ByteOrder.LITTLE_ENDIAN), y, n);
        int withinHalfStep = 0;
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            float d = amax / 127f;
            float d16 = MiniFloats.halfToFloat(q.getShort(b * 34));
            assertEquals(MiniFloats.floatToHalf(d), q.getShort(b * 34), "block " + b + " scale is fp16(max|x|/127)");
            for (int j = 0; j < 32; j++) {
                int i = b * 32 + j;
                int qi = q.get(b * 34 + 2 + j);
                assertTrue(Math.abs(qi) <= 127);
                double err = Math.abs(x[i] - y[i]);
                double bound = 0.5 * d + Math.abs(qi) * Math.abs(d - d16) + 1e-6 * amax;
                assertTrue(err <= bound, "block " + b + " elem " + j + ": err " + err + " > " + bound);
                assertEquals(qi * d16, y[i], 0f, "dequantized = q * fp16 d");
                if (err <= 0.5 * d16 * (1 + 1e-6)) withinHalfStep++;
            }
        }
        // Blocks at 1e-4 have scales in fp16's subnormal range, where fp16(d) is coarse: there the
        // second term of the bound matters. Elsewhere nearly every element is within d16/2.
        assertTrue(withinHalfStep > 0.9 * n, "most elements within half a stored step: " + withinHalfStep + "/" + n);
    }

    @Test
    void q8_0ExactScaleMeansHalfStepExactly() {
        // max |x| = 127 * 2^-6: d = 2^-6 is exact in fp16, so the error bound is d/2 exactly
        float[] x = TestData.gaussian(32, 0.5, 3);
        x[5] = 127f / 64f;
        for (int j = 0; j < 32; j++) x[j] = Math.max(-127f / 64f, Math.min(127f / 64f, x[j]));
        ByteBuffer q = buf(34);
        GgmlQuants.quantizeQ8_0(x, 32, q);
        q.flip();
        float[] y = new float[32];
        GgmlQuants.dequantize(DType.Q8_0, q, y, 32);
        for (int j = 0; j < 32; j++) assertTrue(Math.abs(x[j] - y[j]) <= 0.5f / 64f, "elem " + j);
        assertEquals(127f / 64f, y[5]);
    }

    @Test
    void q4_0BlockLayoutNibbleOrderAndErrors() {
        int n = 32 * 400;
        float[] x = TestData.gaussian(n, 0.3, 12);
        ByteBuffer q = buf(n / 32 * 18);
        GgmlQuants.quantizeQ4_0(x, n, q);
        assertEquals(n / 32 * 18, q.position(), "18 bytes per block: fp16 d + 16 bytes of nibbles");
        q.flip();
        float[] y = new float[n];
        GgmlQuants.dequantize(DType.Q4_0, q.duplicate().order(ByteOrder.LITTLE_ENDIAN), y, n);
        int clamped = 0;
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            float m = 0;
            for (int j = 0; j < 32; j++) {
                float v = x[b * 32 + j];
                if (Math.abs(v) > amax) {
                    amax = Math.abs(v);
                    m = v;
                }
            }
            float d = m / -8f;
            float d16 = MiniFloats.halfToFloat(q.getShort(b * 18));
            for (int j = 0; j < 32; j++) {
                int i = b * 32 + j;
                int byteAt = b * 18 + 2 + (j % 16);
                int nib = j < 16 ? q.get(byteAt) & 0x0f : (q.get(byteAt) >> 4) & 0x0f;
                assertEquals((nib - 8) * d16, y[i], 0f, "element j sits in nibble j (low) or j-16 (high)");
                double err = Math.abs(x[i] - y[i]);
                boolean clamp = x[i] / d + 8.5f >= 16f;
                double bound = (clamp ? Math.abs(d) : 0.5 * Math.abs(d)) + 8 * Math.abs(d - d16) + 1e-6 * amax;
                if (clamp) clamped++;
                assertTrue(err <= bound, "block " + b + " elem " + j + ": err " + err + " > " + bound + (clamp ? " (clamped)" : ""));
            }
            // the extreme value itself is exact up to the fp16 rounding of d: q = 0 -> -8 d = m
            int jm = 0;
            for (int j = 0; j < 32; j++) if (x[b * 32 + j] == m) jm = j;
            assertEquals(m, y[b * 32 + jm], 8 * Math.abs(d - d16) + 1e-7);
        }
        assertTrue(clamped < n / 32, "clamping is rare: " + clamped);
    }

    @Test
    void decodesQ4_1Q5_0Q5_1FromHandMadeBlocks() {
        short one = MiniFloats.floatToHalf(1f);
        short half = MiniFloats.floatToHalf(0.5f);
        short minus3 = MiniFloats.floatToHalf(-3f);
        // Q4_1: d, m, nibbles; x = q d + m
        ByteBuffer b = buf(20);
        b.putShort(half).putShort(minus3);
        for (int j = 0; j < 16; j++) b.put((byte) (j | ((15 - j) << 4)));
        b.flip();
        float[] y = new float[32];
        GgmlQuants.dequantize(DType.Q4_1, b, y, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals(j * 0.5f - 3f, y[j]);
            assertEquals((15 - j) * 0.5f - 3f, y[j + 16]);
        }
        // Q5_0: d, qh (bit j = 5th bit of element j), nibbles; x = (q - 16) d
        b = buf(22);
        b.putShort(one).putInt(0xAAAA5555);
        for (int j = 0; j < 16; j++) b.put((byte) (j | (j << 4)));
        b.flip();
        GgmlQuants.dequantize(DType.Q5_0, b, y, 32);
        for (int j = 0; j < 32; j++) {
            int hi = (0xAAAA5555 >>> j) & 1;
            int q = (j % 16) | (hi << 4);
            assertEquals(q - 16, y[j], "Q5_0 element " + j);
        }
        // Q5_1: d, m, qh, nibbles; x = q d + m
        b = buf(24);
        b.putShort(half).putShort(one).putInt(0xF0F0F0F0);
        for (int j = 0; j < 16; j++) b.put((byte) ((15 - j) | (j << 4)));
        b.flip();
        GgmlQuants.dequantize(DType.Q5_1, b, y, 32);
        for (int j = 0; j < 32; j++) {
            int hi = (0xF0F0F0F0 >>> j) & 1;
            int lo = j < 16 ? 15 - j : j - 16;
            assertEquals(((hi << 4) | lo) * 0.5f + 1f, y[j], "Q5_1 element " + j);
        }
    }

    /**
     * The same blocks quantized by a NumPy transcription of ggml's reference C code
     * (float32 arithmetic, fp16 scale via numpy's round-to-nearest-even float16, C's roundf
     * and (int8_t) truncation) must match our bytes exactly.
     */
    @Test
    void bitExactAgainstANumpyTranscriptionOfGgml() throws Exception {
        parallax.engine.Peers.python("numpy", "python3-numpy");
        int n = 32 * 2000;
        float[] x = TestData.gaussian(n, 1, 21);
        for (int b = 0; b < n / 32; b++) for (int j = 0; j < 32; j++) x[b * 32 + j] *= (float) Math.pow(2, (b % 40) - 20);
        for (int j = 0; j < 32; j++) x[j] = j - 16 + 0.5f;          // with max 127, d = 1: exact halves, roundf ties
        x[0] = 127f;
        for (int j = 32; j < 64; j++) x[j] = 0f;                    // a zero block
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("q");
        java.nio.file.Path in = dir.resolve("x.f32");
        java.nio.file.Files.write(in, TestData.floats(x));
        ByteBuffer q8 = buf(n / 32 * 34);
        GgmlQuants.quantizeQ8_0(x, n, q8);
        ByteBuffer q4 = buf(n / 32 * 18);
        GgmlQuants.quantizeQ4_0(x, n, q4);
        PythonPeer.Result r = PythonPeer.run(String.join("\n",
                "import numpy as np, sys",
                "x = np.fromfile(sys.argv[1], dtype='<f4').reshape(-1, 32)",
                "def roundf(v):",
                "    v = v.astype(np.float64)",
                "    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)",
                "q8 = bytearray(); q4 = bytearray()",
                "for b in x:",
                "    amax = np.float32(np.max(np.abs(b)))",
                "    d = np.float32(amax / np.float32(127))",
                "    idd = np.float32(1) / d if d != 0 else np.float32(0)",
                "    q8 += np.float16(d).tobytes() + roundf((b * idd).astype(np.float32)).astype(np.int8).tobytes()",
                "    i = int(np.argmax(np.abs(b)))",
                "    mx = b[i]",
                "    d = np.float32(mx / np.float32(-8))",
                "    idd = np.float32(1) / d if d != 0 else np.float32(0)",
                "    v = (b * idd + np.float32(8.5)).astype(np.float32)",
                "    qi = np.minimum(15, np.trunc(v).astype(np.int64).astype(np.int8).astype(np.int64))",
                "    q4 += np.float16(d).tobytes() + (qi[:16] | (qi[16:] << 4)).astype(np.uint8).tobytes()",
                "open(sys.argv[2], 'wb').write(q8); open(sys.argv[3], 'wb').write(q4)"),
                in.toString(), dir.resolve("q8").toString(), dir.resolve("q4").toString());
        assertEquals(0, r.exit(), r.output());
        byte[] p8 = java.nio.file.Files.readAllBytes(dir.resolve("q8"));
        byte[] p4 = java.nio.file.Files.readAllBytes(dir.resolve("q4"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(p8, q8.array(), "Q8_0 bytes equal the NumPy transcription");
        org.junit.jupiter.api.Assertions.assertArrayEquals(p4, q4.array(), "Q4_0 bytes equal the NumPy transcription");
    }

    @Test
    void roundfIsHalfAwayFromZero() {
        assertEquals(3, GgmlQuants.roundf(2.5f));
        assertEquals(-3, GgmlQuants.roundf(-2.5f));
        assertEquals(0, GgmlQuants.roundf(0.49999997f));
        assertEquals(-1, GgmlQuants.roundf(-0.5f));
    }
}
