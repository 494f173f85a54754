package parallax.engine.parallel;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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
                         java.util.List<Double> oursRounds, java.util.List<Double> peerRounds) {
        public Result(double[] stepMs, double[] loss) { this(stepMs, loss, Double.NaN, Double.NaN, null, null); }

        public double medianStepMs() {
            return Double.isNaN(peerMedianMs) ? Training.median(stepMs, stepMs.length > 2 ? 1 : 0) : peerMedianMs;
        }
    }

    private DdpPeer() {}

    public static Result run(GptConfig cfg, int world, int batch, int steps, long seed) {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("parallax-ddp");
            Path script = dir.resolve("torch_ddp_gpt.py");
            try (InputStream in = DdpPeer.class.getResourceAsStream("torch_ddp_gpt.py")) {
                Files.copy(in, script);
            }
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            ProcessBuilder pb = new ProcessBuilder("/usr/bin/python3", script.toString(),
                    "--world", String.valueOf(world), "--port", String.valueOf(port),
                    "--layers", String.valueOf(cfg.layers()), "--hidden", String.valueOf(cfg.hidden()),
                    "--heads", String.valueOf(cfg.heads()), "--vocab", String.valueOf(cfg.vocab()),
                    "--seq", String.valueOf(cfg.sequence()), "--batch", String.valueOf(batch),
                    "--steps", String.valueOf(steps), "--seed", String.valueOf(seed), "--out", dir.toString());
            pb.redirectErrorStream(true);
            pb.environment().put("OMP_NUM_THREADS", "1");
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(900, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                String last = out.lines().reduce((x, y) -> y).orElse("");
                throw new UserError("the PyTorch DDP peer failed (needs Debian python3-torch at /usr/bin/python3): " + last);
            }
            // Per step, the slowest rank: the same statistic as our own ranks' step time
            // (Training.Run.medianStepMs), not rank 0's alone.
            double[] stepMs = null, loss = null;
            for (int r = 0; r < world; r++) {
                Path f = dir.resolve("rank" + r + ".json");
                if (!Files.exists(f)) throw new UserError("the PyTorch DDP peer wrote no result for rank " + r);
                JsonObject o = JsonParser.parseString(Files.readString(f)).getAsJsonObject();
                double[] t = doubles(o.getAsJsonArray("stepMs"));
                if (stepMs == null) {
                    stepMs = t;
                    loss = doubles(o.getAsJsonArray("loss"));
                } else {
                    for (int s = 0; s < Math.min(stepMs.length, t.length); s++) stepMs[s] = Math.max(stepMs[s], t[s]);
                }
            }
            return new Result(stepMs, loss);
        } catch (IOException e) {
            throw new UserError("cannot run the PyTorch DDP peer: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while running the PyTorch DDP peer");
        } finally {
            if (dir != null) {
                try (var s = Files.walk(dir)) {
                    s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (IOException ignored) {
                    // temp files
                }
            }
        }
    }

    private static double[] doubles(JsonArray a) {
        double[] d = new double[a.size()];
        for (int i = 0; i < d.length; i++) d[i] = a.get(i).getAsDouble();
        return d;
    }
}
