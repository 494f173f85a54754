package parallax.engine.torch;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The machine's matmul throughput, measured, as the yardstick for achieved FLOP/s. */
public final class Flops {

    private Flops() {}

    /**
     * FLOP/s of an n x n fp32 matmul on {@code device} (2n^3 per product; on a GPU the time
     * includes waiting for the kernel), median of a few timed repeats after a warm-up.
     */
    public static double measureMatmul(Device device, int n, int repeats) {
        Torch.init();
        try (PointerScope s = new PointerScope()) {
            Tensor a = device.full(0.5, parallax.engine.numerics.DType.F32, n, n), b = device.full(0.25, parallax.engine.numerics.DType.F32, n, n);
            torch.matmul(a, b);
            double[] rates = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                device.synchronize();
                long t0 = System.nanoTime();
                torch.matmul(a, b);
                device.synchronize();
                rates[i] = 2.0 * n * n * n / ((System.nanoTime() - t0) / 1e9);
            }
            java.util.Arrays.sort(rates);
            return rates[repeats / 2];
        }
    }
}
