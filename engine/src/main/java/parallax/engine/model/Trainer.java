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
        return train(cfg, source, seed, steps, batch, optimizer, lr, 1);
    }

    /**
     * The same, with each step's batch cut into {@code pieces} equal runs of rows, each its own
     * forward, the gradients summed over them and the loss their mean: what dp x micro-batches
     * of a parallel run do. A dense model's result does not depend on it (up to rounding); a
     * mixture of experts' does, since its load-balancing loss and capacity are taken per
     * micro-batch, so its parity runs cut the batch as the layout does.
     */
    public static Result train(GptConfig cfg, TextData.Source source, long seed, int steps, int batch,
                               String optimizer, double lr, int pieces) {
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
                    TextData.Batch whole = data.batch(s, batch);
                    for (int piece = 0; piece < pieces; piece++) {
                        TextData.Batch b = pieces == 1 ? whole : whole.slice(piece, pieces);
                        Tensor tokens = b.tokensTensor(Device.cpu()), targets = b.targetsTensor(Device.cpu());
                        java.util.List<Tensor> aux = new java.util.ArrayList<>();
                        Gpt.Routing routing = new Gpt.Routing() {
                            @Override public void auxLoss(int layer, Tensor loss) { aux.add(loss); }

                            @Override public void routed(int layer, long[] load, long dropped) {}
                        };
                        Tensor x = null;
                        for (int u = 0; u < model.units(); u++) x = model.forward(u, x, tokens, targets, weights::get, null, routing);
                        losses[s] += Device.hostValue(x) / pieces;
                        for (Tensor a : aux) x = x.add(a);
                        (pieces == 1 ? x : x.div(new org.bytedeco.pytorch.Scalar(pieces))).backward();
                    }
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
