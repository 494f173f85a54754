package parallax.engine.model;

import parallax.engine.torch.Device;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import parallax.engine.torch.Torch;

/**
 * The single-process fp32 reference: the whole model in one autograd graph, the whole
 * global batch in one forward, one optimizer per parameter. Every parallel layout must
 * reproduce its loss trajectory and final weights; it shares nothing with the parallel
 * engine but the model and the data.
 */
public final class Trainer {

    public record Result(double[] loss, Map<String, float[]> parameters) {}

    private Trainer() {}

    public static Result train(GptConfig cfg, TextData.Source source, long seed, int steps, int batch,
                               String optimizer, double lr) {
        Torch.init();
        Gpt model = new Gpt(cfg);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        Map<String, Optimizer> optimizers = new LinkedHashMap<>();
        PointerScope storage = new PointerScope();
        try {
            for (int u = 0; u < model.units(); u++) {
                for (Gpt.ParamSpec p : model.params(u)) {
                    Tensor t = Device.cpu().fromFloats(model.initialValues(p, seed), p.shape());
                    t.requires_grad_(true);
                    weights.put(p.name(), t);
                    optimizers.put(p.name(), Optimizer.create(optimizer, t, lr));
                }
            }
            TextData data = new TextData(source, cfg, seed);
            double[] losses = new double[steps];
            for (int s = 0; s < steps; s++) {
                try (PointerScope scope = new PointerScope()) {
                    TextData.Batch b = data.batch(s, batch);
                    Tensor tokens = b.tokensTensor(Device.cpu()), targets = b.targetsTensor(Device.cpu());
                    Tensor x = null;
                    for (int u = 0; u < model.units(); u++) x = model.forward(u, x, tokens, targets, weights::get, null);
                    losses[s] = Device.hostValue(x);
                    x.backward();
                    try (NoGradGuard ng = new NoGradGuard()) {
                        for (Map.Entry<String, Tensor> e : weights.entrySet()) {
                            Tensor w = e.getValue();
                            optimizers.get(e.getKey()).step(w.view(-1), w.grad().view(-1));
                            w.mutable_grad().reset();
                        }
                    }
                }
            }
            Map<String, float[]> params = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : weights.entrySet()) params.put(e.getKey(), Device.hostFloats(e.getValue()));
            return new Result(losses, params);
        } finally {
            storage.close();
        }
    }
}
