package parallax.engine.numerics;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The codebooks of ggml's i-quants: each grid point is 8 (IQ2, IQ1) or 4 (IQ3) small
 * values, one per byte of a word, and a block stores grid indices instead of values.
 * The grids are format data (ggml-common.h), kept in {@code ggml-iq-grids.txt} beside
 * this class and unpacked once into byte arrays: {@code grid[8 * index + k]} is element k.
 * Also the sign tables: a 7-bit sign pattern plus an eighth sign bit that makes the
 * number of minus signs even (ggml's ksigns_iq2xs, computed here).
 */
final class GgmlGrids {

    static final byte[] IQ2XXS;
    static final byte[] IQ2XS;
    static final byte[] IQ2S;
    static final byte[] IQ3XXS;
    static final byte[] IQ3S;
    static final byte[] IQ1S;
    /** For each 7-bit pattern, the 8 sign bits with even parity. */
    static final int[] SIGNS = new int[128];

    static {
        Map<String, byte[]> t = load();
        IQ2XXS = t.get("iq2xxs_grid");
        IQ2XS = t.get("iq2xs_grid");
        IQ2S = t.get("iq2s_grid");
        IQ3XXS = t.get("iq3xxs_grid");
        IQ3S = t.get("iq3s_grid");
        IQ1S = t.get("iq1s_grid");
        for (int i = 0; i < 128; i++) SIGNS[i] = Integer.bitCount(i) % 2 == 0 ? i : i | 0x80;
    }

    private GgmlGrids() {}

    private static Map<String, byte[]> load() {
        Map<String, byte[]> out = new HashMap<>();
        try (InputStream in = GgmlGrids.class.getResourceAsStream("ggml-iq-grids.txt")) {
            if (in == null) throw new IllegalStateException("ggml-iq-grids.txt is missing from the engine jar");
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
            String name = null;
            byte[] grid = null;
            int bytesPer = 0;
            int at = 0;
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith("#") || line.isBlank()) continue;
                if (line.startsWith("=")) {
                    if (name != null) check(name, grid, at);
                    String[] h = line.substring(1).trim().split(" ");
                    name = h[0];
                    bytesPer = Integer.parseInt(h[2]) / 8;
                    grid = new byte[Integer.parseInt(h[1]) * bytesPer];
                    at = 0;
                    out.put(name, grid);
                    continue;
                }
                for (String word : line.trim().split(" ")) {
                    long v = Long.parseUnsignedLong(word, 16);
                    for (int k = 0; k < bytesPer; k++) grid[at++] = (byte) (v >>> (8 * k));
                }
            }
            check(name, grid, at);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    private static void check(String name, byte[] grid, int filled) {
        if (filled != grid.length) throw new IllegalStateException("ggml-iq-grids.txt: " + name + " has " + filled + " of " + grid.length + " bytes");
    }
}
