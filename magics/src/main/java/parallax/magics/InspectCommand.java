package parallax.magics;

import java.nio.file.Path;
import parallax.engine.formats.Inspector;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(name = "inspect", description = {
    "Show what a model file holds: format (detected from content), metadata, tensor table, totals, parameters by layer kind, bytes by dtype.",
    "Reads safetensors (and shards / model.safetensors.index.json), GGUF, ONNX and PyTorch checkpoints without loading the weights.",
    "Example: %%inspect model.safetensors"})
public final class InspectCommand extends MagicCommand {

    @Parameters(index = "0", paramLabel = "FILE", description = "The model file.")
    Path file;

    @picocli.CommandLine.Option(names = "--stats", description = "Decode every float tensor (ggml blocks of every type dequantized) and show min, max, mean, std and zeros per tensor.")
    boolean stats;

    @Override
    protected Report execute() {
        return stats ? Inspector.stats(file) : Inspector.report(Inspector.inspect(file));
    }
}
