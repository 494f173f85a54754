package parallax.magics;

/**
 * Runs Java source as a notebook cell would. Provided by the kernel to cell magics that
 * run their body locally (such as {@code %%time}); absent on the CLI.
 */
@FunctionalInterface
public interface CellEvaluator {

    /** Evaluates {@code code} and returns the value of its last expression, or null. */
    Object eval(String code) throws Exception;
}
