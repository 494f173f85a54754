package parallax.kernel;

import org.junit.jupiter.api.Test;

/** jupyter_kernel_test's conformance suite against this kernel, every applicable test enabled. */
class KernelProtocolIT {

    @Test
    void passesJupyterKernelTest() throws Exception {
        JupyterHarness.assertPythonPasses("protocol", 300, "kernel/src/test/python/test_protocol.py");
    }
}
