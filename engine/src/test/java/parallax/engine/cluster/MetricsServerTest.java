package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MetricsServerTest {

    @Test
    void stepEventsBecomePrometheusGauges() throws Exception {
        try (MetricsServer m = MetricsServer.start("127.0.0.1", 0)) {
            m.onEvent(new RankEvent(1, "step", 7, Map.of("loss", 0.5, "stepSeconds", 0.25, "commBytes", 4096.0), null));
            m.onEvent(new RankEvent(0, "out", -1, null, "ignored"));
            String text;
            try (InputStream in = new URL("http://" + m.address() + "/metrics").openStream()) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            assertTrue(text.contains("parallax_loss{rank=\"1\"} 0.5"), text);
            assertTrue(text.contains("parallax_last_step{rank=\"1\"} 7.0"), text);
            assertTrue(text.contains("parallax_step_seconds{rank=\"1\"} 0.25"), text);
            assertTrue(text.contains("parallax_comm_bytes{rank=\"1\"} 4096.0"), text);
            assertTrue(!text.contains("rank=\"0\""), text);
        }
    }

    @Test
    void restartsAndCheckpointsAreExported() throws Exception {
        try (MetricsServer m = MetricsServer.start("127.0.0.1", 0)) {
            m.onGeneration(2, 2);
            m.onEvent(new RankEvent(0, "checkpoint", -1, Map.of("step", 40.0, "bytes", 123456.0), null));
            String text;
            try (InputStream in = new URL("http://" + m.address() + "/metrics").openStream()) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            assertTrue(text.contains("parallax_restarts 2.0"), text);
            assertTrue(text.contains("parallax_generation 2.0"), text);
            assertTrue(text.contains("parallax_last_checkpoint_step 40.0"), text);
            assertTrue(text.contains("parallax_last_checkpoint_bytes 123456.0"), text);
        }
    }
}
