package parallax.magics;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The registry of magics by name. Each entry makes a fresh picocli command object per
 * invocation, so no option value leaks from one cell to the next.
 */
public final class Magics {

    /** Whether a magic is used as {@code %name}, {@code %%name}, or both. */
    public enum Kind { LINE, CELL, LINE_AND_CELL }

    public record Entry(String name, Kind kind, String summary, Supplier<? extends MagicCommand> factory) {
        public boolean line() { return kind != Kind.CELL; }
        public boolean cell() { return kind != Kind.LINE; }
    }

    private static final Map<String, Entry> ENTRIES = new LinkedHashMap<>();

    static {
        register("lsmagic", Kind.LINE, "List the available magics.", LsMagicCommand::new);
        register("time", Kind.CELL, "Wall and CPU time of a cell, like IPython's %%time.", TimeCommand::new);
        // Engine magics register below, one line each.
        register("cluster", Kind.LINE_AND_CELL, "Nodes file and worker ranks: show, start, stop, status, restart.", ClusterCommand::new);
        register("parallel", Kind.LINE_AND_CELL, "Run a cell on every rank (SPMD), benchmark collectives, train in parallel.", ParallelCommand::new);
        register("precision", Kind.LINE, "Number formats bit by bit: FP32/FP16/BF16/FP8 facts, casts, mixed-precision training.", PrecisionCommand::new);
        register("convert", Kind.LINE, "Convert weights between safetensors, GGUF and ONNX; quantize; benchmark.", ConvertCommand::new);
        register("inspect", Kind.LINE, "Show the metadata and tensors inside a model file.", InspectCommand::new);
        register("plan", Kind.LINE, "Capacity planning: memory, communication and time of training or serving a model.", PlanCommand::new);
        register("model", Kind.LINE, "Decode a model name: family, size, purpose, training, encoding, GGUF fields.", ModelCommand::new);
    }

    private Magics() {}

    private static void register(String name, Kind kind, String summary, Supplier<? extends MagicCommand> factory) {
        ENTRIES.put(name, new Entry(name, kind, summary, factory));
    }

    public static Optional<Entry> find(String name) {
        return Optional.ofNullable(ENTRIES.get(name));
    }

    public static List<Entry> all() {
        return Collections.unmodifiableList(new ArrayList<>(ENTRIES.values()));
    }
}
