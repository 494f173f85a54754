"""Kernel benchmark: Parallax vs Jupyter's reference kernel (ipykernel), same run.

  start   kernel process start to first kernel_info reply (ready/idle), median of --starts
  rtt     execute "1+1" to its reply and idle status, median over --rtt executions
  chart   an 800x600 line chart built, rendered to PNG and delivered, median of --charts

usage: bench_kernel.py [--json] [--starts 5] [--rtt 200] [--charts 20] [--kernels parallax,python3]
"""
import argparse
import os
import json
import statistics
import time

from jupyter_client.manager import start_new_kernel

CHART = {
    "parallax": ('var c = new org.knowm.xchart.XYChartBuilder().width(800).height(600).title("bench").build();\n'
                 'c.addSeries("y", new double[]{1,2,3,4,5,6,7,8}, new double[]{3,1,4,1,5,9,2,6});\nc'),
    "python3": ("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                "from IPython.display import display\n"
                "fig = plt.figure(figsize=(8, 6), dpi=100); plt.plot([1,2,3,4,5,6,7,8],[3,1,4,1,5,9,2,6]); "
                "plt.title('bench'); display(fig); plt.close(fig)"),
}
WARMUP = {"parallax": "1+1", "python3": "1+1"}


def execute(kc, code, want=None, timeout=60):
    """Runs code; returns seconds until the reply and idle (and the wanted MIME type, if any) arrived."""
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    got_idle = got_reply = False
    got_mime = want is None
    while not (got_idle and got_mime):
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] in ("execute_result", "display_data") and want in m["content"]["data"]:
            got_mime = True
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            got_idle = True
        if m["msg_type"] == "error":
            raise RuntimeError("%s: %s" % (m["content"]["ename"], m["content"]["evalue"]))
    while not got_reply:
        r = kc.get_shell_msg(timeout=timeout)
        got_reply = r["parent_header"].get("msg_id") == msg_id
    return time.perf_counter() - t0


def bench(name, starts, rtts, charts):
    start_times = []
    for _ in range(starts):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
        start_times.append(time.perf_counter() - t0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
    try:
        for _ in range(20):
            execute(kc, WARMUP[name])
        rtt = [execute(kc, "1+1") for _ in range(rtts)]
        for _ in range(3):
            execute(kc, CHART[name], want="image/png")
        chart = [execute(kc, CHART[name], want="image/png") for _ in range(charts)]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)
    return {"kernel": name, "start_to_idle_ms_median": ms(start_times), "start_samples": len(start_times),
            "rtt_1plus1_ms_median": ms(rtt), "rtt_1plus1_ms_p90": round(sorted(rtt)[int(0.9 * len(rtt))] * 1000, 2),
            "rtt_samples": len(rtt), "chart_800x600_ms_median": ms(chart), "chart_samples": len(chart)}


def main():
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--rtt", type=int, default=200)
    ap.add_argument("--charts", type=int, default=20)
    ap.add_argument("--kernels", default="parallax,python3")
    a = ap.parse_args()
    results = [bench(k, a.starts, a.rtt, a.charts) for k in a.kernels.split(",")]
    out = {"benchmark": "kernel", "results": results,
           "targets": {"start_to_idle_ms": 2500, "rtt_1plus1_ms": 15, "chart_800x600_ms": 150}}
    if len(results) == 2:
        p, i = results
        out["ratios_parallax_over_ipykernel"] = {
            k: round(p[k] / i[k], 2) for k in ("start_to_idle_ms_median", "rtt_1plus1_ms_median", "chart_800x600_ms_median")}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for r in results:
            print("%-9s start %7.1f ms   1+1 %6.2f ms (p90 %6.2f)   chart %7.1f ms" % (
                r["kernel"], r["start_to_idle_ms_median"], r["rtt_1plus1_ms_median"], r["rtt_1plus1_ms_p90"],
                r["chart_800x600_ms_median"]))


if __name__ == "__main__":
    main()
