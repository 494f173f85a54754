package parallax.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.torch.Device;
import parallax.engine.torch.Torch;

/** The single-process mixture of experts checked on its own (issue 14's correctness list). */
class MixtureOfExpertsTest {

    @BeforeAll
    static void init() { Torch.init(); }

    @Test
    void routerProbabilitiesAndGatesSumToOnePerToken() {
        try (PointerScope s = new PointerScope()) {
            GptConfig.Moe moe = new GptConfig.Moe(8, 2, 0, false, 0.01);
            Tensor x = Device.cpu().fromFloats(random(64 * 32, 1, 1.0), 64, 32);
            Tensor router = Device.cpu().fromFloats(random(8 * 32, 2, 0.5), 8, 32);
            Tensor probs = MixtureOfExperts.routerProbabilities(x, router);
            float[] p = Device.hostFloats(probs);
            float[] g = Device.hostFloats(MixtureOfExperts.topK(probs, moe.topK())[1]);
            for (int t = 0; t < 64; t++) {
                double sum = 0;
                for (int e = 0; e < 8; e++) { sum += p[t * 8 + e]; assertTrue(p[t * 8 + e] > 0); }
                assertEquals(1.0, sum, 1e-6, "token " + t);
                assertEquals(1.0, g[2 * t] + g[2 * t + 1], 1e-6, "gates of token " + t);
                assertTrue(g[2 * t] >= g[2 * t + 1], "most probable expert first");
            }
        }
    }

    @Test
    void auxLossIsSwitchFormulaOnAHandMadeBatch() {
        try (PointerScope s = new PointerScope()) {
            GptConfig.Moe moe = new GptConfig.Moe(2, 1, 0, false, 0.01);
            float[] p = {0.9f, 0.1f, 0.8f, 0.2f, 0.3f, 0.7f, 0.6f, 0.4f};
            Tensor probs = Device.cpu().fromFloats(p, 4, 2);
            long[] choice = MixtureOfExperts.hostLongs(MixtureOfExperts.topK(probs, 1)[0]);
            assertArrayEquals(new long[] {0, 0, 1, 0}, choice);
            MixtureOfExperts.Plan plan = MixtureOfExperts.plan(moe, choice, 4);
            assertArrayEquals(new long[] {3, 1}, plan.load());
            // f = (3/4, 1/4), P = (0.65, 0.35): 0.01 x 2 x (0.75 x 0.65 + 0.25 x 0.35) = 0.0115
            assertEquals(0.0115, Device.hostValue(MixtureOfExperts.auxLoss(moe, probs, plan.load())), 1e-7);
            // a uniform router at an even split gives alpha itself, the minimum
            Tensor uniform = Device.cpu().fromFloats(new float[] {0.5f, 0.5f, 0.5f, 0.5f}, 2, 2);
            assertEquals(0.01, Device.hostValue(MixtureOfExperts.auxLoss(moe, uniform, new long[] {1, 1})), 1e-9);
        }
    }

    @Test
    void tokensOverCapacityAreDroppedFirstChoicesFirst() {
        // E 3, top-2, cf 1: capacity ceil(1 x 3 x 2 / 3) = 2 per expert
        GptConfig.Moe moe = new GptConfig.Moe(3, 2, 1.0, false, 0.01);
        long[] choice = {0, 1, 0, 2, 0, 1}; // token 0 -> 0,1; token 1 -> 0,2; token 2 -> 0,1
        MixtureOfExperts.Plan plan = MixtureOfExperts.plan(moe, choice, 3);
        assertEquals(2, plan.capacity());
        assertEquals(1, plan.dropped(), "expert 0 is asked by three tokens and takes two");
        assertArrayEquals(new long[] {3, 2, 1}, plan.load());
        assertArrayEquals(new long[] {0, 1}, plan.rows()[0]);
        assertArrayEquals(new long[] {0, 2}, plan.slots()[0]);
        assertArrayEquals(new long[] {0, 2}, plan.rows()[1]);
        assertArrayEquals(new long[] {1}, plan.rows()[2]);
        assertEquals(5, plan.served());
        // a second choice competes only after every first choice: expert 1 full of second choices
        // still leaves a first choice's place to a later token
        long[] second = {1, 0, 1, 0, 2, 1, 1, 2}; // tokens 0..3, E 3, k 2, capacity ceil(1 x 4 x 2 / 3) = 3
        MixtureOfExperts.Plan p2 = MixtureOfExperts.plan(moe, second, 4);
        assertEquals(3, p2.capacity());
        assertArrayEquals(new long[] {0, 1, 3}, p2.rows()[1], "three first choices fill expert 1; token 2's second choice is dropped");
        assertEquals(1, p2.dropped());
        // capacity factor 0: nothing is dropped
        assertEquals(0, MixtureOfExperts.plan(new GptConfig.Moe(3, 2, 0, false, 0.01), choice, 3).dropped());
    }

    /**
     * One expert, top-1: the router's softmax over one expert is exactly 1, so the gate is 1
     * and the layer is the dense MLP bit for bit. The load-balancing loss is then the
     * constant alpha x 1 x 1 x 1 (f = P = 1): it shifts nothing and gives the router a zero
     * gradient, so training follows the dense model; the loss reported is the LM loss alone.
     */
    @Test
    void oneExpertTopOneIsTheDenseGptExactly() {
        try (PointerScope s = new PointerScope()) {
            GptConfig dense = GptConfig.tiny(), moe = dense.withMoe(new GptConfig.Moe(1, 1, 0, false, 0.01));
            Map<String, Tensor> w = weights(dense, 7);
            Map<String, Tensor> wm = new HashMap<>();
            for (Gpt.ParamSpec p : Gpt.allParams(moe)) {
                String d = p.name().replace("moe.e0.", "mlp.");
                Tensor t = w.containsKey(d) ? w.get(d) : Device.cpu().fromFloats(Gpt.fullInit(p, 9), p.shape());
                t.requires_grad_(true);
                wm.put(p.name(), t);
            }
            TextData.Batch b = new TextData(TextData.Source.TEXT, dense, 7).batch(0, 4);
            Tensor tokens = b.tokensTensor(Device.cpu()), targets = b.targetsTensor(Device.cpu());
            assertArrayEquals(Device.hostFloats(new Gpt(dense).logits(tokens, w::get)),
                    Device.hostFloats(new Gpt(moe).logits(tokens, wm::get)), "logits equal bit for bit");

            List<Tensor> aux = new ArrayList<>();
            long[] routed = new long[1];
            Gpt.Routing routing = new Gpt.Routing() {
                @Override public void auxLoss(int layer, Tensor loss) { aux.add(loss); }

                @Override public void routed(int layer, long[] load, long dropped) { routed[0] += load[0]; assertEquals(0, dropped); }
            };
            Gpt g = new Gpt(moe);
            Tensor x = null;
            for (int u = 0; u < g.units(); u++) x = g.forward(u, x, tokens, targets, wm::get, null, routing);
            Tensor y = null;
            Gpt gd = new Gpt(dense);
            for (int u = 0; u < gd.units(); u++) y = gd.forward(u, y, tokens, targets, w::get, null);
            assertEquals(Device.hostValue(y), Device.hostValue(x), 0.0, "the same LM loss");
            assertEquals(dense.layers(), aux.size(), "one load-balancing loss per block");
            for (Tensor a : aux) assertEquals(0.01, Device.hostValue(a), 1e-9, "alpha x E x f x P = alpha");
            assertEquals(dense.layers() * 4L * dense.sequence(), routed[0], "every token routed once per block");
            Tensor total = x;
            for (Tensor a : aux) total = total.add(a);
            total.backward();
            for (float v : Device.hostFloats(wm.get("h0.moe.router").grad())) assertEquals(0f, v, "a lone expert's router learns nothing");
        }
    }

    @Test
    void parameterTableCountsExpertsRouterAndSharedExpert() {
        GptConfig cfg = GptConfig.moeTiny().withMoe(new GptConfig.Moe(4, 2, 1.25, true, 0.01));
        long n = 0, experts = 0;
        for (Gpt.ParamSpec p : Gpt.allParams(cfg)) {
            n += p.numel();
            if (p.name().contains(".moe.e")) experts += p.numel();
        }
        assertEquals(cfg.parameterCount(), n);
        long mlp = experts / (4L * cfg.layers());
        assertEquals(cfg.parameterCount() - 2L * cfg.layers() * mlp, cfg.activeParameterCount(), "top-2 of 4: two experts idle per token");
        assertTrue(Gpt.allParams(cfg).stream().anyMatch(p -> p.name().equals("h3.moe.shared.w2")));
        assertEquals(List.of(4L, 32L), List.of(Gpt.allParams(cfg).stream().filter(p -> p.name().equals("h0.moe.router"))
                .findFirst().orElseThrow().shape()[0], 32L));
        assertTrue(GptConfig.presetNames().contains("moe-tiny"));
        assertEquals(GptConfig.moeTiny(), GptConfig.preset("moe-tiny"));
    }

    @Test
    void badMixturesAreOneLine() {
        assertEquals("--experts must be at least 1, not 0",
                assertThrows(UserError.class, () -> new GptConfig.Moe(0, 1, 0, false, 0.01)).getMessage());
        assertTrue(assertThrows(UserError.class, () -> new GptConfig.Moe(4, 5, 0, false, 0.01)).getMessage().startsWith("--top-k"));
        assertTrue(assertThrows(UserError.class, () -> new GptConfig.Moe(4, 2, -1, false, 0.01)).getMessage().startsWith("--capacity-factor"));
        // tensor parallelism cuts each expert as it cuts the dense MLP: fc1 by rows of its weight, fc2 by columns
        GptConfig cfg = GptConfig.moeTiny();
        java.util.Map<String, Gpt.ParamSpec> half = new java.util.HashMap<>();
        for (Gpt.ParamSpec p : new Gpt(cfg, 1, 2, null).params(1)) half.put(p.name(), p);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {cfg.ffn() / 2, cfg.hidden()}, half.get("h0.moe.e3.w1").shape());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {cfg.hidden(), cfg.ffn() / 2}, half.get("h0.moe.e3.w2").shape());
        assertEquals(1, half.get("h0.moe.e3.w2").shardDim());
        assertEquals(-1, half.get("h0.moe.router").shardDim(), "the router is whole on every TP rank");
    }

    /** A saved MoE checkpoint reads back as the same mixture; the dense-only exporters refuse it in one line. */
    @Test
    void checkpointKeepsTheMixture(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        GptConfig cfg = GptConfig.moeTiny().withMoe(new GptConfig.Moe(4, 2, 0, true, 0.02));
        Map<String, float[]> params = new java.util.LinkedHashMap<>();
        for (Gpt.ParamSpec p : Gpt.allParams(cfg)) params.put(p.name(), Gpt.fullInit(p, 3));
        java.nio.file.Path file = dir.resolve("moe.safetensors");
        Checkpoint.save(cfg, params, null, file);
        Checkpoint.Loaded c = Checkpoint.load(file);
        assertEquals(cfg.moe(), c.config().moe());
        assertArrayEquals(params.get("h2.moe.e3.w1"), c.tensors().get("h2.moe.e3.w1"));
        assertTrue(assertThrows(UserError.class, () -> CheckpointOnnx.export(c, dir.resolve("m.onnx"), 1 << 20)).getMessage()
                .contains("mixture-of-experts"));
        assertTrue(assertThrows(UserError.class, () -> CheckpointGguf.writeF32(c, dir.resolve("m.gguf"))).getMessage()
                .contains("mixture-of-experts"));
    }

    private static Map<String, Tensor> weights(GptConfig cfg, long seed) {
        Map<String, Tensor> w = new HashMap<>();
        for (Gpt.ParamSpec p : Gpt.allParams(cfg)) {
            Tensor t = Device.cpu().fromFloats(Gpt.fullInit(p, seed), p.shape());
            t.requires_grad_(true);
            w.put(p.name(), t);
        }
        return w;
    }

    private static float[] random(int n, long seed, double std) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * std);
        return a;
    }
}
