package parallax.engine.cluster;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.Writer;

/**
 * The coordinator-worker control channel: one JSON object per line over a plain TCP
 * socket. Every message has a "type"; runs carry an "id".
 *
 * <pre>
 * worker -> coordinator: hello {rank, pid, token}, ready {rank, readyMs}, out {id, text},
 *                        event {id, kind, step, fields}, result {id, value}, error {id, message},
 *                        status {rank, pid, rssBytes, busy, lastStep}, fatal {message}
 * coordinator -> worker: run {id, task, args, mesh}, exec {id, code, mesh}, status, exit, ping (every second)
 * </pre>
 */
final class Wire {

    static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().disableHtmlEscaping().create();

    private Wire() {}

    static JsonObject msg(String type) {
        JsonObject o = new JsonObject();
        o.addProperty("type", type);
        return o;
    }

    /** Writes one message as one line; callers share the writer, so this locks it. */
    static void send(Writer w, JsonObject o) throws IOException {
        String line = GSON.toJson(o);
        synchronized (w) {
            w.write(line);
            w.write('\n');
            w.flush();
        }
    }

    /** Next message, or null at end of stream. */
    static JsonObject read(BufferedReader r) throws IOException {
        String line;
        do {
            line = r.readLine();
            if (line == null) return null;
        } while (line.isBlank());
        return JsonParser.parseString(line).getAsJsonObject();
    }
}
