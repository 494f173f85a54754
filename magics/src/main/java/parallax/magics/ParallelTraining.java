package parallax.magics;

import parallax.engine.UserError;
import parallax.engine.cluster.MeshShape;
import parallax.engine.report.Report;
import picocli.CommandLine.Option;

/**
 * The training side of {@code %parallel}: its flags and the hook {@link ParallelCommand}
 * calls when any of them is given. The training engine (branch "model") fills this in;
 * everything else about {@code %parallel} (--ranks/--dp/--tp/--pp, --bench, the
 * {@code %%parallel} cell mode) stays in ParallelCommand.
 */
final class ParallelTraining {

    private ParallelTraining() {}

    /** Training flags, mixed into ParallelCommand. Add new training flags here. */
    static final class Flags {
        @Option(names = "--steps", description = "Train for this many steps.")
        Integer steps;

        @Option(names = "--compare", description = "Compare strategies (comma-separated).")
        String compare;

        @Option(names = "--config", description = "Model/training configuration.")
        String config;

        @Option(names = "--zero", description = "ZeRO stage (0-3).")
        Integer zero;

        /** True when the user asked for training. */
        boolean requested() {
            return steps != null || compare != null || config != null || zero != null;
        }
    }

    /** Runs training with the given mesh on {@code ranks} ranks. */
    static Report run(ParallelCommand command, Flags flags, MeshShape shape, int ranks) {
        throw new UserError("training engine not available in this build (the %parallel training flags land with the model engine)");
    }
}
