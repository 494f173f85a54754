package parallax.engine.plan;

import parallax.engine.UserError;
import parallax.engine.plan.Layout.Recompute;
import parallax.engine.plan.TrainingPlan.Comm;

/**
 * The planner's expert-parallel dimension. Each of the ep ranks holds experts/ep of every
 * MoE layer's routed experts; everything else (attention, router, shared experts) stays
 * replicated over ep as over dp. ep is carved out of dp (Megatron's order tp-cp-ep-dp-pp,
 * tp fastest), so an ep group spans tp·ep consecutive ranks and the routed experts' own
 * data-parallel group has dp/ep ranks: their gradients and ZeRO partitions go over it.
 */
final class ExpertParallel {

    static final String SOURCE = "Lepikhin et al., GShard (2020) §2.2 and Fedus et al., Switch Transformer (JMLR 2022) §2.2: experts "
            + "sharded over ranks, each token sent to its top-k experts' ranks by an all-to-all and returned by another, in the forward "
            + "and again in the backward; Megatron-core MoE: expert-data-parallel group of dp/ep ranks, rank order tp-cp-ep-dp-pp.";

    /** SOURCE's footnote number in a plan's report (looked up once: the search builds thousands of plans). */
    private static final int SOURCE_NUMBER = Planner.SOURCES.indexOf(SOURCE) + 1;

    private ExpertParallel() {}

    static void check(ModelSpec m, Layout l) {
        if (l.ep() == 1) return;
        if (!m.moe()) throw new UserError("ep=" + l.ep() + " needs a mixture-of-experts model; " + m.name() + " is dense");
        if (m.experts() % l.ep() != 0)
            throw new UserError("ep=" + l.ep() + " does not divide the " + m.experts() + " experts of " + m.name());
    }

    /**
     * Elements a rank owns under ZeRO (what its optimizer state, and from stage 2 its gradients,
     * cover): ⌈shared / (dp·cp)⌉ + ⌈experts on this rank / (dp·cp/ep)⌉ (cp ranks hold the same weights).
     */
    static long owned(Planner.Shards sh, ModelSpec m, Layout l, int stage) {
        long shared = sh.stageShared(m.layers(), l.pp(), stage);
        long experts = sh.stageExperts(m.layers(), l.pp(), stage, l.ep());
        return ModelSpec.ceilDiv(shared, l.dataShards()) + ModelSpec.ceilDiv(experts, l.dataShards() / l.ep());
    }

    /** Tokens one rank dispatches per micro-batch: its b·s (s/cp under context parallelism), divided by t under sequence parallelism. */
    static double tokens(Layout l) {
        double t = (double) l.microBatch() * l.localSeq();
        return l.sequenceParallel() ? t / l.tp() : t;
    }

    /** Bytes of one all-to-all's payload on one rank: tokens x hidden x top-k x bytes per element. */
    static double payload(ModelSpec m, Layout l) {
        return tokens(l) * m.hidden() * m.topK() * l.activationBytes();
    }

    /** All-to-alls per MoE layer and micro-batch: dispatch and combine, forward and backward (and a recomputed forward). */
    static int allToAllsPerLayer(Layout l) {
        return l.recompute() == Recompute.FULL ? 6 : 4;
    }

    /**
     * Bytes one rank sends per optimizer step: (ep−1)/ep of each payload leaves the rank (tokens
     * routed uniformly, 1/ep of them to experts it holds itself), for every all-to-all of every
     * MoE layer of its stage and every micro-batch.
     */
    static double bytesPerStep(ModelSpec m, Layout l, int moeLayers) {
        return allToAllsPerLayer(l) * (l.ep() - 1.0) / l.ep() * payload(m, l) * moeLayers * l.microBatches();
    }

    /** The all-to-all's send and receive buffers for one payload. */
    static double bufferBytes(ModelSpec m, Layout l) {
        return 2 * payload(m, l);
    }

    /**
     * The all-to-all line of the communication table. The ep group spans tp·ep consecutive
     * ranks, so it stays on NVLink when those fit in a node. The experts wait for their tokens,
     * so none of it hides behind compute.
     */
    static Comm allToAll(ModelSpec m, GpuProfile g, Layout l, Conventions c, int moeLayers, boolean explain) {
        boolean inside = (long) l.tp() * l.ep() <= g.gpusPerNode();
        double bytes = bytesPerStep(m, l, moeLayers);
        double sec = bytes / Planner.linkBw(g, inside, c);
        return new Comm("expert parallel (all-to-all)", l.ep(), Planner.linkName(g, inside, explain), bytes, sec, sec, !explain ? ""
                : allToAllsPerLayer(l) + " all-to-alls (dispatch, combine; forward, backward" + (l.recompute() == Recompute.FULL ? ", recompute" : "")
                        + ") x b" + (l.sequenceParallel() ? "s/t" : "s") + "·h·k·(ep−1)/ep per MoE layer per micro-batch",
                SOURCE_NUMBER);
    }
}
