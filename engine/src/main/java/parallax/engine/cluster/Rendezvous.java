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
     */
    Collectives group(String prefix, String name, int[] members, CommStats stats) {
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
        if (!backend().equals("nccl") && members.length > 1) {
            SharedMemoryGroup shm = sharedMemory(prefix, groupRank, members.length, !"0".equals(System.getenv("PARALLAX_SHM")));
            if (shm != null) {
                keepAlive.add(shm);
                c.useSharedMemory(shm);
            }
        }
        return c;
    }

    /**
     * The group's shared-memory segment, or null when some member cannot map it (it runs on
     * another machine, or /dev/shm is missing): then every member keeps using the backend.
     * Group rank 0 creates the segment and names it in the store; each member reports
     * whether it mapped it; all members read all reports, so all decide alike; rank 0
     * then unlinks the file (the mappings stay valid until each rank closes its own). A
     * member with PARALLAX_SHM=0 takes part and says no, so a mixed setting means Gloo for all.
     */
    private SharedMemoryGroup sharedMemory(String prefix, int groupRank, int size, boolean wanted) {
        String key = "shm/" + prefix;
        long slot = SharedMemoryGroup.slotBytesFromEnv();
        SharedMemoryGroup shm = null;
        Path file = null;
        if (groupRank == 0) {
            long magic = new java.security.SecureRandom().nextLong();
            file = SharedMemoryGroup.segmentFile(ProcessHandle.current().pid(), magic);
            try {
                if (!wanted) throw new IllegalStateException("PARALLAX_SHM=0");
                shm = SharedMemoryGroup.create(file, magic, size, slot);
                store.set(key + "segment", file + " " + magic);
            } catch (RuntimeException e) {
                store.set(key + "segment", "");
            }
        } else {
            String[] seg = storeString(key + "segment").split(" ");
            if (seg.length == 2 && wanted) {
                try {
                    shm = SharedMemoryGroup.open(Path.of(seg[0]), Long.parseLong(seg[1]), groupRank, size, slot);
                } catch (RuntimeException e) {
                    shm = null;
                }
            }
        }
        store.set(key + "mapped/" + groupRank, shm != null ? "1" : "0");
        boolean all = true;
        for (int r = 0; r < size; r++) all &= storeString(key + "mapped/" + r).equals("1");
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
        return shm;
    }

    private String storeString(String key) {
        return new String(store.get(key).get(), java.nio.charset.StandardCharsets.UTF_8);
    }
}
