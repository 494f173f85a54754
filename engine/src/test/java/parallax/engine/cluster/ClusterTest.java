package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;

/** %%cluster nodes: the nodes file is validated, written whole, and used. */
class ClusterTest {

    @TempDir
    Path dir;

    @Test
    void editsTheNodesFileSafely() throws Exception {
        Path file = dir.resolve("sub/nodes");
        Cluster c = new Cluster(file);
        assertTrue(c.usingDefault());
        assertEquals(2, c.defaultRanks());
        assertEquals(5, c.nodes(5).slots(), "the embedded default grows to the ranks asked for");

        c.writeNodes("master_addr 127.0.0.1\nlocalhost slots=3");
        assertFalse(c.usingDefault());
        assertEquals("master_addr 127.0.0.1\nlocalhost slots=3\n", Files.readString(file));
        assertEquals(3, c.defaultRanks());

        UserError e = assertThrows(UserError.class, () -> c.writeNodes("localhost slots=zero"));
        assertEquals("nodes line 1: slots must be a positive whole number, got 'zero'", e.getMessage());
        assertEquals("master_addr 127.0.0.1\nlocalhost slots=3\n", Files.readString(file), "a bad edit leaves the file as it was");
        try (var s = Files.list(file.getParent())) {
            assertEquals(1, s.count(), "no temp file left behind");
        }
        assertEquals(3, new Cluster(file).defaultRanks(), "a new session reads the file");

        c.useDefault();
        assertTrue(c.usingDefault());
    }
}
