package parallax.engine.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.gson.JsonElement;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenSSH launcher against a real sshd (Debian openssh-server) that this test starts
 * on loopback, listening on two node addresses, 127.0.0.1 and 127.0.0.2, with a throw-away
 * host key and user key. Skipped, saying why, when sshd cannot be started.
 */
class SshLaunchTest {

    @TempDir
    Path dir;

    private Process sshd;

    @AfterEach
    void stopSshd() throws InterruptedException {
        if (sshd != null) {
            sshd.destroy();
            sshd.waitFor(5, TimeUnit.SECONDS);
            sshd.destroyForcibly();
        }
    }

    private static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException(String.join(" ", cmd) + ": " + out);
    }

    private int startSshd() throws Exception {
        Path sshdBin = Path.of("/usr/sbin/sshd");
        parallax.engine.Peers.executable(sshdBin, "openssh-server");
        Path priv = Path.of("/run/sshd");   // Debian's sshd insists on its privilege-separation directory
        if (!Files.isDirectory(priv)) {
            try {
                Files.createDirectories(priv);
            } catch (IOException e) {
                parallax.engine.Peers.unavailable("sshd's /run/sshd (cannot be created here, not root?: " + e.getMessage() + ")");
            }
        }
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.resolve("host_key").toString());
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.resolve("id").toString());
        Files.copy(dir.resolve("id.pub"), dir.resolve("authorized_keys"));
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Files.writeString(dir.resolve("sshd_config"),
                TestBed.sshdConfig(dir, port, List.of("127.0.0.1", "127.0.0.2"), dir.resolve("sshd.pid")));
        sshd = new ProcessBuilder(sshdBin.toString(), "-D", "-e", "-f", dir.resolve("sshd_config").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("sshd.log").toFile()).start();
        for (int i = 0; i < 50; i++) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.2", port), 200);
                return port;
            } catch (IOException e) {
                if (!sshd.isAlive()) break;
                Thread.sleep(100);
            }
        }
        parallax.engine.Peers.unavailable("a local sshd (it did not start: " + Files.readString(dir.resolve("sshd.log")).strip() + ")");
        return -1;
    }

    @Test
    void ranksOnTwoNodeAddressesOverSsh() throws Exception {
        int port = startSshd();
        String java = Launcher.localJava();
        Nodes nodes = Nodes.parse(String.join("\n",
                "master_addr 127.0.0.1",
                "ssh_options -p " + port + " -i " + dir.resolve("id") + " -o StrictHostKeyChecking=no"
                        + " -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                "127.0.0.1 slots=1 launcher=ssh java=" + java,
                "127.0.0.2 slots=1 launcher=ssh java=" + java, ""), "ssh-test");
        WorkerPool pool = WorkerPool.start(nodes, 2, WorkerPool.Options.defaults().withLogDir(dir.resolve("logs")));
        long[] pids;
        try {
            pids = pool.workerPids();
            List<JsonElement> res = pool.run(CollectiveCheckTask.class.getName(), "{}", new MeshShape(2, 1, 1), e -> { });
            for (JsonElement r : res) {
                assertEquals(3f, r.getAsJsonObject().getAsJsonArray("allReduce").get(0).getAsFloat());
            }
            List<JsonElement> hosts = pool.exec("dist.host()", null, e -> { });
            assertEquals("\"127.0.0.1\"", hosts.get(0).getAsString());
            assertEquals("\"127.0.0.2\"", hosts.get(1).getAsString());
            assertEquals(List.of("127.0.0.1", "127.0.0.2"), pool.status().stream().map(WorkerPool.RankStatus::host).toList());
        } finally {
            pool.close();
        }
        // the remote JVMs (not children of this process) are gone too
        for (int i = 0; i < 50 && (ProcessHandle.of(pids[0]).isPresent() || ProcessHandle.of(pids[1]).isPresent()); i++) Thread.sleep(100);
        for (long p : pids) assertFalse(ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false), "remote rank " + p + " exited");
    }
}
