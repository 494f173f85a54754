"""Protocol conformance of the Parallax kernel, with jupyter_kernel_test (Debian's
python3-jupyter-kernel-test). Run by KernelProtocolIT with JUPYTER_PATH pointing at a
kernelspec for this build."""
import unittest

import jupyter_kernel_test


class ParallaxKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "parallax"
    language_name = "java"
    file_extension = ".jshell"

    code_hello_world = 'System.out.println("hello, world");'
    code_stderr = 'System.err.println("oops");'

    completion_samples = [
        {"text": "System.currentT", "matches": {"currentTimeMillis()"}},
        {"text": "%lsmag", "matches": {"%lsmagic"}},
        {"text": "%lsmagic --js", "matches": {"--json"}},
        {"text": '"abc".toUpper', "matches": {"toUpperCase("}},
        {"text": "%mav", "matches": {"%maven"}},
        {"text": "%maven --off", "matches": {"--offline"}},
    ]
    complete_code_samples = ["1 + 1", "int x = 1;", "%lsmagic", "class A {}", "%classpath"]
    incomplete_code_samples = ["for (int i = 0; i < 3; i++) {", "class B {", "int f() {"]
    invalid_code_samples = ["int x = ;", "x = )"]

    code_generate_error = 'throw new IllegalStateException("boom");'

    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "6*7", "result": "42"},
        {"code": '"a" + "b"', "result": "ab"},
        {"code": "java.util.List.of(1, 2)", "result": "[1, 2]"},
    ]
    code_display_data = [
        {"code": 'display(markdown("**bold**"));', "mime": "text/markdown"},
        {"code": 'display(html("<b>x</b>"));', "mime": "text/html"},
        {"code": 'display(new org.knowm.xchart.XYChartBuilder().width(200).height(150).title("t").build());',
         "mime": "image/png"},
    ]

    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6?7"

    code_inspect_sample = "Math.max"
    code_clear_output = 'System.out.println("before"); clearOutput();'


if __name__ == "__main__":
    unittest.main(verbosity=2)
