package parallax.engine.cluster;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Map;

/** A stand-in for a training loop: sleep, barrier, report the step. */
public final class StepTask implements RankTask {
    @Override
    public Object run(Dist dist, String argsJson, RankReporter reporter) throws Exception {
        JsonObject a = JsonParser.parseString(argsJson).getAsJsonObject();
        int steps = a.get("steps").getAsInt();
        long sleep = a.get("sleepMs").getAsLong();
        for (int s = 1; s <= steps; s++) {
            Thread.sleep(sleep);
            dist.barrier();
            reporter.step(s, Map.of("loss", 1.0 / s, "stepSeconds", sleep / 1000.0));
        }
        return steps;
    }
}
