package parallax.engine.cluster;

import com.google.gson.JsonObject;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One rank as the coordinator sees it: its worker process, the control connection it
 * opened back (after a hello with the pool's token), a reader thread that puts every
 * message into the pool's inbox and appends it to the rank's JSON log, and what the rank
 * last said about itself. The process's exit, or the connection breaking, arrives in the
 * inbox as a message with {@code msg == null}.
 */
final class RankChannel {

    /** A message from rank {@code rank}; {@code msg == null} means the rank is gone. */
    record Incoming(int rank, JsonObject msg) {}

    final Nodes.Placement place;
    final Process process;
    /** The worker's stdout and stderr. */
    final Path log;
    /** Every message the rank sent, one JSON object a line, with a timestamp. */
    final Path jsonLog;
    private volatile Socket socket;
    private volatile boolean hungUp;
    private volatile Writer out;
    volatile long pid = -1;
    volatile double readyMs = -1;
    volatile JsonObject phases;
    volatile String backend = "";
    volatile long lastStep = -1;
    volatile JsonObject lastStatus;
    /** When the rank last said anything (it answers the coordinator's pings every second). */
    volatile long lastHeardNanos = System.nanoTime();

    RankChannel(Nodes.Placement place, Process process, Path log, Path jsonLog, BlockingQueue<Incoming> inbox) {
        this.place = place;
        this.process = process;
        this.log = log;
        this.jsonLog = jsonLog;
        process.onExit().thenRun(() -> inbox.add(new Incoming(place.rank(), null)));
    }

    int rank() { return place.rank(); }

    String host() { return place.node().host(); }

    boolean connected() { return socket != null; }

    /** Takes the rank's connection after its hello, then reads it until it closes (on the calling thread). */
    void attach(Socket s, long workerPid, BufferedReader in, BlockingQueue<Incoming> inbox) throws IOException {
        pid = workerPid;
        out = new BufferedWriter(new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8));
        socket = s;
        // A rank that says hello while the pool is being stopped is let go at once (its
        // socket closing makes it exit), not kept connected until its watchdog gives up.
        if (hungUp) {
            s.close();
            return;
        }
        try {
            JsonObject m;
            while ((m = Wire.read(in)) != null) {
                lastHeardNanos = System.nanoTime();
                if ("pong".equals(m.get("type").getAsString())) continue;
                appendJsonLog(m);
                inbox.add(new Incoming(rank(), m));
            }
        } catch (IOException | RuntimeException e) {
            // the connection broke: treated as the rank being gone
        }
        inbox.add(new Incoming(rank(), null));
    }

    void send(JsonObject m) throws IOException {
        Wire.send(out, m);
    }

    /** Asks the rank to exit and closes its connection; never throws (the rank may be gone already). */
    void hangUp() {
        hungUp = true;
        try {
            if (out != null) Wire.send(out, Wire.msg("exit"));
        } catch (IOException | RuntimeException ignored) {
            // already gone
        }
        try {
            if (socket != null) socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    /** Waits for the process until {@code deadlineNanos}, then kills it and what it started. */
    void awaitExitOrKill(long deadlineNanos) {
        try {
            long left = Math.max(1, deadlineNanos - System.nanoTime());
            if (!process.waitFor(left, TimeUnit.NANOSECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                process.waitFor(1, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private void appendJsonLog(JsonObject m) {
        try {
            JsonObject line = new JsonObject();
            long now = System.currentTimeMillis();
            // Elastic Common Schema's time field first, so Filebeat and Logstash take it as the event's time
            line.addProperty("@timestamp", java.time.Instant.ofEpochMilli(now).toString());
            for (var e : m.entrySet()) line.add(e.getKey(), e.getValue());
            line.addProperty("ts", now / 1000.0);
            line.addProperty("rank", rank());
            Files.writeString(jsonLog, Wire.GSON.toJson(line) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ignored) {
            // logs are best effort; the run goes on
        }
    }
}
