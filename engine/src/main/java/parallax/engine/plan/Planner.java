package parallax.engine.plan;

import java.util.ArrayList;
import java.util.List;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;
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
        if (l.pp() > m.layers())
            throw new UserError("pp=" + l.pp() + " is more pipeline stages than the " + m.layers() + " layers of " + m.name());
        if (l.pp() * l.virtualStages() > m.layers())
            throw new UserError("pp x virtual stages = " + l.pp() * l.virtualStages() + " exceeds the " + m.layers() + " layers");
        if (l.gpus() != cl.gpus())
            throw new UserError("dp x tp x pp = " + l.dp() + " x " + l.tp() + " x " + l.pp() + " = " + l.gpus()
                    + " GPUs, but the cluster has " + cl.gpus() + " (" + cl.describe() + ")");
        if (l.seq() > m.maxSeq() && m.arch() != ModelSpec.Arch.LLAMA && m.arch() != ModelSpec.Arch.QWEN2)
            throw new UserError("sequence length " + l.seq() + " exceeds the " + m.maxSeq() + " learned positions of " + m.name());
        cl.gpu().flopsFor(l.dtype());
        ExpertParallel.check(m, l);
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
        int t = l.tp(), p = l.pp(), dp = l.dp(), mbs = l.microBatches();
        long s = l.seq(), b = l.microBatch();
        boolean sp = l.sequenceParallel();
        int e = l.activationBytes();
        double perLayerAct = Activations.perLayer(m, s, b, t, sp, l.recompute(), e, c.dropout());

        // Memory: evaluate every stage, keep the one that needs the most.
        List<Line> worst = null;
        double worstTotal = -1, worstCpu = 0;
        int worstStage = 0;
        Shards shards = counts.shards();
        long largestLayer = shards.largestTensor();
        String actWords = explain ? activationWords(m, l, c) : "";

        for (int st = 0; st < p; st++) {
            // A middle stage like the one before it (as many layers, as many of them dense) needs no more memory.
            if (st > 0 && st < p - 1 && layersOfStage(m.layers(), p, st) == layersOfStage(m.layers(), p, st - 1)
                    && shards.denseIn(m.layers(), p, st) == shards.denseIn(m.layers(), p, st - 1)) continue;
            long n = shards.stageShared(m.layers(), p, st) + shards.stageExperts(m.layers(), p, st, l.ep());
            long part = ExpertParallel.owned(shards, m, l, st);
            List<Line> lines = new ArrayList<>();
            double params = l.offloadParams() ? 0 : (l.zero() == 3 ? part : n) * (double) sb.param();
            lines.add(new Line("parameters", params, !explain ? "" : l.offloadParams() ? "on CPU (ZeRO-Infinity)"
                    : (l.zero() == 3 ? "⌈Ψ_gpu/dp⌉" : "Ψ_gpu") + " x " + sb.param() + " B", 1));
            double grads = (l.zero() >= 2 ? part : n) * (double) sb.grad();
            lines.add(new Line("gradients", grads, !explain ? "" : (l.zero() >= 2 ? "⌈Ψ_gpu/dp⌉" : "Ψ_gpu") + " x " + sb.grad() + " B", 1));
            double opt = l.offloadOptimizer() ? 0 : (l.zero() >= 1 ? part : n) * (double) sb.optimizer();
            lines.add(new Line("optimizer states", opt, !explain ? "" : l.offloadOptimizer() ? "on CPU (ZeRO-Offload)"
                    : (l.zero() >= 1 ? "⌈Ψ_gpu/dp⌉" : "Ψ_gpu") + " x " + sb.optimizer() + " B (" + optimizerWords(l) + ")", 1));
            int layers = layersOfStage(m.layers(), p, st);
            double inflight = Activations.inFlight(l.schedule(), p, l.virtualStages(), mbs, st);
            double act = layers * perLayerAct * inflight;
            if (st == 0) act += Activations.embedding(m, s, b, t, sp, c.dropout()) * inflight;
            if (st == p - 1) act += Activations.outputLayer(m, s, b, t, e) * inflight;   // GPipe holds every micro-batch's logits
            lines.add(new Line("activations", act, !explain ? "" : layers + " layers x " + actWords + " x " + short3(inflight)
                    + " micro-batches in flight" + (st == 0 ? " + embedding" : "") + (st == p - 1 ? " + output layer" : ""), 2));
            double buffers = 0;
            List<String> bw = new ArrayList<>();
            if (dp > 1 && l.zero() < 3) { buffers += 2 * DDP_BUCKET_BYTES; bw.add("2 x 25 MiB gradient buckets [8]"); }
            if (dp > 1 && l.zero() == 3 || l.offloadParams()) { buffers += 4.0 * largestLayer; bw.add("4 B x largest layer (one weight matrix) [7]"); }
            if (p > 1) {
                buffers += 4.0 * s * b * m.hidden() / (t > 1 ? t : 1) * l.activationBytes();
                bw.add("4 x sbh/t stage send/recv buffers");
            }
            if (l.ep() > 1 && shards.moeLayersOf(m.layers(), p, st) > 0) {
                buffers += ExpertParallel.bufferBytes(m, l);
                bw.add("2 x sbh·k" + (sp ? "/t" : "") + " all-to-all send/receive buffers [" + (SOURCES.size()) + "]");
            }
            lines.add(new Line("communication buffers", buffers, !explain ? "" : bw.isEmpty() ? "none (single GPU)" : String.join(" + ", bw),
                    l.zero() == 3 ? 7 : 8));
            double total = lines.stream().mapToDouble(Line::bytes).sum();
            double cpu = 0;
            if (l.offloadOptimizer()) cpu += part * (double) (sb.optimizer() + 4);
            if (l.offloadParams()) cpu += part * (double) sb.param();
            if (total > worstTotal) { worstTotal = total; worst = lines; worstStage = st; worstCpu = cpu; }
        }
        double headroom = c.headroom() * g.memoryBytes();
        double usable = g.memoryBytes() - headroom;

        // Communication per optimizer step and per GPU, on the link the group crosses.
        int gpn = g.gpusPerNode();
        double act = l.activationBytes();
        List<Comm> comms = new ArrayList<>();
        long worstN = shards.stageShared(m.layers(), p, worstStage) + shards.stageExperts(m.layers(), p, worstStage, l.ep());
        int layersW = layersOfStage(m.layers(), p, worstStage);
        double fwdBwdCompute = computeSeconds(counts.active(), cl, l, c);
        double backwardShare = l.recompute() == Recompute.FULL ? 6.0 / 8 : 4.0 / 6;
        if (t > 1) {
            double ar = l.recompute() == Recompute.FULL ? 6 : 4;
            double bytes = ar * 2.0 * (t - 1) / t * b * s * m.hidden() * act * layersW * mbs;
            double sec = bytes / linkBw(g, t <= gpn, c);
            comms.add(new Comm("tensor parallel", t, linkName(g, t <= gpn, explain), bytes, sec, sec, !explain ? "" :
                    (l.recompute() == Recompute.FULL ? "12" : "8") + "·bsh(t−1)/t per layer per micro-batch"
                            + (sp ? " (SP: reduce-scatter + all-gather, same volume)" : ""), 5));
        }
        if (l.ep() > 1 && shards.moeLayersOf(m.layers(), p, worstStage) > 0) {
            comms.add(ExpertParallel.allToAll(m, g, l, c, shards.moeLayersOf(m.layers(), p, worstStage), explain));
        }
        if (p > 1) {
            double bytes = 2.0 * b * s * m.hidden() / t * act * mbs * l.virtualStages();
            boolean inside = (long) t * dp * p <= gpn;
            double sec = bytes / linkBw(g, inside, c);
            comms.add(new Comm("pipeline parallel", p, linkName(g, inside, explain), bytes, sec, sec, !explain ? "" :
                    "2·bsh/t per micro-batch (activation forward, gradient backward)" + (l.virtualStages() > 1 ? " x v" : ""), 3));
        }
        if (dp > 1) {
            double f = (dp - 1.0) / dp;
            double bytes;
            String formula;
            double window;
            int gradWire = sb.grad() == 4 ? 4 : 2;
            // With ep the routed experts' share goes over their own group of dp/ep ranks.
            long expertN = shards.stageExperts(m.layers(), p, worstStage, l.ep()), sharedN = worstN - expertN;
            double fe = l.ep() == dp ? 0 : (dp / l.ep() - 1.0) / (dp / l.ep());
            switch (l.zero()) {
                case 0, 1 -> { bytes = 2 * (f * sharedN + fe * expertN) * gradWire; formula = "all-reduce 2Ψ(dp−1)/dp once per step"; window = backwardShare; }
                case 2 -> { bytes = (f * sharedN + fe * expertN) * (gradWire * (double) mbs + 2); formula = "reduce-scatter Ψ(dp−1)/dp per micro-batch + all-gather Ψ(dp−1)/dp"; window = backwardShare; }
                default -> { bytes = 3 * (f * sharedN + fe * expertN) * 2.0 * mbs; formula = "all-gather x 2 + reduce-scatter: 3Ψ(dp−1)/dp per micro-batch"; window = 1; }
            }
            if (l.ep() > 1 && explain) formula += "; the experts' Ψ/ep over their dp/ep = " + dp / l.ep() + " ranks";
            boolean inside = (long) t * dp <= gpn;
            double sec = bytes / linkBw(g, inside, c);
            double exposed = Math.max(0, sec - c.overlap() * window * fwdBwdCompute);
            comms.add(new Comm(DP_NAMES[l.zero()], dp,
                    linkName(g, inside, explain), bytes, sec, exposed, formula, 4));
        }
        if (l.offloadOptimizer() || l.offloadParams()) {
            long part = ExpertParallel.owned(shards, m, l, worstStage);
            double bytes = (l.offloadOptimizer() ? 4.0 * part : 0) + (l.offloadParams() ? 4.0 * part * mbs : 0);
            double sec = bytes / g.pcieBytesPerS();
            comms.add(new Comm("CPU offload (PCIe)", 1, "PCIe", bytes, sec, sec, !explain ? "" :
                    "gradients down + parameters up, 2 B each per owned element" + (l.offloadParams() ? ", parameters per micro-batch" : ""), 10));
        }

        double bubble = p == 1 ? 0 : (p - 1.0) / (l.virtualStages() * (double) mbs);
        double step = fwdBwdCompute * (1 + bubble);
        for (Comm cm : comms) step += cm.exposedSeconds();
        double tps = l.tokensPerStep() / step;
        double peak = g.flopsFor(l.dtype());
        double mfu = 6.0 * counts.active() * tps / (cl.gpus() * peak);
        return new TrainingPlan(m, cl, l, c, counts.parameters(), counts.active(), worstStage, worst, worstTotal,
                headroom, usable, worstTotal <= usable, worstCpu * gpn, comms, bubble, fwdBwdCompute, step, tps, mfu, peak);
    }

    /** Forward + backward (+ recompute) time of one step on one GPU at the assumed efficiency, no bubble. */
    static double computeSeconds(long active, GpuCluster cl, Layout l, Conventions c) {
        double factor = l.recompute() == Recompute.FULL ? 8 : 6;
        double flops = factor * active * l.tokensPerStep() / cl.gpus();
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
        String base = switch (l.recompute()) {
            case NONE -> l.sequenceParallel() ? "sbh/t(" + u + " + 5as/h)" : l.tp() > 1 ? "sbh(10 + " + k + "/t + 5as/(ht))"
                    : "sbh(" + u + " + 5as/h)";
            case SELECTIVE -> l.sequenceParallel() ? u + "sbh/t" : "sbh(10 + " + k + "/t)";
            case FULL -> l.sequenceParallel() ? "2sbh/t" : "2sbh";
        };
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
