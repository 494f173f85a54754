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


def check_collectives(nb, problems):
    """Lesson 01: every number the lesson prints as evidence, held against what the lesson
    says about it. Tables are read from each output's HTML by their caption (the table's
    name), summary lines from its text/plain. Tolerances: exact for what is deterministic
    (sums, byte counts, formulas), the table's rounding for derived numbers, and for times
    only the claims the lesson makes, which hold with a wide margin on a loaded machine."""
    import html.parser
    import math
    import os

    name = "01-collectives"

    def problem(msg):
        problems.append("%s: %s" % (name, msg))

    class Tables(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tables, self.table, self.row, self.cell, self.caption = [], None, None, None, False

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.table = {"caption": "", "headers": [], "rows": []}
            elif self.table is None:
                return
            elif tag == "caption":
                self.caption = True
            elif tag == "tr":
                self.row = []
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if self.table is None:
                return
            if tag == "caption":
                self.caption = False
            elif tag in ("td", "th") and self.cell is not None:
                (self.table["headers"] if tag == "th" else self.row).append(self.cell.strip())
                self.cell = None
            elif tag == "tr" and self.row:
                self.table["rows"].append(dict(zip(self.table["headers"], self.row)))
                self.row = None
            elif tag == "table":
                self.tables.append(self.table)
                self.table = None

        def handle_data(self, data):
            if self.table is None:
                return
            if self.caption:
                self.table["caption"] += data
            elif self.cell is not None:
                self.cell += data

    def cell_with(marker):
        """(plain text, {caption: rows}) of the first code cell whose source contains marker."""
        for cell in nb.cells:
            if cell.cell_type == "code" and marker in cell.source:
                text, parser = [], Tables()
                for out in cell.get("outputs", []):
                    text.append(out.get("text", ""))
                    data = out.get("data", {})
                    text.append(data.get("text/plain", ""))
                    parser.feed(data.get("text/html", ""))
                return "\n".join(text), {t["caption"].strip(): t["rows"] for t in parser.tables}
        problem("no code cell contains %r" % marker)
        return "", {}

    def table(tables, caption, marker):
        rows = tables.get(caption)
        if not rows:
            problem("%s: no table %r in the output" % (marker, caption))
            return []
        return rows

    def rank_values(marker):
        _, tables = cell_with(marker)
        return {int(r["rank"]): r["value"].strip('"') for r in table(tables, "values", marker)}

    def expect_values(marker, expected):
        got = rank_values(marker)
        if got != expected:
            problem("%s: ranks returned %s, expected %s" % (marker, got, expected))

    def close(a, b, rel, abs_=0.0):
        return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))

    def upper_median(values):
        # as CollectiveBenchmark.medianRatio: the element at size/2 of the sorted list
        v = sorted(values)
        return v[len(v) // 2] if v else float("nan")

    def printed(text, pattern, marker):
        m = re.search(pattern, text)
        if not m:
            problem("%s: the output does not say %r" % (marker, pattern))
            return None
        return float(m.group(1))

    # ---- two ranks, on this machine: shared memory when /dev/shm is writable
    marker = "%cluster start --ranks 2"
    _, tables = cell_with(marker)
    want = "shm" if os.access("/dev/shm", os.W_OK) else "gloo"
    ranks = table(tables, "ranks", marker)
    if len(ranks) != 2 or any(r.get("transport") != want for r in ranks):
        problem("%s: expected 2 ranks with transport %s, got %s" % (marker, want, ranks))

    # ---- the SPMD cells: every value the lesson shows is worked out here from its inputs
    world = 2
    expect_values('"hello from "', {r: str(r) for r in range(world)})
    total = [sum(r + 1 for r in range(world)), sum(10 * (r + 1) for r in range(world))]   # [3, 30]
    expect_values("dist.allReduce(g)", {r: "[%.1f, %.1f]" % tuple(total) for r in range(world)})
    expect_values("g.div_(", {r: "[%.1f, %.1f]" % (total[0] / world, total[1] / world) for r in range(world)})
    gather = [float(r) for r in range(world) for _ in range(2)]
    summed = [world * x for x in (1, 2, 3, 4)]
    per = 4 // world
    expect_values("dist.allGather(", {
        r: "gather %s  scatter %s  bcast 42.0" % (gather, [float(x) for x in summed[r * per:(r + 1) * per]])
        for r in range(world)})
    for r, v in rank_values("tpGroup().members()").items():
        if not v.endswith("tp group [0, 1]") or "tp %d" % r not in v:
            problem("tp group cell: rank %d says %r" % (r, v))

    # ---- %parallel --bench allreduce --baseline: definitions, the claim about shared memory
    marker = "--bench allreduce"
    text, tables = cell_with(marker)
    rows = table(tables, "collectives", marker)
    sizes = [64 * 1024 << k for k in range(9)]   # 64KB..16MB
    by = {}
    for r in rows:
        by.setdefault(r["impl"], {})[int(r["bytes"])] = r
        t = float(r["time_us"]) * 1e-6
        alg = int(r["bytes"]) / t / 1e9
        if not close(float(r["algbw_GB/s"]), alg, 0.01, 0.0015):
            problem("%s: algbw %s is not bytes / time = %.4f (%s)" % (marker, r["algbw_GB/s"], alg, r))
        if not close(float(r["busbw_GB/s"]), float(r["algbw_GB/s"]), 1e-9):   # 2(n-1)/n = 1 for 2 ranks
            problem("%s: busbw is not algbw x 1 for 2 ranks (%s)" % (marker, r))
    for impl in ("runtime", "raw"):
        if sorted(by.get(impl, {})) != sizes:
            problem("%s: %s rows for sizes %s, expected 64 KiB..16 MiB" % (marker, impl, sorted(by.get(impl, {}))))
    if by.get("runtime") and by.get("raw"):
        ratio = printed(text, r"Runtime / raw ProcessGroup busbw, median 4-64 MiB: ([\d.]+)\.", marker)
        big = [b for b in sizes if b >= 4 << 20 and b in by["raw"] and b in by["runtime"]]
        table_ratio = upper_median(float(by["runtime"][b]["busbw_GB/s"]) / float(by["raw"][b]["busbw_GB/s"]) for b in big)
        if ratio is not None and not close(ratio, table_ratio, 0.02, 0.01):
            problem("%s: printed runtime/raw %.2f, the table gives %.3f" % (marker, ratio, table_ratio))
        if ratio is not None and not ratio > 1:
            problem("%s: the lesson says shared memory beats raw Gloo, but runtime/raw busbw is %.2f" % (marker, ratio))
        large = [float(by["runtime"][b]["busbw_GB/s"]) for b in sizes if b >= 1 << 20 and b in by["runtime"]]
        med = upper_median(large)
        if not 0.1 <= med <= 10:
            problem("%s: runtime busbw from 1 MiB up, median %.3f GB/s, is not 'a few hundred MB/s to a few GB/s'"
                    % (marker, med))
    if "No PyTorch rows:" not in text:
        torch_rows = by.get("torch.distributed", {})
        if sorted(torch_rows) != sizes:
            problem("%s: PyTorch rows for sizes %s, and no line saying why some are missing" % (marker, sorted(torch_rows)))
        else:
            ratio = printed(text, r"Runtime / PyTorch torch.distributed \(Gloo\) busbw, median over sizes: ([\d.]+)\.", marker)
            table_ratio = upper_median(float(by["runtime"][b]["busbw_GB/s"]) / float(torch_rows[b]["busbw_GB/s"]) for b in sizes)
            if ratio is not None and not close(ratio, table_ratio, 0.02, 0.01):
                problem("%s: printed runtime/PyTorch %.2f, the table gives %.3f" % (marker, ratio, table_ratio))

    # ---- %parallel --bench algorithms: the check, the bytes sent, the latency claim
    marker = "--bench algorithms"
    text, tables = cell_with(marker)
    worlds = [2, 3, 4]
    algorithms = ["built-in", "ring", "tree", "parameter server"]
    if "Tolerance per element: (n-1) u sum|x_i| with u = 2^-24" not in text:
        problem("%s: the report does not state the tolerance" % marker)
    if "checked equal" in text:
        problem("%s: the report still says 'checked equal'" % marker)
    check = table(tables, "allreduce check", marker)
    seen = sorted((r["algorithm"], int(r["ranks"])) for r in check)
    if seen != sorted((a, n) for a in algorithms for n in worlds):
        problem("%s: checked %s, expected every algorithm for 2, 3 and 4 ranks" % (marker, seen))
    for r in check:
        diff, tol, frac = float(r["max_abs_diff"]), float(r["tolerance_there"]), float(r["worst_fraction_of_tolerance"])
        if not (0 < diff <= tol * 1.01 and 0 < frac <= 1):
            # no rounding at all in 786433 sums would mean the check compared nothing
            problem("%s: %s, %s ranks: difference %g, tolerance there %g, worst fraction %g (need 0 < diff <= tol, 0 < fraction <= 1)"
                    % (marker, r["algorithm"], r["ranks"], diff, tol, frac))
    if check:
        largest = printed(text, r"Largest difference ([\d.eE+-]+) \(", marker)
        worst = printed(text, r"worst element at ([\d.eE+-]+) of its tolerance", marker)
        if largest is not None and not close(largest, max(float(r["max_abs_diff"]) for r in check), 0.01):
            problem("%s: printed largest difference %g is not the table's largest" % (marker, largest))
        if worst is not None and not (worst <= 1 and close(worst, max(float(r["worst_fraction_of_tolerance"]) for r in check), 1e-5)):
            problem("%s: printed worst fraction %g is above 1 or not the table's worst" % (marker, worst))

    traffic = table(tables, "allreduce traffic", marker)

    def children(r, n):
        return len([c for c in (2 * r + 1, 2 * r + 2) if c < n])

    formula = {
        "ring": (lambda n: 2 * (n - 1) / n, lambda n: 2 * (n - 1)),
        "tree": (lambda n: max(children(r, n) + (r > 0) for r in range(n)), lambda n: 2 * int(math.log2(n))),
        "parameter server": (lambda n: n - 1, lambda n: 2 * (n - 1)),
    }
    sent = {}
    for r in traffic:
        a, n = r["algorithm"], int(r["ranks"])
        if a not in formula:
            problem("%s: unexpected algorithm %r in the traffic table" % (marker, a))
            continue
        busiest, steps = formula[a][0](n), formula[a][1](n)
        got = float(r["busiest_rank_sent_xS"])
        sent[(a, n)] = got
        if not (close(got, busiest, 0, 1e-3) and close(float(r["formula_busiest_xS"]), busiest, 0, 1e-3)):
            problem("%s: %s, %d ranks: busiest rank sent %s S (formula %s), the lesson's formula gives %.4f"
                    % (marker, a, n, r["busiest_rank_sent_xS"], r["formula_busiest_xS"], busiest))
        if not (close(float(r["all_ranks_sent_xS"]), 2 * (n - 1), 0, 1e-3) and close(float(r["formula_all_xS"]), 2 * (n - 1), 0, 1e-3)):
            problem("%s: %s, %d ranks: all ranks sent %s S, expected 2(n-1) = %d"
                    % (marker, a, n, r["all_ranks_sent_xS"], 2 * (n - 1)))
        if int(r["steps"]) != steps:
            problem("%s: %s, %d ranks: %s steps, the lesson says %d" % (marker, a, n, r["steps"], steps))
    if sorted(sent) != sorted((a, n) for a in formula for n in worlds):
        problem("%s: traffic counted for %s, expected ring, tree and parameter server at 2, 3 and 4 ranks" % (marker, sorted(sent)))
    for n in (3, 4):
        if (("ring", n) in sent and ("tree", n) in sent and ("parameter server", n) in sent
                and not sent[("ring", n)] < min(sent[("tree", n)], sent[("parameter server", n)])):
            problem("%s: at %d ranks the ring's busiest rank sent %.3f S, not the least of the three" % (marker, n, sent[("ring", n)]))

    times = {}
    for r in table(tables, "collectives", marker):
        times[(r["impl"], int(r["ranks"]), int(r["bytes"]))] = float(r["time_us"])
    ratios = {}
    for r in table(tables, "allreduce ratios", marker):
        n, b = int(r["ranks"]), int(r["bytes"])
        ratios[(n, b)] = float(r["tree_over_ring"])
        ring, tree, ps, builtin = (times.get((a, n, b)) for a in ("ring", "tree", "parameter server", "built-in"))
        if None in (ring, tree, ps, builtin):
            problem("%s: no time for every algorithm at %d ranks, %d bytes" % (marker, n, b))
            continue
        for col, t in (("tree_over_ring", tree), ("ps_over_ring", ps), ("builtin_over_ring", builtin)):
            if not close(float(r[col]), t / ring, 0.01, 0.002):
                problem("%s: %s %s at %d ranks, %d bytes, but the times give %.3f" % (marker, col, r[col], n, b, t / ring))
    small, large = 1024, 4 << 20
    if sorted(ratios) != sorted((n, b) for n in worlds for b in (small, large)):
        problem("%s: ratios for %s, expected 1 KiB and 4 MiB at 2, 3 and 4 ranks" % (marker, sorted(ratios)))
    else:
        for n in (3, 4):
            if not ratios[(n, small)] < 1:
                problem("%s: the lesson says the tree beats the ring at 1 KiB, %d ranks; tree/ring = %.3f" % (marker, n, ratios[(n, small)]))
            if not ratios[(n, large)] > ratios[(n, small)]:
                problem("%s: the lesson says the tree's advantage shrinks at 4 MiB, %d ranks; tree/ring %.3f at 1 KiB, %.3f at 4 MiB"
                        % (marker, n, ratios[(n, small)], ratios[(n, large)]))
        for n in worlds:
            others = [times[(a, n, large)] for a in ("ring", "tree", "parameter server")]
            if not times[("built-in", n, large)] < min(others):
                problem("%s: the lesson says the built-in all-reduce beats all three at 4 MiB; at %d ranks it takes %.1f us, the others %s"
                        % (marker, n, times[("built-in", n, large)], others))


def check_across_nodes(nb, problems, recorded_path):
    """Lesson 12: every number the lesson prints as evidence, held against what it says.
    Where the kernel built a test bed (root), the cells' own outputs are checked; where it
    could not, the cells ran on this machine alone and the recorded numbers shipped beside
    the notebook are checked instead (and must be the ones the last cell shows)."""
    name = "12-across-nodes"

    def problem(msg):
        problems.append("%s: %s" % (name, msg))

    def output(cell_id):
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.get("id") == cell_id:
                parts = []
                for out in cell.get("outputs", []):
                    parts.append(out.get("text", ""))
                    parts.append(out.get("data", {}).get("text/plain", ""))
                return "\n".join(parts)
        problem("no code cell %s" % cell_id)
        return ""

    def number(text, pattern, what):
        m = re.search(pattern, text)
        if not m:
            problem("%s: the output does not say %r" % (what, pattern))
            return None
        return float(m.group(1))

    def table_rows(text, first_column):
        """Rows of a text table whose first cell is one of first_column, as lists of cells."""
        rows = []
        for line in text.splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 2 and cells[0] in first_column:
                rows.append(cells)
        return rows

    def evidence(topology, bench, tp, where):
        """The claims of the lesson's text, on the outputs of its cells (or the recorded copies)."""
        fraction = number(topology, r"the pairs read ([\d.]+) of it", where + " topology")
        if fraction is not None and not 0.8 <= fraction <= 1.05:
            problem("%s: the lesson says pairs across nodes read about 0.12 of 0.125 GB/s; they read %.2f of the link" % (where, fraction))
        net = number(topology, r"Across nodes: median ([\d.]+) GB/s", where + " topology")
        inside = number(topology, r"Inside a node: median ([\d.]+) GB/s", where + " topology")
        if net is not None and fraction is not None and abs(net * 8 - fraction) > 0.01:
            problem("%s: %.3f GB/s is %.3f Gbit/s, but the output says the pairs read %.2f of 1 Gbit/s" % (where, net, net * 8, fraction))
        if net is not None and inside is not None and not inside >= 3 * net:
            problem("%s: the lesson says pairs on a node are several times faster than across; %.3f vs %.3f GB/s" % (where, inside, net))
        by_kind = {r[0]: r for r in table_rows(topology, ("SHM", "NET"))}
        if net is not None and "NET" in by_kind and abs(float(by_kind["NET"][2]) - net) > 0.0015:
            problem("%s: the NET row says %s GB/s, the summary %.3f" % (where, by_kind["NET"][2], net))

        ratio = number(bench, r"Across nodes, 16-64 MiB: ([\d.]+)\.", where + " bench")
        rows = {}
        for r in table_rows(bench, ("allreduce",)):
            rows[(r[1], r[3])] = float(r[7])   # (impl, size) -> busbw GB/s
        ratios = sorted(rows[("runtime", s)] / rows[("raw", s)] for s in ("16 MiB", "32 MiB", "64 MiB")
                        if ("runtime", s) in rows and ("raw", s) in rows)
        if not ratios:
            problem("%s: no runtime and raw rows at 16-64 MiB" % where)
        elif ratio is not None:
            if abs(ratios[len(ratios) // 2] - ratio) > 0.02 + 0.02 * ratio:
                problem("%s: printed hierarchical/flat %.2f, the table gives %.3f" % (where, ratio, ratios[len(ratios) // 2]))
            if not ratio > 1.2:
                problem("%s: the lesson says the hierarchical path puts less on the link (bound 1.5x); measured %.2fx the flat ring" % (where, ratio))
        if not any(impl == "torch.distributed" for impl, _ in rows):
            problem("%s: no torch.distributed rows (the PyTorch peer in the same namespaces)" % where)
        for impl, bound in (("raw", 0.125), ("runtime", 0.1875)):
            for size in ("16 MiB", "64 MiB"):
                if (impl, size) in rows and not rows[(impl, size)] >= 0.6 * bound:
                    problem("%s: the lesson says both reach most of the link; %s at %s has busbw %.3f GB/s, its bound %.4f"
                            % (where, impl, size, rows[(impl, size)], bound))

        m = re.search(r"TP inside a node: ([\d.]+) ms per step \(all-reduce ([\d.]+) ms\); TP across nodes: ([\d.]+) ms per step "
                      r"\(all-reduce ([\d.]+) ms\); across / inside = ([\d.]+)x", tp)
        if not m:
            problem("%s: no TP inside/across comparison line" % where)
        else:
            inside_ms, inside_ar, across_ms, across_ar, printed_ratio = (float(x) for x in m.groups())
            if abs(across_ms / inside_ms - printed_ratio) > 0.01:
                problem("%s: across/inside printed %.2f, the times give %.3f" % (where, printed_ratio, across_ms / inside_ms))
            if not printed_ratio >= 1.3:
                problem("%s: the lesson says TP across the link is slower; across/inside = %.2f" % (where, printed_ratio))
            if not across_ar >= 3 * inside_ar:
                problem("%s: TP all-reduce across %.1f ms vs inside %.1f ms: the link should dominate" % (where, across_ar, inside_ar))

    built = output("an-01")
    recorded_text = Path(recorded_path).read_text(encoding="utf-8") if Path(recorded_path).exists() else ""
    if "test bed up:" in built:
        status = output("an-03")
        hosts = [r[1] for r in table_rows(status, ("0", "1", "2", "3"))]
        transports = [r[5] for r in table_rows(status, ("0", "1", "2", "3"))]
        if len(hosts) != 4 or hosts[0] != hosts[1] or hosts[2] != hosts[3] or hosts[0] == hosts[2]:
            problem("%cluster start: expected ranks 0,1 on one node and 2,3 on the other, got hosts %s" % hosts)
        if transports != ["shm+gloo"] * 4:
            problem("%cluster start: the lesson says the world group is hierarchical (shm+gloo), got %s" % transports)
        if "**Placement:** tp group [0, 1] spans nodes" not in output("an-11"):
            problem("the cyclic TP run does not say that its TP group spans the nodes")
        if "Placement" in output("an-09"):
            problem("the block TP run says its TP group crosses nodes")
        evidence(output("an-05"), output("an-07"), output("an-13"), "live run")
    elif "no test bed here (" in built:
        print("12-across-nodes: no test bed in this kernel; checking the recorded numbers")
    else:
        problem("%cluster testbed up said neither 'test bed up' nor 'no test bed here': " + built[:200])
    # The recorded numbers: shown by the last cell, and holding the same claims.
    if not recorded_text:
        problem("the recorded numbers %s are missing" % recorded_path)
    else:
        if recorded_text.strip()[:200] not in output("an-17"):
            problem("the last cell does not show the recorded numbers")
        sections = re.split(r"^## ", recorded_text, flags=re.M)
        pick = lambda key: next((sec for sec in sections if sec.startswith(key)), "")
        evidence(pick("Topology"), pick("All-reduce"), pick("Tensor parallel"), "recorded run")


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
        if name.startswith("01-"):
            check_collectives(nb, problems)
        if name.startswith("12-"):
            check_across_nodes(nb, problems, src / (name + ".recorded.md"))
        print("%-40s %6.1f s  %d cells  %d images" % (name, elapsed, len(nb.cells), pngs), flush=True)
    for p in problems:
        print("PROBLEM:", p)
    print("%d notebooks, %d problems" % (len(notebooks), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
