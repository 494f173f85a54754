package parallax.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.model.Gpt;
import parallax.engine.model.GptConfig;
import parallax.engine.precision.CastAnalysis;
import parallax.engine.precision.CastSources;

/**
 * {@code %precision cast --from model} takes the GPT of the last %parallel run in this JVM:
 * here a short data-parallel run over two in-JVM ranks stands for it.
 */
class CastFromRunTest {

    static final int STEPS = 3;

    static TrainSpec spec() {
        return TrainSpec.defaults(GptConfig.tiny()).withSteps(STEPS).withBatch(8).withLayout(2, 1, 1);
    }

    static TrainingRun train(TrainSpec spec) throws Exception {
        return TrainingRun.of(spec, LocalGroups.run(spec));
    }

    static List<String> gptNames(GptConfig cfg) {
        Gpt g = new Gpt(cfg);
        List<String> names = new ArrayList<>();
        for (int u = 0; u < g.units(); u++) for (Gpt.ParamSpec p : g.params(u)) names.add(p.name());
        return names;
    }

    @Test
    void usesTheWeightsOfTheLastRun() throws Exception {
        TrainingRun run = train(spec().withExport(true));
        Map<String, float[]> gathered = run.parameters();
        CastSources.ModelWeights w = CastSources.trainedGpt(run);
        assertTrue(w.description().contains("last %parallel run") && w.description().contains("dp=2")
                && w.description().contains("gathered"), w.description());
        List<String> names = w.tensors().stream().map(CastAnalysis.NamedTensor::name).toList();
        assertEquals(gptNames(GptConfig.tiny()), names);
        long values = 0;
        for (CastAnalysis.NamedTensor t : w.tensors()) {
            assertArrayEquals(gathered.get(t.name()), t.values(), t.name());
            long n = 1;
            for (long d : t.shape()) n *= d;
            assertEquals(n, t.values().length, t.name() + " shape");
            values += n;
        }
        assertEquals(GptConfig.tiny().parameterCount(), values);

        // A run that kept no weights is retrained from its spec: the same weights, within the reference's tolerance.
        CastSources.ModelWeights again = CastSources.trainedGpt(train(spec().withExport(false)));
        assertTrue(again.description().contains("retrained"), again.description());
        for (CastAnalysis.NamedTensor t : again.tensors()) {
            float[] want = gathered.get(t.name());
            for (int i = 0; i < want.length; i++) assertEquals(want[i], t.values()[i], 1e-4 + 1e-3 * Math.abs(want[i]), t.name() + "[" + i + "]");
        }
    }

    @Test
    void withoutARunTheTinyGptIsTrainedHere() throws Exception {
        CastSources.ModelWeights w = CastSources.trainedGpt(null);
        assertTrue(w.description().contains("no %parallel run") && w.description().contains(CastSources.FALLBACK_STEPS + " steps"),
                w.description());
        assertEquals(gptNames(GptConfig.tiny()), w.tensors().stream().map(CastAnalysis.NamedTensor::name).toList());
        // Trained, not the initial values: LayerNorm gains have moved off 1.
        float[] ln = w.tensors().stream().filter(t -> t.name().equals("h0.ln1.w")).findFirst().orElseThrow().values();
        boolean moved = false;
        for (float v : ln) moved |= v != 1f;
        assertTrue(moved, "the fallback model was trained");
    }
}
