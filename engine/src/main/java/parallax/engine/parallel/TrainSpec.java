package parallax.engine.parallel;

import parallax.engine.UserError;
import parallax.engine.model.GptConfig;
import parallax.engine.model.TextData;
import parallax.engine.numerics.DType;

/**
 * One training run: model, layout (dp x tp x pp), ZeRO stage, micro-batching and
 * schedule, precision, checkpointing, optimizer, data. {@code batch} is the global batch
 * in sequences per optimizer step; each DP rank takes batch/dp of it and splits that into
 * {@code microBatches}.
 */
public record TrainSpec(
        GptConfig model, int dp, int tp, int pp, int zero, int microBatches,
        PipelineParallel.Schedule schedule, DType precision, int checkpointEvery,
        int steps, long seed, int batch, String optimizer, double lr,
        TextData.Source data, int localSgdEvery, boolean exportParameters) {

    public static TrainSpec defaults(GptConfig model) {
        return new TrainSpec(model, 1, 1, 1, 0, 1, PipelineParallel.Schedule.ONE_F_ONE_B, DType.F32, 0,
                20, 7, 8, "adamw", 1e-3, TextData.Source.TEXT, 0, false);
    }

    public int world() { return dp * tp * pp; }

    /** The mesh this run's ranks form. */
    public parallax.engine.cluster.MeshShape mesh() { return new parallax.engine.cluster.MeshShape(dp, tp, pp); }

    /** The layout in a few characters, e.g. "dp=2,tp=2,zero=1" or "pp=2,m=4,1f1b". */
    public String label() {
        StringBuilder b = new StringBuilder();
        if (dp > 1 || (tp == 1 && pp == 1)) b.append("dp=").append(dp);
        if (tp > 1) b.append(b.length() > 0 ? "," : "").append("tp=").append(tp);
        if (pp > 1) b.append(b.length() > 0 ? "," : "").append("pp=").append(pp).append(",m=").append(microBatches).append(",").append(schedule.label());
        else if (microBatches > 1) b.append(",accum=").append(microBatches);
        if (zero > 0) b.append(",zero=").append(zero);
        if (checkpointEvery > 0) b.append(",ckpt").append(checkpointEvery > 1 ? "=" + checkpointEvery : "");
        if (precision != DType.F32) b.append(",").append(precision.label());
        if (localSgdEvery > 0) b.append(",localsgd=").append(localSgdEvery);
        return b.toString();
    }

    public TrainSpec withLayout(int dp, int tp, int pp) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withZero(int z) {
        return new TrainSpec(model, dp, tp, pp, z, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withMicroBatches(int m, PipelineParallel.Schedule s) {
        return new TrainSpec(model, dp, tp, pp, zero, m, s, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withCheckpoint(int every) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, every, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withPrecision(DType p) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, p, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withSteps(int n) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, n, seed,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withBatch(int b) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                b, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withOptimizer(String o, double l) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, o, l, data, localSgdEvery, exportParameters);
    }

    public TrainSpec withLocalSgd(int every) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, every, exportParameters);
    }

    public TrainSpec withExport(boolean e) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, data, localSgdEvery, e);
    }

    public TrainSpec withData(TextData.Source d) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, seed,
                batch, optimizer, lr, d, localSgdEvery, exportParameters);
    }

    public TrainSpec withSeed(long s) {
        return new TrainSpec(model, dp, tp, pp, zero, microBatches, schedule, precision, checkpointEvery, steps, s,
                batch, optimizer, lr, data, localSgdEvery, exportParameters);
    }

    /** Checks the shapes divide; throws a one-line {@link UserError} naming what does not. */
    public void validate(int worldSize) {
        if (dp < 1 || tp < 1 || pp < 1) throw new UserError("--dp, --tp and --pp must be at least 1");
        if (worldSize % (dp * tp * pp) != 0 || worldSize != dp * tp * pp)
            throw new UserError("world size " + worldSize + " is not dp*tp*pp = " + dp + "*" + tp + "*" + pp + " = " + dp * tp * pp);
        if (model.heads() % tp != 0)
            throw new UserError("heads " + model.heads() + " is not divisible by --tp " + tp);
        if (model.layers() % pp != 0)
            throw new UserError("layers " + model.layers() + " is not divisible by --pp " + pp);
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
    }
}
