package parallax.engine.parallel;

import parallax.engine.torch.Device;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.model.TextData;
import parallax.engine.numerics.DType;
import parallax.engine.torch.Torch;

/**
 * Pipeline parallelism: the model is cut into pp stages (one per rank of the PP group),
 * or with virtual stages into pp*v chunks, chunk c of stage s holding the layers of
 * virtual stage c*pp + s; a step's batch is cut into m micro-batches; activations go
 * forward and their gradients backward between neighbouring (virtual) stages with
 * send/recv. The order each stage runs its passes in is a {@link PipelineSchedule}:
 * GPipe, 1F1B, interleaved 1F1B or ZB-H1 (which runs weight gradients apart, W).
 *
 * <p>Sends are started and not waited for (isend; Megatron batches isend/irecv the same
 * way), so a stage never blocks on a neighbour that is itself sending; every message
 * carries a tag naming its direction, virtual stage and micro-batch, so messages of
 * different chunks between the same two ranks cannot be confused. Time blocked in recv
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
        return chunkUnits(cfg, pp, 1, 0, ppRank);
    }

    /**
     * Units [from, to) of model chunk {@code chunk} of stage {@code ppRank} with {@code v}
     * chunks per stage: virtual stage k = chunk*pp + ppRank of pp*v, each holding
     * layers/(pp*v) blocks, the embedding on virtual stage 0 and the head on the last.
     */
    public static int[] chunkUnits(parallax.engine.model.GptConfig cfg, int pp, int v, int chunk, int ppRank) {
        int k = pp * v, vs = chunk * pp + ppRank;
        int per = cfg.layers() / k;
        int from = vs == 0 ? 0 : 1 + vs * per;
        int to = vs == k - 1 ? cfg.layers() + 2 : 1 + (vs + 1) * per;
        return new int[] {from, to};
    }

    private final List<Stage> chunks;
    private final Comm pp;
    private final Device device;
    private final DType dtype;
    private final long hidden, seq;
    private final List<Comm.Pending> pendingSends = new ArrayList<>();
    private final List<Tensor> sending = new ArrayList<>();
    private long idleNanos, peakActivationBytes;
    private List<RankResult.OpTime> lastTrace = List.of();

    /** One model chunk per stage. */
    public PipelineParallel(Stage stage, Comm pp, DType dtype, long hidden, long seq, Device device) {
        this(List.of(stage), pp, dtype, hidden, seq, device);
    }

    /** {@code chunks}: this stage's model chunks in order (chunk c is virtual stage c*pp + rank). */
    public PipelineParallel(List<Stage> chunks, Comm pp, DType dtype, long hidden, long seq, Device device) {
        this.chunks = List.copyOf(chunks);
        this.pp = pp;
        this.device = device;
        this.dtype = dtype;
        this.hidden = hidden;
        this.seq = seq;
        if (pp.size() * chunks.size() > 64) throw new parallax.engine.UserError("at most 64 virtual pipeline stages, not " + pp.size() * chunks.size());
    }

    /** The chunk that holds the head (it returns the loss). */
    private Stage lastChunk() { return chunks.get(chunks.size() - 1); }

    /** Whether this stage computes the loss. */
    public boolean holdsLoss() { return lastChunk().isLast(); }

    /**
     * Runs one training step's forwards and backwards over {@code microBatches} in the
     * order {@code schedule} gives this stage. Returns the summed loss of the micro-batches
     * on the stage that holds the head (NaN elsewhere).
     */
    public double step(List<TextData.Batch> microBatches, Schedule schedule, double lossScale) {
        int m = microBatches.size();
        int p = pp.size(), s = pp.rank(), v = chunks.size();
        List<Tensor[]> batches = new ArrayList<>();
        for (TextData.Batch b : microBatches) batches.add(new Tensor[] {b.tokensTensor(device), b.targetsTensor(device)});
        double loss = 0;
        double scale = lossScale / m; // each micro-batch's loss counts 1/m of the step's mean
        // With one stage, 1F1B is plain gradient accumulation: forward and backward of each
        // micro-batch in turn, so only one micro-batch's activations are alive.
        Schedule order = p == 1 && schedule == Schedule.GPIPE ? Schedule.ONE_F_ONE_B : schedule;
        int[] backwardsLeft = new int[v], weightsLeft = new int[v];
        java.util.Arrays.fill(backwardsLeft, m);
        java.util.Arrays.fill(weightsLeft, m);
        boolean done = false;
        List<RankResult.OpTime> trace = new ArrayList<>();
        long t0 = System.nanoTime();
        try {
            for (PipelineSchedule.Op op : PipelineSchedule.ops(order, p, v, m, s)) {
                long opStart = System.nanoTime(), idleBefore = idleNanos;
                Stage chunk = chunks.get(op.chunk());
                int mb = op.microBatch(), rows = microBatches.get(mb).rows();
                int vs = PipelineSchedule.virtualStage(op.chunk(), s, p);
                switch (op.kind()) {
                    case F -> {
                        Tensor input = chunk.isFirst() ? null : receive(rows, (s - 1 + p) % p, tag(0, vs, mb));
                        Tensor out = chunk.forward(mb, input, batches.get(mb)[0], batches.get(mb)[1]);
                        if (chunk.isLast()) loss += Device.hostValue(out);
                        else send(out, (s + 1) % p, tag(0, vs + 1, mb));
                    }
                    case B -> {
                        Tensor grad = chunk.isLast() ? null : receive(rows, (s + 1) % p, tag(1, vs, mb));
                        boolean lastOfChunk = --backwardsLeft[op.chunk()] == 0;
                        Tensor gradIn = chunk.backward(mb, grad, scale, lastOfChunk);
                        if (!chunk.isFirst()) send(gradIn, (s - 1 + p) % p, tag(1, vs - 1, mb));
                    }
                    case W -> chunk.backwardWeights(mb, --weightsLeft[op.chunk()] == 0);
                }
                // A pass's time excludes the wait for its input (that is the bubble).
                long waited = idleNanos - idleBefore;
                trace.add(new RankResult.OpTime(op.toString(), (opStart - t0 + waited) / 1e6, (System.nanoTime() - t0) / 1e6));
                // Held for backward (F to B) by every chunk, plus what waits for W after B (zero bubble).
                long live = chunks.get(0).weightGradientBytes();
                for (Stage c : chunks) live += c.liveActivationBytes();
                peakActivationBytes = Math.max(peakActivationBytes, live);
            }
            done = true;
            lastTrace = trace;
        } finally {
            if (done) flushSends();
            else dropSends(); // a failed step: nobody waits for these any more
        }
        return holdsLoss() ? loss : Double.NaN;
    }

    /** A message's tag: direction (0 forward, 1 backward), the virtual stage it goes to, the micro-batch. */
    private static int tag(int direction, int virtualStage, int mb) {
        return ((direction * 64 + virtualStage) << 16) | mb;
    }

    private Tensor receive(int rows, int src, int tag) {
        Tensor t = device.empty(dtype, rows, seq, hidden);
        long t0 = System.nanoTime();
        pp.recv(t, src, tag);
        idleNanos += System.nanoTime() - t0;
        return t;
    }

    private void send(Tensor t, int dst, int tag) {
        Tensor copy = Torch.keep(t.detach().contiguous().clone());
        sending.add(copy);
        pendingSends.add(pp.isend(copy, dst, tag));
    }

    private void flushSends() {
        try {
            for (Comm.Pending p : pendingSends) p.await();
        } finally {
            dropSends();
        }
    }

    /** Forgets the sends in flight (the backend keeps its own reference to each tensor until it is sent). */
    private void dropSends() {
        pendingSends.clear();
        for (Tensor t : sending) t.close();
        sending.clear();
    }

    /** The passes of the last step, in the order they ran, with their times. */
    public List<RankResult.OpTime> lastTrace() { return lastTrace; }

    /** The most activation bytes this stage's chunks held at once, over every step so far. */
    public long peakActivationBytes() { return peakActivationBytes; }

    /** Nanoseconds blocked in recv since the last call (bubble plus transfer). */
    public long takeIdleNanos() {
        long n = idleNanos;
        idleNanos = 0;
        return n;
    }

    public void close() {
        dropSends();
    }
}
