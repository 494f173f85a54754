package parallax.kernel;

import org.junit.jupiter.api.Test;

/**
 * The kernel under a real client: compile and runtime errors, interrupts (an infinite
 * loop stopped within 2 s), 10 MB of output truncated, bad magics, %%time, charts, and
 * a client killed with -9 (the kernel exits within 10 s).
 */
class KernelBehaviourIT {

    @Test
    void behavesUnderARealClient() throws Exception {
        JupyterHarness.assertPythonPasses("behaviour", 600, "kernel/src/test/python/test_behaviour.py");
    }
}
