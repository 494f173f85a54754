package parallax.magics;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.precision.CastAnalysis;
import parallax.engine.precision.CastSources;
import parallax.engine.precision.CastTarget;
import parallax.engine.precision.CodecBenchmark;
import parallax.engine.precision.FormatReports;
import parallax.engine.precision.GptPrecisionTraining;
import parallax.engine.precision.PrecisionTraining;
import parallax.engine.precision.PrecisionTrainingReport;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code %precision}: number formats bit by bit. Subcommands: formats, explain, range, cast,
 * train, bench. The work is done in {@code parallax.engine.precision}; this class reads flags.
 */
@Command(name = "precision",
        description = "FP32, FP16, BF16, FP8 (E4M3, E5M2, FNUZ) and the block-scaled MX/NVFP4 formats: facts, bit layouts, "
                + "ranges, cast errors, mixed-precision and FP8 training, and codec speed.",
        subcommands = {PrecisionCommand.Formats.class, PrecisionCommand.Explain.class, PrecisionCommand.Range.class,
                PrecisionCommand.Cast.class, PrecisionCommand.Train.class, PrecisionCommand.Bench.class})
public final class PrecisionCommand extends MagicCommand {

    static final String FORMAT_NAMES = "fp32, fp16, bf16, e4m3, e5m2, e4m3fnuz, e5m2fnuz; block formats mxfp8, mxfp8_e5m2, "
            + "mxfp6 (e3m2), mxfp6_e2m3, mxfp4, mxint8, nvfp4";

    /** A list of format names split into element formats and block formats. */
    record FormatNames(List<FloatFormat> floats, List<BlockFormat> blocks) {
        static FormatNames parse(String csv) {
            List<FloatFormat> f = new java.util.ArrayList<>();
            List<BlockFormat> b = new java.util.ArrayList<>();
            for (CastTarget t : CastTarget.parse(csv, null)) {
                if (t instanceof CastTarget.Blocks bl) b.add(bl.format());
                else f.add(((CastTarget.Elementwise) t).format());
            }
            return new FormatNames(f, b);
        }
    }

    // Catches a misspelt subcommand, so it gets a "did you mean" instead of picocli's "unmatched arguments".
    @Parameters(arity = "0..*", hidden = true)
    List<String> unknown;

    @Override
    protected Report execute() {
        if (unknown != null && !unknown.isEmpty()) {
            java.util.Set<String> names = spec.subcommands().keySet();
            throw new UserError("unknown subcommand '" + unknown.get(0) + "'." + DidYouMean.hint(unknown.get(0), names)
                    + " Subcommands: " + String.join(", ", names) + ".");
        }
        // No subcommand: the facts table, the most common question.
        return FormatReports.formats();
    }

    static Rounding rounding(boolean saturate) {
        return saturate ? Rounding.SATURATE : Rounding.NON_SATURATING;
    }

    @Command(name = "formats", description = "Table of every format: bits, bias, range, epsilon, inf/NaN, bytes, hardware.")
    static final class Formats extends MagicCommand {
        @Override
        protected Report execute() {
            return FormatReports.formats();
        }
    }

    @Command(name = "explain", description = "Show the bits each format stores for each value, the error and what happened.")
    static final class Explain extends MagicCommand {
        @Parameters(arity = "1..*", paramLabel = "VALUE", description = "Numbers such as 0.1 65504 1e-8 -inf nan.")
        List<String> values;

        @Option(names = "--as", defaultValue = "fp16,bf16,e4m3,e5m2", paramLabel = "FORMATS",
                description = "Comma-separated formats (FP32 is always shown). Known: " + FORMAT_NAMES + ". A block format takes "
                        + "the values as blocks and shows each block's scale and each element's bits. Default: ${DEFAULT-VALUE}.")
        String as;

        @Option(names = "--saturate", description = "Clamp overflow to the max finite value instead of inf/NaN.")
        boolean saturate;

        @Option(names = "--block", paramLabel = "N", description = "Block size for the block formats (default: the format's own, 32 for MX, 16 for NVFP4).")
        Integer block;

        @Override
        protected Report execute() {
            FormatNames f = FormatNames.parse(as);
            return FormatReports.explain(values, f.floats(), f.blocks(), block, rounding(saturate));
        }
    }

    @Command(name = "range", description = "Chart of the gap between neighbouring values per binade (log axes), per format.")
    static final class Range extends MagicCommand {
        @Option(names = "--formats", defaultValue = "fp32,fp16,bf16,e4m3,e5m2", paramLabel = "FORMATS",
                description = "Comma-separated formats. Known: " + FORMAT_NAMES + " (a block format draws its element type). "
                        + "Default: ${DEFAULT-VALUE}.")
        String formats;

        @Override
        protected Report execute() {
            FormatNames f = FormatNames.parse(formats);
            return FormatReports.range(f.floats(), f.blocks());
        }
    }

    @Command(name = "cast", description = "Error statistics of casting tensors to narrower formats, per format and per tensor.")
    static final class Cast extends MagicCommand {
        @Option(names = "--from", required = true, paramLabel = "SOURCE",
                description = "'random' (a synthetic weights-like tensor), 'model' (the GPT of the last %%parallel run, "
                        + "or the tiny GPT trained here for a few steps), or a model file: safetensors, a sharded index.json, "
                        + "GGUF, ONNX, PyTorch .bin.")
        String from;

        @Option(names = "--to", defaultValue = "bf16,fp16,e4m3,e5m2", paramLabel = "FORMATS",
                description = "Comma-separated target formats, block formats (mxfp8, mxfp6, mxfp4, mxint8, nvfp4 ...) included. "
                        + "Default: ${DEFAULT-VALUE}.")
        String to;

        @Option(names = "--block", paramLabel = "N", description = "Block size of the block formats, along each tensor's rows "
                + "(default: the format's own, 32 for MX, 16 for NVFP4).")
        Integer block;

        @Option(names = "--scaling", defaultValue = "none", paramLabel = "MODE",
                description = "none, per-tensor or per-channel (rows): multiply by max finite / max|x| before the cast. Default: ${DEFAULT-VALUE}.")
        String scaling;

        @Option(names = "--saturate", description = "Clamp overflow to the max finite value instead of inf/NaN.")
        boolean saturate;

        @Option(names = "--count", defaultValue = "1048576", description = "Values for --from random. Default: ${DEFAULT-VALUE}.")
        long count;

        @Option(names = "--seed", defaultValue = "1", description = "Seed for --from random. Default: ${DEFAULT-VALUE}.")
        long seed;

        @Override
        protected Report execute() {
            List<CastTarget> formats = CastTarget.parse(to, block);
            CastAnalysis.Scaling sc = CastAnalysis.Scaling.parse(scaling);
            Rounding r = rounding(saturate);
            switch (from.trim()) {
                case "random":
                    return CastAnalysis.analyse("a random tensor", String.format("%,d values: 98%% N(0, 0.02²) like weights, "
                            + "1%% N(0, 1e-6²) tiny values, 1%% N(0, 1000²) outliers; seed %d", count, seed),
                            List.of(CastAnalysis.random(count, seed)), formats, sc, r);
                case "model": {
                    CastSources.ModelWeights w = CastSources.trainedGpt(Session.lastRun());
                    return CastAnalysis.analyse("the trained GPT", w.description(), w.tensors(), formats, sc, r);
                }
                default:
                    Path p = Path.of(from.trim());
                    if (!Files.exists(p)) {
                        throw new UserError("--from " + from + ": no such file." + DidYouMean.hint(from.trim(), List.of("random", "model"))
                                + " Give a model file (safetensors, index.json, GGUF, ONNX, PyTorch .bin) or random / model.");
                    }
                    return CastSources.file(p, formats, sc, r);
            }
        }
    }

    @Command(name = "train", description = "Train one model in several precisions: the small MLP (loss scaling, gradient underflow) "
            + "or, with --model, the GPT (fp32, bf16, fp16, FP8 with delayed/current/no scaling).")
    static final class Train extends MagicCommand {
        @Option(names = "--dtypes", paramLabel = "DTYPES",
                description = "Comma-separated. The MLP: fp32, bf16, fp16 (dynamic loss scaling), fp16-noscale (default all four). "
                        + "The GPT (--model): fp32, bf16, fp16, fp8, fp8-current, fp8-noscale (default fp32,bf16,fp8,fp8-noscale).")
        String dtypes;

        @Option(names = "--model", paramLabel = "NAME", description = "Train the GPT preset NAME (tiny, small, medium, gpt2-124m) with the "
                + "engine's training loop, in this process, instead of the MLP.")
        String model;

        @Option(names = "--steps", defaultValue = "200", description = "Steps per dtype. Default: ${DEFAULT-VALUE}.")
        int steps;

        @Option(names = "--batch", description = "Batch size (default 512 for the MLP, 8 sequences for the GPT).")
        Integer batch;

        @Option(names = "--seed", defaultValue = "7", description = "Seed of the GPT's weights and data order. Default: ${DEFAULT-VALUE}.")
        long seed;

        @Option(names = "--lr", defaultValue = "0.1", description = "SGD learning rate of the MLP. Default: ${DEFAULT-VALUE}.")
        double lr;

        @Option(names = "--target-scale", defaultValue = "3e-4",
                description = "Size of the regression targets; smaller means smaller gradients. Default: ${DEFAULT-VALUE}.")
        double targetScale;

        @Override
        protected Report execute() {
            if (steps > 100_000) throw new UserError("--steps " + steps + " is too many for a demonstration (at most 100000)");
            if (model != null) {
                List<GptPrecisionTraining.Mode> modes = GptPrecisionTraining.Mode.parseList(dtypes == null ? "fp32,bf16,fp8,fp8-noscale" : dtypes);
                parallax.engine.parallel.TrainSpec base = GptPrecisionTraining.base(parallax.engine.model.GptConfig.preset(model), steps,
                        batch == null ? 8 : batch, seed);
                GptPrecisionTraining.Result result;
                try (Progress p = output().progress("precision train " + model, (long) steps * modes.size())) {
                    result = GptPrecisionTraining.run(base, modes, p);
                }
                return PrecisionTrainingReport.ofGpt(result);
            }
            if (dtypes != null && dtypes.toLowerCase(java.util.Locale.ROOT).contains("fp8"))
                throw new UserError("fp8 trains the GPT's linear layers: add --model tiny (or small, medium)");
            List<PrecisionTraining.Mode> modes = PrecisionTraining.Mode.parseList(dtypes == null ? "fp32,bf16,fp16,fp16-noscale" : dtypes);
            int batch = this.batch == null ? 512 : this.batch;
            if (!(targetScale > 0) || Double.isInfinite(targetScale)) throw new UserError("--target-scale must be a positive number");
            PrecisionTraining.Config d = PrecisionTraining.Config.defaults(modes, steps);
            PrecisionTraining.Config c = new PrecisionTraining.Config(modes, steps, batch, lr, targetScale,
                    d.initialScale(), d.growthInterval(), d.seed());
            PrecisionTraining.Result result;
            try (Progress p = output().progress("precision train", (long) steps * modes.size())) {
                result = PrecisionTraining.run(c, p);
            }
            return PrecisionTrainingReport.of(result);
        }
    }

    @Command(name = "bench", description = "Encode/decode throughput of the Parallax codecs vs libtorch's to(dtype), one thread.")
    static final class Bench extends MagicCommand {
        @Option(names = "--formats", defaultValue = "bf16,fp16,e4m3,e5m2", paramLabel = "FORMATS",
                description = "Comma-separated formats. Default: ${DEFAULT-VALUE}.")
        String formats;

        @Option(names = "--values", defaultValue = "1048576", description = "Array length. Default: ${DEFAULT-VALUE}.")
        int values;

        @Option(names = "--reps", defaultValue = "21", description = "Timed repetitions (median reported). Default: ${DEFAULT-VALUE}.")
        int reps;

        @Override
        protected Report execute() {
            List<FloatFormat> fs = FloatFormat.parseList(formats);
            CodecBenchmark.validate(values, reps);
            List<CodecBenchmark.Result> results;
            try (Progress p = output().progress("precision bench", fs.size())) {
                results = CodecBenchmark.run(fs, values, reps, p);
            }
            return CodecBenchmark.report(results, reps);
        }
    }
}
