package parallax.engine.precision;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import parallax.engine.formats.Gguf;
import parallax.engine.formats.Onnx;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorSpec;
import parallax.engine.formats.TensorWriter;
import parallax.engine.formats.onnx.OnnxProto;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;

/** Writes test tensors with the formats package's own writers (each tensor stored as its given dtype). */
final class CastFiles {

    private CastFiles() {}

    record Stored(CastAnalysis.NamedTensor tensor, DType dtype) {}

    static List<Stored> as(DType dtype, List<CastAnalysis.NamedTensor> tensors) {
        List<Stored> out = new ArrayList<>();
        for (CastAnalysis.NamedTensor t : tensors) out.add(new Stored(t, dtype));
        return out;
    }

    static Path safetensors(Path file, List<Stored> tensors) {
        return fill(Safetensors.writer(file, Map.of("format", "pt"), specs(tensors)), tensors, file);
    }

    static Path gguf(Path file, List<Stored> tensors) {
        return fill(Gguf.writer(file, Map.of(), specs(tensors)), tensors, file);
    }

    static Path onnx(Path file, List<Stored> tensors) {
        OnnxProto.Model.Builder m = OnnxProto.Model.newBuilder().setIrVersion(8).setProducerName("parallax-test")
                .addOpsetImport(OnnxProto.OperatorSetId.newBuilder().setDomain("").setVersion(17));
        OnnxProto.Graph g = OnnxProto.Graph.newBuilder().setName("weights").build();
        return fill(Onnx.writer(file, m, g, specs(tensors), false, Onnx.EXTERNAL_THRESHOLD), tensors, file);
    }

    private static List<TensorSpec> specs(List<Stored> tensors) {
        List<TensorSpec> specs = new ArrayList<>();
        for (Stored s : tensors) specs.add(new TensorSpec(s.tensor().name(), s.dtype(), s.tensor().shape()));
        return specs;
    }

    private static Path fill(TensorWriter w, List<Stored> tensors, Path file) {
        FloatCodec codec = new FloatCodec();
        try (w) {
            for (Stored s : tensors) {
                TensorSpec spec = w.beginTensor();
                ByteBuffer b = ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                float[] v = s.tensor().values();
                if (s.dtype().isBlock()) codec.encodeBlocks(s.dtype(), v, v.length, b, null);
                else codec.encode(s.dtype(), v, v.length, b);
                b.flip();
                w.write(b);
            }
            w.commit();
        }
        return file;
    }
}
