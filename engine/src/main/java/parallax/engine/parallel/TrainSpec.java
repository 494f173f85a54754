package parallax.engine.parallel;

import java.util.function.Consumer;
import parallax.engine.UserError;
import parallax.engine.cluster.MeshShape;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.numerics.DType;

/**
 * One training run: model, layout (dp x cp x tp x pp, sequence parallelism, virtual
 * pipeline stages), ZeRO stage, micro-batching and schedule, precision, checkpointing,
 * optimizer, data, and where the optimizer lives.
 * {@code batch} is the global batch in sequences per optimizer step; each DP rank takes
 * batch/dp of it and splits that into {@code microBatches}. {@code dataFile}, when set, is
 * a UTF-8 text every rank reads at the same path (as it finds the class path);
 * {@code offloadOptimizer} keeps fp32 master weights and optimizer state in host memory
 * (ZeRO-Offload) on GPU ranks; {@code tf32} lets CUDA matmuls use TF32 (off: parity runs);
 * {@code faultTolerance}: checkpoints, resume and restarts.
 * {@code precision} F8_E4M3 ("fp8") trains the blocks' linear layers in FP8 with the
 * {@code fp8} recipe ({@link Fp8Recipe}; null for every other precision), everything else in
 * the recipe's base precision ({@link #computeDType}).
 */
public record TrainSpec(
        GptConfig model, int dp, int tp, int pp, int zero, int microBatches,
        PipelineParallel.Schedule schedule, DType precision, int checkpointEvery,
        int steps, long seed, int batch, String optimizer, double lr,
        TextData.Source data, String dataFile, int localSgdEvery, boolean offloadOptimizer, boolean tf32,
        boolean exportParameters, int cp, boolean sequenceParallel, int virtualStages, FaultTolerance faultTolerance,
        Fp8Recipe fp8, int ep) {

    public TrainSpec {
        if (ep == 0) ep = 1; // a spec written before expert parallelism existed
    }

    public static TrainSpec defaults(GptConfig model) {
        return new TrainSpec(model, 1, 1, 1, 0, 1, PipelineParallel.Schedule.ONE_F_ONE_B, DType.F32, 0,
                20, 7, 8, "adamw", 1e-3, TextData.Source.TEXT, null, 0, false, false, false, 1, false, 1, FaultTolerance.NONE, null, 1);
    }

    /** The dtype of the weights, activations and every op that is not an FP8 matmul: the precision, or an FP8 recipe's base. */
    public DType computeDType() {
        return precision == DType.F8_E4M3 ? (fp8 == null ? Fp8Recipe.defaults() : fp8).base() : precision;
    }

    /** The FP8 recipe of an fp8 run (its defaults when none was given), else null. */
    public Fp8Recipe fp8Recipe() {
        return precision == DType.F8_E4M3 ? (fp8 == null ? Fp8Recipe.defaults() : fp8) : null;
    }

    /** Checkpointing and restarts (never null: {@link FaultTolerance#NONE} when off). */
    public FaultTolerance faultTolerance() { return faultTolerance == null ? FaultTolerance.NONE : faultTolerance; }

    /** The fields of a spec, to change some and make a new one ({@link #with}). */
    public static final class Fields {
        public GptConfig model;
        public int dp, tp, pp, cp, ep, virtualStages, zero, microBatches, checkpointEvery, steps, batch, localSgdEvery;
        public PipelineParallel.Schedule schedule;
        public DType precision;
        public long seed;
        public String optimizer, dataFile;
        public double lr;
        public TextData.Source data;
        public boolean offloadOptimizer, tf32, exportParameters, sequenceParallel;
        public FaultTolerance faultTolerance;
        public Fp8Recipe fp8;

        Fields(TrainSpec s) {
            model = s.model; dp = s.dp; tp = s.tp; pp = s.pp; zero = s.zero; microBatches = s.microBatches;
            schedule = s.schedule; precision = s.precision; checkpointEvery = s.checkpointEvery; steps = s.steps;
            seed = s.seed; batch = s.batch; optimizer = s.optimizer; lr = s.lr; data = s.data; dataFile = s.dataFile;
            localSgdEvery = s.localSgdEvery; offloadOptimizer = s.offloadOptimizer; tf32 = s.tf32;
            exportParameters = s.exportParameters; cp = s.cp; sequenceParallel = s.sequenceParallel;
            virtualStages = s.virtualStages;
            faultTolerance = s.faultTolerance();
            fp8 = s.fp8;
            ep = s.ep;
        }

        TrainSpec build() {
            return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                    batch, optimizer, lr, data, dataFile, localSgdEvery, offloadOptimizer, tf32, exportParameters, cp,
                    sequenceParallel, virtualStages, faultTolerance, fp8, ep);
        }
    }

    /** This spec with the fields {@code change} sets. */
    public TrainSpec with(Consumer<Fields> change) {
        Fields f = new Fields(this);
        change.accept(f);
        return f.build();
    }

    public int world() { return dp * tp * pp * cp; }

    /** The mesh this run's ranks form. */
    public MeshShape mesh() { return new MeshShape(dp, tp, pp, cp); }

    /** Tokens of a sequence each context-parallel rank holds. */
    public int localSequence() { return model.sequence() / cp; }

    /** The layout in a few characters, e.g. "dp=2,tp=2,zero=1" or "pp=2,m=4,1f1b". */
    public String label() {
        StringBuilder b = new StringBuilder();
        if (dp > 1 || (tp == 1 && pp == 1 && cp == 1)) b.append("dp=").append(dp);
        if (cp > 1) b.append(b.length() > 0 ? "," : "").append("cp=").append(cp);
        if (ep > 1) b.append(b.length() > 0 ? "," : "").append("ep=").append(ep);
        if (tp > 1) b.append(b.length() > 0 ? "," : "").append("tp=").append(tp).append(sequenceParallel ? ",sp" : "");
        if (pp > 1) b.append(b.length() > 0 ? "," : "").append("pp=").append(pp).append(virtualStages > 1 ? ",vpp=" + virtualStages : "")
                .append(",m=").append(microBatches).append(",").append(schedule.label());
        else if (microBatches > 1) b.append(",accum=").append(microBatches);
        if (zero > 0) b.append(",zero=").append(zero);
        if (checkpointEvery > 0) b.append(",ckpt").append(checkpointEvery > 1 ? "=" + checkpointEvery : "");
        if (precision == DType.F8_E4M3) b.append(",").append(fp8Recipe().label());
        else if (precision != DType.F32) b.append(",").append(precision.label());
        if (localSgdEvery > 0) b.append(",localsgd=").append(localSgdEvery);
        // A mixture's routing is part of what ran: --compare items that differ only in it need their own names.
        if (model.isMoe()) b.append(",").append(model.moe().label())
                .append(model.moe().auxLossWeight() == GptConfig.Moe.DEFAULT_AUX_WEIGHT ? "" : " aux" + model.moe().auxLossWeight());
        return b.toString();
    }

    public TrainSpec withModel(GptConfig m) { return with(f -> f.model = m); }

    public TrainSpec withLayout(int dp, int tp, int pp) { return with(f -> { f.dp = dp; f.tp = tp; f.pp = pp; }); }

    public TrainSpec withZero(int z) { return with(f -> f.zero = z); }

    public TrainSpec withMicroBatches(int m, PipelineParallel.Schedule s) { return with(f -> { f.microBatches = m; f.schedule = s; }); }

    public TrainSpec withCheckpoint(int every) { return with(f -> f.checkpointEvery = every); }

    public TrainSpec withPrecision(DType p) { return with(f -> f.precision = p); }

    /** An fp8 run with {@code recipe}. */
    public TrainSpec withFp8(Fp8Recipe recipe) { return with(f -> { f.precision = DType.F8_E4M3; f.fp8 = recipe; }); }

    public TrainSpec withSteps(int n) { return with(f -> f.steps = n); }

    public TrainSpec withBatch(int b) { return with(f -> f.batch = b); }

    public TrainSpec withOptimizer(String o, double l) { return with(f -> { f.optimizer = o; f.lr = l; }); }

    public TrainSpec withLocalSgd(int every) { return with(f -> f.localSgdEvery = every); }

    public TrainSpec withExport(boolean e) { return with(f -> f.exportParameters = e); }

    public TrainSpec withData(TextData.Source d) { return with(f -> { f.data = d; f.dataFile = null; }); }

    /** Train on the UTF-8 text at {@code path} (read by every rank). */
    public TrainSpec withDataFile(String path) { return with(f -> { f.data = TextData.Source.FILE; f.dataFile = path; }); }

    public TrainSpec withSeed(long s) { return with(f -> f.seed = s); }

    public TrainSpec withCp(int c) { return with(f -> f.cp = c); }

    /** Expert parallelism: a mixture's experts sharded over {@code e} ranks carved out of dp x cp. */
    public TrainSpec withEp(int e) { return with(f -> f.ep = e); }

    public TrainSpec withSequenceParallel(boolean on) { return with(f -> f.sequenceParallel = on); }

    /** Interleaved pipeline: {@code v} model chunks per stage (Megatron's virtual stages). */
    public TrainSpec withVirtualStages(int v) { return with(f -> f.virtualStages = v); }

    public TrainSpec withOffloadOptimizer(boolean on) { return with(f -> f.offloadOptimizer = on); }

    public TrainSpec withTf32(boolean on) { return with(f -> f.tf32 = on); }

    public TrainSpec withFaultTolerance(FaultTolerance ft) { return with(f -> f.faultTolerance = ft); }

    /** Checks the shapes divide; throws a one-line {@link UserError} naming what does not. */
    public void validate(int worldSize) {
        if (dp < 1 || tp < 1 || pp < 1 || cp < 1) throw new UserError("--dp, --cp, --tp and --pp must be at least 1");
        if (worldSize != world())
            throw new UserError("world size " + worldSize + " is not " + (cp > 1 ? "dp*cp*tp*pp = " + dp + "*" + cp + "*" : "dp*tp*pp = " + dp + "*")
                    + tp + "*" + pp + " = " + world());
        if (cp > 1 && model.sequence() % (2 * cp) != 0)
            throw new UserError("sequence " + model.sequence() + " is not divisible by 2 x --cp " + cp
                    + " (each context-parallel rank holds two chunks, for causal load balance)");
        if (sequenceParallel && tp == 1) throw new UserError("--sp shards the sequence over the tensor-parallel ranks: it needs --tp 2 or more");
        if (sequenceParallel && localSequence() % tp != 0)
            throw new UserError("--sp: the " + localSequence() + "-token sequence" + (cp > 1 ? " of each context-parallel rank" : "")
                    + " is not divisible by --tp " + tp);
        if (virtualStages < 1) throw new UserError("--vpp must be at least 1, not " + virtualStages);
        if (virtualStages > 1 && pp == 1) throw new UserError("--vpp interleaves virtual stages of a pipeline: it needs --pp 2 or more");
        if (virtualStages > 1 != (schedule == PipelineParallel.Schedule.INTERLEAVED))
            throw new UserError(virtualStages > 1 ? "--vpp " + virtualStages + " runs with --schedule interleaved"
                    : "--schedule interleaved needs --vpp 2 or more virtual stages per rank");
        if (model.layers() % (pp * virtualStages) != 0)
            throw new UserError("layers " + model.layers() + " are not divisible by --pp x --vpp = " + pp + " x " + virtualStages);
        if (schedule == PipelineParallel.Schedule.INTERLEAVED && microBatches % pp != 0)
            throw new UserError("the interleaved schedule runs micro-batches in groups of --pp: --micro-batches " + microBatches
                    + " is not a multiple of " + pp);
        if (schedule == PipelineParallel.Schedule.ZB_H1 && pp == 1)
            throw new UserError("--schedule zb-h1 fills a pipeline's bubble: it needs --pp 2 or more");
        if (schedule == PipelineParallel.Schedule.ZB_H1 && zero == 3)
            throw new UserError("--schedule zb-h1 keeps weight gradients for later passes, while ZeRO-3 frees each gathered layer "
                    + "after its backward: use --zero 0, 1 or 2 with it");
        if (model.isMoe() && sequenceParallel)
            throw new UserError("--sp with a mixture of experts is not supported yet (the router needs every token of the sequence): drop --sp");
        if (ep < 1) throw new UserError("--ep must be at least 1, not " + ep);
        if (ep > 1 && !model.isMoe())
            throw new UserError("--ep " + ep + " shards a mixture's experts: give the model experts (--experts E, or --model moe-tiny)");
        if (ep > 1 && (dp * cp) % ep != 0)
            throw new UserError("--ep " + ep + " must divide dp x cp = " + dp * cp + " (expert parallelism is carved out of the data-parallel ranks)");
        if (ep > 1 && model.moe().experts() % ep != 0)
            throw new UserError("--ep " + ep + " must divide the " + model.moe().experts() + " experts (each rank holds experts / ep of them)");
        if (ep > 1 && localSgdEvery > 0) throw new UserError("local SGD averages whole replicas, while --ep shards the experts: drop one of them");
        if (ep > 1 && offloadOptimizer) throw new UserError("--offload optimizer with --ep is not supported yet: drop one of them");
        if (model.isMoe() && precision == DType.F8_E4M3)
            throw new UserError("--precision fp8 with a mixture of experts is not supported yet: use fp32, bf16 or fp16");
        if (model.heads() % tp != 0)
            throw new UserError("heads " + model.heads() + " is not divisible by --tp " + tp);
        if (model.layers() % pp != 0)
            throw new UserError("layers " + model.layers() + " is not divisible by --pp " + pp);
        if (cp > 1 && localSgdEvery > 0) throw new UserError("local SGD averages whole replicas: drop --cp");
        if (zero < 0 || zero > 3) throw new UserError("--zero must be 0, 1, 2 or 3, not " + zero);
        if (steps < 1) throw new UserError("--steps must be at least 1");
        if (microBatches < 1) throw new UserError("--micro-batches must be at least 1");
        if (batch < 1) throw new UserError("--batch must be at least 1 sequence per step, not " + batch);
        if (!(lr > 0) || Double.isInfinite(lr)) throw new UserError("--lr must be a positive number, not " + lr);
        if (localSgdEvery < 0) throw new UserError("--local-sgd must be 0 (off) or a number of steps, not " + localSgdEvery);
        if (batch % dp != 0)
            throw new UserError("global batch " + batch + " is not divisible by --dp " + dp);
        if ((batch / dp) % microBatches != 0)
            throw new UserError("per-rank batch " + batch / dp + " is not divisible by --micro-batches " + microBatches);
        if (checkpointEvery < 0) throw new UserError("checkpoint interval must be >= 0");
        if (localSgdEvery > 0 && zero != 0) throw new UserError("local SGD needs --zero 0");
        if (localSgdEvery > 0 && precision != DType.F32) throw new UserError("local SGD runs in fp32 only");
        if (precision == DType.F8_E4M3) fp8Recipe().validate();
        else if (fp8 != null) throw new UserError("FP8 options (--fp8-scaling, --fp8-history, --fp8-base) need --precision fp8");
        if (precision != DType.F32 && precision != DType.BF16 && precision != DType.F16 && precision != DType.F8_E4M3)
            throw new UserError("training precisions are fp32, bf16, fp16 and fp8, not " + precision.label());
        if (precision == DType.F8_E4M3 && schedule == PipelineParallel.Schedule.ZB_H1)
            throw new UserError("--precision fp8 casts each linear layer's gradient as it leaves the layer, while --schedule zb-h1 "
                    + "defers the weight gradients: use 1f1b or interleaved with fp8");
        if (precision == DType.F8_E4M3 && sequenceParallel)
            throw new UserError("--precision fp8 with --sp is not supported yet (the FP8 casts keep the whole gathered input): drop --sp");
        if ((data == TextData.Source.FILE) != (dataFile != null)) throw new UserError("--data FILE names the text file to train on");
        if (localSgdEvery > 0 && offloadOptimizer) throw new UserError("local SGD averages weights on the device: drop --offload optimizer");
        faultTolerance().validate(this);
        FaultTolerance ft = faultTolerance();
        if ((ft.saves() || ft.resumes() || ft.maxRestarts() > 0) && ep > 1)
            throw new UserError("checkpoints, --resume and restarts cover dp, tp, pp and ZeRO layouts; not yet --ep " + ep + ": drop one of them");
        if ((ft.saves() || ft.resumes() || ft.maxRestarts() > 0) && (cp > 1 || virtualStages > 1))
            throw new UserError("checkpoints, --resume and restarts cover dp, tp, pp and ZeRO layouts; not yet "
                    + (cp > 1 ? "--cp " + cp : "--vpp " + virtualStages) + ": drop one of them");
    }
}
