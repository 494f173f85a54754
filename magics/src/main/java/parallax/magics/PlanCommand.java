package parallax.magics;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.UserError;
import parallax.engine.model.GptConfig;
import parallax.engine.numerics.DType;
import parallax.engine.plan.CommValidation;
import parallax.engine.plan.Conventions;
import parallax.engine.plan.GpuCluster;
import parallax.engine.plan.GpuProfile;
import parallax.engine.plan.HfConfig;
import parallax.engine.plan.InferencePlan;
import parallax.engine.plan.Layout;
import parallax.engine.plan.LayoutSearch;
import parallax.engine.plan.MemoryValidation;
import parallax.engine.plan.ModelCatalog;
import parallax.engine.plan.ModelSpec;
import parallax.engine.plan.PlanReports;
import parallax.engine.plan.Planner;
import parallax.engine.plan.TrainingPlan;
import parallax.engine.plan.ValidationRuns;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code %plan}: memory, communication and time of training (or serving) a model on a
 * cluster, by the formulas of the field with every assumption shown; {@code --search}
 * ranks every layout; {@code --infer} sizes inference; {@code --validate} compares the
 * planner with memory the engine measured.
 */
@Command(name = "plan", description = {
        "Capacity planning: memory per GPU, communication, step time, MFU and training time for a model on a cluster.",
        "Examples: %%plan llama-2-7b --gpu h100 --gpus 1 --zero 0 --recompute full --offload optimizer",
        "          %%plan llama-2-70b --gpu h100 --gpus 64 --tp 8 --pp 2 --zero 1 --global-batch 512 --tokens 2T",
        "          %%plan llama-2-70b --gpu h100 --gpus 1024 --search",
        "          %%plan llama-3-70b --gpus 512 --seq 131072 --cp 16 --tp 8 --pp 4 --recompute selective",
        "          %%plan llama-3-8b --infer --encoding q4_k_m --context 8192"})
public final class PlanCommand extends MagicCommand {

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "Catalog model name (see --list), e.g. llama-2-70b.")
    String modelName;

    @Option(names = {"-m", "--model"}, description = "Catalog model name (same as the positional MODEL).")
    String modelOption;

    @Option(names = "--config", paramLabel = "FILE", description = "A Hugging Face config.json instead of a catalog name.")
    Path config;

    @Option(names = "--list", description = "List the catalog models and GPU profiles.")
    boolean list;

    // Explicit shapes (override the catalog/config, or describe a new model).
    @Option(names = "--arch", description = "Block layout for explicit shapes: llama, qwen2, gpt2, bert (default llama).")
    String arch;
    @Option(names = "--layers") Integer layers;
    @Option(names = "--hidden") Integer hidden;
    @Option(names = "--heads") Integer heads;
    @Option(names = "--kv-heads") Integer kvHeads;
    @Option(names = "--ffn", description = "MLP intermediate size (per expert).") Integer ffn;
    @Option(names = "--vocab") Integer vocab;
    @Option(names = "--max-seq", description = "Positions the model supports.") Integer maxSeq;
    @Option(names = "--experts", description = "MoE experts per layer.") Integer experts;
    @Option(names = "--top-k", description = "MoE experts per token.") Integer topK;

    // The cluster.
    @Option(names = "--gpu", description = "GPU profile: h100-80gb, h200-141gb, b200-180gb, mi300x-192gb, a100-80gb, a100-40gb, v100-32gb, l40s, custom (default h100-80gb).")
    String gpu = "h100-80gb";
    @Option(names = "--gpus", description = "Total GPUs (default dp x tp x pp).") Integer gpus;
    @Option(names = "--nodes", description = "Nodes (instead of --gpus).") Integer nodes;
    @Option(names = "--gpus-per-node") Integer gpusPerNode;
    @Option(names = "--gpu-mem-gib", description = "Custom/override GPU memory in GiB.") Double gpuMemGib;
    @Option(names = "--tflops", description = "Custom/override dense bf16/fp16 TFLOP/s.") Double tflops;
    @Option(names = "--fp8-tflops", description = "Custom/override dense fp8 TFLOP/s.") Double fp8Tflops;
    @Option(names = "--nvlink-gbs", description = "Custom/override NVLink GB/s per direction per GPU.") Double nvlinkGBs;
    @Option(names = "--net-gbps", description = "Custom/override network Gb/s per GPU (InfiniBand/Ethernet).") Double netGbps;
    @Option(names = "--hbm-gbs", description = "Custom/override GPU memory bandwidth in GB/s (for --infer's decode tokens/s).") Double hbmGBs;

    // Layout.
    @Option(names = "--dp") Integer dp;
    @Option(names = "--tp") int tp = 1;
    @Option(names = "--pp") int pp = 1;
    @Option(names = "--ep", description = "Expert-parallel ranks (MoE): each holds experts/ep; divides dp (order tp-cp-ep-dp-pp).") int ep = 1;
    @Option(names = "--cp", description = "Context-parallel ranks per sequence (ring attention): each holds seq/cp tokens; seq must divide into 2·cp chunks.") int cp = 1;
    @Option(names = "--vpp", description = "Virtual stages per pipeline rank (interleaved 1F1B; implies --schedule interleaved).") int vpp = 1;
    @Option(names = "--schedule", description = "Pipeline schedule: 1f1b (default), gpipe, interleaved (with --vpp 2 or more), zb-h1 (zero bubble).") String schedule;
    @Option(names = "--zero", description = "ZeRO stage 0-3.") int zero = 0;
    @Option(names = {"--micro-batch", "--mb"}) int microBatch = 1;
    @Option(names = {"--accum", "--micro-batches"}, description = "Micro-batches per step per pipeline (gradient accumulation).") Integer accum;
    @Option(names = "--global-batch", description = "Sequences per optimizer step (sets --accum).") Long globalBatch;
    @Option(names = "--seq", description = "Training sequence length (default: the model's, at most 4096).") Integer seq;
    @Option(names = "--recompute", description = "Activation recomputation: none, selective, full.") String recompute = "none";
    @Option(names = "--sp", negatable = true, description = "Sequence parallelism (needs tp > 1; default on when tp > 1).") Boolean sp;
    @Option(names = "--optimizer", description = "adamw, adam-8bit, sgd.") String optimizer = "adamw";
    @Option(names = "--dtype", description = "fp32, bf16, fp16, fp8 (default bf16).") String dtype = "bf16";
    @Option(names = "--offload", description = "Offload to CPU: none, optimizer, params, both.") String offload = "none";

    // Conventions.
    @Option(names = "--units", description = "gib (2^30 bytes, default) or gb (10^9 bytes).") String units = "gib";
    @Option(names = "--bytes-per-param", description = "16 (ZeRO paper: fp16 grads) or 18 (fp32 grads).") int bytesPerParam = 16;
    @Option(names = "--headroom", description = "Fraction of GPU memory kept free (default 0.10).") double headroom = 0.10;
    @Option(names = "--compute-eff", description = "Fraction of dense peak reached by the GEMMs (default 0.55).") double computeEff = 0.55;
    @Option(names = "--link-eff", description = "Fraction of link bandwidth reached by collectives (default 0.80).") double linkEff = 0.80;
    @Option(names = "--overlap", description = "Fraction of DP communication hidden behind backward (default 1.0).") double overlap = 1.0;
    @Option(names = "--dropout", negatable = true, description = "Count dropout masks in activations, as the paper does (default true; --no-dropout for models trained without).") boolean dropout = true;
    @Option(names = "--tokens", description = "Training token budget, e.g. 2T or 300B: adds total time.") String tokens;

    // Modes.
    @Option(names = "--search", description = "Rank every valid layout of the cluster.") boolean search;
    @Option(names = "--top", description = "Rows of the search table (default 15).") int top = 15;
    @Option(names = "--repeat", description = "Benchmark: run the search this many times and report the median and all times.") int repeat = 1;
    @Option(names = "--infer", description = "Plan inference: weights by encoding + KV cache.") boolean infer;
    @Option(names = "--encoding", description = "f32, f16, bf16, fp8, q8_0, q4_0, q4_k_m (default f16).") String encoding = "f16";
    @Option(names = "--context", description = "Inference context length (default: the model's).") Integer context;
    @Option(names = "--batch", description = "Inference batch (sequences).") int batch = 1;
    @Option(names = "--kv-bytes", description = "Bytes per KV cache element (2 = f16).") int kvBytes = 2;
    @Option(names = "--validate", description = "Run the engine's strategies (DP, ZeRO 1-3, TP, PP, bf16, checkpointing, SP, CP, interleaved, ZB-H1) on a small GPT (tiny; or MODEL small-gpt/medium-gpt/long-gpt) over worker ranks and compare measured memory with the planner's prediction.") boolean validate;
    @Option(names = "--measured", paramLabel = "FILE", description = "A measurement record (JSON) to validate against instead of running.") Path measured;
    @Option(names = "--ranks", description = "Ranks for --validate runs: 2 (default) or 4 (adds DP x TP, DP x PP, TP x PP, CP x DP).") int ranks = 2;
    @Option(names = "--steps", description = "Training steps per strategy for --validate (default 2) or per run for --validate-comm (default 8).") Integer steps;
    @Option(names = "--validate-comm", description = "Compare the planner's DP and TP communication time with the engine's, measured on two nodes "
            + "(network namespaces of this machine, root) whose link is shaped to each of --rates; model small-gpt unless MODEL names another.") boolean validateComm;
    @Option(names = "--rates", description = "With --validate-comm: link rates (default 100mbit,1gbit,10gbit).") String rates = "100mbit,1gbit,10gbit";
    @Option(names = "--if-possible", description = "With --validate-comm: where no test bed can be built (not root), say why in one line instead of failing.") boolean ifPossible;
    @Option(names = "--save", paramLabel = "FILE", description = "With --validate: also write the measurement record to FILE.") Path save;

    @Override
    protected Report execute() {
        if (list) return listing();
        checkRanges();
        if (validate && validateComm) throw new UserError("give --validate (memory) or --validate-comm (communication), not both");
        if (validate) return validate();
        if (validateComm) return validateComm();
        ModelSpec m = model();
        Conventions conv = new Conventions(units(), bytesPerParam, headroom, computeEff, linkEff, overlap, dropout);
        if (infer) {
            int ctx = context != null ? context : m.maxSeq();
            List<GpuProfile> gs = new ArrayList<>(GpuProfile.all());
            GpuProfile chosen = gpuProfile();
            if (!gpu.equals("h100-80gb") || gpuMemGib != null || hbmGBs != null) {
                gs.removeIf(x -> x.name().equals(chosen.name()));
                gs.add(0, chosen);
            }
            return PlanReports.inference(InferencePlan.plan(m, InferencePlan.Encoding.of(encoding), ctx, batch, kvBytes, headroom, gs),
                    conv.units());
        }
        GpuProfile g = gpuProfile();
        int s = seq != null ? seq : Math.min(m.maxSeq(), 4096);
        if (search) {
            GpuCluster cl = cluster(g, null);
            long gb = globalBatch != null ? globalBatch : Math.max(cl.gpus(), 4L * 1024 * 1024 / s);
            LayoutSearch.Request req = new LayoutSearch.Request(gb, s, dtype(), Planner.optimizer(optimizer), null);
            double[] times = new double[repeat], cpu = new double[repeat], processCpu = new double[repeat];
            // CPU time as well: on a shared machine the wall time mostly measures the wait for a core. The calling
            // thread's, and the whole process's (the search's other threads, the garbage collector, the JIT compiler).
            java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
            boolean cpuTimed = threads.isCurrentThreadCpuTimeSupported();
            var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            var process = os instanceof com.sun.management.OperatingSystemMXBean x && x.getProcessCpuTime() >= 0 ? x : null;
            LayoutSearch.Result r = null;
            for (int i = 0; i < repeat; i++) {
                long t0 = System.nanoTime(), c0 = cpuTimed ? threads.getCurrentThreadCpuTime() : 0;
                long p0 = process != null ? process.getProcessCpuTime() : 0;
                r = LayoutSearch.search(m, cl, req, conv);
                times[i] = (System.nanoTime() - t0) / 1e9;
                cpu[i] = cpuTimed ? (threads.getCurrentThreadCpuTime() - c0) / 1e9 : Double.NaN;
                processCpu[i] = process != null ? (process.getProcessCpuTime() - p0) / 1e9 : Double.NaN;
            }
            double[] sorted = times.clone(), sortedCpu = cpu.clone(), sortedProcess = processCpu.clone();
            java.util.Arrays.sort(sorted);
            java.util.Arrays.sort(sortedCpu);
            java.util.Arrays.sort(sortedProcess);
            Report rep = PlanReports.search(r, top, times[0]);
            if (repeat == 1) return rep;
            @SuppressWarnings("unchecked")
            java.util.Map<String, Object> data = new java.util.LinkedHashMap<>((java.util.Map<String, Object>) rep.data());
            data.put("repeat", repeat);
            data.put("first_seconds", times[0]);
            data.put("median_seconds", sorted[repeat / 2]);
            data.put("all_seconds", times);
            if (cpuTimed) {
                data.put("first_cpu_seconds", cpu[0]);
                data.put("median_cpu_seconds", sortedCpu[repeat / 2]);
            }
            if (process != null) {
                data.put("first_process_cpu_seconds", processCpu[0]);
                data.put("median_process_cpu_seconds", sortedProcess[repeat / 2]);
            }
            Report.Builder b = Report.builder(rep.title());
            for (Report.Part part : rep.parts()) {
                if (part instanceof Report.Text t) b.text(t.markdown());
                else if (part instanceof Report.TablePart t) b.table(t.table(), t.caption());
                else if (part instanceof Report.ChartPart c) b.chart(c.chart(), c.caption());
            }
            b.text(String.format("Benchmark: %d searches in one JVM, first (cold) %.0f ms, median %.1f ms%s.", repeat, times[0] * 1e3,
                    sorted[repeat / 2] * 1e3, cpuTimed ? String.format(" (CPU time of the calling thread: first %.0f ms, median %.1f ms)",
                            cpu[0] * 1e3, sortedCpu[repeat / 2] * 1e3) : "")
                    + (process == null ? "" : String.format(Locale.ROOT, "; CPU time of the whole process (search threads, garbage collector, "
                    + "compiler): first %.0f ms, median %.1f ms", processCpu[0] * 1e3, sortedProcess[repeat / 2] * 1e3)));
            return b.data(data).build();
        }
        GpuCluster cl = cluster(g, (long) (dp != null ? dp : 1) * cp * tp * pp);
        int n = cl.gpus();
        long model = (long) cp * tp * pp;
        if (n % model != 0)
            throw new UserError(n + " GPUs are not divisible by " + (cp > 1 ? "cp x tp x pp = " : "tp x pp = ") + model);
        int d = dp != null ? dp : (int) (n / model);
        if (Boolean.TRUE.equals(sp) && tp == 1)
            throw new UserError("--sp shards the sequence over the tensor-parallel ranks: it needs --tp 2 or more");
        int acc = accum != null ? accum : 1;
        if (globalBatch != null) {
            if (globalBatch % ((long) d * microBatch) != 0)
                throw new UserError("global batch " + globalBatch + " is not a multiple of dp x micro-batch = " + (long) d * microBatch);
            if (globalBatch / ((long) d * microBatch) > Integer.MAX_VALUE)
                throw new UserError("--global-batch " + globalBatch + " needs more than " + Integer.MAX_VALUE + " micro-batches per step");
            acc = (int) (globalBatch / ((long) d * microBatch));
        }
        boolean off = offload.equalsIgnoreCase("optimizer") || offload.equalsIgnoreCase("both");
        boolean offP = offload.equalsIgnoreCase("params") || offload.equalsIgnoreCase("both");
        if (!off && !offP && !offload.equalsIgnoreCase("none"))
            throw new UserError("unknown --offload '" + offload + "' (none, optimizer, params, both)");
        if (ep > 1 && d % ep != 0) throw new UserError("--ep " + ep + " must divide dp = " + d + " (the expert-parallel group is carved out of the data-parallel ranks)");
        // SP by default where it applies: tp > 1 and each rank's s/cp tokens divide by tp.
        boolean seqPar = sp != null ? sp : tp > 1 && s % cp == 0 && (s / cp) % tp == 0;
        Layout l = new Layout(d, tp, pp, vpp, zero, microBatch, acc, s, recompute(), seqPar,
                Planner.optimizer(optimizer), dtype(), off, offP, schedule(), cp, ep);
        TrainingPlan p = Planner.plan(m, cl, l, conv);
        List<TrainingPlan> stages = new ArrayList<>();
        for (int z = 0; z <= 3; z++) {
            if (z > 0 && d == 1) break;
            stages.add(Planner.plan(m, cl, l.withZero(z), conv));
        }
        return PlanReports.training(p, tokens == null ? 0 : count(tokens), stages);
    }

    private Report validate() {
        String name = modelName != null ? modelName : modelOption;
        if (measured != null) {
            // The model the record was measured on (ValidationRuns.save names it) unless MODEL says otherwise.
            String model = name != null ? name : MemoryValidation.model(measured);
            ModelSpec m = model == null ? ModelCatalog.get("tiny-gpt") : validationModel(model);
            var rows = MemoryValidation.compare(m, MemoryValidation.read(measured));
            if (rows.isEmpty()) throw new UserError(measured + " holds no runs");
            return MemoryValidation.report(m, rows, measured.getFileName().toString());
        }
        if (save != null) ValidationRuns.checkSaveTarget(save);
        String preset = name == null ? "tiny" : name.toLowerCase(Locale.ROOT).replaceFirst("-gpt$", "");
        GptConfig cfg = GptConfig.preset(preset);
        ModelSpec m = ValidationRuns.spec(cfg);
        List<ValidationRuns.Strategy> strategies = ValidationRuns.defaults(ranks, cfg);
        parallax.engine.cluster.Cluster session = parallax.engine.cluster.Cluster.session();
        boolean hadPool = session.current() != null;
        List<MemoryValidation.Measurement> runs;
        try (Progress p = output().progress("%plan --validate", strategies.size())) {
            runs = ValidationRuns.run(cfg, strategies, steps(2), 8, session::pool, (i, what) -> p.update(i, Map.of("strategy", what)));
        } finally {
            if (!hadPool) session.stop();
        }
        if (save != null) ValidationRuns.save(m.name(), runs, save);
        return MemoryValidation.report(m, MemoryValidation.compare(m, runs), "the engine's " + ranks + " worker ranks (CPU, Gloo and shared memory), "
                + steps(2) + " steps of " + cfg.name() + " GPT, global batch 8, measured this run" + (save != null ? ", saved to " + save : ""));
    }

    /** A catalog model, or one of the engine's presets as the planner sees it ("moe-tiny-gpt": its experts too). */
    private static ModelSpec validationModel(String name) {
        var found = ModelCatalog.find(name);
        if (found.isPresent()) return found.get();
        String preset = name.toLowerCase(Locale.ROOT).replaceFirst("-gpt$", "");
        if (GptConfig.presetNames().contains(preset)) return ValidationRuns.spec(GptConfig.preset(preset));
        return ModelCatalog.get(name);
    }

    private int steps(int dflt) { return steps == null ? dflt : steps; }

    private Report validateComm() {
        String name = modelName != null ? modelName : modelOption;
        GptConfig cfg = GptConfig.preset(name == null ? "small" : name.toLowerCase(Locale.ROOT).replaceFirst("-gpt$", ""));
        List<Long> rs = CommValidation.rates(rates);
        Conventions conv = new Conventions(units(), bytesPerParam, headroom, computeEff, linkEff, overlap, dropout);
        String why = parallax.engine.cluster.TestBed.unavailableReason();
        if (why != null) {
            if (!ifPossible) throw new UserError("--validate-comm builds a two-node test bed and cannot here: " + why);
            output().out().println("no test bed here (" + why + "): nothing measured");
            return null;
        }
        List<CommValidation.Row> rows;
        try (Progress p = output().progress("%plan --validate-comm", 2L * rs.size())) {
            rows = CommValidation.run(cfg, rs, steps(8), 8, conv, parallax.engine.cluster.Cluster.session().workerOptions(),
                    (i, what) -> p.update(i, Map.of("run", what)));
        }
        return CommValidation.report(cfg, rows, steps(8), 8, conv);
    }

    /**
     * Every numeric flag in its range, named, before any of them is used (arithmetic on
     * --tp or --seq comes before the engine's records check them), and in every mode, so a
     * value that a mode ignores is still refused rather than passed over.
     */
    private void checkRanges() {
        positive("--tp", tp);
        positive("--pp", pp);
        positive("--ep", ep);
        positive("--vpp", vpp);
        positive("--cp", cp);
        positive("--micro-batch", microBatch);
        if (dp != null) positive("--dp", dp);
        if (accum != null) positive("--micro-batches", accum);
        if (globalBatch != null) positive("--global-batch", globalBatch);
        if (seq != null) positive("--seq", seq);
        if (gpus != null && gpus < 1) throw new UserError("number of GPUs must be positive, got " + gpus);
        if (nodes != null && nodes < 1) throw new UserError("number of nodes must be positive, got " + nodes);
        if (gpusPerNode != null) positive("--gpus-per-node", gpusPerNode);
        if (zero < 0 || zero > 3) throw new UserError("--zero: ZeRO stage must be 0, 1, 2 or 3, got " + zero);
        positive("--top", top);
        positive("--repeat", repeat);
        if (context != null) positive("--context", context);
        positive("--batch", batch);
        positive("--kv-bytes", kvBytes);
        if (steps != null) positive("--steps", steps);
        if (arch != null) archOf(arch);
        if (tflops != null) positiveFinite("--tflops", tflops);
        if (fp8Tflops != null && !(fp8Tflops >= 0 && !Double.isInfinite(fp8Tflops)))
            throw new UserError("--fp8-tflops must be 0 (no FP8) or a positive number, got " + fp8Tflops);
        if (nvlinkGBs != null) positiveFinite("--nvlink-gbs", nvlinkGBs);
        if (netGbps != null) positiveFinite("--net-gbps", netGbps);
        if (hbmGBs != null) positiveFinite("--hbm-gbs", hbmGBs);
        if (gpuMemGib != null) GpuProfile.gibToBytes("--gpu-mem-gib", gpuMemGib);
    }

    private static void positiveFinite(String flag, double value) {
        if (!(value > 0) || Double.isInfinite(value)) throw new UserError(flag + " must be a positive number, got " + value);
    }

    private static void positive(String flag, long value) {
        if (value < 1) throw new UserError(flag + " must be a positive number, got " + value);
    }

    private ModelSpec model() {
        if (modelName != null && modelOption != null && !modelName.equals(modelOption))
            throw new UserError("two models given: " + modelName + " and " + modelOption);
        String name = modelName != null ? modelName : modelOption;
        ModelSpec base;
        if (config != null) {
            if (name != null) throw new UserError("give either a model name or --config, not both");
            base = HfConfig.read(config);
        } else if (name != null) {
            base = ModelCatalog.get(name);
        } else if (layers != null || hidden != null) {
            if (layers == null || hidden == null || heads == null || vocab == null)
                throw new UserError("explicit shapes need at least --layers, --hidden, --heads and --vocab");
            ModelSpec.Arch a = arch == null ? ModelSpec.Arch.LLAMA : archOf(arch);
            int f = ffn != null ? ffn : a.gatedMlp() ? (int) (8L * hidden / 3) : 4 * hidden;
            return new ModelSpec("custom", a, layers, hidden, heads, kvHeads != null ? kvHeads : heads, f, vocab,
                    maxSeq != null ? maxSeq : 4096, experts != null ? experts : 1, topK != null ? topK : 1, false);
        } else {
            throw new UserError("name a model (e.g. %plan llama-2-7b), give --config config.json, or explicit --layers/--hidden/--heads/--vocab; --list shows the catalog");
        }
        if (layers == null && hidden == null && heads == null && kvHeads == null && ffn == null && vocab == null && maxSeq == null
                && experts == null && topK == null) return base;
        return new ModelSpec(base.name() + "*", arch != null ? archOf(arch) : base.arch(), or(layers, base.layers()),
                or(hidden, base.hidden()), or(heads, base.heads()), or(kvHeads, base.kvHeads()), or(ffn, base.ffn()),
                or(vocab, base.vocab()), or(maxSeq, base.maxSeq()), or(experts, base.experts()), or(topK, base.topK()),
                base.tiedEmbeddings(), arch != null ? ModelSpec.Detail.NONE : base.detail());
    }

    private static int or(Integer v, int d) { return v != null ? v : d; }

    static ModelSpec.Arch archOf(String s) {
        try {
            ModelSpec.Arch a = ModelSpec.Arch.valueOf(s.toUpperCase(Locale.ROOT).replace("-", ""));
            // The newer layouts need their config's extra sizes (latent ranks, head size): a catalog name or --config gives them.
            if (a.ordinal() > ModelSpec.Arch.PARALLAX_GPT.ordinal()) throw new IllegalArgumentException(s);
            return a;
        } catch (IllegalArgumentException e) {
            throw new UserError("unknown --arch '" + s + "' (llama, qwen2, gpt2, bert)");
        }
    }

    private GpuProfile gpuProfile() {
        GpuProfile g;
        if (gpu.equalsIgnoreCase("custom")) {
            if (gpuMemGib == null || tflops == null)
                throw new UserError("--gpu custom needs at least --gpu-mem-gib and --tflops (and optionally --fp8-tflops, --nvlink-gbs, --net-gbps, --gpus-per-node)");
            return GpuProfile.custom(gpuMemGib, tflops, fp8Tflops != null ? fp8Tflops : 0, nvlinkGBs != null ? nvlinkGBs : 300,
                    netGbps != null ? netGbps / 8 : 25, gpusPerNode != null ? gpusPerNode : 8).withHbm(hbmGBs != null ? hbmGBs * 1e9 : null);
        }
        g = GpuProfile.get(gpu);
        return g.with(gpuMemGib != null ? GpuProfile.gibToBytes("--gpu-mem-gib", gpuMemGib) : null, tflops != null ? tflops * 1e12 : null,
                fp8Tflops != null ? fp8Tflops * 1e12 : null, nvlinkGBs != null ? nvlinkGBs * 1e9 : null,
                netGbps != null ? netGbps / 8 * 1e9 : null, gpusPerNode).withHbm(hbmGBs != null ? hbmGBs * 1e9 : null);
    }

    private GpuCluster cluster(GpuProfile g, Long layoutGpus) {
        if (gpus != null && nodes != null) throw new UserError("give --gpus or --nodes, not both");
        if (nodes != null) return new GpuCluster(g, nodes);
        long n = gpus != null ? gpus : layoutGpus != null ? layoutGpus : g.gpusPerNode();
        if (n > Integer.MAX_VALUE || n <= 0) throw new UserError("number of GPUs must be positive, got " + n);
        return GpuCluster.ofGpus(g, (int) n);
    }

    private Conventions.Units units() {
        return switch (units.toLowerCase(Locale.ROOT)) {
            case "gib" -> Conventions.Units.GIB;
            case "gb" -> Conventions.Units.GB;
            default -> throw new UserError("unknown --units '" + units + "' (gib or gb)");
        };
    }

    private DType dtype() {
        for (DType d : Layout.DTYPES) if (d.label().equalsIgnoreCase(dtype)) return d;
        throw new UserError("unknown --dtype '" + dtype + "' (fp32, bf16, fp16, fp8)");
    }

    private Layout.Recompute recompute() {
        try {
            return Layout.Recompute.valueOf(recompute.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("unknown --recompute '" + recompute + "' (none, selective, full)");
        }
    }

    private Layout.Schedule schedule() {
        if (schedule == null) return null;
        try {
            return Layout.Schedule.of(schedule);
        } catch (UserError e) {
            throw new UserError("unknown --schedule '" + schedule + "' (1f1b, gpipe, interleaved, zb-h1)");
        }
    }

    /** "2T", "300B", "1.5e12", "7M" as a number. */
    static double count(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT).replace(",", "").replace("_", "");
        double mult = 1;
        if (t.endsWith("T")) mult = 1e12;
        else if (t.endsWith("B") || t.endsWith("G")) mult = 1e9;
        else if (t.endsWith("M")) mult = 1e6;
        else if (t.endsWith("K")) mult = 1e3;
        if (mult != 1) t = t.substring(0, t.length() - 1);
        double v;
        try {
            v = Double.parseDouble(t) * mult;
        } catch (NumberFormatException e) {
            throw new UserError("cannot read '" + s + "' as a count (examples: 2T, 300B, 1.5e12)");
        }
        if (!(v > 0)) throw new UserError("token budget must be positive, got " + s);
        return v;
    }

    private Report listing() {
        tech.tablesaw.api.Table models = tech.tablesaw.api.Table.create("models");
        var name = tech.tablesaw.api.StringColumn.create("model");
        var params = tech.tablesaw.api.StringColumn.create("parameters");
        var shape = tech.tablesaw.api.StringColumn.create("shape");
        for (ModelSpec m : ModelCatalog.all()) {
            name.append(m.name());
            params.append(String.format("%,d", m.parameters()));
            shape.append(m.shapeLine().substring(m.name().length() + 2));
        }
        models.addColumns(name, params, shape);
        tech.tablesaw.api.Table gpusT = tech.tablesaw.api.Table.create("gpus");
        var gn = tech.tablesaw.api.StringColumn.create("gpu");
        var gd = tech.tablesaw.api.StringColumn.create("memory, bf16/fp8 TFLOP/s, NVLink/network GB/s per GPU, GPUs per node, HBM TB/s");
        for (GpuProfile g : GpuProfile.all()) {
            gn.append(g.name());
            gd.append(String.format("%.0f GiB, %.0f/%.0f, %.0f/%.2f, %d, %.2f", g.memoryBytes() / (double) (1L << 30), g.bf16Flops() / 1e12,
                    g.fp8Flops() / 1e12, g.nvlinkBytesPerS() / 1e9, g.netBytesPerS() / 1e9, g.gpusPerNode(), g.hbmBytesPerS() / 1e12));
        }
        gpusT.addColumns(gn, gd);
        return Report.builder("Planner catalog").table(models, "Models (parameters summed from the config's tensors)")
                .table(gpusT, "GPU profiles (vendor datasheets; bandwidth per direction)").build();
    }
}
