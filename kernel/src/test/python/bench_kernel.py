"""Kernel benchmark: Parallax against JJava (the maintained Java kernel) and ipykernel, same run.

  start        kernel process start to its first kernel_info reply (ready, idle), median of --starts
  first cell   "1+1" sent the moment the kernel is ready, to its reply and idle (median of --starts,
               each in a fresh kernel); and the same after the kernel sat idle --idle seconds, as
               when a person opens a notebook before running its first cell
  rtt          "1+1" to its reply and idle, median over --rtt executions after 20 warm-up cells
  chart        an 800x600 line chart built, rendered to PNG and delivered, median of --charts
  %maven       a fresh kernel's first cell adds org.apache.commons:commons-lang3:3.17.0 (and
               commons-lang3 is then used): cached = already in ~/.m2; cold = an empty local
               repository, so it is downloaded from Maven Central (Java kernels only)

JJava is not on Maven Central: build it from its public source (github.com/dflib/jjava) with
Maven and pass --jjava DIR, where DIR is the source checkout (built here with `mvn -B -q package
-DskipTests` if it has not been) or an unpacked kernelspec (kernel.json beside jjava.jar).
Without --jjava, or when DIR holds neither, the benchmark says so in one line and runs the rest.

usage: bench_kernel.py [--json] [--starts 5] [--idle 2] [--rtt 200] [--charts 20] [--maven 3]
                       [--kernels parallax,jjava,python3] [--jjava DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

from jupyter_client.manager import start_new_kernel

POINTS = "new double[]{1,2,3,4,5,6,7,8}, new double[]{3,1,4,1,5,9,2,6}"
CHART = {
    "parallax": ('var c = new org.knowm.xchart.XYChartBuilder().width(800).height(600).title("bench").build();\n'
                 'c.addSeries("y", %s);\nc' % POINTS),
    # JJava renders a java.awt.image.RenderedImage as image/png; XChart comes in with %maven (set-up).
    "jjava": ('var c = new org.knowm.xchart.XYChartBuilder().width(800).height(600).title("bench").build();\n'
              'c.addSeries("y", %s);\norg.knowm.xchart.BitmapEncoder.getBufferedImage(c)' % POINTS),
    "python3": ("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                "from IPython.display import display\n"
                "fig = plt.figure(figsize=(8, 6), dpi=100); plt.plot([1,2,3,4,5,6,7,8],[3,1,4,1,5,9,2,6]); "
                "plt.title('bench'); display(fig); plt.close(fig)"),
}
SETUP = {"jjava": "%maven org.knowm.xchart:xchart:3.8.8"}
MAVEN = "%maven org.apache.commons:commons-lang3:3.17.0"
USE_MAVEN = 'org.apache.commons.lang3.StringUtils.reverse("abc")'
JAVA_KERNELS = ("parallax", "jjava")


def execute(kc, code, want=None, timeout=300):
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
        if got_reply and r["content"]["status"] != "ok":
            raise RuntimeError("%s failed: %s" % (code.splitlines()[0], r["content"].get("evalue")))
    return time.perf_counter() - t0


class Kernel:
    """Starts a kernel by name, with extra environment, and stops it on exit."""

    def __init__(self, name, env=None):
        self.name, self.env = name, env

    def __enter__(self):
        env = dict(os.environ, **(self.env or {}))
        t0 = time.perf_counter()
        self.km, self.kc = start_new_kernel(kernel_name=self.name, startup_timeout=180, env=env)
        self.start_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def cold_env(name, repo):
    """Environment that gives a Java kernel an empty local Maven repository at repo."""
    if name == "parallax":
        settings = os.path.join(repo, "settings.xml")
        with open(settings, "w") as f:
            f.write("<settings><localRepository>%s</localRepository></settings>" % os.path.join(repo, "m2"))
        return {"PARALLAX_MAVEN_SETTINGS": settings}
    # JJava's resolver (MIMA) takes maven.repo.local; its launcher passes JJAVA_JVM_OPTS to the JVM.
    return {"JJAVA_JVM_OPTS": "-Dmaven.repo.local=" + os.path.join(repo, "m2")}


def bench(name, a):
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)
    start, first_now, first_idle = [], [], []
    for i in range(a.starts):
        with Kernel(name) as k:
            start.append(k.start_seconds)
            first_now.append(execute(k.kc, "1+1"))
        with Kernel(name) as k:
            time.sleep(a.idle)
            first_idle.append(execute(k.kc, "1+1"))
    with Kernel(name) as k:
        if name in SETUP:
            execute(k.kc, SETUP[name])
        for _ in range(20):
            execute(k.kc, "1+1")
        rtt = [execute(k.kc, "1+1") for _ in range(a.rtt)]
        for _ in range(3):
            execute(k.kc, CHART[name], want="image/png")
        chart = [execute(k.kc, CHART[name], want="image/png") for _ in range(a.charts)]
    out = {"kernel": name, "start_to_idle_ms_median": ms(start), "start_samples": len(start),
           "first_cell_ms_median": ms(first_now), "first_cell_after_idle_ms_median": ms(first_idle),
           "idle_seconds": a.idle, "first_cell_samples": len(first_now),
           "rtt_1plus1_ms_median": ms(rtt), "rtt_1plus1_ms_p90": round(sorted(rtt)[int(0.9 * len(rtt))] * 1000, 2),
           "rtt_samples": len(rtt), "chart_800x600_ms_median": ms(chart), "chart_samples": len(chart)}
    if name in JAVA_KERNELS and a.maven > 0:
        cached = []
        for _ in range(a.maven):
            with Kernel(name) as k:
                cached.append(execute(k.kc, MAVEN))
                execute(k.kc, USE_MAVEN)
        out["maven_cached_ms_median"] = ms(cached)
        cold = []
        for _ in range(a.maven):
            repo = tempfile.mkdtemp(prefix="bench-m2-")
            try:
                with Kernel(name, cold_env(name, repo)) as k:
                    cold.append(execute(k.kc, MAVEN))
                    execute(k.kc, USE_MAVEN)
                jar = os.path.join(repo, "m2/org/apache/commons/commons-lang3/3.17.0/commons-lang3-3.17.0.jar")
                if not os.path.isfile(jar):
                    raise RuntimeError("the cold %maven did not download into the empty repository " + repo)
            except RuntimeError as e:
                print("%s: cold %%maven not measured: %s" % (name, str(e).splitlines()[0]), file=sys.stderr)
                cold = []
                break
            finally:
                shutil.rmtree(repo, ignore_errors=True)
        if cold:
            out["maven_cold_ms_median"] = ms(cold)
        out["maven_samples"] = a.maven
    return out


def jjava_kernelspec(path, workdir):
    """A kernels/ folder holding JJava's kernelspec as 'jjava', or None (with the reason) when absent."""
    if not path:
        return None, "no --jjava DIR given"
    path = os.path.abspath(path)
    spec = None
    if os.path.isfile(os.path.join(path, "kernel.json")):
        spec = path
    elif os.path.isfile(os.path.join(path, "pom.xml")):
        zips = [os.path.join(path, "jjava-distro", "target", f) for f in
                sorted(os.listdir(os.path.join(path, "jjava-distro", "target")))
                if f.endswith("-kernelspec.zip")] if os.path.isdir(os.path.join(path, "jjava-distro", "target")) else []
        if not zips:
            r = subprocess.run(["mvn", "-B", "-q", "package", "-DskipTests"], cwd=path)
            if r.returncode != 0:
                return None, "building JJava in %s failed (mvn package exit %d)" % (path, r.returncode)
            target = os.path.join(path, "jjava-distro", "target")
            zips = [os.path.join(target, f) for f in sorted(os.listdir(target)) if f.endswith("-kernelspec.zip")]
        if not zips:
            return None, "no kernelspec zip under %s/jjava-distro/target after the build" % path
        spec = os.path.join(workdir, "unpacked")
        with zipfile.ZipFile(zips[-1]) as z:
            z.extractall(spec)
    else:
        return None, "%s holds neither a JJava checkout (pom.xml) nor a kernelspec (kernel.json)" % path
    kernels = os.path.join(workdir, "kernels")
    os.makedirs(kernels, exist_ok=True)
    dest = os.path.join(kernels, "jjava")
    if not os.path.exists(dest):
        shutil.copytree(spec, dest)
    return os.path.dirname(kernels), None


def main():
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--idle", type=float, default=2.0)
    ap.add_argument("--rtt", type=int, default=200)
    ap.add_argument("--charts", type=int, default=20)
    ap.add_argument("--maven", type=int, default=3)
    ap.add_argument("--kernels", default="parallax,jjava,python3")
    ap.add_argument("--jjava", default=None, help="JJava source checkout or unpacked kernelspec")
    a = ap.parse_args()
    kernels = a.kernels.split(",")
    work = tempfile.mkdtemp(prefix="bench-kernel-")
    notes = []
    try:
        if "jjava" in kernels:
            jupyter_dir, why = jjava_kernelspec(a.jjava, work)
            if jupyter_dir is None:
                print("JJava peer absent: %s; measuring %s only" % (why, ", ".join(k for k in kernels if k != "jjava")),
                      file=sys.stderr)
                notes.append("JJava peer absent: " + why)
                kernels.remove("jjava")
            else:
                os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (os.environ.get("JUPYTER_PATH"), jupyter_dir) if p)
        results = {k: bench(k, a) for k in kernels}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"benchmark": "kernel", "jdk": sys_java(), "results": list(results.values()), "notes": notes,
           "targets": {"start_to_idle_ms": 2500, "chart_800x600_ms": 150,
                       "first_cell": "<= JJava", "rtt_1plus1": "<= 0.5 x JJava", "maven_cached": "<= JJava"}}
    keys = ("start_to_idle_ms_median", "first_cell_ms_median", "first_cell_after_idle_ms_median",
            "rtt_1plus1_ms_median", "chart_800x600_ms_median", "maven_cached_ms_median", "maven_cold_ms_median")
    for peer in ("jjava", "python3"):
        if "parallax" in results and peer in results:
            p, q = results["parallax"], results[peer]
            out["ratios_parallax_over_" + peer] = {k: round(p[k] / q[k], 2) for k in keys if k in p and k in q}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for r in results.values():
            print("%-9s start %7.1f ms  first cell %7.1f ms (after %.0f s idle %6.1f)  1+1 %6.2f ms (p90 %6.2f)  "
                  "chart %7.1f ms  %%maven cached %s cold %s" % (
                      r["kernel"], r["start_to_idle_ms_median"], r["first_cell_ms_median"], r["idle_seconds"],
                      r["first_cell_after_idle_ms_median"], r["rtt_1plus1_ms_median"], r["rtt_1plus1_ms_p90"],
                      r["chart_800x600_ms_median"], r.get("maven_cached_ms_median", "-"), r.get("maven_cold_ms_median", "-")))


def sys_java():
    try:
        v = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
        return v
    except (OSError, IndexError):
        return "unknown"


if __name__ == "__main__":
    main()
