package parallax.magics;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import parallax.engine.report.Output;

/**
 * What a magic gets from whoever runs it: an output, in a kernel a cell evaluator, and the
 * magics the host adds to the registry's (the kernel's {@code %maven} and friends, which
 * change its JShell's class path and so cannot live in this module).
 */
public record MagicContext(Output output, CellEvaluator evaluator, List<Magics.Entry> hostMagics) {

    public MagicContext {
        hostMagics = List.copyOf(hostMagics);
    }

    public MagicContext(Output output, CellEvaluator evaluator) {
        this(output, evaluator, List.of());
    }

    public Optional<CellEvaluator> cellEvaluator() {
        return Optional.ofNullable(evaluator);
    }

    /** The registry's magics followed by the host's. */
    public List<Magics.Entry> magics() {
        List<Magics.Entry> all = new ArrayList<>(Magics.all());
        all.addAll(hostMagics);
        return all;
    }

    /** The magic called {@code name}, from the registry or the host. */
    public Optional<Magics.Entry> find(String name) {
        return magics().stream().filter(e -> e.name().equals(name)).findFirst();
    }
}
