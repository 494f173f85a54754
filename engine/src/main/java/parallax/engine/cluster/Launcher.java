package parallax.engine.cluster;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts one worker JVM on a node. Local nodes get a child process; remote nodes get
 * {@code ssh node 'exec java ... WorkerMain ...'} with the same classpath, as mpirun and
 * DeepSpeed's launcher do. Either way the worker's stdout and stderr go to {@code log}.
 */
final class Launcher {

    /**
     * Settings a rank reads from its environment. A local child inherits them; over ssh
     * they are put on the remote command line, so a group's members on every node agree.
     */
    static final List<String> FORWARDED_ENV = List.of("PARALLAX_SHM", "PARALLAX_HIERARCHICAL", "PARALLAX_SHM_SLOT_MB");

    private Launcher() {}

    static Process start(Nodes nodes, Nodes.Node node, List<String> jvmArgs, String classpath,
                         List<String> workerArgs, Path log) throws IOException {
        List<String> java = new ArrayList<>();
        java.add(node.local() ? localJava() : node.java());
        java.addAll(jvmArgs);
        java.add("-cp");
        java.add(classpath);
        java.add(WorkerMain.class.getName());
        java.addAll(workerArgs);
        List<String> cmd = new ArrayList<>();
        if (node.local()) {
            cmd.addAll(java);
        } else {
            StringBuilder remote = new StringBuilder("exec");
            List<String> env = forwardedEnv(System.getenv());
            if (!env.isEmpty()) remote.append(" env");
            for (String a : env) remote.append(' ').append(shellQuote(a));
            for (String a : java) remote.append(' ').append(shellQuote(a));
            cmd.addAll(ssh(nodes, node, remote.toString()));
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.PIPE);
        return pb.start();
    }

    /** {@code ssh [options] node 'remote'}: batch mode, the nodes file's options, keep-alives. */
    static List<String> ssh(Nodes nodes, Nodes.Node node, String remote) {
        List<String> cmd = new ArrayList<>(List.of("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"));
        cmd.addAll(nodes.sshOptions());
        // After the user's options (ssh keeps the first value it is given): a connection
        // whose node stops answering ends within 15 s, so the rank is reported lost.
        cmd.addAll(List.of("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"));
        cmd.add(node.host());
        cmd.add(remote);
        return cmd;
    }

    /** NAME=value for each forwarded setting that is set. */
    static List<String> forwardedEnv(java.util.Map<String, String> env) {
        List<String> out = new ArrayList<>();
        for (String k : FORWARDED_ENV) if (env.get(k) != null) out.add(k + "=" + env.get(k));
        return out;
    }

    static String localJava() {
        return ProcessHandle.current().info().command()
                .orElse(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
    }

    static String shellQuote(String s) {
        if (s.matches("[A-Za-z0-9_./:=,@%+-]+")) return s;
        return "'" + s.replace("'", "'\\''") + "'";
    }
}
