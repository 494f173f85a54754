package parallax.engine.torch;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.numerics.DType;

/**
 * Small libtorch glue: one thread per process, libtorch's scalar types, flat
 * concatenation, byte counts. Tensors are created on a rank's device by {@link Device}. Every caller wraps its libtorch work in a
 * {@code try (PointerScope s = new PointerScope())}; tensors that must outlive the scope
 * are detached from it by the caller ({@code scope.detach(t)}) or kept in a longer scope.
 */
public final class Torch {

    private static volatile boolean initialised;

    private Torch() {}

    /**
     * One intra-op thread per rank: on small boxes several ranks share the cores. This
     * libtorch build does its matmuls in OpenBLAS, whose own thread pool ignores
     * torch.set_num_threads; left alone it starts one thread per core in every rank and
     * the ranks fight over the cores (docs/training.md has the measurement), so OpenBLAS
     * is set to one thread too.
     */
    public static void init() {
        if (initialised) return;
        CudaCheck.requireLoadable();
        synchronized (Torch.class) {
            if (!initialised) {
                torch.set_num_threads(1);
                try {
                    org.bytedeco.openblas.global.openblas_full.openblas_set_num_threads(1);
                } catch (Throwable e) {
                    // no OpenBLAS preset on the classpath: nothing to limit
                }
                initialised = true;
            }
        }
    }

    /**
     * Keeps {@code t} alive past the PointerScope it was made in (one more reference);
     * the holder frees it with {@code t.close()}.
     */
    public static Tensor keep(Tensor t) {
        t.retainReference();
        return t;
    }





    /** All tensors flattened and joined into one 1-D tensor (a copy). */
    public static Tensor flatCat(List<Tensor> parts) {
        TensorVector v = new TensorVector();
        for (Tensor t : parts) v.push_back(t.reshape(-1));
        return torch.cat(v);
    }

    /** libtorch's scalar type for {@code d}; the one place the two type systems meet. */
    public static torch.ScalarType scalarType(DType d) {
        switch (d) {
            case F32: return torch.ScalarType.Float;
            case BF16: return torch.ScalarType.BFloat16;
            case F16: return torch.ScalarType.Half;
            case F64: return torch.ScalarType.Double;
            case F8_E4M3: return torch.ScalarType.Float8_e4m3fn;
            case F8_E5M2: return torch.ScalarType.Float8_e5m2;
            case I8: return torch.ScalarType.Char;
            case U8: return torch.ScalarType.Byte;
            case I16: return torch.ScalarType.Short;
            case I32: return torch.ScalarType.Int;
            case I64: return torch.ScalarType.Long;
            case BOOL: return torch.ScalarType.Bool;
            default: throw new IllegalArgumentException(d + " has no libtorch scalar type");
        }
    }



    /** Bytes of the distinct storages behind {@code tensors} (views counted once). */
    public static long storageBytes(List<Tensor> tensors) {
        Map<Long, Long> seen = new java.util.HashMap<>();
        for (Tensor t : tensors) {
            if (t == null || t.isNull() || !t.defined()) continue;
            long key = t.storage().data().address();
            seen.put(key, t.storage().nbytes());
        }
        long sum = 0;
        for (long b : seen.values()) sum += b;
        return sum;
    }

    /**
     * Bytes of the tensors made in a forward pass that are still held by someone other
     * than {@code made} itself after it — in practice the autograd graph, which keeps
     * the inputs and outputs its backward formulas need. A storage counts when one of
     * our tensors on it is referenced elsewhere (saved inputs share the tensor) or when
     * more tensors point at it than we made (saved outputs get a fresh tensor on the
     * same storage). Views are counted once per storage.
     */
    public static long heldByAutograd(List<Tensor> made) {
        Map<Long, List<Tensor>> byStorage = new java.util.HashMap<>();
        Map<Long, Long> bytes = new java.util.HashMap<>();
        IdentityHashMap<Tensor, Boolean> unique = new IdentityHashMap<>();
        for (Tensor t : made) {
            if (t == null || t.isNull() || !t.defined() || unique.put(t, true) != null) continue;
            // A storage whose memory was handed back until backward (ZeRO-3's gathered weights,
            // sequence parallelism's gathered inputs) holds nothing now.
            org.bytedeco.javacpp.Pointer data = t.storage().data();
            long key = data == null ? 0 : data.address();
            if (key == 0) continue;
            byStorage.computeIfAbsent(key, k -> new ArrayList<>()).add(t);
            bytes.put(key, t.storage().nbytes());
        }
        long sum = 0;
        for (Map.Entry<Long, List<Tensor>> e : byStorage.entrySet()) {
            List<Tensor> ts = e.getValue();
            boolean held = ts.get(0).storage().use_count() > ts.size();
            for (Tensor t : ts) held |= t.use_count() > 1;
            if (held) sum += bytes.get(e.getKey());
        }
        return sum;
    }
}
