"""Behaviour of the Parallax kernel under a real Jupyter client: errors, interrupts,
huge output, magics, a client that dies. Run by KernelBehaviourIT."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

import jupyter_client
from jupyter_client.manager import start_new_kernel

TIMEOUT = 60


def run(kc, code, timeout=TIMEOUT):
    """Executes code; returns (reply content, list of iopub messages for it)."""
    msg_id = kc.execute(code)
    msgs = []
    deadline = time.time() + timeout
    while True:
        m = kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        msgs.append(m)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], msgs


def text_of(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def errors(msgs):
    return [m["content"] for m in msgs if m["msg_type"] == "error"]


class KernelBehaviour(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="parallax", startup_timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=True)

    def test_compile_error_names_line_and_column(self):
        reply, msgs = run(self.kc, "int a = 1;\nint b = \"two\";")
        self.assertEqual(reply["status"], "error")
        err = errors(msgs)[0]
        self.assertEqual(err["ename"], "CompilationError")
        self.assertIn("line 2, column 9", err["evalue"])
        self.assertTrue(any('int b = "two";' in line for line in err["traceback"]), err["traceback"])
        # the kernel is still there and the first statement did not run half-way
        reply, msgs = run(self.kc, "1 + 1")
        self.assertEqual(reply["status"], "ok")

    def test_runtime_exception_is_trimmed(self):
        reply, msgs = run(self.kc, "int[] xs = new int[2];\nint f(int i) { return xs[i]; }\nf(5)")
        self.assertEqual(reply["status"], "error")
        err = errors(msgs)[0]
        self.assertEqual(err["ename"], "ArrayIndexOutOfBoundsException")
        self.assertIn("Index 5 out of bounds", err["evalue"])
        self.assertFalse(any("jdk.jshell" in line for line in err["traceback"]), err["traceback"])
        self.assertLess(len(err["traceback"]), 20)

    def test_state_persists_between_cells(self):
        run(self.kc, "var names = new ArrayList<String>(); names.add(\"ada\");")
        reply, msgs = run(self.kc, "names.add(\"grace\"); names.size()")
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "2")

    def test_stdout_streams_while_the_cell_runs(self):
        code = 'for (int i = 0; i < 3; i++) { System.out.println("tick " + i); Thread.sleep(400); }'
        msg_id = self.kc.execute(code)
        seen_at = []
        start = time.time()
        while True:
            m = self.kc.get_iopub_msg(timeout=TIMEOUT)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                seen_at.append(time.time() - start)
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        self.kc.get_shell_msg(timeout=TIMEOUT)
        self.assertGreaterEqual(len(seen_at), 2, "output arrived in one piece at the end")
        self.assertLess(seen_at[0], 0.9, "the first line should arrive before the cell ends")

    def test_small_prints_are_batched(self):
        reply, msgs = run(self.kc, 'for (int i = 0; i < 2000; i++) System.out.print(i % 10);')
        streams = [m for m in msgs if m["msg_type"] == "stream"]
        self.assertEqual(len(text_of(msgs)), 2000)
        self.assertLess(len(streams), 20, "%d stream messages for one line of output" % len(streams))

    def test_interrupt_stops_an_infinite_loop(self):
        msg_id = self.kc.execute("long n = 0; while (true) { n++; }")
        time.sleep(1.0)
        t0 = time.time()
        self.km.interrupt_kernel()
        while True:
            reply = self.kc.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.time() - t0
        self.assertEqual(reply["content"]["status"], "error")
        self.assertLess(elapsed, 2.0, "interrupt took %.2f s" % elapsed)
        reply, msgs = run(self.kc, "21 * 2")
        self.assertEqual(reply["status"], "ok")
        self.assertEqual([m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"]["text/plain"], "42")

    def test_interrupt_stops_a_sleeping_cell(self):
        msg_id = self.kc.execute("Thread.sleep(60_000);")
        time.sleep(1.0)
        t0 = time.time()
        self.km.interrupt_kernel()
        while True:
            reply = self.kc.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(reply["content"]["status"], "error")

    def test_ten_megabytes_of_output_are_truncated(self):
        code = 'String line = "x".repeat(1023); for (int i = 0; i < 10 * 1024; i++) System.out.println(line);'
        reply, msgs = run(self.kc, code, timeout=120)
        self.assertEqual(reply["status"], "ok")
        out = text_of(msgs, "stdout")
        self.assertLessEqual(len(out), 2 * 1024 * 1024)
        self.assertGreater(len(out), 512 * 1024)
        self.assertIn("output truncated", text_of(msgs, "stderr"))
        reply, msgs = run(self.kc, "1 + 1")
        self.assertEqual(reply["status"], "ok")

    def test_magic_errors_are_one_line_with_usage(self):
        reply, msgs = run(self.kc, "%lsmagic --no-such-flag")
        self.assertEqual(reply["status"], "error")
        err = errors(msgs)[0]
        self.assertEqual(err["ename"], "MagicError")
        self.assertIn("--no-such-flag", err["evalue"])
        self.assertTrue(any(l.startswith("Usage: %lsmagic") for l in err["traceback"]), err["traceback"])
        self.assertFalse(any("at parallax." in l for l in err["traceback"]))
        reply, msgs = run(self.kc, "%nosuchmagic 1 2")
        self.assertIn("Unknown magic %nosuchmagic", errors(msgs)[0]["evalue"])
        reply, msgs = run(self.kc, "%")
        self.assertIn("malformed magic", errors(msgs)[0]["evalue"])
        reply, msgs = run(self.kc, '%lsmagic "unterminated')
        self.assertIn("unterminated", errors(msgs)[0]["evalue"])

    def test_bad_values_in_magics_are_one_line_and_the_kernel_lives(self):
        # The magics module sweeps every flag (BadInputPropertyTest); this checks the same
        # promise end to end, through the kernel's error reply and output streams.
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            ds = os.path.join(tmp, "ds.json")
            with open(ds, "w") as f:
                f.write('{"zero_optimization": 2}')
            cases = {
                "%plan llama-2-7b --gpus 8 --tp 0": "--tp must be a positive number, got 0",
                "%plan llama-2-7b --gpus 8 --compute-eff NaN": "compute efficiency must be in (0, 1], got NaN",
                "%parallel --config " + ds: 'zero_optimization must be an object such as {"stage": 2}, not 2',
                "%precision cast --from random --count 0": "--count must be at least 1, got 0",
                "%inspect " + os.path.join(tmp, "absent.safetensors"): "no such file",
                "%convert " + tmp + " " + os.path.join(tmp, "out.gguf"): tmp,
            }
            for code, expected in cases.items():
                reply, msgs = run(self.kc, code)
                self.assertEqual(reply["status"], "error", code)
                errs = errors(msgs)
                self.assertEqual(len(errs), 1, code)
                self.assertEqual(errs[0]["ename"], "MagicError", code)
                self.assertNotIn("\n", errs[0]["evalue"], code)
                self.assertIn(expected, errs[0]["evalue"], code)
                shown = "\n".join(errs[0]["traceback"]) + text_of(msgs, "stdout") + text_of(msgs, "stderr")
                self.assertNotIn("at parallax.", shown, code)
                self.assertNotIn("Exception", shown, code)
        reply, msgs = run(self.kc, "1 + 1")
        self.assertEqual(reply["status"], "ok")
        self.assertEqual([m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"]["text/plain"], "2")

    def test_magic_help_prints_usage(self):
        reply, msgs = run(self.kc, "%lsmagic --help")
        self.assertEqual(reply["status"], "ok")
        self.assertIn("Usage: %lsmagic", text_of(msgs))

    def test_line_magics_mix_with_java(self):
        reply, msgs = run(self.kc, 'System.out.println("before");\n%lsmagic\nSystem.out.println("after");\n7')
        self.assertEqual(reply["status"], "ok")
        kinds = [m["msg_type"] for m in msgs if m["msg_type"] in ("stream", "display_data", "execute_result")]
        self.assertEqual(kinds[0], "stream")
        self.assertIn("display_data", kinds)
        self.assertEqual(kinds[-1], "execute_result")

    def test_time_magic_reports_wall_and_cpu(self):
        reply, msgs = run(self.kc, "%%time\nThread.sleep(300);\n\"done\"")
        self.assertEqual(reply["status"], "ok")
        out = text_of(msgs)
        self.assertIn("CPU times:", out)
        wall = [l for l in out.splitlines() if l.startswith("Wall time:")][0]
        value, unit = wall.split(":")[1].split()
        seconds = float(value) * {"ms": 1e-3, "s": 1.0, "µs": 1e-6, "ns": 1e-9}[unit]
        self.assertGreaterEqual(seconds, 0.3)
        self.assertLess(seconds, 5)

    def test_chart_renders_png_and_svg(self):
        code = textwrap.dedent("""
            var chart = new org.knowm.xchart.XYChartBuilder().width(400).height(300).title("squares").build();
            chart.addSeries("y", new double[]{1, 2, 3}, new double[]{1, 4, 9});
            chart
        """)
        reply, msgs = run(self.kc, code)
        data = [m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"]
        import base64
        png = base64.b64decode(data["image/png"])
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width = int.from_bytes(png[16:20], "big")
        height = int.from_bytes(png[20:24], "big")
        self.assertEqual((width, height), (400, 300))
        self.assertIn("<svg", data["image/svg+xml"])

    def test_missing_jdk_module_in_a_cell_is_an_error_not_a_crash(self):
        reply, msgs = run(self.kc, "import no.such.pkg.Thing;")
        self.assertEqual(reply["status"], "error")
        reply, msgs = run(self.kc, "1")
        self.assertEqual(reply["status"], "ok")


class Restart(unittest.TestCase):
    def test_restart_gives_a_fresh_kernel(self):
        km, kc = start_new_kernel(kernel_name="parallax", startup_timeout=60)
        try:
            run(kc, "int kept = 5;")
            old_pid = km.provisioner.process.pid
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=60)
            self.assertNotEqual(old_pid, km.provisioner.process.pid)
            reply, msgs = run(kc, "kept")
            self.assertEqual(reply["status"], "error", "state survived a restart")
            reply, msgs = run(kc, "1 + 1")
            self.assertEqual(reply["status"], "ok")
            with self.assertRaises(ProcessLookupError):
                for _ in range(50):
                    os.kill(old_pid, 0)
                    time.sleep(0.2)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


class DeadClient(unittest.TestCase):
    def test_kernel_exits_when_its_client_dies(self):
        # A client process that starts the kernel, prints its pid, then is killed -9.
        script = textwrap.dedent("""
            import sys, time
            from jupyter_client.manager import start_new_kernel
            km, kc = start_new_kernel(kernel_name="parallax", startup_timeout=60)
            print(km.provisioner.process.pid, flush=True)
            time.sleep(600)
        """)
        client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                  env=os.environ.copy())
        kernel_pid = int(client.stdout.readline().strip())
        os.kill(kernel_pid, 0)  # alive
        client.kill()
        client.wait()
        t0 = time.time()
        while time.time() - t0 < 10:
            try:
                os.kill(kernel_pid, 0)
            except ProcessLookupError:
                break
            # reap if it became our zombie (it is not our child, so this is only a guard)
            time.sleep(0.2)
        else:
            os.kill(kernel_pid, signal.SIGKILL)
            self.fail("the kernel (pid %d) outlived its dead client by 10 s" % kernel_pid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
