package parallax.engine.cluster;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.IntOptional;
import org.bytedeco.pytorch.PrefixStore;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.nccl.ProcessGroupNCCL;

/**
 * Joins the ranks of one job, as {@code torch.distributed.init_process_group} does: rank 0
 * serves a c10d {@link TCPStore} on the master address, every rank connects to it, and
 * process groups exchange their addresses through the store (each group under its own
 * key prefix, so a subgroup is just another group over a {@link PrefixStore}).
 *
 * <p>The backend follows the device: Gloo for CPU tensors, NCCL for CUDA devices (only in
 * the {@code -Pcuda} build; not verified on these GPU-less machines).
 */
final class Rendezvous {

    private final int rank;
    private final int world;
    private final String device;
    private final String hostAddr;
    /** Where this rank can share memory ({@link NodeLayout#thisNode}). */
    private final String nodeKey;
    private final long timeoutMs;
    private final String masterAddr;
    private final int masterPort;
    private final TCPStore store;
    private final List<Object> keepAlive = new ArrayList<>();

    private Rendezvous(int rank, int world, String device, String hostAddr, long timeoutMs, String masterAddr,
                       int masterPort, TCPStore store) {
        this.masterAddr = masterAddr;
        this.masterPort = masterPort;
        this.rank = rank;
        this.world = world;
        this.device = device;
        this.hostAddr = hostAddr;
        this.nodeKey = NodeLayout.thisNode(hostAddr);
        this.timeoutMs = timeoutMs;
        this.store = store;
    }

    /**
     * Connects to (rank 0: serves) the store at masterAddr:masterPort.
     *
     * @param hostAddr the address this rank's Gloo device binds to (its node's address)
     */
    static Rendezvous join(String masterAddr, int masterPort, int rank, int world, String device,
                           String hostAddr, long timeoutMs) {
        TCPStoreOptions o = storeOptions(masterPort, rank == 0, world, timeoutMs);
        java.nio.channels.ServerSocketChannel listener = null;
        if (rank == 0) {
            // c10d's store server binds every interface; hand it a socket bound to the master
            // address only, so nothing listens on interfaces the nodes file does not name.
            listener = boundListener(masterAddr, masterPort);
            if (listener != null) o.masterListenFd(new IntOptional(fdOf(listener)));
        }
        TCPStore store;
        try {
            store = new TCPStore(masterAddr, o);
        } catch (RuntimeException e) {
            String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            if (rank == 0 && (msg.contains("in use") || msg.contains("EADDRINUSE"))) {
                throw new ClusterError("rendezvous port " + masterAddr + ":" + masterPort
                        + " is in use; pick another master_port in the nodes file", e);
            }
            throw new ClusterError("rank " + rank + " could not reach the rendezvous store at " + masterAddr + ":"
                    + masterPort + " within " + timeoutMs / 1000 + " s: " + msg, e);
        }
        Rendezvous r = new Rendezvous(rank, world, device, hostAddr, timeoutMs, masterAddr, masterPort, store);
        if (listener != null) r.keepAlive.add(listener);
        return r;
    }

    /**
     * A listening socket on masterAddr:port, or null when its file descriptor cannot be read
     * (the JVM was started without {@code --add-opens java.base/sun.nio.ch=ALL-UNNAMED}); then
     * the store binds every interface, as torchrun's does.
     */
    private static java.nio.channels.ServerSocketChannel boundListener(String addr, int port) {
        java.nio.channels.ServerSocketChannel ch = null;
        try {
            ch = java.nio.channels.ServerSocketChannel.open();
            fdVal(ch);   // fails early when sun.nio.ch is not opened to us
            ch.bind(new java.net.InetSocketAddress(java.net.InetAddress.getByName(addr), port), 128);
            return ch;
        } catch (java.net.BindException e) {
            throw new ClusterError("rendezvous port " + addr + ":" + port + " is in use; pick another master_port in the nodes file", e);
        } catch (java.io.IOException | RuntimeException | ReflectiveOperationException e) {
            try {
                if (ch != null) ch.close();
            } catch (java.io.IOException ignored) {
                // nothing bound
            }
            return null;
        }
    }

    private static int fdOf(java.nio.channels.ServerSocketChannel ch) {
        try {
            return fdVal(ch);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int fdVal(java.nio.channels.ServerSocketChannel ch) throws ReflectiveOperationException {
        java.lang.reflect.Method m = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal");
        return (Integer) m.invoke(ch);
    }

    private static TCPStoreOptions storeOptions(int port, boolean server, int world, long timeoutMs) {
        TCPStoreOptions o = new TCPStoreOptions();
        o.port((short) port);
        o.isServer(server);
        o.numWorkers(new SizeTPointer(1).put(world));
        o.waitWorkers(false);
        o.useLibUV(false);
        o.timeout(new Milliseconds(timeoutMs));
        return o;
    }

    /** Worker JVM property that turns shared memory off ({@code -Dparallax.shm=false}), like PARALLAX_SHM=0. */
    static final String SHM_PROPERTY = "parallax.shm";
    /** Worker JVM property that turns the hierarchical path off, like PARALLAX_HIERARCHICAL=0. */
    static final String HIERARCHICAL_PROPERTY = "parallax.hierarchical";

    /** Off when the JVM property says false or 0, else when the variable says 0; on otherwise. */
    static boolean enabled(String variable, String property) {
        String p = System.getProperty(property);
        if (p != null) return !(p.equals("false") || p.equals("0"));
        return !"0".equals(System.getenv(variable));
    }

    int rank() { return rank; }

    int world() { return world; }

    String device() { return device; }

    /** "gloo" or "nccl". */
    String backend() {
        return device.startsWith("cuda") ? "nccl" : "gloo";
    }

    Store store() { return store; }

    /**
     * Creates the process group of {@code members} (world ranks, this rank among them) under
     * key prefix {@code prefix}; blocks until every member has joined or the timeout passes.
     * A CPU group then picks its transport ({@link #transport}).
     */
    Collectives group(String prefix, String name, int[] members, CommStats stats) {
        return group(prefix, name, members, stats, true);
    }

    private Collectives group(String prefix, String name, int[] members, CommStats stats, boolean ownTransport) {
        int groupRank = -1;
        for (int i = 0; i < members.length; i++) if (members[i] == rank) groupRank = i;
        if (groupRank < 0) throw new IllegalArgumentException("rank " + rank + " is not in group " + name);
        // A Java store object may be handed to C++ as an intrusive_ptr only once (the
        // presets adopt the raw pointer), so every group gets its own client connection.
        TCPStore client = new TCPStore(masterAddr, storeOptions(masterPort, false, world, timeoutMs));
        keepAlive.add(client);
        PrefixStore ps = new PrefixStore(prefix, client);
        Backend pg;
        try {
            if (backend().equals("nccl")) {
                pg = new ProcessGroupNCCL(ps, groupRank, members.length);
            } else {
                ProcessGroupGloo.Options go = ProcessGroupGloo.Options.create(new Milliseconds(timeoutMs));
                go.devices(new GlooDeviceVector(ProcessGroupGloo.createDeviceForHostname(hostAddr)));
                go.threads(2);
                keepAlive.add(go);
                pg = new ProcessGroupGloo(ps, groupRank, members.length, go);
            }
        } catch (UnsatisfiedLinkError e) {
            throw new ClusterError("device " + device + " needs NCCL: build with -Pcuda on a CUDA machine", e);
        } catch (RuntimeException e) {
            String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            throw new ClusterError("rank " + rank + " could not set up " + backend() + " group " + name
                    + " within " + timeoutMs / 1000 + " s (a member did not arrive?): " + msg, e);
        }
        keepAlive.add(ps);
        keepAlive.add(pg);
        Collectives c = new Collectives(name, pg, groupRank, members, timeoutMs, stats);
        if (ownTransport && !backend().equals("nccl") && members.length > 1) {
            GroupTransport t = transport(prefix, name, groupRank, members);
            if (t != null) {
                keepAlive.add(t);
                c.use(t);
            }
        }
        return c;
    }

    /**
     * How a CPU group moves tensors, decided alike by every member from what all of them
     * publish in the store: the node each is on ({@link NodeLayout}) and whether it could map
     * its node's segment.
     * <ul>
     *   <li>one node: one shared-memory segment for the whole group;</li>
     *   <li>several nodes holding the same number (at least 2) of the group's ranks:
     *       hierarchical, a segment per node plus an "across" Gloo group per local rank;</li>
     *   <li>otherwise (one rank per node, uneven nodes, {@code PARALLAX_SHM=0} anywhere,
     *       {@code PARALLAX_HIERARCHICAL=0} for a group that spans nodes, a segment some member
     *       could not map): null, the backend for everything.</li>
     * </ul>
     */
    private GroupTransport transport(String prefix, String name, int groupRank, int[] members) {
        String key = "shm/" + prefix;
        boolean shmWanted = enabled("PARALLAX_SHM", SHM_PROPERTY);
        boolean hierarchicalWanted = enabled("PARALLAX_HIERARCHICAL", HIERARCHICAL_PROPERTY);
        // One value per member: its wish for the hierarchical path (H or F) and its node key.
        store.set(key + "node/" + groupRank, (hierarchicalWanted ? "H" : "F") + (shmWanted ? nodeKey : ""));
        String[] keys = new String[members.length];
        boolean allHierarchical = true;
        for (int r = 0; r < members.length; r++) {
            String v = storeString(key + "node/" + r);
            allHierarchical &= v.startsWith("H");
            keys[r] = v.substring(1);
        }
        // Every member reads the same values, so all take the same branch below.
        NodeLayout layout = NodeLayout.of(keys);
        if (layout.anyUnknown()) return null;   // a member without shared memory: the backend for all
        int[][] nodes = layout.nodes();
        if (nodes.length == 1) return sharedMemory(key, key, groupRank, nodes[0], members.length);
        if (!allHierarchical || !layout.evenWithSeveralPerNode()) return null;
        int node = layout.nodeOf(groupRank), local = layout.localRank(groupRank);
        SharedMemoryGroup shm = sharedMemory(key + "node" + node + "/", key, groupRank, nodes[node], members.length);
        if (shm == null) return null;
        int[] peers = new int[nodes.length];
        for (int j = 0; j < nodes.length; j++) peers[j] = members[nodes[j][local]];
        Collectives across = group(prefix + "across" + local + "/", name + " across nodes (part " + local + ")", peers,
                new CommStats(), false);
        return new HierarchicalGroup(shm, across, nodes);
    }

    /**
     * The shared-memory segment of one node's members ({@code nodeMembers}, group ranks;
     * named under {@code segmentKey}; reports under {@code groupKey}), or
     * null when some member of the whole group could not map its node's segment: then every
     * member keeps using the backend. The node's first member creates the segment and names
     * it in the store; each member of the group reports whether it mapped its own; all
     * members read all reports, so all decide alike; the creator then unlinks the file (the
     * mappings stay valid until each rank closes its own).
     */
    private SharedMemoryGroup sharedMemory(String segmentKey, String groupKey, int groupRank, int[] nodeMembers, int groupSize) {
        long slot = SharedMemoryGroup.slotBytesFromEnv();
        int local = -1;
        for (int i = 0; i < nodeMembers.length; i++) if (nodeMembers[i] == groupRank) local = i;
        SharedMemoryGroup shm = null;
        Path file = null;
        if (local == 0) {
            long magic = new java.security.SecureRandom().nextLong();
            file = SharedMemoryGroup.segmentFile(ProcessHandle.current().pid(), magic);
            try {
                shm = SharedMemoryGroup.create(file, magic, nodeMembers.length, slot);
                store.set(segmentKey + "segment", file + " " + magic);
            } catch (RuntimeException e) {
                store.set(segmentKey + "segment", "");
            }
        } else {
            String[] seg = storeString(segmentKey + "segment").split(" ");
            if (seg.length == 2) {
                try {
                    shm = SharedMemoryGroup.open(Path.of(seg[0]), Long.parseLong(seg[1]), local, nodeMembers.length, slot);
                } catch (RuntimeException e) {
                    shm = null;
                }
            }
        }
        store.set(groupKey + "mapped/" + groupRank, shm != null ? "1" : "0");
        boolean all = true;
        for (int r = 0; r < groupSize; r++) all &= storeString(groupKey + "mapped/" + r).equals("1");
        if (file != null) {
            try {
                java.nio.file.Files.deleteIfExists(file);
            } catch (java.io.IOException ignored) {
                // tmpfs: the segment goes when the last mapping does
            }
        }
        if (!all && shm != null) {
            shm.close();
            shm = null;
        }
        return shm == null ? null : shm.labels(nodeMembers);
    }

    private String storeString(String key) {
        return new String(store.get(key).get(), java.nio.charset.StandardCharsets.UTF_8);
    }
}
