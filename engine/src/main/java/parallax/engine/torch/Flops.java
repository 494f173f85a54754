package parallax.engine.torch;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The machine's matmul throughput, measured, as the yardstick for achieved FLOP/s. */
public final class Flops {

    private Flops() {}

    /**
     * FLOP/s of an n x n fp32 matmul on this thread (2n^3 per product), median of a few
     * timed repeats after a warm-up.
     */
    public static double measureMatmul(int n, int repeats) {
        Torch.init();
        try (PointerScope s = new PointerScope()) {
            Tensor a = torch.randn(n, n), b = torch.randn(n, n);
            torch.matmul(a, b);
            double[] rates = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                long t0 = System.nanoTime();
                torch.matmul(a, b).sum().item_float();
                rates[i] = 2.0 * n * n * n / ((System.nanoTime() - t0) / 1e9);
            }
            java.util.Arrays.sort(rates);
            return rates[repeats / 2];
        }
    }
}
