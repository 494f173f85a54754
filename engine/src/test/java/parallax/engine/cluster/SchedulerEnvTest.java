package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The scheduler contract: workers started the way Slurm srun or a Kubernetes PyTorchJob
 * starts them, with torchrun's variables only, join and run a task.
 */
class SchedulerEnvTest {

    @Test
    void workersJoinFromTorchrunVariables() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            port = s.getLocalPort();
        }
        int world = 2;
        List<Process> procs = new ArrayList<>();
        try {
            for (int r = 0; r < world; r++) {
                ProcessBuilder pb = new ProcessBuilder(Launcher.localJava(), "-cp", System.getProperty("java.class.path"),
                        WorkerMain.class.getName(), "--task", CollectiveCheckTask.class.getName(), "--mesh", "1,2,1");
                pb.environment().put("MASTER_ADDR", "127.0.0.1");
                pb.environment().put("MASTER_PORT", String.valueOf(port));
                pb.environment().put("RANK", String.valueOf(r));
                pb.environment().put("WORLD_SIZE", String.valueOf(world));
                pb.environment().put("LOCAL_RANK", String.valueOf(r));
                pb.redirectErrorStream(true);
                procs.add(pb.start());
            }
            for (int r = 0; r < world; r++) {
                Process p = procs.get(r);
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(p.waitFor(60, TimeUnit.SECONDS));
                assertEquals(0, p.exitValue(), out);
                String line = out.lines().filter(l -> l.startsWith("{\"type\":\"result\"")).findFirst().orElseThrow(() -> new IOException(out));
                JsonObject res = JsonParser.parseString(line).getAsJsonObject();
                assertEquals(r, res.get("rank").getAsInt());
                JsonObject v = res.getAsJsonObject("result");
                assertEquals(3f, v.getAsJsonArray("allReduce").get(0).getAsFloat());   // 1 + 2
                assertEquals(1f, v.get("tpSum").getAsFloat());                          // tp group [0, 1]
                assertEquals(r, v.getAsJsonArray("coords").get(1).getAsInt());          // tp rank
                assertTrue(out.contains("\"kind\":\"step\""), "step events on stdout");
            }
        } finally {
            for (Process p : procs) p.destroyForcibly();
        }
    }
}
