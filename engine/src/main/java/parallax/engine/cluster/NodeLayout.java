package parallax.engine.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which members of a group share a node, from the node key each member publishes: nodes in
 * the order their first member appears, each node's members in group order.
 *
 * <p>A node key says where a rank can share memory: the address its node binds (one line of
 * the nodes file) plus the kernel it runs on (Linux's boot id) and the {@code /dev/shm} it
 * sees (the device number of that tmpfs). Two nodes-file lines on one machine are two nodes;
 * two network namespaces with their own {@code /dev/shm} are two nodes even under one
 * kernel; ranks that merely share a host name are not one node unless their {@code /dev/shm}
 * is the same. An empty key means "no shared memory here".
 */
record NodeLayout(int[][] nodes, int[] nodeOf, int[] localRank, boolean anyUnknown) {

    static NodeLayout of(String[] keys) {
        Map<String, List<Integer>> byKey = new LinkedHashMap<>();
        boolean unknown = false;
        for (int r = 0; r < keys.length; r++) {
            unknown |= keys[r] == null || keys[r].isEmpty();
            byKey.computeIfAbsent(keys[r] == null ? "" : keys[r], k -> new ArrayList<>()).add(r);
        }
        int[][] nodes = new int[byKey.size()][];
        int[] nodeOf = new int[keys.length], local = new int[keys.length];
        int j = 0;
        for (List<Integer> members : byKey.values()) {
            nodes[j] = members.stream().mapToInt(Integer::intValue).toArray();
            for (int l = 0; l < nodes[j].length; l++) {
                nodeOf[nodes[j][l]] = j;
                local[nodes[j][l]] = l;
            }
            j++;
        }
        return new NodeLayout(nodes, nodeOf, local, unknown);
    }

    int nodeOf(int groupRank) { return nodeOf[groupRank]; }

    int localRank(int groupRank) { return localRank[groupRank]; }

    /** Several nodes, each holding the same number of members, at least two: the hierarchical case. */
    boolean evenWithSeveralPerNode() {
        if (nodes.length < 2 || nodes[0].length < 2) return false;
        for (int[] n : nodes) if (n.length != nodes[0].length) return false;
        return true;
    }

    /** This rank's node key: see the class comment; "" when there is no /dev/shm. */
    static String thisNode(String hostAddr) {
        Path shm = Path.of("/dev/shm");
        if (!Files.isDirectory(shm)) return "";
        String boot = "";
        try {
            boot = Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
        } catch (IOException | RuntimeException e) {
            // not Linux: the address and the tmpfs device below still tell nodes apart
        }
        Object dev;
        try {
            dev = Files.getAttribute(shm, "unix:dev");
        } catch (IOException | RuntimeException e) {
            dev = "?";
        }
        return hostAddr + "@" + boot + "/" + dev;
    }

    @Override
    public String toString() {
        return Arrays.deepToString(nodes);
    }
}
