package parallax.magics;

import java.util.Optional;
import parallax.engine.report.Output;

/** What a magic gets from whoever runs it: an output, and in a kernel a cell evaluator. */
public record MagicContext(Output output, CellEvaluator evaluator) {

    public Optional<CellEvaluator> cellEvaluator() {
        return Optional.ofNullable(evaluator);
    }
}
