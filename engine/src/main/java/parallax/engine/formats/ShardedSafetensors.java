package parallax.engine.formats;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A sharded safetensors checkpoint: {@code model.safetensors.index.json} holds
 * {"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}; each shard is an
 * ordinary safetensors file beside it. Every mapped tensor must exist in its shard.
 */
public final class ShardedSafetensors implements ModelFile {

    static final long MAX_INDEX = 64L << 20;

    private final Path index;
    private final Map<String, Object> metadata;
    private final List<TensorEntry> tensors;
    private final Map<Path, Safetensors> shards;

    private ShardedSafetensors(Path index, Map<String, Object> metadata, List<TensorEntry> tensors, Map<Path, Safetensors> shards) {
        this.index = index;
        this.metadata = metadata;
        this.tensors = tensors;
        this.shards = shards;
    }

    public static ShardedSafetensors open(Path index) {
        JsonObject root;
        try {
            long size = Files.size(index);
            if (size > MAX_INDEX) throw new FormatError(index, "index file of " + size + " bytes is too large");
            JsonElement e = JsonParser.parseString(Files.readString(index, StandardCharsets.UTF_8));
            if (!e.isJsonObject()) throw new FormatError(index, "index is not a JSON object");
            root = e.getAsJsonObject();
        } catch (java.io.IOException | JsonParseException e) {
            throw new FormatError(index, "index is not valid JSON: " + Safetensors.firstLine(e.getMessage()));
        }
        if (!root.has("weight_map") || !root.get("weight_map").isJsonObject()) {
            throw new FormatError(index, "index has no weight_map object");
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        if (root.has("metadata") && root.get("metadata").isJsonObject()) {
            root.getAsJsonObject("metadata").entrySet().forEach(x -> meta.put(x.getKey(),
                    x.getValue().isJsonPrimitive() ? x.getValue().getAsString() : x.getValue().toString()));
        }
        Path dir = index.toAbsolutePath().getParent();
        Map<Path, Safetensors> shards = new LinkedHashMap<>();
        Map<String, Path> where = new HashMap<>();
        try {
            for (var x : root.getAsJsonObject("weight_map").entrySet()) {
                if (!x.getValue().isJsonPrimitive()) throw new FormatError(index, "weight_map value for " + x.getKey() + " is not a file name");
                String file = x.getValue().getAsString();
                Path shard = dir.resolve(file).normalize();
                if (Path.of(file).isAbsolute() || !shard.startsWith(dir)) {
                    throw new FormatError(index, "shard \"" + file + "\" lies outside the index's directory");
                }
                if (!Files.exists(shard)) throw new FormatError(index, "shard " + file + " (for " + x.getKey() + ") is missing");
                if (!shards.containsKey(shard)) shards.put(shard, Safetensors.open(shard));
                where.put(x.getKey(), shard);
            }
            List<TensorEntry> all = new ArrayList<>();
            for (var s : shards.entrySet()) {
                for (TensorEntry t : s.getValue().tensors()) {
                    Path w = where.get(t.name());
                    if (w != null && w.equals(s.getKey())) all.add(t);
                }
            }
            TreeSet<String> missing = new TreeSet<>(where.keySet());
            all.forEach(t -> missing.remove(t.name()));
            if (!missing.isEmpty()) {
                throw new FormatError(index, "tensor " + missing.first() + " is not in its shard " + dir.relativize(where.get(missing.first())));
            }
            long total = all.stream().mapToLong(TensorEntry::length).sum();
            meta.put("shards", shards.size());
            if (meta.containsKey("total_size") && !meta.get("total_size").equals(Long.toString(total))) {
                meta.put("total_size_note", "index says " + meta.get("total_size") + ", tensors sum to " + total);
            }
            return new ShardedSafetensors(index, meta, List.copyOf(all), shards);
        } catch (RuntimeException e) {
            shards.values().forEach(Safetensors::close);
            throw e;
        }
    }

    public Map<Path, Safetensors> shards() { return shards; }

    @Override public Format format() { return Format.SAFETENSORS_INDEX; }

    @Override public Path path() { return index; }

    @Override public Map<String, Object> metadata() { return metadata; }

    @Override public List<TensorEntry> tensors() { return tensors; }

    @Override
    public ByteBuffer bytes(TensorEntry t, long from, int length) {
        return shards.get(t.file()).bytes(t, from, length);
    }

    @Override
    public void close() { shards.values().forEach(Safetensors::close); }
}
