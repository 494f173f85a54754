package parallax.engine.formats;

/** The model file formats Parallax reads; detected from a file's first bytes, not its name. */
public enum Format {
    SAFETENSORS("safetensors"),
    SAFETENSORS_INDEX("safetensors index (sharded)"),
    GGUF("GGUF"),
    ONNX("ONNX"),
    PYTORCH("PyTorch checkpoint (zip + pickle)");

    private final String label;

    Format(String label) { this.label = label; }

    public String label() { return label; }
}
