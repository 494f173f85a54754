package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import parallax.engine.UserError;

/** Opens a model file of any supported format, recognised by content, not by name. */
public final class ModelFiles {

    private ModelFiles() {}

    public static Format detect(Path path) {
        if (!Files.exists(path)) throw new UserError(path + ": no such file");
        if (Files.isDirectory(path)) throw new UserError(path + ": is a directory; name a model file or an index.json");
        try (MappedFile f = new MappedFile(path)) {
            if (f.size() == 0) throw new FormatError(path, "empty file");
            ByteBuffer head = f.map(0, Math.min(f.size(), 16));
            if (head.remaining() >= 4 && head.getInt(0) == Gguf.MAGIC) return Format.GGUF;
            if (head.remaining() >= 4 && head.getInt(0) == 0x04034b50) return Format.PYTORCH;
            if ((head.get(0) & 0xff) == 0x80 && head.remaining() >= 2 && (head.get(1) & 0xff) <= 5) return Format.PYTORCH;
            int first = firstNonSpace(head);
            if (Safetensors.sniff(head, f.size())) return Format.SAFETENSORS;
            if (first == '{') return Format.SAFETENSORS_INDEX;
            if (Onnx.sniff(head)) return Format.ONNX;
            // Content says nothing we know: let the name pick the reader, whose error then
            // says precisely what is wrong (a bad GGUF magic, a header length past the end...).
            String name = path.getFileName().toString().toLowerCase();
            if (name.endsWith(".safetensors")) return Format.SAFETENSORS;
            if (name.endsWith(".gguf")) return Format.GGUF;
            if (name.endsWith(".onnx")) return Format.ONNX;
            if (name.endsWith(".bin") || name.endsWith(".pt") || name.endsWith(".pth")) return Format.PYTORCH;
            throw new FormatError(path, String.format("unrecognised format (first bytes %s)", hex(head)));
        }
    }

    private static int firstNonSpace(ByteBuffer b) {
        for (int i = 0; i < b.remaining(); i++) {
            int c = b.get(i) & 0xff;
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return c;
        }
        return -1;
    }

    static String hex(ByteBuffer b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.remaining()); i++) sb.append(String.format("%02x", b.get(i) & 0xff));
        return sb.toString();
    }

    public static ModelFile open(Path path) {
        switch (detect(path)) {
            case GGUF: return Gguf.open(path);
            case PYTORCH: return TorchCheckpoint.open(path);
            case SAFETENSORS_INDEX: return ShardedSafetensors.open(path);
            case ONNX: return Onnx.open(path);
            default: return Safetensors.open(path);
        }
    }
}
