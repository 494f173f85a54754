package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
import parallax.engine.parallel.PipelineSchedule;
import parallax.engine.plan.Layout.Optimizer;
import parallax.engine.plan.Layout.Recompute;
import parallax.engine.plan.ModelSpec.Tensor;
import parallax.engine.plan.TrainingPlan.Comm;
import parallax.engine.plan.TrainingPlan.Line;

/**
 * The training capacity planner: memory per GPU, communication per dimension, step time.
 * Every number comes from a named formula; {@link #SOURCES} lists the footnotes.
 */
public final class Planner {

    /** Footnotes, numbered from 1 in this order. */
    public static final List<String> SOURCES = List.of(
            "Rajbhandari et al., ZeRO: Memory Optimizations Toward Training Trillion Parameter Models (SC20), §3 and §5: "
                    + "mixed-precision Adam keeps 2Ψ fp16 params + 2Ψ grads + 12Ψ fp32 {params, m, v}; stages partition them over Nd.",
            "Korthikanti et al., Reducing Activation Recomputation in Large Transformer Models (2022), §4: "
                    + "per-layer activations sbh(34 + 5as/h) and its TP / SP / selective / full-recompute forms; §4.3 embedding and output layer.",
            "Narayanan et al., Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM (SC21), §2.2: "
                    + "pipeline bubble (p−1)/m, interleaved (p−1)/(v·m); §4.1 scatter/gather of stage outputs over TP ranks.",
            "NCCL tests, doc/PERFORMANCE.md: all-reduce moves 2(n−1)/n of the buffer per rank, reduce-scatter and all-gather (n−1)/n.",
            "Shoeybi et al., Megatron-LM (2019), §3: two all-reduces forward and two backward per layer, 8bsh(t−1)/t elements per layer per micro-batch.",
            "Kaplan et al., Scaling Laws for Neural Language Models (2020), §2.1: training compute ≈ 6·Ψ per token (2 forward, 4 backward); "
                    + "full recomputation adds a forward (8·Ψ). MFU as in Chowdhery et al., PaLM (2022), App. B, here without the attention-score term.",
            "DeepSpeed, runtime/zero/stage3.py estimate_zero3_model_states_mem_needs: ZeRO-3 keeps 4 x largest-layer parameters gathered on the GPU.",
            "PyTorch DistributedDataParallel: bucket_cap_mb = 25 (two buckets in flight while the next fills).",
            "Vendor datasheets (NVIDIA H100, H200, B200, A100, V100, L40S; AMD MI300X) for memory, dense FLOP/s, NVLink and PCIe; DGX user guides for NICs per node.",
            "Ren et al., ZeRO-Offload (USENIX ATC 21): optimizer states and fp32 gradients on the CPU; Rajbhandari et al., ZeRO-Infinity (SC21): parameters too.",
            "Liu, Zaharia and Abbeel, Ring Attention with Blockwise Transformers (2023): K/V blocks pass around the cp ranks, each hop "
                    + "overlapped with one block of attention; Megatron-core context parallelism (zig-zag chunks for the causal mask, "
                    + "gradients averaged over the dp-cp group).",
            "Qi et al., Zero Bubble Pipeline Parallelism (ICLR 2024), §2-3: backward split into B (input gradients) and W (weight gradients); "
                    + "ZB-H1 bubble (p−1)(T_F + T_B − T_W) against 1F1B's (p−1)(T_F + T_B + T_W), same peak activations on the first stage.",
            ExpertParallel.SOURCE);

    static final String[] DP_NAMES = {"data parallel", "data parallel (ZeRO-1)", "data parallel (ZeRO-2)", "data parallel (ZeRO-3)"};

    static final double DDP_BUCKET_BYTES = 25.0 * (1 << 20);

    private Planner() {}

    /** Bytes per element of weights, gradients and optimizer states for this precision and optimizer. */
    public record StateBytes(int param, int grad, int optimizer) {
        public int total() { return param + grad + optimizer; }
    }

    public static StateBytes stateBytes(Layout l, Conventions c) {
        boolean fp32 = l.dtype() == DType.F32;
        int param = switch (l.dtype()) { case F32 -> 4; case F8_E4M3 -> 3; default -> 2; };
        int grad = fp32 || c.bytesPerParam() == 18 ? 4 : 2;
        int opt = switch (l.optimizer()) {
            case ADAMW -> fp32 ? 8 : 12;        // (fp32 master) + m + v
            case ADAM_8BIT -> fp32 ? 2 : 6;     // (fp32 master) + 8-bit m + v (Dettmers et al. 2022)
            case SGD -> fp32 ? 4 : 8;           // (fp32 master) + momentum
        };
        return new StateBytes(param, grad, opt);
    }

    /** Layers held by pipeline stage {@code i} of {@code p}: the first L mod p stages take one more. */
    public static int layersOfStage(int layers, int p, int i) {
        return layers / p + (i < layers % p ? 1 : 0);
    }

    /**
     * Parameter elements held by one GPU of pipeline stage {@code stage}, before any ZeRO
     * partitioning: its layers' TP shards, plus the embedding on the first stage and the
     * final norm and output layer on the last (a tied output layer keeps its own copy of the
     * embedding when the stages differ, as Megatron does).
     */
    public static long stageElements(ModelSpec m, int tp, int pp, int stage) {
        return shards(m, tp).stage(m.layers(), pp, stage);
    }

    /**
     * Per-TP-rank element counts of the embedding, one layer, the head and a tied head's embedding copy,
     * and the largest single weight (DeepSpeed's "largest layer": one module's parameters). For MoE
     * models {@code layer} leaves out the routed experts: {@code routed} holds them (all experts of one
     * MoE layer, before expert parallelism), {@code moeLayer} what only MoE layers add (router,
     * shared expert) and {@code denseLayer} the MLP of the first {@code denseLayers} dense layers.
     */
    record Shards(long embedding, long layer, long head, long tiedCopy, long largestTensor,
                  long routed, long moeLayer, long denseLayer, int denseLayers, boolean moe) {
        long stage(int layers, int pp, int stage) {
            return stageShared(layers, pp, stage) + stageExperts(layers, pp, stage, 1);
        }

        /** Everything but the routed experts: replicated over ep, partitioned over the full dp group. */
        long stageShared(int layers, int pp, int stage) {
            int n = layersOfStage(layers, pp, stage), dense = denseIn(layers, pp, stage);
            long sum = layer * n + moeLayer * (n - dense) + denseLayer * dense;
            if (stage == 0) sum += embedding;
            if (stage == pp - 1) sum += head + (pp > 1 ? tiedCopy : 0);
            return sum;
        }

        /** Routed-expert elements one rank of the ep group holds: experts/ep of each MoE layer of the stage. */
        long stageExperts(int layers, int pp, int stage, int ep) {
            if (!moe) return 0;
            return routed / ep * moeLayersOf(layers, pp, stage);
        }

        int moeLayersOf(int layers, int pp, int stage) {
            return moe ? layersOfStage(layers, pp, stage) - denseIn(layers, pp, stage) : 0;
        }

        /** Dense layers among the stage's (they are the model's first ones). */
        int denseIn(int layers, int pp, int stage) {
            int start = stage * (layers / pp) + Math.min(stage, layers % pp);
            return Math.max(0, Math.min(denseLayers, start + layersOfStage(layers, pp, stage)) - start);
        }
    }

    static Shards shards(ModelSpec m, int tp) {
        long embedding = 0, layer = 0, head = 0, tied = 0, largest = 0, routed = 0, moeLayer = 0, denseLayer = 0;
        for (Tensor x : m.tensors()) {
            long e = m.elementsPerTpRank(x, tp);
            if (m.routed(x)) routed += e;
            else switch (x.place()) {
                case LAYER -> layer += e;
                case MOE_LAYER -> moeLayer += e;
                case DENSE_LAYER -> denseLayer += e;
                case EMBEDDING -> {
                    embedding += e;
                    if (m.tiedEmbeddings() && m.arch() != ModelSpec.Arch.BERT && x.split() == ModelSpec.Split.VOCAB) tied += e;
                }
                case HEAD -> head += e;
            }
            largest = Math.max(largest, e / x.count());   // one nn.Linear/Embedding (one expert of several)
        }
        return new Shards(embedding, layer, head, tied, largest, routed, moeLayer, denseLayer, m.detail().denseLayers(), m.moe());
    }

    /** Elements data-parallel rank {@code r} of {@code dp} owns when n elements are cut into even chunks. */
    public static long partition(long n, int dp, int r) {
        long chunk = ModelSpec.ceilDiv(n, dp);
        return Math.max(0, Math.min(chunk, n - r * chunk));
    }

    public static void check(ModelSpec m, GpuCluster cl, Layout l) {
        m.checkTensorParallel(l.tp());
        if (l.sequenceParallel() && l.localSeq() % l.tp() != 0)
            throw new UserError("sequence parallelism cuts the " + l.localSeq() + "-token sequence" + (l.cp() > 1 ? " of each context-parallel rank" : "")
                    + " over tp = " + l.tp() + ", which does not divide it");
        if (l.pp() > m.layers())
            throw new UserError("pp=" + l.pp() + " is more pipeline stages than the " + m.layers() + " layers of " + m.name());
        if (l.pp() * l.virtualStages() > m.layers())
            throw new UserError("pp x virtual stages = " + l.pp() * l.virtualStages() + " exceeds the " + m.layers() + " layers");
        if (l.schedule() == Layout.Schedule.INTERLEAVED && m.layers() % (l.pp() * l.virtualStages()) != 0)
            throw new UserError("the interleaved schedule cuts the " + m.layers() + " layers into pp x vpp = " + l.pp() + " x "
                    + l.virtualStages() + " equal chunks, which does not divide them");
        if (l.gpus() != cl.gpus())
            throw new UserError(dims(l) + " GPUs, but the cluster has " + cl.gpus() + " (" + cl.describe() + ")");
        if (l.seq() > m.maxSeq() && m.arch() != ModelSpec.Arch.LLAMA && m.arch() != ModelSpec.Arch.QWEN2)
            throw new UserError("sequence length " + l.seq() + " exceeds the " + m.maxSeq() + " learned positions of " + m.name());
        cl.gpu().flopsFor(l.dtype());
        ExpertParallel.check(m, l);
    }

    /** "dp x tp x pp = 2 x 4 x 2 = 16", with cp when there is one. */
    static String dims(Layout l) {
        return l.cp() > 1
                ? "dp x cp x tp x pp = " + l.dp() + " x " + l.cp() + " x " + l.tp() + " x " + l.pp() + " = " + l.gpus()
                : "dp x tp x pp = " + l.dp() + " x " + l.tp() + " x " + l.pp() + " = " + l.gpus();
    }

    public static TrainingPlan plan(ModelSpec m, GpuCluster cl, Layout l, Conventions c) {
        return plan(m, cl, l, c, true);
    }

    /** With {@code explain} false the formula texts are left empty: the search needs only the numbers. */
    public static TrainingPlan plan(ModelSpec m, GpuCluster cl, Layout l, Conventions c, boolean explain) {
        return plan(m, cl, l, c, explain, Counts.of(m, l.tp()));
    }

    /**
     * What a plan needs of the model's tensor list, summed once: Ψ, Ψ_active and the TP
     * shards for one tp (the search reuses them over every layout with that tp).
     */
    record Counts(long parameters, long active, Shards shards) {
        static Counts of(ModelSpec m, int tp) {
            return new Counts(m.parameters(), m.activeParameters(), Planner.shards(m, tp));
        }
    }

    static TrainingPlan plan(ModelSpec m, GpuCluster cl, Layout l, Conventions c, boolean explain, Counts counts) {
        check(m, cl, l);
        GpuProfile g = cl.gpu();
        StateBytes sb = stateBytes(l, c);
        int t = l.tp(), p = l.pp(), dp = l.dp(), cp = l.cp(), mbs = l.microBatches(), v = l.virtualStages();
        int shards = l.dataShards();   // ZeRO partitions and gradients average over dp x cp (cp ranks hold the same weights)
        long s = l.seq(), b = l.microBatch(), sl = l.localSeq();
        boolean sp = l.sequenceParallel();
        int e = l.activationBytes();
        double perLayerAct = Activations.perLayer(m, s, b, t, cp, sp, l.recompute(), e, c.dropout());
        double perLayerW = l.schedule() == Layout.Schedule.ZB_H1 ? Activations.weightGradientInputs(m, s, b, t, cp, e) : 0;
        double embeddingAct = Activations.embedding(m, sl, b, t, sp, c.dropout());
        double outputAct = Activations.outputLayer(m, sl, b, t, sp, e);
        double outputW = l.schedule() == Layout.Schedule.ZB_H1 ? Activations.outputLayerWeightGradient(m, sl, b, t, e) : 0;
        String dpWords = cp > 1 ? "(dp·cp)" : "dp";

        // Memory: evaluate every stage, keep the one that needs the most.
        List<Line> worst = null;
        double worstTotal = -1, worstCpu = 0;
        int worstStage = 0;
        Shards shardsOf = counts.shards();
        long largestLayer = shardsOf.largestTensor();
        String actWords = explain ? activationWords(m, l, c) : "";

        // The stages that can need the most: the first and last (embedding, output layer) and
        // the ends of the runs of stages with equal layers (the first L mod p stages hold one
        // more). Within a run the activations are non-increasing (GPipe, 1F1B, interleaved) or,
        // under ZB-H1, a maximum of two linear functions of the stage index: either way the
        // largest is at an end of the run.
        int longer = m.layers() % p;
        // With dense first layers (DeepSeek-V3), also the first stage holding none of them and the one before.
        int allMoe = 0;
        while (allMoe < p - 1 && shardsOf.denseIn(m.layers(), p, allMoe) > 0) allMoe++;
        int[] candidates = {0, 1, longer - 1, longer, p - 2, p - 1, allMoe - 1, allMoe};
        boolean[] seen = new boolean[p];
        for (int st : candidates) {
            if (st < 0 || st >= p || seen[st]) continue;
            seen[st] = true;
            long n = shardsOf.stageShared(m.layers(), p, st) + shardsOf.stageExperts(m.layers(), p, st, l.ep());
            long part = ExpertParallel.owned(shardsOf, m, l, st);
            double params = l.offloadParams() ? 0 : (l.zero() == 3 ? part : n) * (double) sb.param();
            double grads = (l.zero() >= 2 ? part : n) * (double) sb.grad();
            double opt = l.offloadOptimizer() ? 0 : (l.zero() >= 1 ? part : n) * (double) sb.optimizer();
            double act = stageActivations(m, l, st, perLayerAct, perLayerW, embeddingAct, outputAct, outputW);
            double buffers = 0;
            if (shards > 1 && l.zero() < 3) buffers += 2 * DDP_BUCKET_BYTES;
            if (shards > 1 && l.zero() == 3 || l.offloadParams()) buffers += 4.0 * largestLayer;
            if (p > 1) buffers += 4.0 * sl * b * m.hidden() / t * e;
            boolean epBuffers = l.ep() > 1 && shardsOf.moeLayersOf(m.layers(), p, st) > 0;
            if (epBuffers) buffers += ExpertParallel.bufferBytes(m, l);
            if (cp > 1) buffers += 6.0 * sl * b * kvWidth(m, t) * e;
            // The lines' sum in their order (as a list would add them); the lines and their
            // texts are built only for a stage that is the busiest so far (the search plans
            // thousands of layouts, and each stage's lines were garbage at once).
            double total = 0;
            total += params;
            total += grads;
            total += opt;
            total += act;
            total += buffers;
            if (!(total > worstTotal)) continue;
            List<Line> lines = new ArrayList<>(5);
            lines.add(new Line("parameters", params, !explain ? "" : l.offloadParams() ? "on CPU (ZeRO-Infinity)"
                    : (l.zero() == 3 ? "⌈Ψ_gpu/" + dpWords + "⌉" : "Ψ_gpu") + " x " + sb.param() + " B", 1));
            lines.add(new Line("gradients", grads, !explain ? "" : (l.zero() >= 2 ? "⌈Ψ_gpu/" + dpWords + "⌉" : "Ψ_gpu") + " x " + sb.grad() + " B", 1));
            lines.add(new Line("optimizer states", opt, !explain ? "" : l.offloadOptimizer() ? "on CPU (ZeRO-Offload)"
                    : (l.zero() >= 1 ? "⌈Ψ_gpu/" + dpWords + "⌉" : "Ψ_gpu") + " x " + sb.optimizer() + " B (" + optimizerWords(l) + ")", 1));
            String actText = "";
            if (explain) {
                int layers = layersOfStage(m.layers(), p, st);
                double inflight = Activations.inFlight(l.schedule(), p, v, mbs, st);
                double pendingW = Activations.weightGradientsPending(l.schedule(), p, mbs, st);
                actText = layers + " layers x " + actWords + " x " + short3(inflight)
                        + " micro-batches in flight" + (pendingW > 0 ? " + " + short3(pendingW) + " x the linear layers' inputs and output "
                        + "gradients kept from B to W (ZB-H1)" : "") + (st == 0 ? " + embedding" : "") + (st == p - 1 ? " + output layer" : "");
            }
            lines.add(new Line("activations", act, actText, 2));
            String bufText = "";
            if (explain) {
                List<String> bw = new ArrayList<>();
                if (shards > 1 && l.zero() < 3) bw.add("2 x 25 MiB gradient buckets [8]");
                if (shards > 1 && l.zero() == 3 || l.offloadParams()) bw.add("4 B x largest layer (one weight matrix) [7]");
                if (p > 1) bw.add("4 x " + (cp > 1 ? "(s/cp)" : "s") + "bh/t stage send/recv buffers");
                if (epBuffers) bw.add("2 x " + (cp > 1 ? "(s/cp)" : "s") + "bh·k" + (sp ? "/t" : "") + " all-to-all send/receive buffers [" + SOURCES.size() + "]");
                if (cp > 1) bw.add("6 x (s/cp)·b·h_kv/t ring blocks (K and V in use and arriving; their gradients in the backward) [11]");
                bufText = bw.isEmpty() ? "none (single GPU)" : String.join(" + ", bw);
            }
            lines.add(new Line("communication buffers", buffers, bufText, l.zero() == 3 ? 7 : 8));
            double cpu = 0;
            if (l.offloadOptimizer()) cpu += part * (double) (sb.optimizer() + 4);
            if (l.offloadParams()) cpu += part * (double) sb.param();
            worstTotal = total;
            worst = lines;
            worstStage = st;
            worstCpu = cpu;
        }
        double headroom = c.headroom() * g.memoryBytes();
        double usable = g.memoryBytes() - headroom;

        // Communication per optimizer step and per GPU, on the link the group crosses.
        // Megatron's rank order tp-cp-dp-pp (tp fastest): a group spans tp, tp·cp, tp·cp·dp or all ranks.
        int gpn = g.gpusPerNode();
        double act = l.activationBytes();
        List<Comm> comms = new ArrayList<>();
        long worstN = shardsOf.stageShared(m.layers(), p, worstStage) + shardsOf.stageExperts(m.layers(), p, worstStage, l.ep());
        int layersW = layersOfStage(m.layers(), p, worstStage);
        double fwdBwdCompute = computeSeconds(counts.active(), cl, l, c);
        double backwardShare = l.recompute() == Recompute.FULL ? 6.0 / 8 : 4.0 / 6;
        if (t > 1) {
            double ar = l.recompute() == Recompute.FULL ? 6 : 4;
            double bytes = ar * 2.0 * (t - 1) / t * b * sl * m.hidden() * act * layersW * mbs;
            double sec = bytes / linkBw(g, t <= gpn, c);
            comms.add(new Comm("tensor parallel", t, linkName(g, t <= gpn, explain), bytes, sec, sec, !explain ? "" :
                    (l.recompute() == Recompute.FULL ? "12" : "8") + "·b" + (cp > 1 ? "(s/cp)" : "s") + "h(t−1)/t per layer per micro-batch"
                            + (sp ? " (SP: reduce-scatter + all-gather, same volume)" : ""), 5));
        }
        if (cp > 1) {
            Ring r = ring(m, g, l, c);
            double sec = r.seconds() * layersW * mbs, exposed = r.exposedSeconds() * layersW * mbs;
            comms.add(new Comm("context parallel (ring)", cp, linkName(g, r.insideNode(), explain), r.bytes() * layersW * mbs, sec, exposed,
                    !explain ? "" : "(cp−1) hops x 2·(s/cp)·b·h_kv/t per layer per micro-batch forward, twice that backward"
                            + (l.recompute() == Recompute.FULL ? ", once more to recompute" : "")
                            + "; each hop hides behind one block of attention (" + short3(r.blockSeconds() * 1e6)
                            + " µs against " + short3(r.hopSeconds() * 1e6) + " µs on the link)", 11));
        }
        if (l.ep() > 1 && shardsOf.moeLayersOf(m.layers(), p, worstStage) > 0) {
            comms.add(ExpertParallel.allToAll(m, g, l, c, shardsOf.moeLayersOf(m.layers(), p, worstStage), explain));
        }
        if (p > 1) {
            double bytes = 2.0 * b * sl * m.hidden() / t * act * mbs * v;
            boolean inside = (long) t * cp * dp * p <= gpn;
            double sec = bytes / linkBw(g, inside, c);
            comms.add(new Comm("pipeline parallel", p, linkName(g, inside, explain), bytes, sec, sec, !explain ? "" :
                    "2·b" + (cp > 1 ? "(s/cp)" : "s") + "h/t per micro-batch (activation forward, gradient backward)" + (v > 1 ? " x v" : ""), 3));
        }
        if (shards > 1) {
            double f = (shards - 1.0) / shards;
            double bytes;
            String formula;
            double window;
            int gradWire = sb.grad() == 4 ? 4 : 2;
            String n = cp > 1 ? "(dp·cp)" : "dp", nm1 = cp > 1 ? "(dp·cp−1)" : "(dp−1)";
            // With ep the routed experts' share goes over their own group of dp·cp/ep ranks.
            long expertN = shardsOf.stageExperts(m.layers(), p, worstStage, l.ep()), sharedN = worstN - expertN;
            int eShards = shards / l.ep();
            double fe = (eShards - 1.0) / eShards;
            switch (l.zero()) {
                case 0, 1 -> { bytes = 2 * (f * sharedN + fe * expertN) * gradWire; formula = "all-reduce 2Ψ" + nm1 + "/" + n + " once per step"; window = backwardShare; }
                case 2 -> { bytes = (f * sharedN + fe * expertN) * (gradWire * (double) mbs + 2); formula = "reduce-scatter Ψ" + nm1 + "/" + n + " per micro-batch + all-gather Ψ" + nm1 + "/" + n; window = backwardShare; }
                default -> { bytes = 3 * (f * sharedN + fe * expertN) * 2.0 * mbs; formula = "all-gather x 2 + reduce-scatter: 3Ψ" + nm1 + "/" + n + " per micro-batch"; window = 1; }
            }
            if (cp > 1 && explain) formula += " (cp ranks hold the same weights: the dp-cp group)";
            if (l.ep() > 1 && explain) formula += "; the experts' Ψ/ep over their " + n + "/ep = " + eShards + " ranks";
            boolean inside = (long) t * cp * dp <= gpn;
            double sec = bytes / linkBw(g, inside, c);
            double exposed = Math.max(0, sec - c.overlap() * window * fwdBwdCompute);
            comms.add(new Comm(DP_NAMES[l.zero()], shards,
                    linkName(g, inside, explain), bytes, sec, exposed, formula, 4));
        }
        if (l.offloadOptimizer() || l.offloadParams()) {
            long part = ExpertParallel.owned(shardsOf, m, l, worstStage);
            double bytes = (l.offloadOptimizer() ? 4.0 * part : 0) + (l.offloadParams() ? 4.0 * part * mbs : 0);
            double sec = bytes / g.pcieBytesPerS();
            comms.add(new Comm("CPU offload (PCIe)", 1, "PCIe", bytes, sec, sec, !explain ? "" :
                    "gradients down + parameters up, 2 B each per owned element" + (l.offloadParams() ? ", parameters per micro-batch" : ""), 10));
        }

        double bubble = bubble(l.schedule(), p, v, mbs);
        double step = fwdBwdCompute * (1 + bubble);
        for (Comm cm : comms) step += cm.exposedSeconds();
        double tps = l.tokensPerStep() / step;
        double peak = g.flopsFor(l.dtype());
        double mfu = 6.0 * counts.active() * tps / (cl.gpus() * peak);
        return new TrainingPlan(m, cl, l, c, counts.parameters(), counts.active(), worstStage, worst, worstTotal,
                headroom, usable, worstTotal <= usable, worstCpu * gpn, comms, bubble, fwdBwdCompute, step, tps, mfu, peak);
    }

    /**
     * Activation bytes pipeline stage {@code st} holds at its peak. One chunk per stage
     * (GPipe, 1F1B): its layers, embedding and output layer times the micro-batches in
     * flight. ZB-H1 with m ≥ p: in the steady state the stage holds p − st micro-batches
     * from F to B and st from B to W, or one fewer and one more just after a B, whichever is
     * more. Otherwise (interleaved; ZB-H1 with m < p) the engine's pass order is walked with
     * each chunk's own bytes: the embedding on the first chunk of stage 0, the output layer
     * (and under ZB-H1 its input and logit gradients, kept to W) on the last chunk of the
     * last stage.
     */
    static double stageActivations(ModelSpec m, Layout l, int st, double perLayer, double perLayerW, double embedding, double output,
                                   double outputW) {
        int p = l.pp(), v = l.virtualStages(), mbs = l.microBatches();
        Layout.Schedule sch = l.schedule();
        double ends = (st == 0 ? embedding : 0) + (st == p - 1 ? output : 0);
        if (p == 1 || sch == Layout.Schedule.GPIPE || sch == Layout.Schedule.ONE_F_ONE_B) {
            return (layersOfStage(m.layers(), p, st) * perLayer + ends) * Activations.inFlight(sch, p, v, mbs, st);
        }
        if (sch == Layout.Schedule.ZB_H1 && mbs >= p) {
            int layers = layersOfStage(m.layers(), p, st);
            double full = layers * perLayer + ends, w = layers * perLayerW + (st == p - 1 ? outputW : 0);
            return Math.max((p - st) * full + st * w, (p - 1 - st) * full + (st + 1) * w);
        }
        double[] full = new double[v], weights = new double[v];
        for (int ch = 0; ch < v; ch++) {
            int layers = v == 1 ? layersOfStage(m.layers(), p, st) : m.layers() / (p * v);
            full[ch] = layers * perLayer;
            weights[ch] = layers * perLayerW;
        }
        if (st == 0) full[0] += embedding;
        if (st == p - 1) {
            full[v - 1] += output;
            weights[v - 1] += outputW;
        }
        return Activations.walkPeak(sch, p, v, mbs, st, full, weights);
    }

    /**
     * The pipeline bubble as a share of the ideal (bubble-free) compute time, from the
     * engine's closed forms ({@link PipelineSchedule#bubbleFraction}, idle share f of the
     * stage's time; here f/(1 − f)): GPipe and 1F1B (p−1)/m, interleaved (p−1)/(v·m),
     * ZB-H1 (p−1)(t_F + t_B − t_W)/(m(t_F + t_B + t_W)) = (p−1)/(3m), taking t_F = t_B = t_W
     * as Qi et al. do: of the 6Ψ FLOPs per token, the forward, the input gradients and the
     * weight gradients are 2Ψ each.
     */
    public static double bubble(Layout.Schedule schedule, int p, int v, int m) {
        if (p == 1) return 0;
        double f = PipelineSchedule.bubbleFraction(schedule.engine(), p, v, m, 1, 1, 1);
        return f / (1 - f);
    }

    /** K and V width per TP rank: kv heads x head dim, a GQA head kept whole where tp exceeds the kv heads. */
    static double kvWidth(ModelSpec m, int t) {
        return Math.max(1.0, (double) m.kvHeads() / t) * m.headDim();
    }

    /**
     * One layer's K/V ring for one micro-batch (Liu et al. 2023; Megatron context
     * parallelism): each of the cp − 1 hops moves this rank's K and V block, 2·(s/cp)·b·h_kv/t
     * elements, forward; the backward moves the blocks again and their gradients back to
     * their owners (twice that); full recomputation runs the forward ring once more. A hop
     * overlaps the attention of the block already here, so only max(0, transfer − block
     * compute) shows, per hop. The block compute is Q·Kᵀ and P·V on (s/cp) x (s/cp) tokens,
     * 4·b·(s/cp)²·h/t FLOPs, half of it under the causal mask with the zig-zag cut (the
     * backward twice the forward).
     */
    record Ring(double bytes, double seconds, double exposedSeconds, double hopSeconds, double blockSeconds, boolean insideNode) {}

    static Ring ring(ModelSpec m, GpuProfile g, Layout l, Conventions c) {
        int t = l.tp(), cp = l.cp();
        double sl = l.localSeq(), b = l.microBatch();
        double block = 2.0 * sl * b * kvWidth(m, t) * l.activationBytes();
        int forwards = l.recompute() == Recompute.FULL ? 2 : 1;
        boolean inside = (long) t * cp <= g.gpusPerNode();
        double bw = linkBw(g, inside, c);
        double hop = block / bw;
        double compute = 2.0 * b * sl * sl * m.hidden() / t / (g.flopsFor(l.dtype()) * c.computeEfficiency());
        double hops = cp - 1;
        double bytes = (forwards + 2) * hops * block;
        double exposed = hops * (forwards * Math.max(0, hop - compute) + Math.max(0, 2 * hop - 2 * compute));
        return new Ring(bytes, bytes / bw, exposed, hop, compute, inside);
    }

    /**
     * Attention-score FLOPs of a step per GPU, which the 6Ψ rule leaves out: Q·Kᵀ and P·V,
     * 4·s·h per token per layer forward, half under the causal mask, three times that with
     * the backward (four with full recomputation): 6·L·s·h per token (PaLM, App. B, counts
     * 12·L·H·Q·T without the causal half).
     */
    public static double attentionSeconds(ModelSpec m, GpuCluster cl, Layout l, Conventions c) {
        double factor = l.recompute() == Recompute.FULL ? 8 : 6;
        double flops = factor * m.layers() * (double) l.seq() * m.hidden() * l.tokensPerStep() / cl.gpus();
        return flops / (cl.gpu().flopsFor(l.dtype()) * c.computeEfficiency());
    }

    /** Forward + backward (+ recompute) time of one step on one GPU at the assumed efficiency, no bubble. */
    static double computeSeconds(long activeParameters, GpuCluster cl, Layout l, Conventions c) {
        double factor = l.recompute() == Recompute.FULL ? 8 : 6;
        double flops = factor * activeParameters * l.tokensPerStep() / cl.gpus();
        return flops / (cl.gpu().flopsFor(l.dtype()) * c.computeEfficiency());
    }

    /** A count with up to three significant decimals, without String.format (the search calls this a lot). */
    static String short3(double v) {
        if (v == Math.rint(v)) return Long.toString((long) v);
        return Double.toString(Math.round(v * 1000) / 1000.0);
    }

    static double linkBw(GpuProfile g, boolean insideNode, Conventions c) {
        return (insideNode ? g.nvlinkBytesPerS() : g.netBytesPerS()) * c.linkEfficiency();
    }

    static String linkName(GpuProfile g, boolean insideNode, boolean explain) {
        if (!explain) return insideNode ? "NVLink" : "network";
        return insideNode ? "NVLink " + short3(g.nvlinkBytesPerS() / 1e9) + " GB/s"
                : "network " + short3(g.netBytesPerS() / 1e9) + " GB/s";
    }

    static String optimizerWords(Layout l) {
        boolean fp32 = l.dtype() == DType.F32;
        return switch (l.optimizer()) {
            case ADAMW -> fp32 ? "m, v" : "fp32 master, m, v";
            case ADAM_8BIT -> fp32 ? "8-bit m, v" : "fp32 master, 8-bit m, v";
            case SGD -> fp32 ? "momentum" : "fp32 master, momentum";
        };
    }

    /** The per-layer formula in use, with this model's split coefficient (24 in the paper). */
    static String activationWords(ModelSpec m, Layout l, Conventions c) {
        String k = short3(Activations.splitCoefficient(m));
        String u = short3(Activations.UNSPLIT + Activations.splitCoefficient(m));
        boolean sp = l.sequenceParallel(), tp = l.tp() > 1;
        String base;
        if (l.cp() > 1) {
            String lse = " + 4as'b" + (tp ? "/t" : "") + " (fp32 log-sum-exp; ring attention stores no s² scores)";
            base = switch (l.recompute()) {
                case NONE -> (sp ? "s'bh/t(" + u + ")" : tp ? "s'bh(10 + " + k + "/t)" : "s'bh(" + u + ")") + lse;
                case SELECTIVE -> sp ? u + "s'bh/t" : tp ? "s'bh(10 + " + k + "/t)" : u + "s'bh";
                case FULL -> sp ? "2s'bh/t" : "2s'bh";
            };
            base += " with s' = s/cp = " + l.localSeq();
        } else {
            base = switch (l.recompute()) {
                case NONE -> sp ? "sbh/t(" + u + " + 5as/h)" : tp ? "sbh(10 + " + k + "/t + 5as/(ht))" : "sbh(" + u + " + 5as/h)";
                case SELECTIVE -> sp ? u + "sbh/t" : "sbh(10 + " + k + "/t)";
                case FULL -> sp ? "2sbh/t" : "2sbh";
            };
        }
        // The paper's bytes assume 2-byte elements and dropout.
        return base + (l.dtype() == DType.F32 ? " x 2 (fp32 elements)" : "") + (c.dropout() ? "" : " less the dropout terms");
    }

    /**
     * DeepSpeed's own estimates of model-state memory per GPU (runtime/zero/stage_1_and_2.py
     * estimate_zero2_model_states_mem_needs and stage3.py estimate_zero3_model_states_mem_needs):
     * ZeRO-2 2Ψ + 18Ψ/N (2Ψ with the optimizer offloaded); ZeRO-3 4 B x largest layer + 18Ψ/N
     * (2Ψ/N with the optimizer offloaded, 0 with parameters offloaded). Model states only.
     */
    public static double[] deepSpeedEstimates(ModelSpec m, int gpus, boolean offloadOptimizer, boolean offloadParams) {
        double psi = m.parameters();
        double z2 = offloadOptimizer ? 2 * psi : 2 * psi + 18 * psi / gpus;
        double z3 = 4.0 * shards(m, 1).largestTensor() + (offloadParams ? 0 : offloadOptimizer ? 2 * psi / gpus : 18 * psi / gpus);
        return new double[] {z2, z3};
    }

    /** Used by name when an optimizer word comes from a flag. */
    public static Optimizer optimizer(String word) {
        return switch (word.toLowerCase().replace('_', '-')) {
            case "adamw", "adam" -> Optimizer.ADAMW;
            case "adam-8bit", "adam8bit", "8bit-adam" -> Optimizer.ADAM_8BIT;
            case "sgd" -> Optimizer.SGD;
            default -> throw new UserError("unknown optimizer '" + word + "' (adamw, adam-8bit, sgd)");
        };
    }
}
