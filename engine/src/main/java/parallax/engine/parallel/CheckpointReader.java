package parallax.engine.parallel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import parallax.engine.UserError;
import parallax.engine.formats.Safetensors;
import parallax.engine.formats.TensorEntry;
import parallax.engine.model.Gpt;

/**
 * Reads a distributed checkpoint for one rank of any layout: for each flat range of a
 * unit the rank's store asks for, it turns the range into boxes of the full tensors (the
 * rank's TP shard shifted into place, as in {@link Chunk}) and fills each from the saved
 * boxes it meets, reading only those pieces (the files are memory-mapped). Each piece is
 * checked against the CRC32C in its file's header the first time it is read.
 */
final class CheckpointReader implements StoreState.Source, AutoCloseable {

    private final Path dir;
    private final DistributedCheckpoint.Metadata md;
    private final int tpRank;
    private final Map<String, Safetensors> files = new HashMap<>();
    private final Map<String, FloatBuffer> checked = new HashMap<>();

    CheckpointReader(Path dir, DistributedCheckpoint.Metadata md, int tpRank) {
        this.dir = dir;
        this.md = md;
        this.tpRank = tpRank;
    }

    DistributedCheckpoint.Metadata metadata() { return md; }

    @Override
    public float[] read(String kind, List<Gpt.ParamSpec> specs, long[] offsets, long from, long to) {
        float[] out = new float[(int) Math.max(0, to - from)];
        for (int i = 0; i < specs.size(); i++) {
            Gpt.ParamSpec p = specs.get(i);
            long a = Math.max(from, offsets[i]), b = Math.min(to, offsets[i] + p.numel());
            if (a >= b) continue;
            int at = (int) (a - from);
            for (Chunk local : Chunk.ofFlatRange(p.shape(), a - offsets[i], b - offsets[i])) {
                Chunk global = p.shardDim() < 0 ? local : local.shifted(p.shardDim(), tpRank * p.shape()[p.shardDim()]);
                fill(kind, p, global, out, at);
                at += (int) local.numel();
            }
        }
        return out;
    }

    /** Fills box {@code want} of tensor {@code kind/p} into {@code out} from {@code at}, from every saved box it meets. */
    private void fill(String kind, Gpt.ParamSpec p, Chunk want, float[] out, int at) {
        DistributedCheckpoint.SavedTensor t = md.tensors().get(kind + "/" + p.name());
        if (t == null)
            throw new UserError("checkpoint " + dir + " has no " + kind + " for " + p.name() + " (saved with optimizer "
                    + md.run().optimizer() + ")");
        if (!java.util.Arrays.equals(t.shape(), p.fullShape()))
            throw new UserError("checkpoint " + dir + ": " + p.name() + " is saved with shape " + java.util.Arrays.toString(t.shape())
                    + "; the model has " + java.util.Arrays.toString(p.fullShape()));
        long covered = 0;
        for (DistributedCheckpoint.SavedChunk c : t.chunks()) {
            Chunk box = c.box();
            Chunk common = box.intersect(want);
            if (common == null) continue;
            Chunk.copy(common, box, piece(c), want, out, at);
            covered += common.numel();
        }
        // Saved boxes never overlap, so they cover the wanted box exactly when their common parts add up to it.
        if (covered != want.numel())
            throw new UserError("checkpoint " + dir + ": the saved pieces of " + kind + "/" + p.name() + " cover " + covered + " of the "
                    + want.numel() + " elements of " + want + "; the metadata is damaged");
    }

    /** A saved piece's values, its CRC32C checked once. */
    private FloatBuffer piece(DistributedCheckpoint.SavedChunk c) {
        FloatBuffer f = checked.get(c.key());
        if (f != null) return f;
        Safetensors s = files.computeIfAbsent(c.file(), name -> Safetensors.open(dir.resolve(name)));
        TensorEntry e = s.tensors().stream().filter(x -> x.name().equals(c.key())).findFirst()
                .orElseThrow(() -> new UserError("checkpoint " + dir + ": shard " + c.file() + " lacks piece " + c.key()));
        ByteBuffer bytes = s.bytes(e, 0, (int) e.length());
        Object want = s.metadata().get(DistributedCheckpoint.CRC_PREFIX + c.key());
        CRC32C crc = new CRC32C();
        crc.update(bytes.duplicate());
        String got = String.format("%08x", crc.getValue());
        if (!got.equals(want))
            throw new UserError("checkpoint " + dir + ": shard " + c.file() + " is corrupted: piece " + c.key() + " has CRC32C " + got
                    + ", its header records " + want + "; resume from an older checkpoint");
        f = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        checked.put(c.key(), f);
        return f;
    }

    @Override
    public void close() {
        for (Safetensors s : files.values()) s.close();
        files.clear();
        checked.clear();
    }
}
