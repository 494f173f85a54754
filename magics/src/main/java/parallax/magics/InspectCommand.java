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

    @Override
    protected Report execute() {
        return Inspector.report(Inspector.inspect(file));
    }
}
