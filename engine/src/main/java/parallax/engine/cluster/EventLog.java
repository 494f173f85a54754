package parallax.engine.cluster;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Map;

/**
 * The coordinator's own log, {@code <log dir>/coordinator.jsonl}: one JSON object a line
 * for what happens to the job as a whole (a pool generation started, ranks lost, a restart,
 * a checkpoint written, a run resumed). The fields follow the Elastic Common Schema as its
 * own logging libraries write it ({@code @timestamp}, {@code log.level}, {@code message},
 * {@code event.action}, dotted keys), so Filebeat's ndjson parser or Logstash's json_lines
 * codec ingests it unchanged; Parallax's own fields sit under {@code parallax.*}
 * (docs/reference.md#logs-and-metrics).
 */
public final class EventLog {

    private final Path file;

    EventLog(Path file) {
        this.file = file;
    }

    public Path file() { return file; }

    /** Appends one event: {@code level} info/warn/error, {@code action} a short name such as "restart". */
    public synchronized void write(String level, String action, String message, Map<String, ?> fields) {
        JsonObject o = new JsonObject();
        o.addProperty("@timestamp", Instant.now().toString());
        o.addProperty("log.level", level);
        o.addProperty("message", message);
        o.addProperty("event.action", action);
        o.addProperty("event.dataset", "parallax.coordinator");
        o.addProperty("process.pid", ProcessHandle.current().pid());
        if (fields != null) for (Map.Entry<String, ?> e : fields.entrySet()) o.add("parallax." + e.getKey(), Wire.GSON.toJsonTree(e.getValue()));
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, Wire.GSON.toJson(o) + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ignored) {
            // logs are best effort; the run goes on
        }
    }
}
