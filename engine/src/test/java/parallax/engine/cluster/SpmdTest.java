package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** %%parallel cells: JShell on each rank, dist bound, state kept across cells. */
class SpmdTest {

    @TempDir
    Path logs;

    private static List<String> strings(List<JsonElement> v) {
        List<String> s = new ArrayList<>();
        for (JsonElement e : v) s.add(e == null || e.isJsonNull() ? null : e.getAsString());
        return s;
    }

    @Test
    void cellsRunOnEveryRankAndKeepState() {
        WorkerPool.Options opts = WorkerPool.Options.defaults().withLogDir(logs);
        try (WorkerPool pool = WorkerPool.start(Nodes.localDefault(2), 2, opts)) {
            List<RankEvent> out = Collections.synchronizedList(new ArrayList<>());
            List<JsonElement> v = pool.exec("""
                    int x = dist.rank() * 10;
                    System.out.println("hello from " + dist.rank() + " of " + dist.world());
                    x
                    """, null, out::add);
            assertEquals(List.of("0", "10"), strings(v));
            assertTrue(out.stream().anyMatch(e -> e.rank() == 1 && e.text().equals("hello from 1 of 2")), out.toString());

            // state persists, and collectives work on live tensors
            v = pool.exec("""
                    Tensor t = Tensor.create(new float[] {x + 1, x + 2});
                    dist.allReduce(t);
                    t.sum().item_double() + x
                    """, null, e -> { });
            // ranks hold (1,2) and (11,12): the sum is (12,14) -> 26, plus x
            assertEquals(List.of("26.0", "36.0"), strings(v));

            // a new mesh shape rebuilds the groups; dist is rebound
            v = pool.exec("dist.mesh().tpRank() + \"/\" + dist.mesh().shape().tp()", new MeshShape(1, 2, 1), e -> { });
            assertEquals(List.of("\"0/2\"", "\"1/2\""), strings(v));   // JShell renders strings quoted

            // back to the first shape: its groups are reused and still work
            v = pool.exec("Tensor one = Tensor.create(new float[] {1}); dist.dpGroup().allReduce(one); Dist.floats(one)[0]",
                    new MeshShape(2, 1, 1), e -> { });
            assertEquals(List.of("2.0", "2.0"), strings(v));

            // a statement without a value gives no value
            v = pool.exec("int y = 5;", null, e -> { });
            assertTrue(v.stream().allMatch(e -> e == null || e.isJsonNull()));

            // a compile error is one line, and the pool survives it
            ClusterError err = assertThrows(ClusterError.class, () -> pool.exec("int z = undefinedThing;", null, e -> { }));
            assertTrue(err.getMessage().startsWith("every rank failed: does not compile"), err.getMessage());
            RuntimeException ex = assertThrows(ClusterError.class, () -> pool.exec("if (dist.rank() == 1) throw new IllegalStateException(\"boom\"); 1", null, e -> { }));
            assertTrue(ex.getMessage().contains("rank 1 failed") && ex.getMessage().contains("boom"), ex.getMessage());
            assertTrue(pool.alive());
            assertEquals(List.of("15", "15"), strings(pool.exec("y + 10", null, e -> { })));
        }
    }
}
