package parallax.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.torch.Torch;

class GptTest {

    @Test
    void parameterCountMatchesTheTensors() {
        GptConfig cfg = GptConfig.tiny();
        Gpt gpt = new Gpt(cfg);
        long n = 0;
        for (int u = 0; u < gpt.units(); u++) for (Gpt.ParamSpec p : gpt.params(u)) n += p.numel();
        assertEquals(cfg.parameterCount(), n);
    }

    @Test
    void tensorParallelShardsTileTheFullInit() {
        GptConfig cfg = GptConfig.tiny();
        Gpt full = new Gpt(cfg), r0 = new Gpt(cfg, 0, 2, null), r1 = new Gpt(cfg, 1, 2, null);
        Gpt.ParamSpec w1 = full.params(1).stream().filter(p -> p.name().endsWith("mlp.w2")).findFirst().orElseThrow();
        float[] all = full.initialValues(w1, 7);
        Gpt.ParamSpec s0 = r0.params(1).stream().filter(p -> p.name().endsWith("mlp.w2")).findFirst().orElseThrow();
        Gpt.ParamSpec s1 = r1.params(1).stream().filter(p -> p.name().endsWith("mlp.w2")).findFirst().orElseThrow();
        float[] a = r0.initialValues(s0, 7), b = r1.initialValues(s1, 7);
        int rows = (int) w1.fullShape()[0], cols = (int) w1.fullShape()[1], half = cols / 2;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                assertEquals(all[r * cols + c], c < half ? a[r * half + c] : b[r * half + c - half]);
        assertNotEquals(all[0], new Gpt(cfg).initialValues(w1, 8)[0], "another seed, other weights");
    }

    @Test
    void lossStartsNearUniformAndIsDeterministic() {
        Torch.init();
        GptConfig cfg = GptConfig.tiny();
        Trainer.Result a = Trainer.train(cfg, TextData.Source.TEXT, 7, 3, 4, "sgd", 0.05);
        Trainer.Result b = Trainer.train(cfg, TextData.Source.TEXT, 7, 3, 4, "sgd", 0.05);
        assertArrayEquals(a.loss(), b.loss());
        assertEquals(Math.log(256), a.loss()[0], 0.1, "random init predicts ~uniformly over 256 bytes");
    }

    @Test
    void dataSlicesAreTheGlobalBatch() {
        TextData d = new TextData(TextData.Source.SYNTHETIC, GptConfig.tiny(), 7);
        TextData.Batch g = d.batch(3, 8);
        TextData.Batch s1 = g.slice(1, 2);
        assertEquals(4, s1.rows());
        for (int i = 0; i < s1.tokens().length; i++) assertEquals(g.tokens()[4 * 32 + i], s1.tokens()[i]);
        assertArrayEquals(g.tokens(), d.batch(3, 8).tokens(), "same step, same batch");
        assertThrows(UserError.class, () -> g.slice(0, 3));
        try (PointerScope s = new PointerScope()) {
            Tensor t = g.tokensTensor(parallax.engine.torch.Device.cpu());
            assertEquals(8, t.size(0));
            assertTrue(g.targets()[0] == g.tokens()[1], "targets are the next tokens");
        }
    }

    @Test
    void badShapesAreOneLine() {
        assertThrows(UserError.class, () -> new GptConfig("x", 2, 30, 4, 256, 16, 0));
        assertThrows(UserError.class, () -> new Gpt(GptConfig.tiny(), 0, 3, null));
        assertThrows(UserError.class, () -> GptConfig.preset("huge"));
    }
}
