"""What the tab holds, and how fast it opens, at 10^5-10^6 rows (issue 13, targets 4 and 6).

Opens an embedding in the Active Labeling tab in real headless Chromium against
a real tensorboard and samples, every half second until the map is complete:
the JS heap (CDP ``Runtime.getHeapUsage``: ``usedSize``) and the ArrayBuffers'
backing stores (``backingStorageSize``), their sum being what target 6 bounds
(1.5 GB at 1M x 50), and the resident memory of Chromium's renderer and GPU
processes (/proc; sprite textures of the software GL live in the GPU process).
Times: to the first frame (the PCA preview drawn) and to the map complete (every
sprite page), then a feature-space kNN group of 100 around row 0 (search "#0").
Also the positions frame of a live layout at that size: bytes per frame
(float32 vs u16) and its decode in the tab's own code (positions_decode.ts
under node, Chromium's V8).

    .venv/bin/python benchmarks/tab_memory.py --logdir /tmp/al-big/logdir_200k --threads 2
    .venv/bin/python benchmarks/tab_memory.py --big --threads 2            # /tmp/al-big/logdir_1m
    .venv/bin/python benchmarks/tab_memory.py --code /tmp/old-checkout ... # the same run on other code

Run it under ``flock /tmp/al-big.lock`` above 100,000 rows. ``--rows N`` writes
a synthetic N-row embedding in a temporary folder instead (what CI runs).
Results: benchmarks/results/tab_memory.json (one entry per run, keyed by
``--label``) and tab_memory.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

RESULTS = os.path.join(HERE, "results", "tab_memory.json")
BIG_LOGDIR = "/tmp/al-big/logdir_1m"
MB = 1024 * 1024


def write_synthetic(logdir: str, rows: int, dims: int = 16, thumb: int = 28, seed: int = 0) -> str:
    """An embedding of ``rows`` rows in 10 Gaussian clusters, each cluster's thumbnail a small
    ``thumb`` x ``thumb`` pattern of its own (written with the package's writer, in seconds)."""
    import numpy as np

    from tensorboard_al_plugin import write_embedding

    rng = np.random.default_rng(seed)
    k = 10
    cluster = rng.integers(0, k, rows)
    centres = rng.normal(scale=6.0, size=(k, dims)).astype(np.float32)
    x = centres[cluster] + rng.normal(size=(rows, dims)).astype(np.float32)
    yy, xx = np.mgrid[:thumb, :thumb]
    patterns = np.zeros((k, thumb, thumb), np.uint8)
    for c in range(k):
        patterns[c][(xx - thumb / 2) ** 2 + (yy - thumb / 2) ** 2 < (thumb / 7 + c) ** 2] = 255 - 15 * c
        patterns[c][:, 2 * c:2 * c + 3] = 128
    write_embedding(logdir, x, name="synthetic", images=patterns[cluster], thumbnail_size=thumb,
                    metadata={"cluster": ["c%d" % c for c in cluster]})
    return "synthetic"


def _descendants(pid: int) -> list:
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def chromium_rss() -> dict:
    """Resident MiB of this process's Chromium processes by --type (renderer, gpu-process, browser)."""
    rss = {}
    for pid in _descendants(os.getpid()):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
            if b"chrom" not in cmd.split(b"\0")[0].split(b" ")[0]:
                continue
            # Chromium's child processes rewrite their command line as one space-separated string
            kind = re.search(rb"--type=([\w-]+)", cmd)
            kind = kind.group(1).decode() if kind else "browser"
            with open("/proc/%d/status" % pid) as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
        rss[kind] = rss.get(kind, 0.0) + kb / 1024
    return rss


def browser_memory(page, cdp=None, gc=False) -> dict:
    """The page's JS heap and ArrayBuffers (MiB, CDP Runtime.getHeapUsage; the plugin's iframe is
    same-origin, so this includes TensorBoard's own page around it) and Chromium's resident MiB."""
    cdp = cdp or page.context.new_cdp_session(page)
    if gc:
        cdp.send("HeapProfiler.collectGarbage")
    usage = cdp.send("Runtime.getHeapUsage")
    heap = usage["usedSize"] / MB
    buffers = usage.get("backingStorageSize", 0) / MB
    rss = chromium_rss()
    return {"js_heap_mib": round(heap, 1), "array_buffers_mib": round(buffers, 1),
            "heap_plus_buffers_mib": round(heap + buffers, 1),
            "renderer_rss_mib": round(rss.get("renderer", 0.0), 1), "gpu_rss_mib": round(rss.get("gpu-process", 0.0), 1)}


def _debug(frame, expr):
    return frame.evaluate("() => { const d = window.__al.view.debug; return (%s); }" % expr)


def measure_tab(url: str, title: str, timeout_s: float, sample_s: float = 0.5) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, open_tab

    out = {"samples": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        frame = open_tab(page, url)
        cdp = page.context.new_cdp_session(page)
        out["before_open"] = browser_memory(page, cdp, gc=True)
        options = frame.eval_on_selector_all("[data-testid=al-embedding-select] option",
                                             "els => els.map(e => [e.value, e.textContent])")
        value = next(v for v, text in options if text.startswith(title + " ("))
        t0 = time.perf_counter()
        frame.select_option("[data-testid=al-embedding-select]", value=value)
        first = ready = None
        peak = {}
        while time.perf_counter() - t0 < timeout_s:
            now = time.perf_counter() - t0
            if first is None and _debug(frame, "d.positionsSource()") != "none":
                first = now
            if frame.get_attribute("[data-testid=al-labeling-view]", "data-ready") == "true":
                ready = now
            m = browser_memory(page, cdp)
            m["t_s"] = round(now, 2)
            out["samples"].append(m)
            for k, v in m.items():
                if k != "t_s":
                    peak[k] = max(peak.get(k, 0.0), v)
            if ready is not None:
                break
            page.wait_for_timeout(sample_s * 1000)
        out["first_frame_s"] = None if first is None else round(first, 2)
        out["ready_s"] = None if ready is None else round(ready, 2)
        out["peak_while_opening"] = peak
        out["after_open_gc"] = browser_memory(page, cdp, gc=True)
        if ready is not None:
            # timed from the search: the code before computed the group synchronously inside it
            t1 = time.perf_counter()
            frame.fill("[data-testid=al-search]", "#0")
            frame.press("[data-testid=al-search]", "Enter")
            frame.fill("[data-testid=al-knn-value]", "100")
            frame.press("[data-testid=al-knn-value]", "Enter")
            while time.perf_counter() - t1 < 60:
                if int(frame.text_content("[data-testid=al-selection-count]") or 0) == 101:
                    out["knn_group_s"] = round(time.perf_counter() - t1, 3)
                    out["knn_timed_from"] = "search"
                    break
                page.wait_for_timeout(20)
            out["after_knn"] = browser_memory(page, cdp)
        out["page_errors"] = errors
        out["messages"] = frame.eval_on_selector_all("[data-testid=al-error]", "els => els.map(e => e.textContent)")
        browser.close()
    return out


def positions_frames(rows: int, dims: int = 2) -> dict:
    """Bytes and decode time of one positions frame (positions_decode.ts under node)."""
    bundle = os.path.join(tempfile.mkdtemp(prefix="al-decode-"), "decode.mjs")
    subprocess.run([os.path.join(ROOT, "frontend", "node_modules", ".bin", "esbuild"),
                    os.path.join(HERE, "positions_decode.ts"), "--bundle", "--platform=node", "--format=esm",
                    "--log-level=warning", "--outfile=" + bundle], check=True)
    line = subprocess.run(["node", bundle, str(rows), str(dims), "7"], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    out = json.loads(line)
    # and the server's side: the answer's body in each format (wire.encode_positions, median of 7)
    import numpy as np

    from tensorboard_al_plugin.wire import encode_positions

    y = (np.random.default_rng(0).normal(size=(rows, dims)) * 30).astype(np.float32)
    for fmt in ("f32", "u16"):
        times = []
        for _ in range(7):
            t = time.perf_counter()
            encode_positions(y, fmt)
            times.append((time.perf_counter() - t) * 1000)
        out["server_%s_ms" % fmt] = round(sorted(times)[3], 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logdir", help="a log directory with one embedding (default /tmp/al-big/logdir_200k)")
    ap.add_argument("--big", action="store_true", help="the 1M-row case: --logdir %s" % BIG_LOGDIR)
    ap.add_argument("--rows", type=int, help="write a synthetic embedding of this many rows instead")
    ap.add_argument("--code", default=ROOT, help="the checkout whose plugin tensorboard serves (default: this one)")
    ap.add_argument("--label", default="this code", help="name of this run in the results (e.g. before, after)")
    ap.add_argument("--threads", type=int, default=2, help="server threads (numba, BLAS)")
    ap.add_argument("--timeout", type=float, default=900.0, help="give up waiting for the map after this many s")
    ap.add_argument("--out", default=RESULTS, help="JSON results file (entries are merged by label and rows)")
    args = ap.parse_args(argv)

    from tests.tbserver import TensorBoard

    tmp = None
    if args.rows:
        tmp = tempfile.mkdtemp(prefix="al-tabmem-")
        logdir = tmp
        t = time.perf_counter()
        write_synthetic(logdir, args.rows)
        print("wrote %d rows in %.1f s" % (args.rows, time.perf_counter() - t), flush=True)
    else:
        logdir = BIG_LOGDIR if args.big else (args.logdir or "/tmp/al-big/logdir_200k")
    threads = str(args.threads)
    env = {"PYTHONPATH": os.path.abspath(args.code), "NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    load_before = os.getloadavg()
    # cwd: `python -m tensorboard.main` puts the working directory first on sys.path
    with TensorBoard(os.path.abspath(logdir), without_tensorflow=True, env=env, timeout_s=300,
                     cwd=os.path.abspath(args.code)) as tb:
        listing = tb.wait_for_embeddings(timeout_s=300)
        emb = [e for e in listing["embeddings"] if e["ok"]][0]
        title = emb["name"] if emb["run"] == "." else "%s/%s" % (emb["run"], emb["name"])
        tab = measure_tab(tb.url, emb["name"], args.timeout)
        with open("/proc/%d/status" % tb.proc.pid) as f:
            server_peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    rows, dims = emb["rows"], emb["dims"]
    result = {
        "label": args.label,
        "code": os.path.abspath(args.code),
        "commit": subprocess.run(["git", "-C", args.code, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        # files changed but not committed in that checkout (other work in progress is served too)
        "uncommitted_files": len(subprocess.run(["git", "-C", args.code, "status", "--porcelain"],
                                                capture_output=True, text=True).stdout.splitlines()),
        "embedding": title, "rows": rows, "dims": dims,
        "sprite_pages": emb["sprite"]["pages"] if emb.get("sprite") else 0,
        "threads": args.threads,
        "machine": "%s, %d cores, Python %s" % (platform.machine(), os.cpu_count(), platform.python_version()),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "server_peak_rss_mib": round(server_peak, 1),
        "positions_frame_2d": positions_frames(rows, 2),
        **tab,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1), flush=True)
    if args.out:
        _merge(args.out, result)
    return result


def _merge(path: str, result: dict) -> None:
    runs = []
    if os.path.exists(path):
        with open(path) as f:
            runs = json.load(f)["runs"]
    runs = [r for r in runs if (r["label"], r["rows"]) != (result["label"], result["rows"])] + [result]
    runs.sort(key=lambda r: (r["rows"], r["label"]))
    with open(path, "w") as f:
        json.dump({"about": "benchmarks/tab_memory.py: the tab's memory and opening times (issue 13, target 6)",
                   "runs": runs}, f, indent=1)
    _write_table(path[:-5] + ".md", runs)


def _write_table(path: str, runs: list) -> None:
    lines = ["# The tab's memory at 10^5-10^6 rows (benchmarks/tab_memory.py)", "",
             "JS heap + ArrayBuffers: CDP Runtime.getHeapUsage (usedSize + backingStorageSize) of the page "
             "(TensorBoard's page and the plugin's same-origin iframe), peak of samples every 0.5 s while "
             "opening; renderer and GPU: resident memory of Chromium's processes (the software GL's sprite "
             "textures live in the GPU process). Headless Chromium, --disable-gpu. Positions frame: one "
             "2D live-layout frame, decoded by the tab's own code under node. 16-core figures were not "
             "measured (2-core machine). A run labelled after serves the working tree: its uncommitted_files in "
             "the JSON counts other work in progress served with it (the renderer's sprite pages loaded by what "
             "is on screen moved the map-complete and GPU columns, not this change). The positions-frame columns "
             "time the current decoder both ways (f32: view + normalise + turn into a new array, as the tab did; "
             "u16: decode into the normalised array, turn in place) and are the same measurement in every run.", "",
             "| rows | code | first frame s | map complete s | kNN 100 s | heap+buffers peak MiB | "
             "after GC MiB | renderer RSS peak MiB | GPU RSS peak MiB | frame bytes f32 / u16 | "
             "decode ms f32 / u16 | load |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in runs:
        peak = r.get("peak_while_opening", {})
        gc = r.get("after_open_gc", {})
        pf = r.get("positions_frame_2d", {})
        lines.append("| {rows:,} | {label} ({commit}) | {ff} | {ready} | {knn} | {hp} | {gc} | {rr} | {gr} | "
                     "{fb} / {ub} | {fm:.1f} / {um:.1f} | {load} |".format(
                         rows=r["rows"], label=r["label"], commit=r["commit"],
                         ff=r.get("first_frame_s"), ready=r.get("ready_s") or "did not finish",
                         knn="%s%s" % (r.get("knn_group_s", "-"), "" if r.get("knn_timed_from") == "search" else " *"), hp=peak.get("heap_plus_buffers_mib"),
                         gc=gc.get("heap_plus_buffers_mib"), rr=peak.get("renderer_rss_mib"),
                         gr=peak.get("gpu_rss_mib"), fb=pf.get("f32_bytes"), ub=pf.get("u16_bytes"),
                         fm=pf.get("f32_ms", 0), um=pf.get("u16_ms", 0),
                         load="%s-%s" % (r["load_before"][0], r["load_after"][0])))
    if any(r.get("knn_timed_from") != "search" for r in runs):
        lines += ["", "\\* timed from after the search's Enter to the group of 101 shown (runs before 10:50 UTC "
                  "1 Dec 2026): the code before computed the feature-space group synchronously inside that Enter, "
                  "so its figure leaves that out; later runs time from the search."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
