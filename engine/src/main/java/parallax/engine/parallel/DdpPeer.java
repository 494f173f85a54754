package parallax.engine.parallel;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.List;
import parallax.engine.cluster.Nodes;
import parallax.engine.cluster.PeerJob;
import parallax.engine.UserError;
import parallax.engine.model.GptConfig;

/**
 * The benchmark peer: the same GPT shape, global batch and steps trained with PyTorch's
 * DistributedDataParallel over Gloo (Debian python3-torch at /usr/bin/python3, one thread
 * per rank), so our DP step time can be compared with PyTorch's in the same run.
 */
public final class DdpPeer {

    /**
     * Per-step wall times (ms, the slowest rank at each step) of one peer run; for a benchmark of several
     * alternating rounds, also the median of the rounds' medians for both sides.
     */
    public record Result(double[] stepMs, double[] loss, double oursMedianMs, double peerMedianMs,
                         List<Double> oursRounds, List<Double> peerRounds) {
        public Result(double[] stepMs, double[] loss) { this(stepMs, loss, Double.NaN, Double.NaN, null, null); }

        public double medianStepMs() {
            return Double.isNaN(peerMedianMs) ? parallax.engine.report.Stats.median(stepMs, stepMs.length > 2 ? 1 : 0) : peerMedianMs;
        }
    }

    private DdpPeer() {}

    /** The peer's ranks placed on {@code nodes} as ours are (the local default: all on this machine). */
    public static Result run(GptConfig cfg, Nodes nodes, int world, int batch, int steps, long seed) {
        List<String> lines = PeerJob.run(DdpPeer.class, "torch_ddp_gpt.py", "PyTorch DDP peer", nodes, world, 900,
                List.of("--layers", String.valueOf(cfg.layers()), "--hidden", String.valueOf(cfg.hidden()),
                        "--heads", String.valueOf(cfg.heads()), "--vocab", String.valueOf(cfg.vocab()),
                        "--seq", String.valueOf(cfg.sequence()), "--batch", String.valueOf(batch),
                        "--steps", String.valueOf(steps), "--seed", String.valueOf(seed)));
        // Per step, the slowest rank: the same statistic as our own ranks' step time
        // (TrainingRun.medianStepMs), not rank 0's alone.
        double[] stepMs = null, loss = null;
        int seen = 0;
        for (String line : lines) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (!o.has("stepMs")) continue;
            seen++;
            double[] t = doubles(o.getAsJsonArray("stepMs"));
            if (stepMs == null) stepMs = t;
            else for (int s = 0; s < Math.min(stepMs.length, t.length); s++) stepMs[s] = Math.max(stepMs[s], t[s]);
            if (o.get("rank").getAsInt() == 0) loss = doubles(o.getAsJsonArray("loss"));
        }
        if (seen != world || loss == null) throw new UserError("the PyTorch DDP peer reported " + seen + " of " + world + " ranks");
        return new Result(stepMs, loss);
    }

    private static double[] doubles(JsonArray a) {
        double[] d = new double[a.size()];
        for (int i = 0; i < d.length; i++) d[i] = a.get(i).getAsDouble();
        return d;
    }
}
