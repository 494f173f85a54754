package parallax.engine.formats;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/**
 * Converts weights between safetensors, GGUF and ONNX (and from PyTorch checkpoints) in
 * three steps: plan every tensor ({@link ConversionPlan}: name, types, shapes, what the
 * destination cannot hold), open the destination with the metadata its format keeps
 * ({@link DestinationMetadata}), then stream each tensor into it in bounded chunks
 * ({@link ChunkedCopy}), measuring the error of every lossy one. The destination appears
 * only when every tensor is written.
 */
public final class Converter {

    public enum Names { KEEP, HF_TO_GGUF, GGUF_TO_HF }

    /**
     * @param to       target element type for float tensors, or null to keep each tensor's type
     * @param arch     "llama" to write llama.* metadata and permute Q/K rows, or null
     * @param names    tensor name mapping
     * @param onnxExternalThreshold model size above which ONNX data goes to a side file
     * @param mix      a llama.cpp per-tensor mix (Q4_K_M, Q5_K_M) instead of one type, or null
     */
    public record Options(DType to, String arch, Names names, long onnxExternalThreshold, QuantMix mix) {
        public Options(DType to, String arch, Names names, long onnxExternalThreshold) {
            this(to, arch, names, onnxExternalThreshold, null);
        }

        public static Options defaults() { return new Options(null, null, Names.KEEP, Onnx.EXTERNAL_THRESHOLD); }

        /** The same options quantizing with llama.cpp's per-tensor {@code mix}. */
        public Options withMix(QuantMix m) { return new Options(m.base(), arch, names, onnxExternalThreshold, m); }

        /** What --to asked for, as a user wrote it: q4_k_m, q8_0, f16. */
        public String label() { return mix != null ? mix.name() : to == null ? "as stored" : to.name(); }
    }

    /** One converted tensor; errors are max |x - x'| and RMS over the tensor (0 when lossless, NaN when not measured). */
    public record TensorResult(String name, String source, String from, String to, String shape,
                               long bytesIn, long bytesOut, double maxError, double rmsError, String note) {}

    public record Result(String source, String sourceFormat, String destination, String destinationFormat,
                         int tensors, long bytesIn, long bytesOut, double ratio, double seconds, double mbPerSecond,
                         List<TensorResult> perTensor, List<String> notes) {}

    private Converter() {}

    public static Format destinationFormat(Path dst) {
        String n = dst.getFileName().toString().toLowerCase(Locale.ROOT);
        if (n.endsWith(".safetensors")) return Format.SAFETENSORS;
        if (n.endsWith(".gguf")) return Format.GGUF;
        if (n.endsWith(".onnx")) return Format.ONNX;
        throw new UserError("destination " + dst + " must end in .safetensors, .gguf or .onnx");
    }

    public static Result convert(Path src, Path dst, Options o, Progress progress) {
        Format dstFormat = destinationFormat(dst);
        if (src.toAbsolutePath().normalize().equals(dst.toAbsolutePath().normalize())) {
            throw new UserError("source and destination are the same file: " + src);
        }
        if (o.to() != null && o.to().isBlock() && dstFormat != Format.GGUF) {
            throw new UserError(o.to() + " blocks exist only in GGUF; write a .gguf destination");
        }
        if (o.to() != null && (o.to() == DType.F8_E4M3 || o.to() == DType.F8_E5M2) && dstFormat == Format.GGUF) {
            throw new UserError("GGUF has no FP8 type; write .safetensors or .onnx for --to " + o.to());
        }
        long t0 = System.nanoTime();
        try (ModelFile in = ModelFiles.open(src)) {
            ConversionPlan plan = ConversionPlan.of(in, src, dstFormat, o);
            TensorWriter w = DestinationMetadata.writer(in, dst, dstFormat, plan, o);
            List<TensorResult> results = new ArrayList<>();
            long bytesIn = 0;
            long bytesOut = 0;
            try (w; Progress p = progress; ChunkedCopy copy = new ChunkedCopy(p, t0, plan.tensors().size())) {
                for (ConversionPlan.TensorPlan tp : plan.tensors()) {
                    w.beginTensor();
                    TensorResult r = copy.copy(in, tp, w);
                    results.add(r);
                    bytesIn += r.bytesIn();
                    bytesOut += r.bytesOut();
                    copy.tensorDone();
                }
                w.commit();
                copy.finished();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            return new Result(src.toString(), in.format().label(), dst.toString(), dstFormat.label(), results.size(),
                    bytesIn, bytesOut, bytesIn == 0 ? 1 : (double) bytesOut / bytesIn, seconds, bytesIn / 1e6 / seconds, results, plan.notes());
        }
    }

    /** The Hugging Face config.json beside a source, or null when there is none. */
    static JsonObject hfConfig(Path src) {
        Path cfg = src.toAbsolutePath().resolveSibling("config.json");
        if (!Files.isRegularFile(cfg)) return null;
        try {
            return JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
        } catch (Exception e) {
            throw new UserError(cfg + ": not a JSON object: " + Safetensors.firstLine(e.getMessage()));
        }
    }

    /** Total input bytes of a source's tensors in MiB: the progress bar's unit. */
    public static long progressTotal(Path src) {
        try (ModelFile m = ModelFiles.open(src)) {
            return Math.max(1, (m.tensors().stream().mapToLong(TensorEntry::length).sum() + (1 << 20) - 1) >> 20);
        }
    }
}
