package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import parallax.engine.cluster.Cluster;
import parallax.engine.cluster.TestBed;

/** %cluster topology and %cluster testbed through the magic runner, with real ranks (and, as root, real namespaces). */
class ClusterCommandTest {

    private static String run(String args) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        MagicRunner.run("cluster", args, null, new MagicContext(new TextOutput(ps, new PrintStream(new ByteArrayOutputStream()), null), null));
        return buf.toString(StandardCharsets.UTF_8);
    }

    @AfterAll
    static void stop() {
        Cluster.session().removeTestBed();
        Cluster.session().stop();
    }

    @Test
    void topologyOfRanksOnOneMachine() throws Exception {
        JsonObject o = JsonParser.parseString(run("topology --ranks 2 --size 64KB --iters 2 --json")).getAsJsonObject();
        assertEquals(2, o.getAsJsonArray("nodeOfRank").size());
        assertEquals(2, o.getAsJsonArray("pairs").size(), "both directions of the one pair");
        for (var p : o.getAsJsonArray("pairs")) {
            JsonObject pair = p.getAsJsonObject();
            assertEquals("SAME_NODE", pair.get("kind").getAsString());
            assertTrue(pair.get("gbps").getAsDouble() > 0 && pair.get("latencyUs").getAsDouble() > 0, pair.toString());
        }
        assertTrue(o.get("sameNodeMedianGBps").getAsDouble() > 0);
        assertFalse(o.has("networkMedianGBps"), "no pair crosses nodes");
    }

    @Test
    void aTestBedReadsItsShapedLinkAndGoesAway() throws Exception {
        String why = TestBed.unavailableReason();
        Assumptions.assumeTrue(why == null, () -> "test bed skipped: " + why);
        Cluster c = Cluster.session();
        boolean wasDefault = c.usingDefault();
        String up = run("testbed up --nodes 2 --slots 1 --rate 100mbit");
        assertTrue(up.contains("test bed up: 2 nodes x 1 slots"), up);
        assertTrue(c.nodesFile().toString().contains("parallax-testbed-"), "the session uses the bed's nodes file");
        JsonObject o = JsonParser.parseString(run("topology --ranks 2 --size 1MB --iters 3 --json")).getAsJsonObject();
        double fraction = o.get("networkFractionOfConfigured").getAsDouble();
        assertTrue(fraction > 0.8 && fraction < 1.1, "a pair across nodes reads the 100 Mbit/s link: " + fraction);
        String down = run("testbed down");
        assertTrue(down.startsWith("test bed removed"), down);
        assertNull(c.testBed());
        assertEquals(wasDefault, c.usingDefault(), "back to the nodes used before");
    }

    @Test
    void badTestBedInputIsOneLine() {
        assertEquals("%cluster: no test bed is up: start one with %cluster testbed up",
                assertThrows(MagicError.class, () -> run("testbed shape --rate 1gbit")).getMessage());
        assertEquals("%cluster: unknown testbed action 'sideways' (up, shape, down, show)",
                assertThrows(MagicError.class, () -> run("testbed sideways")).getMessage());
        assertEquals("%cluster: 'now' after status: only testbed takes a second word",
                assertThrows(MagicError.class, () -> run("status now")).getMessage());
        assertEquals("%cluster: 'fast' is not a link rate such as 100mbit, 1gbit or 10gbit",
                assertThrows(MagicError.class, () -> run("testbed up --rate fast")).getMessage());
    }
}
