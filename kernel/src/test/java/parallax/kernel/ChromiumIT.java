package parallax.kernel;

import org.junit.jupiter.api.Test;

/**
 * The welcome lesson, executed and served by a Jupyter Notebook server on 127.0.0.1, opened
 * in headless Chromium: the page must show the chart image. The screenshot is left in
 * kernel/target/chromium for a person to look at.
 */
class ChromiumIT {

    @Test
    void renderedNotebookShowsTheChart() throws Exception {
        JupyterHarness.assertPythonPasses("chromium", 600, "kernel/src/test/python/test_chromium.py",
                "notebooks/00-welcome.ipynb", "kernel/target/chromium");
    }
}
