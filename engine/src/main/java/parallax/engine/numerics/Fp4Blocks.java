package parallax.engine.numerics;

import java.nio.ByteBuffer;

/**
 * FP4 (E2M1) values in ggml blocks, decoded as ggml decodes them (dequantize_row_mxfp4
 * and dequantize_row_nvfp4 in ggml-quants.c; docs/reference.md#mxfp4-and-nvfp4):
 * <ul>
 * <li>MXFP4, 17 bytes per 32: an E8M0 scale byte e, then 16 bytes of codes (element j in
 *     the low nibble of byte j, element j + 16 in the high one). ggml multiplies twice the
 *     E2M1 value by 2^(e − 128), built from bits, so that e = 0 and 1 give the subnormals
 *     2^−128 and 2^−127 and e = 255 gives 2^127 (not the NaN of OCP MX).</li>
 * <li>NVFP4, 36 bytes per 64: four UE4M3 scale bytes, one per 16 elements, then 32 bytes of
 *     codes, 8 per sub-block in the same nibble order. The scale is halved to match the
 *     doubled values; codes 0x00 and 0x7F give 0, and the top bit is ignored.</li>
 * </ul>
 * The E2M1 values themselves come from {@link E2M1}.
 */
final class Fp4Blocks {

    private Fp4Blocks() {}

    /** Half of 2^(e − 127), as ggml's GGML_E8M0_TO_FP32_HALF builds it. */
    static float e8m0Half(int e) {
        int bits = e < 2 ? 0x00200000 << e : (e - 1) << 23;
        return Float.intBitsToFloat(bits);
    }

    /** Half the UE4M3 value of a scale byte (ggml_ue4m3_to_fp32). */
    static float ue4m3Half(int x) {
        if (x == 0 || x == 0x7f) return 0f;
        int exp = (x >>> 3) & 0xf, man = x & 7;
        float raw = exp == 0 ? Math.scalb((float) man, -9) : Math.scalb(1f + man / 8f, exp - 7);
        return raw * 0.5f;
    }

    static void mxfp4(ByteBuffer b, int at, float[] y, int o) {
        float d = e8m0Half(b.get(at) & 0xff);
        for (int j = 0; j < 16; j++) {
            int q = b.get(at + 1 + j) & 0xff;
            y[o + j] = E2M1.doubled(q & 0xf) * d;
            y[o + j + 16] = E2M1.doubled(q >>> 4) * d;
        }
    }

    static void nvfp4(ByteBuffer b, int at, float[] y, int o) {
        for (int s = 0; s < 4; s++, o += 16) {
            float d = ue4m3Half(b.get(at + s) & 0xff);
            for (int j = 0; j < 8; j++) {
                int q = b.get(at + 4 + 8 * s + j) & 0xff;
                y[o + j] = E2M1.doubled(q & 0xf) * d;
                y[o + j + 8] = E2M1.doubled(q >>> 4) * d;
            }
        }
    }
}
