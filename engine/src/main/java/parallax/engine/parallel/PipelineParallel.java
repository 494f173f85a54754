package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.model.TextData;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Torch;

/**
 * Pipeline parallelism: the blocks are split into pp stages (one per rank of the PP
 * group); a step's batch is cut into m micro-batches; activations go forward and their
 * gradients backward between neighbouring stages with send/recv.
 *
 * <ul>
 *   <li>GPipe (Huang et al. 2019): all m forwards, then all m backwards. A stage holds
 *       the activations of all m micro-batches at once.</li>
 *   <li>1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s runs p-s-1 warm-up
 *       forwards, then alternates one forward and one backward, then drains. Same bubble,
 *       (p-1)/m of the ideal time, but at most p micro-batches in flight.</li>
 * </ul>
 * Sends are handed to a sender thread so a stage never blocks on a neighbour that is
 * itself sending (the role of batched isend/irecv in Megatron); time blocked in recv
 * is the stage's pipeline idle time (bubble plus transfer).
 */
public final class PipelineParallel {

    public enum Schedule {
        GPIPE("gpipe"), ONE_F_ONE_B("1f1b"), INTERLEAVED("interleaved"), ZB_H1("zb-h1");

        private final String label;

        Schedule(String label) { this.label = label; }

        public String label() { return label; }

        public static Schedule parse(String s) {
            for (Schedule x : values()) if (x.label.equalsIgnoreCase(s)) return x;
            throw new parallax.engine.UserError("unknown schedule '" + s + "' (gpipe, 1f1b, interleaved, zb-h1)");
        }
    }

    /** Units [from, to) of pipeline stage {@code ppRank}: the embedding on the first, the head on the last. */
    public static int[] stageUnits(parallax.engine.model.GptConfig cfg, int pp, int ppRank) {
        int per = cfg.layers() / pp;
        int from = ppRank == 0 ? 0 : 1 + ppRank * per;
        int to = ppRank == pp - 1 ? cfg.layers() + 2 : 1 + (ppRank + 1) * per;
        return new int[] {from, to};
    }

    private final Stage stage;
    private final Comm pp;
    private final Device device;
    private final DType dtype;
    private final long hidden, seq;
    private final ExecutorService sender;
    private final List<Future<?>> pendingSends = new ArrayList<>();
    private long idleNanos;

    public PipelineParallel(Stage stage, Comm pp, DType dtype, long hidden, long seq, Device device) {
        this.stage = stage;
        this.pp = pp;
        this.device = device;
        this.dtype = dtype;
        this.hidden = hidden;
        this.seq = seq;
        this.sender = pp.size() > 1 ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "pipeline-send");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /**
     * Runs one training step's forwards and backwards over {@code microBatches}. Returns
     * the summed loss of the micro-batches on the last stage (NaN elsewhere).
     */
    public double step(List<TextData.Batch> microBatches, Schedule schedule, double lossScale) {
        int m = microBatches.size();
        int p = pp.size(), s = pp.rank();
        List<Tensor[]> batches = new ArrayList<>();
        for (TextData.Batch b : microBatches) batches.add(new Tensor[] {b.tokensTensor(device), b.targetsTensor(device)});
        double loss = 0;
        double scale = lossScale / m; // each micro-batch's loss counts 1/m of the step's mean
        // With one stage, 1F1B below is plain gradient accumulation: forward and backward
        // of each micro-batch in turn, so only one micro-batch's activations are alive.
        if (schedule == Schedule.GPIPE && p > 1) {
            for (int i = 0; i < m; i++) loss += forward(i, batches.get(i), microBatches.get(i).rows());
            for (int i = 0; i < m; i++) backward(i, microBatches.get(i).rows(), scale, i == m - 1);
        } else {
            int warmup = Math.min(p - s - 1, m);
            int f = 0, b = 0;
            for (; f < warmup; f++) loss += forward(f, batches.get(f), microBatches.get(f).rows());
            while (f < m) {
                loss += forward(f, batches.get(f), microBatches.get(f).rows());
                f++;
                backward(b, microBatches.get(b).rows(), scale, b == m - 1);
                b++;
            }
            for (; b < m; b++) backward(b, microBatches.get(b).rows(), scale, b == m - 1);
        }
        flushSends();
        return stage.isLast() ? loss : Double.NaN;
    }

    private double forward(int i, Tensor[] batch, int rows) {
        Tensor input = null;
        if (!stage.isFirst()) input = receive(rows, pp.rank() - 1);
        Tensor out = stage.forward(i, input, batch[0], batch[1]);
        if (!stage.isLast()) {
            sendAsync(out, pp.rank() + 1);
            return 0;
        }
        return Device.hostValue(out);
    }

    private void backward(int i, int rows, double scale, boolean lastMicroBatch) {
        Tensor grad = null;
        if (!stage.isLast()) grad = receive(rows, pp.rank() + 1);
        Tensor gradIn = stage.backward(i, grad, scale, lastMicroBatch);
        if (!stage.isFirst()) sendAsync(gradIn, pp.rank() - 1);
    }

    private Tensor receive(int rows, int src) {
        Tensor t = device.empty(dtype, rows, seq, hidden);
        long t0 = System.nanoTime();
        pp.recv(t, src);
        idleNanos += System.nanoTime() - t0;
        return t;
    }

    private void sendAsync(Tensor t, int dst) {
        Tensor copy = Torch.keep(t.detach().contiguous().clone());
        pendingSends.add(sender.submit(() -> {
            try {
                pp.send(copy, dst);
            } finally {
                copy.close();
            }
        }));
    }

    private void flushSends() {
        for (Future<?> f : pendingSends) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while sending", e);
            } catch (java.util.concurrent.ExecutionException e) {
                throw new IllegalStateException("pipeline send failed: " + e.getCause().getMessage(), e.getCause());
            }
        }
        pendingSends.clear();
    }

    /** Nanoseconds blocked in recv since the last call (bubble plus transfer). */
    public long takeIdleNanos() {
        long n = idleNanos;
        idleNanos = 0;
        return n;
    }

    public void close() {
        if (sender != null) sender.shutdownNow();
    }
}
