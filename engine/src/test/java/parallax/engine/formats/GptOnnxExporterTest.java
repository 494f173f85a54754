package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.numerics.DType;

/**
 * The exported GPT runs in ONNX Runtime and matches a reference forward written with
 * libtorch ops on the same weights; Debian's python3-onnx checker accepts the file.
 */
class GptOnnxExporterTest {

    static final GptOnnxExporter.GptSpec SPEC = new GptOnnxExporter.GptSpec(2, 32, 4, 50, 16);

    @TempDir
    Path dir;

    @BeforeAll
    static void oneThread() {
        torch.set_num_threads(1);
    }

    /** nanoGPT-style weights: N(0, 0.02) matrices, LayerNorm gains near 1, small biases. */
    static Map<String, GptOnnxExporter.Weight> weights(GptOnnxExporter.GptSpec s, long seed, boolean tied) {
        Random r = new Random(seed);
        Map<String, GptOnnxExporter.Weight> w = new LinkedHashMap<>();
        int h = s.hidden();
        put(w, r, "transformer.wte.weight", 0.02, 0, s.vocab(), h);
        put(w, r, "transformer.wpe.weight", 0.02, 0, s.sequence(), h);
        for (int l = 0; l < s.layers(); l++) {
            String p = "transformer.h." + l;
            put(w, r, p + ".ln_1.weight", 0.1, 1, h);
            put(w, r, p + ".ln_1.bias", 0.1, 0, h);
            put(w, r, p + ".attn.c_attn.weight", 0.02, 0, 3 * h, h);
            put(w, r, p + ".attn.c_attn.bias", 0.02, 0, 3 * h);
            put(w, r, p + ".attn.c_proj.weight", 0.02, 0, h, h);
            put(w, r, p + ".attn.c_proj.bias", 0.02, 0, h);
            put(w, r, p + ".ln_2.weight", 0.1, 1, h);
            put(w, r, p + ".ln_2.bias", 0.1, 0, h);
            put(w, r, p + ".mlp.c_fc.weight", 0.02, 0, 4 * h, h);
            put(w, r, p + ".mlp.c_fc.bias", 0.02, 0, 4 * h);
            put(w, r, p + ".mlp.c_proj.weight", 0.02, 0, h, 4 * h);
            put(w, r, p + ".mlp.c_proj.bias", 0.02, 0, h);
        }
        put(w, r, "transformer.ln_f.weight", 0.1, 1, h);
        put(w, r, "transformer.ln_f.bias", 0.1, 0, h);
        if (!tied) put(w, r, "lm_head.weight", 0.02, 0, s.vocab(), h);
        return w;
    }

    private static void put(Map<String, GptOnnxExporter.Weight> w, Random r, String name, double std, double mean, long... shape) {
        float[] d = new float[(int) DType.elements(shape)];
        for (int i = 0; i < d.length; i++) d[i] = (float) (mean + std * r.nextGaussian());
        w.put(name, new GptOnnxExporter.Weight(shape, d));
    }

    /** The forward pass of nanoGPT's GPT.forward, with libtorch ops. */
    static float[] torchLogits(GptOnnxExporter.GptSpec s, Map<String, GptOnnxExporter.Weight> w, long[][] ids) {
        try (PointerScope scope = new PointerScope()) {
            int b = ids.length;
            int t = ids[0].length;
            int h = s.hidden();
            int nh = s.heads();
            int hd = h / nh;
            long[] flat = new long[b * t];
            for (int i = 0; i < b; i++) System.arraycopy(ids[i], 0, flat, i * t, t);
            Tensor idx = torch.from_blob(new LongPointer(flat), new long[] {b, t}, new TensorOptions(torch.ScalarType.Long)).clone();
            Tensor pos = torch.arange(new Scalar(0L), new Scalar((long) t), new TensorOptions(torch.ScalarType.Long));
            Tensor x = torch.embedding(t(w, "wte.weight"), idx).add(torch.embedding(t(w, "wpe.weight"), pos));
            float[] mask = new float[t * t];
            for (int i = 0; i < t; i++) for (int j = i + 1; j < t; j++) mask[i * t + j] = Float.NEGATIVE_INFINITY;
            Tensor m = torch.from_blob(new FloatPointer(mask), t, t).clone();
            for (int l = 0; l < s.layers(); l++) {
                String p = "h." + l;
                Tensor a = ln(x, w, p + ".ln_1", h);
                Tensor qkv = lin(a, w, p + ".attn.c_attn");
                Tensor q = qkv.narrow(2, 0, h).reshape(b, t, nh, hd).transpose(1, 2);
                Tensor k = qkv.narrow(2, h, h).reshape(b, t, nh, hd).transpose(1, 2);
                Tensor v = qkv.narrow(2, 2 * h, h).reshape(b, t, nh, hd).transpose(1, 2);
                Tensor att = torch.matmul(q, k.transpose(-2, -1)).mul(new Scalar(1.0 / Math.sqrt(hd))).add(m);
                att = torch.softmax(att, -1);
                Tensor y = torch.matmul(att, v).transpose(1, 2).contiguous().reshape(b, t, h);
                x = x.add(lin(y, w, p + ".attn.c_proj"));
                Tensor f = torch.gelu(lin(ln(x, w, p + ".ln_2", h), w, p + ".mlp.c_fc"));
                x = x.add(lin(f, w, p + ".mlp.c_proj"));
            }
            x = ln(x, w, "ln_f", h);
            Tensor head = w.containsKey("lm_head.weight") ? t(w, "lm_head.weight") : t(w, "wte.weight");
            Tensor logits = torch.matmul(x, head.t()).contiguous();
            float[] out = new float[(int) logits.numel()];
            logits.data_ptr_float().get(out);
            return out;
        }
    }

    private static Tensor t(Map<String, GptOnnxExporter.Weight> w, String name) {
        GptOnnxExporter.Weight x = w.containsKey(name) ? w.get(name) : w.get("transformer." + name);
        return torch.from_blob(new FloatPointer(x.data()), x.shape()).clone();
    }

    private static Tensor ln(Tensor x, Map<String, GptOnnxExporter.Weight> w, String p, int h) {
        return torch.layer_norm(x, new long[] {h}, new TensorOptional(t(w, p + ".weight")), new TensorOptional(t(w, p + ".bias")),
                GptOnnxExporter.LN_EPS, false);
    }

    private static Tensor lin(Tensor x, Map<String, GptOnnxExporter.Weight> w, String p) {
        return torch.matmul(x, t(w, p + ".weight").t()).add(t(w, p + ".bias"));
    }

    static float[] ortLogits(Path model, long[][] ids) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            try (OrtSession s = env.createSession(model.toString(), o);
                 OnnxTensor in = OnnxTensor.createTensor(env, ids);
                 OrtSession.Result r = s.run(Map.of("input_ids", in))) {
                float[][][] out = (float[][][]) r.get(0).getValue();
                float[] flat = new float[out.length * out[0].length * out[0][0].length];
                int k = 0;
                for (float[][] a : out) for (float[] b : a) for (float c : b) flat[k++] = c;
                return flat;
            }
        }
    }

    static long[][] ids(int b, int t, int vocab, long seed) {
        Random r = new Random(seed);
        long[][] ids = new long[b][t];
        for (long[] row : ids) for (int i = 0; i < t; i++) row[i] = r.nextInt(vocab);
        return ids;
    }

    @Test
    void onnxRuntimeMatchesLibtorchWithin1e5() throws Exception {
        for (boolean tied : List.of(true, false)) {
            Map<String, GptOnnxExporter.Weight> w = weights(SPEC, tied ? 1 : 2, tied);
            Path model = dir.resolve(tied ? "tied.onnx" : "untied.onnx");
            GptOnnxExporter.export(SPEC, w, model, Onnx.EXTERNAL_THRESHOLD);
            for (int t : new int[] {1, 7, SPEC.sequence()}) {
                long[][] ids = ids(2, t, SPEC.vocab(), t);
                float[] ort = ortLogits(model, ids);
                float[] ref = torchLogits(SPEC, w, ids);
                assertEquals(ref.length, ort.length);
                double max = 0;
                for (int i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i] - ort[i]));
                assertTrue(max <= 1e-5, "max |ORT - libtorch| = " + max + " (tied=" + tied + ", T=" + t + ")");
                System.out.printf("GPT %s tied=%s T=%d: max |ORT - libtorch| = %.3g over %d logits%n", SPEC, tied, t, max, ref.length);
                double spread = 0;
                for (float v : ref) spread = Math.max(spread, Math.abs(v));
                assertTrue(spread > 1e-3, "logits should not be trivially zero");
            }
        }
    }


    @Test
    void externalDataModelRunsToo() throws Exception {
        Map<String, GptOnnxExporter.Weight> w = weights(SPEC, 3, false);
        Path model = dir.resolve("ext.onnx");
        GptOnnxExporter.export(SPEC, w, model, 1); // force the external-data layout
        assertTrue(Files.exists(dir.resolve("ext.onnx.data")));
        long[][] ids = ids(1, 5, SPEC.vocab(), 9);
        float[] ort = ortLogits(model, ids);
        float[] ref = torchLogits(SPEC, w, ids);
        for (int i = 0; i < ref.length; i++) assertEquals(ref[i], ort[i], 1e-5);
        try (Onnx o = Onnx.open(model)) {
            for (TensorEntry t : o.tensors()) {
                boolean outside = t.file().getFileName().toString().equals("ext.onnx.data");
                assertEquals(t.length() >= 1024, outside, t.name());
                if (outside) assertEquals(0, t.offset() % 4096, t.name());
            }
        }
    }

    @Test
    void debianOnnxCheckerAcceptsIt() throws Exception {
        parallax.engine.Peers.python("onnx", "python3-onnx");
        Path model = dir.resolve("check.onnx");
        GptOnnxExporter.export(SPEC, weights(SPEC, 4, true), model, Onnx.EXTERNAL_THRESHOLD);
        PythonPeer.Result r = PythonPeer.run("import onnx, sys\n"
                + "m = onnx.load(sys.argv[1])\n"
                + "onnx.checker.check_model(m, full_check=True)\n"
                + "print(m.opset_import[0].version, m.ir_version, len(m.graph.node), len(m.graph.initializer))\n", model.toString());
        assertEquals(0, r.exit(), r.output());
        String[] f = r.output().trim().split("\\s+");
        assertEquals("17", f[0]);
        assertEquals("8", f[1]);
    }
}
