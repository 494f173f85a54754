package parallax.kernel;

import org.junit.jupiter.api.Test;

/**
 * Executes every lesson in notebooks/ with nbclient through this kernel, writes the
 * executed copies and HTML to target/lessons, and checks their outputs.
 */
class NotebooksIT {

    @Test
    void everyLessonRunsClean() throws Exception {
        JupyterHarness.assertPythonPasses("notebooks", 2400, "kernel/src/test/python/run_notebooks.py",
                "notebooks", "kernel/target/lessons");
    }
}
