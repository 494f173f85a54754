package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.formats.onnx.OnnxProto;
import parallax.engine.numerics.DType;

/**
 * Exports a GPT (nanoGPT's model.py layout: learned positions, pre-LayerNorm blocks,
 * causal self-attention, GELU MLP of any width, tied or separate lm_head; the engine's GPT
 * arrives renamed by its model package) as an ONNX opset-17
 * inference graph: input_ids int64 [batch, seq] -> logits float [batch, seq, vocab].
 * Weights become initializers; nn.Linear weights [out, in] are stored transposed
 * ([in, out], named with a {@code .T} suffix) so each projection is one MatMul.
 * GELU is the exact form 0.5 x (1 + erf(x / sqrt 2)) (Hendrycks & Gimpel 2016), and the
 * causal mask is a [S, S] initializer of 0 / -inf sliced to [T, T] and added to scores.
 */
public final class GptOnnxExporter {

    /** The shape of a GPT: layers, hidden size, heads, vocabulary and maximum sequence length. */
    public record GptSpec(int layers, int hidden, int heads, int vocab, int sequence) {
        public GptSpec {
            if (layers < 1 || hidden < 1 || heads < 1 || vocab < 1 || sequence < 1 || hidden % heads != 0) {
                throw new UserError("bad GPT spec: hidden " + hidden + " must divide into " + heads + " heads, all sizes positive");
            }
        }
    }

    /** A float32 weight: row-major shape and values. */
    public record Weight(long[] shape, float[] data) {
        public Weight {
            if (DType.elements(shape) != data.length) throw new IllegalArgumentException("shape/data mismatch");
        }
    }

    public static final float LN_EPS = 1e-5f;

    private final GptSpec spec;
    private final Map<String, Weight> weights;
    private final List<OnnxProto.Node> nodes = new ArrayList<>();
    private final List<TensorSpec> inits = new ArrayList<>();
    private final List<float[]> initData = new ArrayList<>();
    private int counter;

    private GptOnnxExporter(GptSpec spec, Map<String, Weight> weights) {
        this.spec = spec;
        this.weights = weights;
    }

    /**
     * Writes the model. Names as nanoGPT's state_dict, with or without the
     * {@code transformer.} prefix: wte.weight, wpe.weight, h.N.ln_1.{weight,bias},
     * h.N.attn.c_attn.{weight,bias}, h.N.attn.c_proj.{weight,bias}, h.N.ln_2.*,
     * h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.*, lm_head.weight (optional: tied to wte).
     */
    public static void export(GptSpec spec, Map<String, Weight> weights, Path target, long externalThreshold) {
        new GptOnnxExporter(spec, weights).write(target, externalThreshold);
    }

    private Weight w(String name, long... shape) {
        Weight x = weights.get(name);
        if (x == null) x = weights.get("transformer." + name);
        if (x == null) throw new UserError("GPT export: missing weight " + name);
        if (!java.util.Arrays.equals(x.shape(), shape)) {
            throw new UserError("GPT export: " + name + " has shape " + java.util.Arrays.toString(x.shape())
                    + ", expected " + java.util.Arrays.toString(shape));
        }
        return x;
    }

    private String init(String name, long[] shape, float[] data) {
        inits.add(new TensorSpec(name, DType.F32, shape));
        initData.add(data);
        return name;
    }

    private String weight(String name, long... shape) {
        return init(name, shape, w(name, shape).data());
    }

    /** nn.Linear weight [out, in] stored as [in, out]. */
    private String linearT(String name, int out, int in) {
        float[] src = w(name, out, in).data();
        float[] t = new float[src.length];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) t[i * out + o] = src[o * in + i];
        return init(name + ".T", new long[] {in, out}, t);
    }

    private String ints(String name, long... values) {
        inits.add(new TensorSpec(name, DType.I64, new long[] {values.length}));
        initData.add(null);
        intInits.add(values);
        return name;
    }

    private final List<long[]> intInits = new ArrayList<>();

    private String scalarInt(String name, long value) {
        inits.add(new TensorSpec(name, DType.I64, new long[] {}));
        initData.add(null);
        intInits.add(new long[] {value});
        return name;
    }

    private String node(String op, List<String> inputs, OnnxProto.Attribute... attrs) {
        String out = op.toLowerCase() + "_" + (counter++);
        nodes.add(OnnxProto.Node.newBuilder().setOpType(op).setName(out).addAllInput(inputs).addOutput(out)
                .addAllAttribute(List.of(attrs)).build());
        return out;
    }

    private String node(String op, String... inputs) { return node(op, List.of(inputs)); }

    private static OnnxProto.Attribute intAttr(String name, long v) {
        return OnnxProto.Attribute.newBuilder().setName(name).setType(OnnxProto.Attribute.Type.INT).setI(v).build();
    }

    private static OnnxProto.Attribute floatAttr(String name, float v) {
        return OnnxProto.Attribute.newBuilder().setName(name).setType(OnnxProto.Attribute.Type.FLOAT).setF(v).build();
    }

    private static OnnxProto.Attribute intsAttr(String name, long... v) {
        OnnxProto.Attribute.Builder b = OnnxProto.Attribute.newBuilder().setName(name).setType(OnnxProto.Attribute.Type.INTS);
        for (long x : v) b.addInts(x);
        return b.build();
    }

    private String layerNorm(String x, String prefix) {
        String g = weight(prefix + ".weight", spec.hidden());
        String b = weight(prefix + ".bias", spec.hidden());
        return node("LayerNormalization", List.of(x, g, b), intAttr("axis", -1), floatAttr("epsilon", LN_EPS));
    }

    private String linear(String x, String prefix, int out, int in) {
        String wt = linearT(prefix + ".weight", out, in);
        String b = weight(prefix + ".bias", out);
        return node("Add", node("MatMul", x, wt), b);
    }

    private void write(Path target, long externalThreshold) {
        Weight fc = weights.containsKey("h.0.mlp.c_fc.weight") ? weights.get("h.0.mlp.c_fc.weight") : weights.get("transformer.h.0.mlp.c_fc.weight");
        if (fc == null || fc.shape().length != 2) throw new UserError("GPT export: missing weight h.0.mlp.c_fc.weight");
        int ffn = (int) fc.shape()[0];
        int h = spec.hidden();
        int nh = spec.heads();
        int hd = h / nh;
        int s = spec.sequence();
        String ids = "input_ids";
        String tok = node("Gather", weight("wte.weight", spec.vocab(), h), ids);
        // positions 0..T-1, T = shape(input_ids)[1]
        String shape = node("Shape", ids);
        String tVec = node("Gather", List.of(shape, ints("index_1", 1)), intAttr("axis", 0));     // [T]
        String t = node("Gather", List.of(shape, scalarInt("scalar_1", 1)), intAttr("axis", 0));  // T
        String pos = node("Range", scalarInt("scalar_0", 0), t, "scalar_1");
        String pe = node("Gather", weight("wpe.weight", s, h), pos);
        String x = node("Add", tok, pe);
        float[] mask = new float[s * s];
        for (int i = 0; i < s; i++) for (int j = 0; j < s; j++) mask[i * s + j] = j > i ? Float.NEGATIVE_INFINITY : 0f;
        String maskAll = init("causal_mask", new long[] {s, s}, mask);
        String tt = node("Concat", List.of(tVec, tVec), intAttr("axis", 0));
        String maskT = node("Slice", maskAll, ints("zeros2", 0, 0), tt);
        String scale = init("attn_scale", new long[] {}, new float[] {(float) (1.0 / Math.sqrt(hd))});
        String split = ints("qkv_split", h, h, h);
        String heads4 = ints("heads_shape", 0, 0, nh, hd);
        String merged = ints("merged_shape", 0, 0, h);
        String sqrt2 = init("sqrt2", new long[] {}, new float[] {(float) Math.sqrt(2.0)});
        String one = init("one", new long[] {}, new float[] {1f});
        String half = init("half", new long[] {}, new float[] {0.5f});
        for (int l = 0; l < spec.layers(); l++) {
            String p = "h." + l;
            String a = layerNorm(x, p + ".ln_1");
            String qkv = linear(a, p + ".attn.c_attn", 3 * h, h);
            OnnxProto.Node.Builder sp = OnnxProto.Node.newBuilder().setOpType("Split").setName("split_" + l)
                    .addInput(qkv).addInput(split).addAttribute(intAttr("axis", 2));
            String q = "q_" + l, k = "k_" + l, v = "v_" + l;
            sp.addOutput(q).addOutput(k).addOutput(v);
            nodes.add(sp.build());
            String qh = node("Transpose", List.of(node("Reshape", q, heads4)), intsAttr("perm", 0, 2, 1, 3));
            String kh = node("Transpose", List.of(node("Reshape", k, heads4)), intsAttr("perm", 0, 2, 3, 1));
            String vh = node("Transpose", List.of(node("Reshape", v, heads4)), intsAttr("perm", 0, 2, 1, 3));
            String att = node("Add", node("Mul", node("MatMul", qh, kh), scale), maskT);
            String prob = node("Softmax", List.of(att), intAttr("axis", -1));
            String y = node("Transpose", List.of(node("MatMul", prob, vh)), intsAttr("perm", 0, 2, 1, 3));
            y = node("Reshape", y, merged);
            x = node("Add", x, linear(y, p + ".attn.c_proj", h, h));
            String m = layerNorm(x, p + ".ln_2");
            String up = linear(m, p + ".mlp.c_fc", ffn, h);
            String gelu = node("Mul", node("Mul", up, node("Add", node("Erf", node("Div", up, sqrt2)), one)), half);
            x = node("Add", x, linear(gelu, p + ".mlp.c_proj", h, ffn));
        }
        x = layerNorm(x, "ln_f");
        boolean tied = !weights.containsKey("lm_head.weight");
        String head = tied ? linearTFrom("wte.weight", "lm_head.weight.T") : linearT("lm_head.weight", spec.vocab(), h);
        nodes.add(OnnxProto.Node.newBuilder().setOpType("MatMul").setName("lm_head").addInput(x).addInput(head)
                .addOutput("logits").build());

        OnnxProto.Graph.Builder g = OnnxProto.Graph.newBuilder().setName("gpt").addAllNode(nodes)
                .setDocString("GPT " + spec + " exported by parallax (nanoGPT layout, opset 17)");
        g.addInput(valueInfo(ids, 7, "batch", "seq"));
        g.addOutput(valueInfo("logits", 1, "batch", "seq", Integer.toString(spec.vocab())));
        OnnxProto.Model.Builder model = OnnxProto.Model.newBuilder().setIrVersion(8).setProducerName("parallax")
                .setProducerVersion("0.1").addOpsetImport(OnnxProto.OperatorSetId.newBuilder().setDomain("").setVersion(17))
                .addMetadataProps(Onnx.entry("gpt.spec", spec.toString()));
        try (TensorWriter wr = Onnx.writer(target, model, g.build(), inits, false, externalThreshold)) {
            int ii = 0;
            for (int i = 0; i < inits.size(); i++) {
                TensorSpec ts = wr.beginTensor();
                float[] d = initData.get(i);
                ByteBuffer b = ByteBuffer.allocate((int) ts.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                if (d == null) {
                    for (long v : intInits.get(ii++)) b.putLong(v);
                    b.flip();
                } else {
                    b.asFloatBuffer().put(d);
                }
                wr.write(b);
            }
            wr.commit();
        }
    }

    private String linearTFrom(String name, String as) {
        float[] src = w(name, spec.vocab(), spec.hidden()).data();
        int out = spec.vocab();
        int in = spec.hidden();
        float[] t = new float[src.length];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) t[i * out + o] = src[o * in + i];
        return init(as, new long[] {in, out}, t);
    }

    private static OnnxProto.ValueInfo valueInfo(String name, int elemType, String... dims) {
        OnnxProto.Shape.Builder sh = OnnxProto.Shape.newBuilder();
        for (String d : dims) {
            OnnxProto.Shape.Dimension.Builder db = OnnxProto.Shape.Dimension.newBuilder();
            if (d.chars().allMatch(Character::isDigit)) db.setDimValue(Long.parseLong(d));
            else db.setDimParam(d);
            sh.addDim(db);
        }
        return OnnxProto.ValueInfo.newBuilder().setName(name).setType(OnnxProto.Type.newBuilder()
                .setTensorType(OnnxProto.Type.TensorType.newBuilder().setElemType(elemType).setShape(sh))).build();
    }
}
