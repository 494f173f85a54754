package parallax.engine.parallel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.model.Gpt;
import parallax.engine.torch.Device;
import parallax.engine.torch.Torch;

/**
 * A {@link ParameterStore}'s training state going out to a checkpoint and coming back in,
 * in one form for all four ZeRO stages: per unit, DP rank r's slice [r·S, (r+1)·S) of the
 * flat buffer (padding left out) of the fp32 master weights and of each optimizer state.
 * Stage 0 holds the whole buffer but saves only its slice, so the DP ranks share the
 * writing and no element is written twice (torch.distributed.checkpoint deduplicates
 * replicas the same way); stages 1-3 own exactly that slice.
 *
 * <p>The compute copy is not saved: it is the master cast to the compute type (that is
 * how every step leaves it), so restoring the master and casting gives it back bit for bit.
 */
final class StoreState {

    /** The kind under which the fp32 master weights are saved. */
    static final String PARAM = "param";

    private StoreState() {}

    /** One unit's owned slice [from, to) of its flat buffer: host copies of the master and each optimizer state. */
    record UnitSlice(int unit, List<Gpt.ParamSpec> specs, long[] offsets, long from, long to, Map<String, Tensor> tensors) {

        long stateBytes() {
            long b = 0;
            for (Tensor t : tensors.values()) b += t.nbytes();
            return b;
        }

        /** Frees the host copies. */
        void close() {
            for (Tensor t : tensors.values()) t.close();
        }
    }

    /**
     * Copies this rank's owned state into host memory (the only part of a save the training
     * thread waits for); the copies outlive the caller's scope until {@link UnitSlice#close}.
     */
    static List<UnitSlice> snapshot(ParameterStore store) {
        List<UnitSlice> out = new ArrayList<>();
        int r = store.dp.rank();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : store.units) {
                long from = Math.min(u.sliceStart(r), u.numel), to = Math.min(u.sliceStart(r) + u.shardSize, u.numel);
                long origin = masterOrigin(u, r);
                Map<String, Tensor> t = new LinkedHashMap<>();
                long at = Math.max(0, from - origin); // a slice of padding only holds nothing
                t.put(PARAM, hostCopy(u.master, at, to - from));
                for (Map.Entry<String, Tensor> e : u.optimizer.state().entrySet())
                    t.put(e.getKey(), hostCopy(e.getValue(), at, to - from));
                out.add(new UnitSlice(u.index, u.specs, u.offsets, from, to, t));
            }
        }
        return out;
    }

    /** Optimizer steps taken (every unit's optimizer has taken the same number). */
    static long optimizerSteps(ParameterStore store) {
        return store.units.isEmpty() ? 0 : store.units.get(0).optimizer.steps();
    }

    /** Where in the unit's flat buffer the master copy starts: 0 when it holds the whole buffer, else the owned slice. */
    private static long masterOrigin(FlatUnit u, int dpRank) {
        return u.master.numel() == u.padded ? 0 : u.sliceStart(dpRank);
    }

    private static Tensor hostCopy(Tensor t, long at, long n) {
        Tensor part = t.reshape(-1).narrow(0, at, n);
        Tensor host = Device.toHost(part);
        return Torch.keep(host == part ? part.clone() : host.contiguous());
    }

    /** Reads a flat range [from, to) of one unit's saved state of kind {@code kind}. */
    @FunctionalInterface
    interface Source {
        float[] read(String kind, List<Gpt.ParamSpec> specs, long[] offsets, long from, long to);
    }

    /**
     * Puts the saved state back: the master slice and optimizer state this stage keeps,
     * the optimizer's step count, then the compute copy made from the master (stages 1-2
     * keep the whole compute buffer, so they read every rank's saved weights for it).
     */
    static void restore(ParameterStore store, Source src, long optimizerSteps) {
        int r = store.dp.rank();
        try (NoGradGuard ng = new NoGradGuard()) {
            for (FlatUnit u : store.units) {
                long origin = masterOrigin(u, r);
                long to = Math.max(origin, Math.min(origin + u.master.numel(), u.numel));
                fill(u.master, src.read(PARAM, u.specs, u.offsets, origin, to));
                for (Map.Entry<String, Tensor> e : u.optimizer.state().entrySet())
                    fill(e.getValue(), src.read(e.getKey(), u.specs, u.offsets, origin, to));
                u.optimizer.restoreSteps(optimizerSteps);
                if (u.shard != null) {
                    if (u.shard != u.master) u.shard.copy_(u.master);         // ZeRO-3: the owned compute slice
                } else if (u.master.numel() == u.padded) {
                    if (u.flat != u.master) u.flat.copy_(u.master);           // stage 0: master and compute copy whole
                } else {
                    float[] all = new float[(int) u.padded];                   // stages 1-2: the whole compute copy
                    float[] v = src.read(PARAM, u.specs, u.offsets, 0, u.numel);
                    System.arraycopy(v, 0, all, 0, v.length);
                    u.flat.copy_(Device.of(u.flat).fromFloats(all, u.padded));
                }
            }
        }
    }

    /** Writes {@code values} into the start of flat fp32 tensor {@code t} (the rest, padding, is left). */
    private static void fill(Tensor t, float[] values) {
        if (values.length == 0) return;
        Tensor v = Device.of(t).fromFloats(values, values.length);
        t.reshape(-1).narrow(0, 0, values.length).copy_(v);
    }
}
