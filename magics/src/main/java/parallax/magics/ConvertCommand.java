package parallax.magics;

import java.nio.file.Path;
import java.util.Locale;
import parallax.engine.UserError;
import parallax.engine.formats.ConvertBenchmark;
import parallax.engine.formats.ConvertReport;
import parallax.engine.formats.Converter;
import parallax.engine.formats.ModelFile;
import parallax.engine.formats.ModelFiles;
import parallax.engine.formats.Onnx;
import parallax.engine.model.Checkpoint;
import parallax.engine.model.CheckpointOnnx;
import parallax.engine.numerics.DType;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "convert", description = {
    "Convert weights between safetensors, GGUF and ONNX (initializers), or from a PyTorch checkpoint (.bin/.pt, read without running its pickle).",
    "The source format is detected from its content, the destination's from its extension (.safetensors, .gguf, .onnx).",
    "An engine checkpoint (%%parallel ... --save FILE.safetensors) becomes the full ONNX inference graph; --check then runs it in ONNX Runtime against libtorch.",
    "Example: %%convert model.safetensors model-Q8_0.gguf --to q8_0"})
public final class ConvertCommand extends MagicCommand {

    @Parameters(index = "0", arity = "0..1", paramLabel = "SRC", description = "Model file, shard or model.safetensors.index.json.")
    Path src;

    @Parameters(index = "1", arity = "0..1", paramLabel = "DST", description = "Destination file; written to a temporary name and renamed when complete.")
    Path dst;

    @Option(names = "--to", paramLabel = "TYPE", description = "Element type for float tensors: f32, f16, bf16, e4m3, e5m2; into GGUF also q8_0, q5_1, q5_0, q4_0, q6_k, q5_k, q4_k, and llama.cpp's mixes q5_k_m, q4_k_m (Q6_K for the output, attn_v and ffn_down where llama.cpp puts it).")
    String to;

    @Option(names = "--arch", paramLabel = "ARCH", description = "llama: write llama.* GGUF metadata from config.json beside SRC, permute Q/K rows, and write the tokenizer beside SRC (tokenizer.json, else tokenizer.model) as tokenizer.ggml.* keys.")
    String arch;

    @Option(names = "--names", paramLabel = "MAP", description = "Rename tensors: hf-to-gguf or gguf-to-hf (Llama).")
    String names;

    @Option(names = "--check", description = "For an engine checkpoint written as .onnx: run the graph in ONNX Runtime on a few token sequences and compare its logits with the engine's libtorch forward (pass: max difference <= 1e-5 x max(1, max |logit|)).")
    boolean check;

    @Option(names = "--bench", paramLabel = "MB", description = "Benchmark instead: generate an F32 safetensors file of MB megabytes in --tmp, convert it to GGUF F16, Q8_0 and Q4_K_M and compare with a plain copy; then time the dequantization of every ggml block type (M values/s, one thread).")
    Long benchMegabytes;

    @Option(names = "--repeat", defaultValue = "3", description = "Runs per case for --bench (median reported). Default: ${DEFAULT-VALUE}.")
    int repeat;

    @Option(names = "--tmp", defaultValue = "/tmp", description = "Directory for --bench files (deleted afterwards). Default: ${DEFAULT-VALUE}.")
    Path tmp;

    @Override
    protected Report execute() {
        if (benchMegabytes != null) {
            ConvertBenchmark.validate(benchMegabytes, repeat, tmp);
            ConvertBenchmark.Result r = ConvertBenchmark.run(benchMegabytes, repeat, tmp,
                    output().progress("bench", 4L * (repeat + 1)));
            return ConvertBenchmark.report(r);
        }
        if (src == null || dst == null) throw new UserError("give SRC and DST (or --bench MB)");
        boolean toOnnx = Converter.destinationFormat(dst) == parallax.engine.formats.Format.ONNX;
        boolean toGguf = Converter.destinationFormat(dst) == parallax.engine.formats.Format.GGUF;
        if (check && !toOnnx && !toGguf)
            throw new UserError("--check runs an exported model: DST must end in .onnx or .gguf, not " + dst.getFileName());
        boolean checkpointSource = (toOnnx || toGguf) && isCheckpoint(src);
        boolean engineCheckpoint = toOnnx && checkpointSource;
        if (check && !checkpointSource)
            throw new UserError("--check needs an engine checkpoint as SRC (parallax.* metadata, from %parallel --save); "
                    + src + " is not one, so there is no model to run");
        parallax.engine.formats.QuantMix mix = to == null ? null : parallax.engine.formats.QuantMix.parse(to);
        DType type = to == null || mix != null ? null : type(to);
        if (arch != null && !arch.equals("llama")) throw new UserError("unknown --arch " + arch + " (known: llama)");
        Converter.Names map = Converter.Names.KEEP;
        if (names != null) {
            switch (names.toLowerCase(Locale.ROOT)) {
                case "hf-to-gguf": map = Converter.Names.HF_TO_GGUF; break;
                case "gguf-to-hf": map = Converter.Names.GGUF_TO_HF; break;
                default: throw new UserError("unknown --names " + names + " (known: hf-to-gguf, gguf-to-hf)");
            }
        } else if ("llama".equals(arch)) {
            String d = dst.toString().toLowerCase(Locale.ROOT);
            map = d.endsWith(".gguf") ? Converter.Names.HF_TO_GGUF : Converter.Names.GGUF_TO_HF;
        }
        Converter.Options o = new Converter.Options(type, arch, map, Onnx.EXTERNAL_THRESHOLD);
        if (mix != null) o = o.withMix(mix);
        if (engineCheckpoint) {
            if (src.toAbsolutePath().normalize().equals(dst.toAbsolutePath().normalize()))
                throw new UserError("source and destination are the same file: " + src);
            Converter.Result r = CheckpointOnnx.convert(src, dst, o, output().progress("export ONNX graph", 2));
            Report convert = ConvertReport.of(r);
            if (!check) return convert;
            CheckpointOnnx.Check c = CheckpointOnnx.check(Checkpoint.load(src), dst);
            Report both = CheckpointOnnx.report(convert, r, c);
            if (c.passed()) return both;
            output().display(both);
            throw new UserError(String.format(java.util.Locale.ROOT, "--check failed: max |ONNX Runtime - libtorch| %.3g is above %.0e x max(1, logit scale %.3g)",
                    c.maxAbsDiff(), c.tolerance(), c.logitScale()));
        }
        if (checkpointSource && toGguf && arch == null && names == null) {
            if (src.toAbsolutePath().normalize().equals(dst.toAbsolutePath().normalize()))
                throw new UserError("source and destination are the same file: " + src);
            Converter.Result r = parallax.engine.model.CheckpointGguf.convert(src, dst, o,
                    output().progress("export GGUF gpt2 MiB", Converter.progressTotal(src)));
            Report convert = ConvertReport.of(r);
            if (!check) return convert;
            parallax.engine.model.QuantCheck.Result q = parallax.engine.model.QuantCheck.run(Checkpoint.load(src), dst, o.label());
            return join(convert, parallax.engine.model.QuantCheck.report(q), r, q);
        }
        Converter.Result r = Converter.convert(src, dst, o, output().progress("convert MiB", Converter.progressTotal(src)));
        return ConvertReport.of(r);
    }

    private static Report join(Report a, Report b, Object dataA, Object dataB) {
        Report.Builder out = Report.builder(a.title());
        for (Report x : java.util.List.of(a, b)) {
            for (Report.Part p : x.parts()) {
                if (p instanceof Report.Text t) out.text(t.markdown());
                else if (p instanceof Report.TablePart t) out.table(t.table(), t.caption());
                else if (p instanceof Report.ChartPart t) out.chart(t.chart(), t.caption());
            }
        }
        java.util.Map<String, Object> data = new java.util.LinkedHashMap<>();
        data.put("convert", dataA);
        data.put("check", dataB);
        return out.data(data).build();
    }

    /** Engine checkpoints are safetensors files whose metadata says so; anything unreadable is left to the converter's errors. */
    static boolean isCheckpoint(Path src) {
        if (!java.nio.file.Files.isRegularFile(src)) return false;
        try (ModelFile f = ModelFiles.open(src)) {
            return Checkpoint.isCheckpoint(f);
        } catch (RuntimeException e) {
            return false;
        }
    }

    static final java.util.List<String> TYPES = java.util.List.of("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k", "q5_1", "q5_0",
            "q4_k_m", "q4_k", "q4_0", "e4m3", "e5m2");

    static DType type(String s) {
        switch (s.toLowerCase(Locale.ROOT)) {
            case "f32": return DType.F32;
            case "f16": return DType.F16;
            case "bf16": return DType.BF16;
            case "q8_0": return DType.Q8_0;
            case "q4_0": return DType.Q4_0;
            case "q5_0": return DType.Q5_0;
            case "q5_1": return DType.Q5_1;
            case "q4_k": return DType.Q4_K;
            case "q5_k": return DType.Q5_K;
            case "q6_k": return DType.Q6_K;
            case "e4m3": return DType.F8_E4M3;
            case "e5m2": return DType.F8_E5M2;
            default:
                throw new UserError("unknown --to " + s + "." + parallax.engine.DidYouMean.hint(s, TYPES)
                        + " Known: " + String.join(", ", TYPES) + ".");
        }
    }
}
