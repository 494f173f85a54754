package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorTensorHook;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.model.Gpt;
import parallax.engine.torch.Device;

/**
 * Context parallelism: every sequence is cut over the cp ranks of a ring, so each rank
 * holds the activations of only its tokens. Attention is the one place a token needs the
 * others: ring attention (Liu, Zaharia and Abbeel, "Ring Attention with Blockwise
 * Transformers", 2023) passes the key/value blocks around the ring, one hop per step, and
 * folds each into the output with the online softmax (a running maximum and sum per
 * query, as FlashAttention does), so no rank ever holds the whole sequence's scores.
 *
 * <p>Causal attention makes later tokens do more work. As Megatron-core and picotron do,
 * the sequence is cut into 2·cp chunks and rank r holds chunks r and 2·cp−1−r (zig-zag),
 * so every rank gets one early and one late chunk and the same amount of work.
 *
 * <p>Backward: the Java API has no custom autograd functions, so the attention output is
 * made a function of q, k and v with zero gradient, a hook on it runs the ring backward
 * (the FlashAttention backward per block, with the key/value gradients travelling around
 * the ring back to their owners), and hooks on q, k and v hand autograd the results.
 */
public final class ContextParallel implements Gpt.Attention {

    private final Comm cp;
    /**
     * Calls whose backward has not run yet. Their hooks are called from native code, so
     * they are held here until then (the step's PointerScope owns their tensors).
     */
    private final List<Call> pending = new ArrayList<>();

    public ContextParallel(Comm cp) {
        this.cp = cp;
    }

    /**
     * Where the tokens of context-parallel rank {@code rank} of {@code size} sit in a
     * sequence of {@code seq}: chunk rank, then chunk 2·size−1−rank, each seq/(2·size) long.
     */
    public static long[] positions(int rank, int size, int seq) {
        if (size == 1) return null;
        int c = seq / (2 * size);
        long[] p = new long[2 * c];
        for (int i = 0; i < c; i++) {
            p[i] = (long) rank * c + i;
            p[c + i] = (long) (2 * size - 1 - rank) * c + i;
        }
        return p;
    }

    /**
     * The chunks of the sequence (of 2·size) that context-parallel rank {@code rank} holds:
     * zig-zag {rank, 2·size−1−rank} as the engine cuts it ({@link #positions}), or
     * contiguous {2·rank, 2·rank+1} for comparison.
     */
    public static int[] chunks(int rank, int size, boolean zigzag) {
        return zigzag ? new int[] {rank, 2 * size - 1 - rank} : new int[] {2 * rank, 2 * rank + 1};
    }

    /**
     * Whose key/value block rank {@code rank} holds at ring step {@code step}: its own at
     * step 0, then each hop brings the previous rank's (blocks travel to rank + 1).
     */
    public static int keyOwner(int rank, int step, int size) {
        return Math.floorMod(rank - step, size);
    }

    /** What causal attention makes of one (query chunk, key chunk) pair. */
    public enum Block {
        /** Every key precedes every query: all of the pair's scores count. */
        FULL,
        /** The same chunk: the causal mask keeps the lower triangle, about half. */
        DIAGONAL,
        /** Every key follows every query: nothing counts (a kernel that skips blocks skips it). */
        MASKED;

        /** Work in units of one full pair: 1, 1/2, 0. */
        public double work() {
            return switch (this) {
                case FULL -> 1;
                case DIAGONAL -> 0.5;
                case MASKED -> 0;
            };
        }

        static Block of(int queryChunk, int keyChunk) {
            return keyChunk < queryChunk ? FULL : keyChunk == queryChunk ? DIAGONAL : MASKED;
        }
    }

    /** One (query chunk, key chunk) pair met by {@code rank} at ring step {@code step}, the key block being {@code owner}'s. */
    public record RingBlock(int step, int rank, int owner, int queryChunk, int keyChunk, Block kind) {}

    /**
     * Ring attention over {@code cp} ranks step by step: at each of the cp steps, every
     * rank's two query chunks against the two key chunks it holds then. The engine's own
     * forward goes through the same owners ({@link #keyOwner}) and chunks.
     */
    public record RingSteps(int cp, boolean zigzag, List<RingBlock> blocks) {

        /** Work rank {@code rank} does at {@code step}, in full pairs (masked pairs skipped). */
        public double work(int step, int rank) {
            double w = 0;
            for (RingBlock b : blocks) if (b.step() == step && b.rank() == rank) w += b.kind().work();
            return w;
        }

        /** Pairs of {@code kind} that rank {@code rank} meets over the whole ring. */
        public int count(int rank, Block kind) {
            int n = 0;
            for (RingBlock b : blocks) if (b.rank() == rank && b.kind() == kind) n++;
            return n;
        }

        /** Work of rank {@code rank} over all steps. */
        public double rankWork(int rank) {
            double w = 0;
            for (int s = 0; s < cp; s++) w += work(s, rank);
            return w;
        }

        /**
         * The ring's critical path in full pairs: each step ends when its busiest rank is
         * done (the next hop needs every rank's block), so the sum over steps of the
         * largest per-rank work.
         */
        public double criticalPath() {
            double total = 0;
            for (int s = 0; s < cp; s++) {
                double max = 0;
                for (int r = 0; r < cp; r++) max = Math.max(max, work(s, r));
                total += max;
            }
            return total;
        }
    }

    /** {@link #ringSteps(int, boolean)} for the engine's zig-zag chunks. */
    public static RingSteps ringSteps(int cp) {
        return ringSteps(cp, true);
    }

    /** Every step of ring attention over {@code cp} ranks (cp ≥ 1), zig-zag or contiguous chunks. */
    public static RingSteps ringSteps(int cp, boolean zigzag) {
        if (cp < 1) throw new parallax.engine.UserError("context-parallel size must be at least 1, not " + cp);
        List<RingBlock> blocks = new ArrayList<>();
        for (int step = 0; step < cp; step++)
            for (int rank = 0; rank < cp; rank++) {
                int owner = keyOwner(rank, step, cp);
                for (int qc : chunks(rank, cp, zigzag))
                    for (int kc : chunks(owner, cp, zigzag))
                        blocks.add(new RingBlock(step, rank, owner, qc, kc, Block.of(qc, kc)));
            }
        return new RingSteps(cp, zigzag, List.copyOf(blocks));
    }

    @Override
    public Tensor attend(Tensor q, Tensor k, Tensor v, long[] positions, List<Tensor> made) {
        if (cp.size() == 1) return Gpt.LOCAL.attend(q, k, v, positions, made);
        Call call = new Call(q, k, v, positions);
        call.forward();
        if (made != null) {
            made.add(call.out);
            made.add(call.lse);
        }
        if (!(q.requires_grad() || k.requires_grad() || v.requires_grad())) return call.out;
        // out as a function of q, k, v (zero gradient) carrying the ring's values; the hooks
        // below supply the real gradients.
        Tensor y = q.mul(new Scalar(0)).add(k.mul(new Scalar(0))).add(v.mul(new Scalar(0)));
        try (NoGradGuard ng = new NoGradGuard()) {
            y.copy_(call.out);
        }
        pending.removeIf(Call::done);
        pending.add(call);
        y.register_hook(call.backwardHook());
        if (q.requires_grad()) q.register_hook(call.gradient(0));
        if (k.requires_grad()) k.register_hook(call.gradient(1));
        if (v.requires_grad()) v.register_hook(call.gradient(2));
        return y;
    }

    /** One attention call: its inputs, output and softmax statistics, and (after backward) the gradients. */
    private final class Call {
        final Tensor q, k, v;
        final long[] positions;
        final double scale;
        Tensor out, lse;
        final Tensor[] grads = new Tensor[3];
        int handedOut, wanted;
        final List<Object> hooks = new ArrayList<>(); // the native hooks must live as long as the graph

        Call(Tensor q, Tensor k, Tensor v, long[] positions) {
            this.q = q.detach();
            this.k = k.detach();
            this.v = v.detach();
            this.positions = positions;
            this.scale = 1.0 / Math.sqrt(q.size(3));
        }

        int owner(int step) { return keyOwner(cp.rank(), step, cp.size()); }

        long[] ownerPositions(int step) {
            return ContextParallel.positions(owner(step), cp.size(), positions.length * cp.size());
        }

        /** Scores of this rank's queries against the key block held at {@code step}, masked causally. */
        Tensor scores(Tensor kb, int step) {
            Tensor s = torch.matmul(q, kb.transpose(-2, -1)).mul(new Scalar(scale));
            Tensor mask = Gpt.causalMask(Device.of(q), positions, ownerPositions(step), positions.length);
            return s.masked_fill(mask, new Scalar(Double.NEGATIVE_INFINITY));
        }

        /** The ring forward with the online softmax; keeps out and lse = max + log(sum). */
        void forward() {
            try (NoGradGuard ng = new NoGradGuard()) {
                Tensor kb = k.contiguous(), vb = v.contiguous();
                Tensor o = torch.zeros_like(q), m = null, l = null;
                for (int step = 0; step < cp.size(); step++) {
                    Tensor s = scores(kb, step);
                    Tensor blockMax = s.amax(new long[] {-1}, true);
                    // The first block is the rank's own: every query sees at least itself there.
                    Tensor mNew = m == null ? blockMax : torch.maximum(m, blockMax);
                    Tensor p = s.sub(mNew).exp();
                    if (m == null) {
                        l = p.sum(new long[] {-1}, true, new org.bytedeco.pytorch.ScalarTypeOptional());
                        o = torch.matmul(p, vb);
                    } else {
                        Tensor correction = m.sub(mNew).exp();
                        l = l.mul(correction).add(p.sum(new long[] {-1}, true, new org.bytedeco.pytorch.ScalarTypeOptional()));
                        o = o.mul(correction).add(torch.matmul(p, vb));
                    }
                    m = mNew;
                    if (step < cp.size() - 1) {
                        Tensor[] next = shift(kb, vb);
                        kb = next[0];
                        vb = next[1];
                    }
                }
                out = o.div(l);
                lse = m.add(l.log());
            }
        }

        /** The ring backward, on the gradient of the output; fills {@link #grads}. */
        TensorTensorHook backwardHook() {
            TensorTensorHook h = new TensorTensorHook() {
                @Override
                public TensorBase call(TensorBase grad) {
                    backward(new Tensor(grad));
                    return grad;
                }
            };
            hooks.add(h);
            return h;
        }

        void backward(Tensor dOut) {
            try (NoGradGuard ng = new NoGradGuard()) {
                Tensor dO = dOut.contiguous();
                Tensor delta = dO.mul(out).sum(new long[] {-1}, true, new org.bytedeco.pytorch.ScalarTypeOptional());
                Tensor dq = torch.zeros_like(q);
                Tensor kb = k.contiguous(), vb = v.contiguous();
                Tensor dkb = torch.zeros_like(kb), dvb = torch.zeros_like(vb);
                for (int step = 0; step < cp.size(); step++) {
                    Tensor p = scores(kb, step).sub(lse).exp();         // softmax probabilities of this block
                    dvb = dvb.add(torch.matmul(p.transpose(-2, -1), dO));
                    Tensor dp = torch.matmul(dO, vb.transpose(-2, -1));
                    Tensor ds = p.mul(dp.sub(delta));
                    dq = dq.add(torch.matmul(ds, kb).mul(new Scalar(scale)));
                    dkb = dkb.add(torch.matmul(ds.transpose(-2, -1), q).mul(new Scalar(scale)));
                    // Blocks and their gradients move on; after cp hops each is home again.
                    Tensor[] next = step < cp.size() - 1 ? shift(kb, vb, dkb, dvb) : shift(dkb, dvb);
                    if (step < cp.size() - 1) {
                        kb = next[0];
                        vb = next[1];
                        dkb = next[2];
                        dvb = next[3];
                    } else {
                        dkb = next[0];
                        dvb = next[1];
                    }
                }
                grads[0] = dq;
                grads[1] = dkb;
                grads[2] = dvb;
            }
        }

        boolean done() { return wanted > 0 && handedOut == wanted; }

        /** A hook that replaces the (zero) gradient of input {@code i} with the ring's. */
        TensorTensorHook gradient(int i) {
            wanted++;
            TensorTensorHook h = new TensorTensorHook() {
                @Override
                public TensorBase call(TensorBase grad) {
                    if (grads[i] == null) throw new IllegalStateException("context-parallel attention: no gradient from the ring");
                    Tensor g = grads[i];
                    grads[i] = null;
                    handedOut++;
                    return g;
                }
            };
            hooks.add(h);
            return h;
        }
    }

    /**
     * One hop around the ring: these tensors go to the next rank, the previous rank's come
     * in. One message carries all of them (packed flat).
     */
    private Tensor[] shift(Tensor... ts) {
        long total = 0;
        for (Tensor t : ts) total += t.numel();
        Tensor packed = ts[0].new_empty(total);
        long at = 0;
        for (Tensor t : ts) {
            packed.narrow(0, at, t.numel()).copy_(t.reshape(-1));
            at += t.numel();
        }
        Tensor in = packed.new_empty(total);
        int next = (cp.rank() + 1) % cp.size(), prev = Math.floorMod(cp.rank() - 1, cp.size());
        cp.sendRecv(packed, next, in, prev);
        Tensor[] out = new Tensor[ts.length];
        at = 0;
        for (int i = 0; i < ts.length; i++) {
            out[i] = in.narrow(0, at, ts[i].numel()).view(ts[i].sizes());
            at += ts[i].numel();
        }
        return out;
    }
}
