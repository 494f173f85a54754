package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import parallax.engine.model.Gpt;
import parallax.engine.torch.Torch;

/**
 * The units of the model this rank runs (a pipeline stage: all units when pp = 1),
 * forward and backward one micro-batch at a time.
 *
 * <p>The stage is cut into <em>segments</em> at unit boundaries, each with its own
 * autograd graph whose input is a fresh leaf: backward walks the segments in reverse,
 * feeding each one's output gradient and reading its input's gradient. That is what a
 * pipeline does between stages anyway, and it is what activation checkpointing needs
 * (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): a checkpointed
 * segment runs its forward without a graph, keeps only its input, and runs the forward
 * again, with a graph, just before its backward. With checkpointing every k, k blocks
 * form one segment.
 *
 * <p>Around every unit it calls the {@link ParameterStore}'s hooks (before and after
 * forward, before and after backward): that is where ZeRO-3 gathers and frees parameters
 * and where every store synchronises gradients. Where the store cannot free gathered
 * parameters between forward and backward (ZeRO-3 off host memory) the segment is
 * recomputed instead.
 */
public final class Stage {

    private record Segment(int from, int to, boolean recompute) {}

    /** What one micro-batch left behind in one segment between forward and backward. */
    private static final class Saved {
        Tensor input;     // leaf (requires grad) or null for the embedding
        Tensor output;    // with its graph, unless recomputed
        Tensor aux;       // the segment's MoE load-balancing losses summed, with their graph (null: none)
        long bytes;       // activation bytes held for this segment
    }

    private final Gpt model;
    private final ParameterStore params;
    private final DeferredWeightGradients deferred;
    private final int from, to;
    private final boolean first, last;
    private final List<Segment> segments = new ArrayList<>();
    private record MicroBatch(Tensor tokens, Tensor targets, List<Saved> saved) {}

    private final Map<Integer, MicroBatch> inFlight = new HashMap<>();
    private ExpertLoad expertLoad;
    private final Map<Long, Long> heldBytes = new HashMap<>();
    private long liveActivationBytes, peakActivationBytes;

    /**
     * @param checkpointEvery 0: no recompute; k: recompute, k blocks per segment.
     */
    public Stage(Gpt model, ParameterStore params, int from, int to, int checkpointEvery) {
        this(model, params, from, to, checkpointEvery, null);
    }

    /**
     * @param deferred where the weight gradients wait between B and W when the schedule
     *                 splits the backward (zero bubble); null: backward computes them all.
     */
    public Stage(Gpt model, ParameterStore params, int from, int to, int checkpointEvery, DeferredWeightGradients deferred) {
        this.deferred = deferred;
        this.model = model;
        this.params = params;
        this.from = from;
        this.to = to;
        this.first = from == 0;
        this.last = to == model.units();
        boolean recomputeAlways = !params.freesBetweenForwardAndBackward();
        int u = from;
        if (checkpointEvery == 0 && params.gradientsFitOneBucket()) {
            // Nothing to overlap: all gradients go in one all-reduce after the backward
            // anyway, so the stage is one graph (a graph boundary per unit has a cost).
            segments.add(new Segment(from, to, false));
            u = to;
        }
        while (u < to) {
            boolean block = u > 0 && u < model.units() - 1;
            if (block && checkpointEvery > 0) {
                int end = u;
                while (end < to && end < model.units() - 1 && end - u < checkpointEvery) end++;
                segments.add(new Segment(u, end, true));
                u = end;
            } else {
                segments.add(new Segment(u, u + 1, recomputeAlways));
                u++;
            }
        }
    }

    /** Where the MoE blocks' routing counts go (null: not counted). */
    public void countRouting(ExpertLoad load) { this.expertLoad = load; }

    /** Whether a backward here runs forwards again (checkpointing, or ZeRO-3 off the CPU). */
    public boolean recomputes() {
        return segments.stream().anyMatch(Segment::recompute);
    }

    public boolean isFirst() { return first; }

    public boolean isLast() { return last; }

    /**
     * Forward of micro-batch {@code mb}. {@code input} is the hidden state from the
     * previous stage (null on the first). Returns the hidden state to send on, or the
     * loss (fp32 scalar) on the last stage; the returned tensor has no graph attached.
     */
    public Tensor forward(int mb, Tensor input, Tensor tokens, Tensor targets) {
        List<Saved> saved = new ArrayList<>();
        Tensor x = input;
        for (Segment seg : segments) {
            Saved s = new Saved();
            if (x != null) {
                s.input = x.detach();
                s.input.requires_grad_(true);
            }
            if (seg.recompute) {
                try (NoGradGuard ng = new NoGradGuard()) {
                    s.output = run(seg, mb, s.input, tokens, targets, null, ParameterStore.Pass.NO_GRAPH, null);
                }
                s.bytes = s.input == null ? 0 : s.input.nbytes();
            } else {
                List<Tensor> made = new ArrayList<>();
                List<Tensor> aux = new ArrayList<>();
                s.output = run(seg, mb, s.input, tokens, targets, made, ParameterStore.Pass.GRAPH, aux);
                s.aux = sum(aux);
                // The graph of a segment is the same every step for the same micro-batch
                // rows, so its bytes are measured once (walking every tensor costs JNI calls).
                long key = ((long) segments.indexOf(seg) << 32) | tokens.size(0);
                Long held = heldBytes.get(key);
                if (held == null) heldBytes.put(key, held = Torch.heldByAutograd(made));
                s.bytes = held + (s.input == null ? 0 : s.input.nbytes());
            }
            saved.add(s);
            x = s.output;
            liveActivationBytes += s.bytes;
        }
        peakActivationBytes = Math.max(peakActivationBytes, liveActivationBytes);
        inFlight.put(mb, new MicroBatch(tokens, targets, saved));
        return x.detach();
    }

    /**
     * Backward of micro-batch {@code mb}. {@code gradOutput} is the gradient of this
     * stage's output from the next stage (null on the last stage, which starts from its
     * loss times {@code lossScale}). Returns the gradient of the stage input (null on the
     * first stage). Gradient synchronisation runs unit by unit as units finish.
     */
    public Tensor backward(int mb, Tensor gradOutput, double lossScale, boolean lastMicroBatch) {
        if (deferred != null) deferred.beginBackward(mb);
        try {
            return backwardPass(mb, gradOutput, lossScale, lastMicroBatch);
        } finally {
            if (deferred != null) deferred.endBackward();
        }
    }

    /**
     * W of micro-batch {@code mb} under a split backward: its weight gradients, then the
     * units' gradient synchronisation that {@link #backward} left for now.
     */
    public void backwardWeights(int mb, boolean lastMicroBatch) {
        if (deferred == null) throw new IllegalStateException("this stage's backward is not split");
        deferred.computeWeightGradients(mb);
        for (int i = segments.size() - 1; i >= 0; i--)
            for (int u = segments.get(i).to - 1; u >= segments.get(i).from; u--) params.afterBackward(u, mb, lastMicroBatch);
    }

    /** Whether B leaves the weight gradients to {@link #backwardWeights}. */
    public boolean splitsBackward() { return deferred != null; }

    private Tensor backwardPass(int mb, Tensor gradOutput, double lossScale, boolean lastMicroBatch) {
        MicroBatch batch = inFlight.remove(mb);
        List<Saved> saved = batch.saved();
        Tensor grad = gradOutput;
        for (int i = segments.size() - 1; i >= 0; i--) {
            Segment seg = segments.get(i);
            Saved s = saved.get(i);
            Tensor out = s.output;
            if (seg.recompute) {
                Tensor in = s.input == null ? null : s.input.detach();
                if (in != null) in.requires_grad_(true);
                List<Tensor> aux = new ArrayList<>();
                out = run(seg, mb, in, batch.tokens(), batch.targets(), null, ParameterStore.Pass.RECOMPUTE, aux);
                s.input = in;
                s.aux = sum(aux);
            }
            for (int u = seg.from; u < seg.to; u++) params.beforeBackward(u, mb);
            if (grad == null) {
                // The load-balancing losses join the loss here, on whichever stage their blocks are.
                (s.aux == null ? out : out.add(s.aux)).mul(new Scalar(lossScale)).backward();
            } else if (s.aux == null) {
                org.bytedeco.pytorch.global.torch.backward(new TensorVector(out), new TensorVector(grad), new org.bytedeco.pytorch.BoolOptional(), false, new TensorVector());
            } else {
                Tensor auxGrad = parallax.engine.torch.Device.of(s.aux).full(lossScale, parallax.engine.numerics.DType.F32);
                org.bytedeco.pytorch.global.torch.backward(new TensorVector(out, s.aux), new TensorVector(grad, auxGrad),
                        new org.bytedeco.pytorch.BoolOptional(), false, new TensorVector());
            }
            s.aux = null;
            if (deferred == null) for (int u = seg.to - 1; u >= seg.from; u--) params.afterBackward(u, mb, lastMicroBatch);
            grad = s.input == null ? null : s.input.grad();
            liveActivationBytes -= s.bytes;
        }
        return grad;
    }

    /**
     * Runs the segment's units; the MoE blocks' load-balancing losses go to {@code aux} (null:
     * not needed, a forward without graph) and their routing counts to the expert load, once
     * per micro-batch (not again when a checkpointed segment is recomputed).
     */
    private Tensor run(Segment seg, int mb, Tensor input, Tensor tokens, Tensor targets, List<Tensor> made,
                       ParameterStore.Pass pass, List<Tensor> aux) {
        Gpt.Routing routing = !model.config().isMoe() ? null : new Gpt.Routing() {
            @Override public void auxLoss(int layer, Tensor loss) { if (aux != null) aux.add(loss); }

            @Override public void routed(int layer, long[] load, long dropped) {
                if (expertLoad != null && pass != ParameterStore.Pass.RECOMPUTE) expertLoad.add(layer, load, dropped);
            }
        };
        Tensor x = input;
        for (int u = seg.from; u < seg.to; u++) {
            params.beforeForward(u);
            x = model.forward(u, x, tokens, targets, params::weight, made, routing);
            params.afterForward(u, mb, pass);
        }
        return x;
    }

    private static Tensor sum(List<Tensor> losses) {
        Tensor total = null;
        for (Tensor t : losses) total = total == null ? t : total.add(t);
        return total;
    }

    public long peakActivationBytes() { return peakActivationBytes; }

    /** Activation bytes held right now for micro-batches whose backward has not run. */
    public long liveActivationBytes() { return liveActivationBytes; }

    public void resetPeak() { peakActivationBytes = liveActivationBytes; }

    /**
     * Bytes a split backward keeps from B to W (zero bubble): every linear layer's input and
     * output gradient; 0 otherwise. One count for all the chunks of a stage, which share it.
     */
    public long weightGradientBytes() { return deferred == null ? 0 : deferred.heldBytes(); }
}
