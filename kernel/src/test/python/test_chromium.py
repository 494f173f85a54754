"""Opens an executed lesson in headless Chromium, served by a Jupyter Notebook server on
127.0.0.1, and checks that the page shows the chart image (an <img> with PNG data in an
output area). Leaves a screenshot in OUT_DIR for a person to look at.

usage: test_chromium.py NOTEBOOK OUT_DIR
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("FAIL: chromium is not installed (Debian package chromium; install/test.sh installs it)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="parallax-chromium-"))
    nb = nbformat.read(source, as_version=4)
    NotebookClient(nb, kernel_name="parallax", timeout=300, startup_timeout=120).execute()
    nbformat.write(nb, work / source.name)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "notebook", "--no-browser", "--ip=127.0.0.1", "--port=%d" % port,
         "--NotebookApp.token=", "--NotebookApp.password=", "--notebook-dir=%s" % work]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = "http://127.0.0.1:%d" % port
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            print("FAIL: the notebook server did not come up on", base)
            return 1
        url = "%s/notebooks/%s" % (base, source.name)
        profile = tempfile.mkdtemp(prefix="parallax-chrome-profile-")
        common = [chromium] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--virtual-time-budget=20000"]
        dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run(common + ["--window-size=1280,2400", "--screenshot=%s" % (out / "00-welcome-chromium.png"), url],
                       capture_output=True, timeout=120)
        (out / "00-welcome-chromium.html").write_text(dom, encoding="utf-8")
        images = re.findall(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]{100,})', dom)
        in_output = "output_png" in dom or "output_subarea" in dom
        if not images or not in_output:
            print("FAIL: no chart image in the rendered page (%d images, output area: %s); DOM saved in %s"
                  % (len(images), in_output, out))
            return 1
        print("OK: the page shows %d PNG image(s); screenshot %s" % (len(images), out / "00-welcome-chromium.png"))
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
