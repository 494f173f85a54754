package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.torch.Device;
import parallax.engine.torch.Torch;

/**
 * Sequence parallelism keeps a block's sequence-sliced activations sliced between forward
 * and backward: what one block holds for its backward on a TP rank is counted tensor by
 * tensor (Korthikanti et al. 2022, section 4.2.2) and nothing of the whole sequence at full
 * width is among it — neither the gathered inputs of the column-parallel linears nor the
 * partial sums handed to the reduce-scatters.
 */
class SequenceParallelMemoryTest {

    @Test
    void aBlockHoldsOnlySlicesOutsideTheTensorParallelRegions() throws Exception {
        GptConfig cfg = GptConfig.tiny();
        int tp = 2, b = 8;
        long s = cfg.sequence(), h = cfg.hidden(), slice = s / tp;
        LocalGroups group = new LocalGroups(tp);
        ExecutorService pool = Executors.newFixedThreadPool(tp);
        try {
            List<Future<Long>> held = new ArrayList<>();
            for (int r = 0; r < tp; r++) {
                int rank = r;
                held.add(pool.submit(() -> heldByOneBlock(cfg, rank, tp, group.member(rank), b)));
            }
            // 4 bytes an element, per block: the residual x1 saved by ln2 and the shards kept
            // of the two gathered inputs, b·(s/t)·h each; Q, K, V and the attention output
            // (per head, kept by its transposed view, and merged), b·s·h/t each; the MLP's fc1
            // and GELU outputs, b·s·4h/t each; the softmax output, b·(a/t)·s².
            long sliceBytes = 4L * b * slice * h, tpBytes = 4L * b * s * h / tp;
            long want = 3 * sliceBytes + 5 * tpBytes + 2 * 4 * tpBytes + 4L * b * cfg.heads() / tp * s * s;
            for (Future<Long> f : held) assertEquals(want, f.get(120, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    private static long heldByOneBlock(GptConfig cfg, int rank, int tp, Comm comm, int b) {
        Torch.init();
        Device cpu = Device.cpu();
        try (PointerScope scope = new PointerScope()) {
            Gpt gpt = new Gpt(cfg, rank, tp, new TensorParallel(comm, true));
            Map<String, Tensor> w = new HashMap<>();
            for (Gpt.ParamSpec p : gpt.params(1))
                w.put(p.name(), cpu.fromFloats(gpt.initialValues(p, 7), p.shape()).requires_grad_(true));
            float[] xs = new float[(int) (b * cfg.sequence() / tp * cfg.hidden())];
            java.util.Random rnd = new java.util.Random(rank);
            for (int i = 0; i < xs.length; i++) xs[i] = (float) rnd.nextGaussian();
            Tensor x = cpu.fromFloats(xs, b, cfg.sequence() / tp, cfg.hidden()).requires_grad_(true);
            List<Tensor> made = new ArrayList<>();
            gpt.forward(1, x, null, null, w::get, made);
            return Torch.heldByAutograd(made);
        }
    }
}
