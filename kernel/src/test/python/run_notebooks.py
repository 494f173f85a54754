"""Executes every lesson notebook through the Parallax kernel with nbclient (a real
Jupyter client), saves the executed notebook and its HTML, and checks the outputs:
no errors, every PNG decodable, and lesson-specific expectations.

usage: run_notebooks.py NOTEBOOK_DIR OUT_DIR [NAME_FILTER]
"""
import base64
import collections
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(b64):
    raw = base64.b64decode(b64)
    if raw[:8] != PNG_MAGIC or raw[12:16] != b"IHDR":
        raise AssertionError("not a PNG image")
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


class CountingClient(NotebookClient):
    """Counts the IOPub message types each cell produced (update_display_data included)."""

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.counts = collections.defaultdict(collections.Counter)

    def process_message(self, msg, cell, cell_index):
        self.counts[cell_index][msg["msg_type"]] += 1
        return super().process_message(msg, cell, cell_index)


def check_generic(name, nb, problems):
    pngs = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append("%s cell %d: %s: %s" % (name, i, out.ename, out.evalue))
            data = out.get("data", {})
            if "image/png" in data:
                w, h = png_size(data["image/png"])
                if w < 50 or h < 50:
                    problems.append("%s cell %d: PNG only %dx%d" % (name, i, w, h))
                pngs += 1
            for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", data.get("text/html", "")):
                png_size(b64)
                pngs += 1
    return pngs


def check_welcome(nb, client, problems):
    html_tables = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if "<table" in o.get("data", {}).get("text/html", ""))
    if html_tables == 0:
        problems.append("00-welcome: no HTML table in any output")
    progress_ok = False
    for i, cell in enumerate(nb.cells):
        if client.counts[i]["update_display_data"] >= 2:
            texts = [o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])]
            # the display shown first said 0/N; only in-place updates can make it say N/N
            if any(re.search(r"\b(\d+)/\1\b", t) for t in texts):
                progress_ok = True
    if not progress_ok:
        problems.append("00-welcome: no progress display was updated in place to completion")
    magic_listing = any("%lsmagic" in o.get("data", {}).get("text/plain", "")
                        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    if not magic_listing:
        problems.append("00-welcome: %lsmagic output missing")
    timed = any("Wall time:" in o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    if not timed:
        problems.append("00-welcome: %%time output missing")


def main():
    src = Path(sys.argv[1])
    out = Path(sys.argv[2])
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    notebooks = sorted(p for p in src.glob("*.ipynb") if only in p.name)
    if not notebooks:
        print("no notebooks found in", src)
        return 1
    for path in notebooks:
        name = path.stem
        nb = nbformat.read(path, as_version=4)
        client = CountingClient(nb, kernel_name="parallax", timeout=900, startup_timeout=120,
                                allow_errors=True, resources={"metadata": {"path": str(src)}})
        t0 = time.time()
        try:
            client.execute()
        except Exception as e:  # a dead kernel or a timeout
            problems.append("%s: execution failed: %s" % (name, e))
        elapsed = time.time() - t0
        nbformat.write(nb, out / (name + ".ipynb"))
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out / (name + ".html")).write_text(html, encoding="utf-8")
        pngs = check_generic(name, nb, problems)
        if name.startswith("00-"):
            check_welcome(nb, client, problems)
            if pngs == 0:
                problems.append("00-welcome: no PNG chart")
        print("%-40s %6.1f s  %d cells  %d images" % (name, elapsed, len(nb.cells), pngs), flush=True)
    for p in problems:
        print("PROBLEM:", p)
    print("%d notebooks, %d problems" % (len(notebooks), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
