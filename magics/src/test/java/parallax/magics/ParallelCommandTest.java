package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import parallax.engine.cluster.Cluster;

/** %%parallel, %parallel --bench and %cluster through the magic runner, with real ranks. */
class ParallelCommandTest {

    private static String run(String name, String args, String body) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        MagicRunner.run(name, args, body, new MagicContext(new TextOutput(ps, new PrintStream(new ByteArrayOutputStream()), null), null));
        return buf.toString(StandardCharsets.UTF_8);
    }

    @AfterAll
    static void stop() {
        Cluster.session().stop();
    }

    @Test
    void cellsShareStateAndPrefixOutput() throws Exception {
        String out = run("parallel", "--ranks 2", "var greeting = \"hi from \" + dist.rank();\nSystem.out.println(greeting);\ndist.rank() * 2");
        assertTrue(out.contains("[rank 0] hi from 0") && out.contains("[rank 1] hi from 1"), out);
        assertTrue(out.contains("Last value of the cell on each rank"), out);
        String again = run("parallel", "--json", "greeting.length()");
        assertEquals("{\"values\":[\"9\",\"9\"]}", again.strip());

        String status = run("cluster", "status --json", null);
        JsonObject st = JsonParser.parseString(status).getAsJsonObject();
        assertEquals(2, st.getAsJsonArray("ranks").size());
        assertEquals("gloo", st.getAsJsonArray("ranks").get(1).getAsJsonObject().get("backend").getAsString());
        String expected = java.nio.file.Files.isWritable(java.nio.file.Path.of("/dev/shm")) ? "shm" : "gloo";
        assertEquals(expected, st.getAsJsonArray("ranks").get(1).getAsJsonObject().get("transport").getAsString(),
                "both ranks on this machine: the world group's collectives go through shared memory");
        assertTrue(st.getAsJsonArray("ranks").get(1).getAsJsonObject().get("rssBytes").getAsLong() > 0);
    }

    @Test
    void benchReportsBandwidthAsJson() throws Exception {
        String out = run("parallel", "--bench allreduce --ranks 2 --sizes 4KB,64KB --iters 3 --json", null);
        JsonObject o = JsonParser.parseString(out).getAsJsonObject();
        assertEquals(2, o.getAsJsonArray("rows").size());
        JsonObject row = o.getAsJsonArray("rows").get(1).getAsJsonObject();
        assertEquals(65536, row.get("bytes").getAsLong());
        double alg = row.get("algbwGBps").getAsDouble();
        assertEquals(65536 / row.get("seconds").getAsDouble() / 1e9, alg, 1e-9 * Math.max(1, alg));
        assertEquals(alg * 2 * (2 - 1) / 2.0, row.get("busbwGBps").getAsDouble(), 1e-12);
    }

    @Test
    void algorithmsAreCheckedAgainstTheExactSumAndTimed() throws Exception {
        String out = run("parallel", "--bench algorithms --worlds 2 --sizes 4KB --iters 3 --json", null);
        JsonObject o = JsonParser.parseString(out).getAsJsonObject();
        var devs = o.getAsJsonObject("checks").getAsJsonObject("2").getAsJsonArray("deviations");
        java.util.Set<String> impls = new java.util.TreeSet<>();
        double worst = 0;
        for (var d : devs) {
            impls.add(d.getAsJsonObject().get("impl").getAsString());
            worst = Math.max(worst, d.getAsJsonObject().get("worstFraction").getAsDouble());
        }
        assertEquals(java.util.Set.of("runtime", "ring", "tree", "ps"), impls);
        assertTrue(worst > 0 && worst <= 1, "worst fraction of the tolerance " + worst);
        assertEquals(worst, o.get("worstFractionOfTolerance").getAsDouble());
        assertEquals(3, o.getAsJsonObject("checks").getAsJsonObject("2").getAsJsonArray("traffic").size());
        assertEquals(4, o.getAsJsonArray("rows").size(), "one row per implementation");

        MagicError e = assertThrows(MagicError.class, () -> run("parallel", "--bench algorithms --worlds 2,1", null));
        assertEquals("%parallel: --worlds takes world sizes of at least 2 separated by commas, such as 2,3,4: '2,1'", e.getMessage());
    }

    @Test
    void mistakesAreOneLine() {
        MagicError e = assertThrows(MagicError.class, () -> run("parallel", "--ranks 4 --dp 3", "1"));
        assertEquals("%parallel: world size 4 is not dp x tp x pp = 3 x 1 x 1 = 3; try dp=4", e.getMessage());
        e = assertThrows(MagicError.class, () -> run("parallel", "--steps 10 --tp 3", null));
        assertEquals("%parallel: heads 4 is not divisible by --tp 3", e.getMessage());
        e = assertThrows(MagicError.class, () -> run("parallel", "--bench allreduse --ranks 2", null));
        assertEquals("%parallel: unknown collective 'allreduse' Did you mean allreduce?", e.getMessage());
        e = assertThrows(MagicError.class, () -> run("parallel", "--bench allreduce --ranks 2 --sizes 1XB", null));
        assertEquals("%parallel: '1XB' is not a size such as 64KB, 4MB or 1GB", e.getMessage());
        e = assertThrows(MagicError.class, () -> run("cluster", "strat", null));
        assertTrue(e.getMessage().startsWith("%cluster: unknown action 'strat' Did you mean start?"), e.getMessage());
    }

    /** %cluster gpus on this CPU-only build: every check reported, and the one line a cuda:0 rank would stop with. */
    @Test
    void gpusSaysWhatACudaRankWouldMeet() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeFalse(parallax.engine.torch.CudaCheck.probe().gpuNatives(), "a GPU build");
        JsonObject o = JsonParser.parseString(run("cluster", "gpus --json", null)).getAsJsonObject();
        assertEquals(false, o.get("gpuNatives").getAsBoolean());
        assertTrue(o.get("problem").getAsString().contains("needs the GPU build of libtorch"), o.toString());
        String text = run("cluster", "gpus", null);
        assertTrue(text.contains("GPU build of libtorch") && text.contains("A rank on cuda:0 would stop with"), text);
    }
}
