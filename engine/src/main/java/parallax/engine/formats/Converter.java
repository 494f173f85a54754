package parallax.engine.formats;

import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.numerics.ElementCodec;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import parallax.engine.UserError;
import parallax.engine.formats.onnx.OnnxProto;
import parallax.engine.report.Progress;

/**
 * Converts weights between safetensors, GGUF and ONNX (and from PyTorch checkpoints),
 * tensor by tensor in bounded chunks: map a window of the source, decode to float32 when
 * the type changes, encode (or quantize) into a reused buffer, append to the destination's
 * temporary file. Same-type tensors are copied byte for byte. The destination appears only
 * when every tensor is written.
 */
public final class Converter {

    /** Elements per chunk: 1 Mi floats = 4 MiB of heap per buffer. */
    static final int CHUNK = 1 << 20;
    /** Elements per pass of the linear (not row-permuted) path: 256 KiB of floats, cache sized. */
    static final int SUB = 1 << 16;
    /** Threads for the linear path (each converts every THREADS-th sub-chunk of a window). */
    static final int THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));

    public enum Names { KEEP, HF_TO_GGUF, GGUF_TO_HF }

    /**
     * @param to       target element type for float tensors, or null to keep each tensor's type
     * @param arch     "llama" to write llama.* metadata and permute Q/K rows, or null
     * @param names    tensor name mapping
     * @param onnxExternalThreshold model size above which ONNX data goes to a side file
     */
    public record Options(DType to, String arch, Names names, long onnxExternalThreshold) {
        public static Options defaults() { return new Options(null, null, Names.KEEP, Onnx.EXTERNAL_THRESHOLD); }
    }

    /** One converted tensor; errors are max |x - x'| and RMS over the tensor (0 when lossless, NaN when not measured). */
    public record TensorResult(String name, String source, String from, String to, String shape,
                               long bytesIn, long bytesOut, double maxError, double rmsError, String note) {}

    public record Result(String source, String sourceFormat, String destination, String destinationFormat,
                         int tensors, long bytesIn, long bytesOut, double ratio, double seconds, double mbPerSecond,
                         List<TensorResult> perTensor, List<String> notes) {}

    private record Plan(TensorEntry src, DType srcType, long[] srcShape, String name, DType dstType, long[] dstShape,
                        int permuteHeads, boolean ggufToHfPermute, String note) {}

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
            List<String> notes = new ArrayList<>();
            int[] heads = llamaHeads(in, src, o);
            List<Plan> plans = plan(in, dstFormat, o, heads, notes);
            TensorWriter w = open(in, dst, dstFormat, plans, o, heads);
            List<TensorResult> results = new ArrayList<>();
            long bytesIn = 0;
            long bytesOut = 0;
            try (w; Progress p = progress; Chunks c = new Chunks()) {
                c.progress = p;
                c.t0 = t0;
                c.tensors = plans.size();
                for (Plan pl : plans) {
                    w.beginTensor();
                    TensorResult r = copy(in, pl, w, c);
                    results.add(r);
                    bytesIn += r.bytesIn();
                    bytesOut += r.bytesOut();
                    c.tensorsDone++;
                    c.report(0);
                }
                w.commit();
                c.progress.update((c.bytesDone + (1 << 20) - 1) >> 20, Map.of("tensors", c.tensorsDone + "/" + c.tensors));
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            return new Result(src.toString(), in.format().label(), dst.toString(), dstFormat.label(), results.size(),
                    bytesIn, bytesOut, bytesIn == 0 ? 1 : (double) bytesOut / bytesIn, seconds, bytesIn / 1e6 / seconds, results, notes);
        }
    }

    /** (heads, kvHeads) when Q/K rows must be permuted, else null. */
    private static int[] llamaHeads(ModelFile in, Path src, Options o) {
        if (o.names() == Names.KEEP) return null;
        if (!"llama".equals(o.arch())) return null;
        if (o.names() == Names.HF_TO_GGUF) {
            JsonObject cfg = config(src);
            if (cfg == null || !cfg.has("num_attention_heads")) {
                throw new UserError("--arch llama needs config.json (with num_attention_heads) beside " + src);
            }
            int h = cfg.get("num_attention_heads").getAsInt();
            int kv = cfg.has("num_key_value_heads") ? cfg.get("num_key_value_heads").getAsInt() : h;
            return new int[] {h, kv};
        }
        Object h = in.metadata().get("llama.attention.head_count");
        Object kv = in.metadata().get("llama.attention.head_count_kv");
        if (!(h instanceof Number)) throw new UserError(src + ": no llama.attention.head_count to undo the Q/K permutation");
        return new int[] {((Number) h).intValue(), kv instanceof Number ? ((Number) kv).intValue() : ((Number) h).intValue()};
    }

    static JsonObject config(Path src) {
        Path cfg = src.toAbsolutePath().resolveSibling("config.json");
        if (!Files.isRegularFile(cfg)) return null;
        try {
            return JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
        } catch (Exception e) {
            throw new UserError(cfg + ": not a JSON object: " + Safetensors.firstLine(e.getMessage()));
        }
    }

    private static List<Plan> plan(ModelFile in, Format dstFormat, Options o, int[] heads, List<String> notes) {
        Map<String, Object> meta = in.metadata();
        List<Plan> out = new ArrayList<>();
        for (TensorEntry t : in.tensors()) {
            DType st = t.dtype();
            long[] shape = t.shape();
            // A tensor GGUF could not hold natively was stored as bytes; restore its type.
            Object orig = meta.get("parallax.dtype." + t.name());
            DType restore = null;
            if (in.format() == Format.GGUF && orig instanceof String s) {
                int sp = s.indexOf(' ');
                DType od = DType.parse(sp < 0 ? s : s.substring(0, sp)).orElseThrow(() -> new FormatError(in.path(), "bad parallax.dtype entry " + s));
                long[] oshape = parseShape(s.substring(sp + 1));
                if (st == DType.I8 && od != DType.I8) {
                    st = od; // bytes of a type GGUF lacks
                    if (st.bytesFor(DType.elements(oshape)) != t.length()) throw new FormatError(in.path(), "parallax.dtype entry " + s + " does not match the stored bytes");
                } else if (od != st) {
                    restore = od; // an FP8 tensor GGUF held exactly as F16
                }
                if (DType.elements(oshape) != DType.elements(shape) && st == t.dtype()) {
                    throw new FormatError(in.path(), "parallax.dtype entry " + s + " does not match the tensor's shape");
                }
                shape = oshape;
            }
            String name = t.name();
            if (o.names() == Names.HF_TO_GGUF) {
                var n = LlamaNames.hfToGguf(name);
                if (n.isEmpty()) {
                    notes.add("dropped " + name + " (llama.cpp recomputes it)");
                    continue;
                }
                name = n.get();
            } else if (o.names() == Names.GGUF_TO_HF) {
                name = LlamaNames.ggufToHf(name);
            }
            String note = "";
            DType dt = st;
            if (restore != null && o.to() == null && dstFormat != Format.GGUF) {
                dt = restore;
                note = "restored " + restore + " (GGUF held it exactly as F16)";
            }
            if (o.to() != null && st.isFloatConvertible()) {
                dt = o.to();
                long last = shape.length == 0 ? 1 : shape[shape.length - 1];
                if (dt.isBlock() && shape.length < 2) {
                    dt = DType.F32;
                    note = "1-D: kept F32 (as llama.cpp does for norms and biases)";
                } else if (dt.isBlock() && last % dt.blockElements() != 0) {
                    dt = DType.F16;
                    note = "rows of " + last + " are not whole blocks of 32: F16";
                }
            }
            long[] dshape = shape;
            if (dstFormat == Format.GGUF && !ggufStores(dt)) {
                if (dt == DType.F8_E4M3 || dt == DType.F8_E5M2) {
                    dt = DType.F16; // every E4M3FN and E5M2 value is exact in FP16
                    note = "GGUF has no " + st + ": F16 (exact)";
                } else {
                    note = "GGUF has no " + st + ": stored as bytes, type kept in parallax.dtype." + name;
                    dshape = new long[] {st.bytesFor(DType.elements(shape))};
                    dt = DType.I8;
                }
            } else if (dstFormat != Format.GGUF && dt.isBlock()) {
                dt = DType.F32;
                note = "dequantized from " + st;
            }
            if (dstFormat == Format.ONNX && (dt == DType.F4 || dt == DType.F6_E2M3 || dt == DType.F6_E3M2 || dt == DType.F8_E8M0)) {
                throw new UserError("ONNX has no element type for " + dt + " (tensor " + t.name() + ")");
            }
            if (dshape.length == 0 && dstFormat == Format.GGUF) dshape = new long[] {1};
            int ph = 0;
            boolean inverse = false;
            if (heads != null) {
                ph = LlamaNames.permutedHeads(t.name(), heads[0], heads[1]);
                inverse = o.names() == Names.GGUF_TO_HF;
                if (ph > 0 && (shape.length != 2 || shape[0] % (2L * ph) != 0)) {
                    throw new UserError(t.name() + " " + t.shapeText() + " cannot be split into " + ph + " heads of row pairs");
                }
                if (ph > 0) note = (note.isEmpty() ? "" : note + "; ") + "Q/K rows permuted for RoPE (" + ph + " heads)";
            }
            out.add(new Plan(t, st, shape, name, dt, dshape, ph, inverse, note));
        }
        if (out.isEmpty()) throw new UserError(in.path() + ": no tensors to convert");
        return out;
    }

    static long[] parseShape(String s) {
        String body = s.trim().replace("[", "").replace("]", "").trim();
        if (body.isEmpty()) return new long[0];
        String[] parts = body.split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = Long.parseLong(parts[i].trim());
        return out;
    }

    static boolean ggufStores(DType d) {
        try {
            Gguf.ggmlType(d);
            return true;
        } catch (UserError e) {
            return false;
        }
    }

    private static TensorWriter open(ModelFile in, Path dst, Format f, List<Plan> plans, Options o, int[] heads) {
        List<TensorSpec> specs = new ArrayList<>();
        for (Plan p : plans) specs.add(new TensorSpec(p.name(), p.dstType(), p.dstShape()));
        Map<String, Object> meta = in.metadata();
        switch (f) {
            case SAFETENSORS: {
                Map<String, String> m = new LinkedHashMap<>();
                boolean restored = in.format() == Format.PYTORCH;
                if (restored) m.put("format", "pt");
                for (var e : meta.entrySet()) {
                    if (e.getKey().startsWith("safetensors.metadata.")) {
                        m.put(e.getKey().substring("safetensors.metadata.".length()), String.valueOf(e.getValue()));
                        restored = true;
                    }
                }
                if (in.format() == Format.ONNX) {
                    // ONNX metadata_props carry what a safetensors __metadata__ held; graph facts stay behind
                    for (var e : meta.entrySet()) {
                        if (e.getKey().startsWith("metadata.")) m.put(e.getKey().substring("metadata.".length()), String.valueOf(e.getValue()));
                    }
                    restored = true;
                }
                if (!restored) {
                    for (var e : meta.entrySet()) {
                        Object v = e.getValue();
                        if (v instanceof String || v instanceof Number || v instanceof Boolean) {
                            if (!e.getKey().startsWith("parallax.dtype.")) m.put(e.getKey(), String.valueOf(v));
                        }
                    }
                }
                if (o.names() == Names.GGUF_TO_HF && "llama".equals(o.arch())) writeHfConfig(meta, dst);
                return Safetensors.writer(dst, m, specs);
            }
            case GGUF: {
                Map<String, GgufValue> kv = new LinkedHashMap<>();
                String arch = o.arch() != null ? o.arch() : "parallax";
                kv.put("general.architecture", GgufValue.string(arch));
                String stem = in.path().getFileName().toString().replaceFirst("\\.[^.]*$", "");
                kv.put("general.name", GgufValue.string(stem));
                if (o.to() != null) {
                    int ft = fileType(o.to());
                    if (ft >= 0) kv.put("general.file_type", GgufValue.u32(ft));
                    if (o.to().isBlock()) kv.put("general.quantization_version", GgufValue.u32(2));
                }
                if ("llama".equals(o.arch())) llamaKv(in.path(), kv);
                if (in.format() == Format.SAFETENSORS || in.format() == Format.SAFETENSORS_INDEX) {
                    meta.forEach((k, v) -> {
                        if (v instanceof String s && in.format() == Format.SAFETENSORS) kv.put("safetensors.metadata." + k, GgufValue.string(s));
                    });
                }
                for (Plan p : plans) {
                    if (p.dstType() == DType.I8 && p.srcType() != DType.I8 || p.srcShape().length == 0
                            || p.dstType() == DType.F16 && (p.srcType() == DType.F8_E4M3 || p.srcType() == DType.F8_E5M2)) {
                        kv.put("parallax.dtype." + p.name(), GgufValue.string(p.srcType() + " " + java.util.Arrays.toString(p.srcShape())));
                    }
                }
                return Gguf.writer(dst, kv, specs);
            }
            case ONNX: {
                OnnxProto.Model.Builder m = OnnxProto.Model.newBuilder().setIrVersion(8).setProducerName("parallax")
                        .setProducerVersion("0.1").addOpsetImport(OnnxProto.OperatorSetId.newBuilder().setDomain("").setVersion(17));
                meta.forEach((k, v) -> {
                    if (v instanceof String s) m.addMetadataProps(Onnx.entry(k, s));
                });
                OnnxProto.Graph g = OnnxProto.Graph.newBuilder().setName("initializers")
                        .setDocString("weights converted by parallax %convert; no nodes").build();
                return Onnx.writer(dst, m, g, specs, false, o.onnxExternalThreshold());
            }
            default:
                throw new UserError("cannot write " + f.label());
        }
    }

    static int fileType(DType d) {
        switch (d) {
            case F32: return 0;
            case F16: return 1;
            case Q4_0: return 2;
            case Q8_0: return 7;
            case BF16: return 32;
            default: return -1;
        }
    }

    /** llama.* keys from the Hugging Face config.json beside the source (names as llama.cpp's converter writes them). */
    private static void llamaKv(Path src, Map<String, GgufValue> kv) {
        JsonObject c = config(src);
        if (c == null) throw new UserError("--arch llama needs config.json beside " + src);
        int hidden = c.get("hidden_size").getAsInt();
        int heads = c.get("num_attention_heads").getAsInt();
        if (c.has("max_position_embeddings")) kv.put("llama.context_length", GgufValue.u32(c.get("max_position_embeddings").getAsLong()));
        kv.put("llama.embedding_length", GgufValue.u32(hidden));
        kv.put("llama.block_count", GgufValue.u32(c.get("num_hidden_layers").getAsLong()));
        if (c.has("intermediate_size")) kv.put("llama.feed_forward_length", GgufValue.u32(c.get("intermediate_size").getAsLong()));
        kv.put("llama.rope.dimension_count", GgufValue.u32(hidden / heads));
        kv.put("llama.attention.head_count", GgufValue.u32(heads));
        kv.put("llama.attention.head_count_kv", GgufValue.u32(c.has("num_key_value_heads") ? c.get("num_key_value_heads").getAsLong() : heads));
        if (c.has("rms_norm_eps")) kv.put("llama.attention.layer_norm_rms_epsilon", GgufValue.f32(c.get("rms_norm_eps").getAsFloat()));
        if (c.has("rope_theta")) kv.put("llama.rope.freq_base", GgufValue.f32(c.get("rope_theta").getAsFloat()));
        if (c.has("vocab_size")) kv.put("llama.vocab_size", GgufValue.u32(c.get("vocab_size").getAsLong()));
    }

    private static void writeHfConfig(Map<String, Object> meta, Path dst) {
        JsonObject c = new JsonObject();
        c.addProperty("model_type", "llama");
        putIf(c, "hidden_size", meta.get("llama.embedding_length"));
        putIf(c, "num_hidden_layers", meta.get("llama.block_count"));
        putIf(c, "intermediate_size", meta.get("llama.feed_forward_length"));
        putIf(c, "num_attention_heads", meta.get("llama.attention.head_count"));
        putIf(c, "num_key_value_heads", meta.get("llama.attention.head_count_kv"));
        putIf(c, "max_position_embeddings", meta.get("llama.context_length"));
        putIf(c, "rms_norm_eps", meta.get("llama.attention.layer_norm_rms_epsilon"));
        putIf(c, "rope_theta", meta.get("llama.rope.freq_base"));
        putIf(c, "vocab_size", meta.get("llama.vocab_size"));
        Path cfg = dst.toAbsolutePath().resolveSibling("config.json");
        if (Files.exists(cfg)) return; // never overwrite a user's config
        try (AtomicFile f = new AtomicFile(cfg)) {
            f.write(c.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            f.commit();
        }
    }

    private static void putIf(JsonObject c, String k, Object v) {
        if (v instanceof Number n) c.addProperty(k, n);
    }

    /** Total input bytes of a source's tensors in MiB: the progress bar's unit. */
    public static long progressTotal(Path src) {
        try (ModelFile m = ModelFiles.open(src)) {
            return Math.max(1, (m.tensors().stream().mapToLong(TensorEntry::length).sum() + (1 << 20) - 1) >> 20);
        }
    }

    /** Scratch buffers reused across tensors: the heap stays at a few MiB whatever the model. */
    private static final class Chunks implements AutoCloseable {
        Progress progress = Progress.NONE;
        long t0;
        long bytesDone;
        int tensors;
        int tensorsDone;

        /** Progress in MiB of input read, with tensors done and the rate. */
        void report(long moreBytes) {
            bytesDone += moreBytes;
            double s = Math.max((System.nanoTime() - t0) / 1e9, 1e-9);
            progress.update(bytesDone >> 20, Map.of("tensors", tensorsDone + "/" + tensors,
                    "MB/s", String.format("%.0f", bytesDone / 1e6 / s)));
        }

        final float[] values = new float[CHUNK];
        final float[] check = new float[CHUNK];
        final ByteBuffer out = ByteBuffer.allocateDirect(CHUNK * 4 + 64).order(ByteOrder.LITTLE_ENDIAN);
        final FloatCodec codec = new FloatCodec();
        /** One per thread of the linear path: scratch arrays and a codec of its own. */
        final Worker[] workers;
        final ExecutorService pool;
        ByteBuffer windowOut = ByteBuffer.allocateDirect(0);

        Chunks() {
            workers = new Worker[THREADS];
            for (int i = 0; i < THREADS; i++) workers[i] = new Worker();
            pool = THREADS > 1 ? Executors.newFixedThreadPool(THREADS, r -> {
                Thread th = new Thread(r, "parallax-convert");
                th.setDaemon(true);
                return th;
            }) : null;
        }

        ByteBuffer windowOut(long bytes) {
            if (windowOut.capacity() < bytes) windowOut = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
            windowOut.clear();
            return windowOut;
        }

        @Override
        public void close() {
            if (pool != null) pool.shutdownNow();
        }
    }

    private static final class Worker {
        final float[] values = new float[SUB];
        final float[] check = new float[SUB];
        final FloatCodec codec = new FloatCodec();
    }

    private static TensorResult copy(ModelFile in, Plan p, TensorWriter w, Chunks c) {
        TensorEntry t = p.src();
        long n = DType.elements(p.srcShape());
        long bytesOut = p.dstType().bytesFor(DType.elements(p.dstShape()));
        String shape = java.util.Arrays.toString(p.srcShape());
        boolean sameBytes = p.srcType() == p.dstType() || p.dstType() == DType.I8 && p.srcType() != DType.I8; // I8 target = bytes kept as they are
        if (sameBytes && p.permuteHeads() == 0) {
            long step = 16L << 20;
            for (long off = 0; off < t.length(); off += step) {
                int len = (int) Math.min(step, t.length() - off);
                w.write(in.bytes(t, off, len));
                c.report(len);
            }
            return new TensorResult(p.name(), t.name(), p.srcType().name(), p.dstType().name(), shape, t.length(), bytesOut, 0, 0, p.note());
        }
        if (!p.srcType().isFloatConvertible() && !sameBytes) {
            throw new UserError("tensor " + t.name() + ": cannot convert " + p.srcType() + " to " + p.dstType());
        }
        ElementCodec codec = c.codec;
        boolean lossy = !sameBytes && !widens(p.srcType(), p.dstType());
        double maxErr = 0;
        double sumSq = 0;
        long counted = 0;
        long cols = p.srcShape().length == 0 ? 1 : p.srcShape()[p.srcShape().length - 1];
        long rows = n / Math.max(cols, 1);
        if (p.permuteHeads() > 0) {
            if (cols > CHUNK) throw new UserError(t.name() + ": rows of " + cols + " are too long to permute");
            int rowsPerChunk = (int) Math.max(1, CHUNK / cols);
            long srcRowBytes = p.srcType().bytesFor(cols);
            for (long r0 = 0; r0 < rows; r0 += rowsPerChunk) {
                int k = (int) Math.min(rowsPerChunk, rows - r0);
                for (int r = 0; r < k; r++) {
                    long sr = p.ggufToHfPermute() ? LlamaNames.sourceRowGgufToHf(r0 + r, rows, p.permuteHeads())
                            : LlamaNames.sourceRowHfToGguf(r0 + r, rows, p.permuteHeads());
                    ByteBuffer src = in.bytes(t, sr * srcRowBytes, (int) srcRowBytes);
                    decodeInto(codec, p.srcType(), src, c.values, r * (int) cols, (int) cols);
                }
                int m = (int) (k * cols);
                c.report(p.srcType().bytesFor(m));
                double[] e = encodeAndWrite(codec, p, c, m, w, lossy);
                maxErr = Math.max(maxErr, e[0]);
                sumSq += e[1];
                counted += (long) e[2];
            }
        } else {
            // Map a window of up to 16 MiB; its sub-chunks of 64 Ki elements (cache sized) are
            // converted by THREADS workers into their own, precomputed places of one output
            // buffer, which is then written in order.
            long window = Math.max(SUB, (16L << 20) / Math.max(1, p.srcType().bytesFor(SUB)) * SUB);
            flush(c, w);
            for (long w0 = 0; w0 < n; w0 += window) {
                long wn = Math.min(window, n - w0);
                ByteBuffer win = in.bytes(t, p.srcType().bytesFor(w0), (int) p.srcType().bytesFor(wn));
                ByteBuffer out = c.windowOut(p.dstType().bytesFor(wn));
                double[][] parts = convertWindow(c, p, win, out, wn, lossy);
                for (double[] e : parts) {
                    if (e == null) continue;
                    maxErr = Math.max(maxErr, e[0]);
                    sumSq += e[1];
                    counted += (long) e[2];
                }
                out.limit((int) p.dstType().bytesFor(wn));
                w.write(out);
                c.report(p.srcType().bytesFor(wn));
            }
        }
        flush(c, w);
        double rms = counted == 0 ? 0 : Math.sqrt(sumSq / counted);
        return new TensorResult(p.name(), t.name(), p.srcType().name(), p.dstType().name(), shape, t.length(), bytesOut,
                lossy ? maxErr : 0, lossy ? rms : 0, p.note());
    }

    private static void decodeInto(ElementCodec codec, DType type, ByteBuffer src, float[] dst, int at, int n) {
        if (at == 0) {
            codec.decode(type, src, dst, n);
            return;
        }
        float[] tmp = new float[n];
        codec.decode(type, src, tmp, n);
        System.arraycopy(tmp, 0, dst, at, n);
    }

    /** Converts the sub-chunks of one window on the workers; returns the error statistics of each. */
    private static double[][] convertWindow(Chunks c, Plan p, ByteBuffer win, ByteBuffer out, long wn, boolean lossy) {
        int subs = (int) ((wn + SUB - 1) / SUB);
        double[][] parts = new double[subs][];
        int threads = Math.min(c.workers.length, subs);
        List<Callable<Void>> jobs = new ArrayList<>();
        for (int k = 0; k < threads; k++) {
            Worker wk = c.workers[k];
            int first = k;
            jobs.add(() -> {
                for (int i = first; i < subs; i += threads) {
                    long e0 = (long) i * SUB;
                    int m = (int) Math.min(SUB, wn - e0);
                    ByteBuffer src = slice(win, p.srcType().bytesFor(e0), p.srcType().bytesFor(m));
                    ByteBuffer dst = slice(out, p.dstType().bytesFor(e0), p.dstType().bytesFor(m));
                    wk.codec.decode(p.srcType(), src, wk.values, m);
                    if (p.dstType().isBlock()) {
                        wk.codec.encodeBlocks(p.dstType(), wk.values, m, dst, lossy ? wk.check : null);
                    } else {
                        wk.codec.encode(p.dstType(), wk.values, m, dst);
                        if (lossy) wk.codec.decode(p.dstType(), slice(out, p.dstType().bytesFor(e0), p.dstType().bytesFor(m)), wk.check, m);
                    }
                    parts[i] = lossy ? errors(wk.values, wk.check, m) : null;
                }
                return null;
            });
        }
        try {
            if (c.pool == null || threads == 1) {
                for (Callable<Void> j : jobs) j.call();
            } else {
                for (Future<Void> f : c.pool.invokeAll(jobs)) f.get();
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) throw re;
            throw new IllegalStateException(cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("conversion interrupted");
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return parts;
    }

    private static ByteBuffer slice(ByteBuffer b, long from, long length) {
        return b.duplicate().position((int) from).limit((int) (from + length)).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Writes what the output buffer holds (encoded chunks are gathered there to write in MiB-sized pieces). */
    private static void flush(Chunks c, TensorWriter w) {
        c.out.flip();
        if (c.out.hasRemaining()) w.write(c.out);
        c.out.clear();
    }

    /** Whether every value of {@code from} is exact in {@code to}. */
    static boolean widens(DType from, DType to) {
        if (from == to) return true;
        switch (to) {
            case F32: return from == DType.F16 || from == DType.BF16 || from.name().startsWith("F8_") || from.isBlock();
            case F64: return from == DType.F32 || from == DType.F16 || from == DType.BF16 || from.name().startsWith("F8_") || from.isBlock();
            case F16: return from == DType.F8_E4M3 || from == DType.F8_E5M2;
            default: return false;
        }
    }

    /**
     * {max |x - y|, sum of (x - y)^2, count} over finite x. The fast loop keeps four
     * independent maxima and partial sums so the CPU can overlap them (a single running sum
     * is one long dependency chain); a NaN or infinity anywhere sends the chunk through the
     * careful loop instead.
     */
    static double[] errors(float[] x, float[] y, int m) {
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        double sum = 0;
        int i = 0;
        for (; i + 1024 <= m; i += 1024) {
            float p0 = 0, p1 = 0, p2 = 0, p3 = 0;
            for (int j = i; j < i + 1024; j += 4) {
                float d0 = Math.abs(x[j] - y[j]), d1 = Math.abs(x[j + 1] - y[j + 1]);
                float d2 = Math.abs(x[j + 2] - y[j + 2]), d3 = Math.abs(x[j + 3] - y[j + 3]);
                m0 = d0 > m0 ? d0 : m0;
                m1 = d1 > m1 ? d1 : m1;
                m2 = d2 > m2 ? d2 : m2;
                m3 = d3 > m3 ? d3 : m3;
                p0 += d0 * d0;
                p1 += d1 * d1;
                p2 += d2 * d2;
                p3 += d3 * d3;
            }
            sum += (double) (p0 + p1) + (double) (p2 + p3);
        }
        double max = Math.max(Math.max(m0, m1), Math.max(m2, m3));
        for (; i < m; i++) {
            double d = Math.abs((double) x[i] - y[i]);
            if (d > max) max = d;
            sum += d * d;
        }
        if (Double.isFinite(sum)) return new double[] {max, sum, m};
        // non-finite inputs (or an overflow to infinity): count finite inputs only, infinity for overflow
        max = 0;
        sum = 0;
        long count = 0;
        for (int k = 0; k < m; k++) {
            float v = x[k];
            if (!Float.isFinite(v)) continue;
            double d = Math.abs((double) v - y[k]);
            if (d > max || Double.isNaN(d)) max = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            sum += d * d;
            count++;
        }
        return new double[] {max, sum, count};
    }

    /** Encodes c.values[0..m) into the destination; returns {max error, sum of squares, count}. */
    private static double[] encodeAndWrite(ElementCodec codec, Plan p, Chunks c, int m, TensorWriter w, boolean lossy) {
        int need = (int) p.dstType().bytesFor(m);
        if (c.out.remaining() < need) flush(c, w);
        int start = c.out.position();
        boolean block = p.dstType().isBlock() && codec instanceof FloatCodec;
        if (block) ((FloatCodec) codec).encodeBlocks(p.dstType(), c.values, m, c.out, lossy ? c.check : null);
        else codec.encode(p.dstType(), c.values, m, c.out);
        if (!lossy) return new double[] {0, 0, 0};
        if (!block) {
            ByteBuffer written = c.out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            written.position(start).limit(start + need);
            codec.decode(p.dstType(), written, c.check, m);
        }
        return errors(c.values, c.check, m);
    }
}
