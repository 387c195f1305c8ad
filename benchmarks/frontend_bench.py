"""Frontend scale benchmark: the labeling tab on 70,000 Fashion-MNIST images
(or, with --big, on 1,000,000 rows), each drawn as its 28x28 thumbnail, in
headless Chromium.

    .venv/bin/python benchmarks/frontend_bench.py            # 70k: /tmp/al-fmnist (written first when missing)
    .venv/bin/python benchmarks/frontend_bench.py --big      # 1M: /tmp/al-big/logdir_1m, under flock /tmp/al-big.lock

Starts a real `tensorboard` on the logdir, opens the tab and reports:

* time to first full frame: from choosing the embedding in the picker until
  the GPU has finished the first frame drawn with the preview, labels and the
  sprite pages that first view needs (pages load by what is on screen);
* frame time while panning (median, 95th percentile) at three zooms: the
  whole map, zoom 2 (the view of the earlier version of this benchmark) and
  close enough that thumbnails are 24 px wide; a frame is drawn as soon as
  the GPU has finished the previous one. With each: how the rows were drawn
  (dots, one dots image, or thumbnails), how many, and the pages loaded;
* the spatial index's build time and the time to answer a layout-space kNN
  group (k = 20 and 1000), a box and a lasso, as the pointer handlers do;
* frames while the map moves between two layouts (client side), and, below
  200k rows, while a live t-SNE session runs on the server;
* memory: the tab's JS heap + ArrayBuffers (CDP Runtime.getHeapUsage), every
  Chromium process' resident memory now and at its peak (GPU process and its
  textures included), the server's peak.

Headless Chromium draws with a software GL (SwiftShader) here; the numbers are
for comparing versions of this code on one machine, not absolute. The machine
may be shared: the 1-minute load average is recorded at every phase (on 2
cores, above 2 means the run shared the CPU with other work).

Results go to one JSON (one entry per size and version of the code), a
Markdown table and a PNG beside it.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.tbserver import TensorBoard  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(frames):
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    return {
        "frames": len(frames),
        "median_ms": round(statistics.median(frames), 2),
        "p95_ms": round(percentile(frames, 0.95), 2),
        "fps_median": round(1000.0 / statistics.median(frames), 1) if statistics.median(frames) > 0 else None,
    }


def load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def log(msg):
    print("[frontend_bench] " + msg, file=sys.stderr, flush=True)


# In-page measurements. `v` is the labeling view (window.__al.view): its map, scene, controller and store.
JS_FRAMES = """async ([n, panPx]) => {
  const m = window.__al.view.map;
  await m.measureFrames(5, 0);
  const times = await m.measureFrames(n, panPx);
  const st = m.scene.stats;
  return { times, lod: st.lod, rowsDrawn: st.rowsDrawn, pointPx: st.pointPx, dotsImage: st.dotsImage, drawCalls: st.drawCalls };
}"""

# Selections answered the way the pointer handlers answer them, timed around the call (ms), the
# resulting rows kept (count and a checksum) so that a test can check them against brute force.
JS_SELECT = """async ([kind, arg]) => {
  const v = window.__al.view, m = v.map, ctl = v.ctl;
  const w = m.canvas.clientWidth, h = m.canvas.clientHeight;
  let rows;
  const t0 = performance.now();
  if (kind === "knn") {
    ctl.setKnnSpace("layout");
    ctl.setK(arg.k);
    const t = performance.now();
    ctl.focus(arg.row);
    const ms = performance.now() - t;
    rows = Array.from(v.store.get().members);
    return { ms, rows: rows.length, sum: rows.reduce((a, b) => a + b, 0), first: rows.slice(0, 5) };
  }
  if (kind === "box") {
    const [x0, y0, x1, y1] = [w * arg[0], h * arg[1], w * arg[2], h * arg[3]];
    rows = m.rowsInBox(x0, y0, x1, y1);
    ctl.region(rows, false);
  } else {
    const poly = [];
    for (let i = 0; i < 64; i++) {
      const a = (i / 64) * 2 * Math.PI, r = (i % 2 ? 0.7 : 1.0) * arg[2] * h;
      poly.push(w * arg[0] + r * Math.cos(a), h * arg[1] + r * Math.sin(a));
    }
    rows = m.rowsInLasso(poly);
    ctl.region(rows, false);
  }
  const ms = performance.now() - t0;
  const sel = Array.from(v.store.get().members);
  return { ms, rows: sel.length, sum: sel.reduce((a, b) => a + b, 0), first: sel.slice(0, 5) };
}"""


JS_PICK = """() => { const m = window.__al.view.map; const out = [];
  for (let i = 0; i < 5; i++) {
    m.camera = { ...m.camera, target: [m.camera.target[0] + 1e-4 * (i + 1), m.camera.target[1], m.camera.target[2]] };
    const t = performance.now(); m.pickAt(m.canvas.clientWidth / 2, m.canvas.clientHeight / 2); out.push(performance.now() - t);
  }
  return out; }"""


def browser_memory(page, browser):
    """JS heap and ArrayBuffers of the tab (CDP Runtime.getHeapUsage), and the resident memory of
    every Chromium process (now and at its peak, from /proc: GPU process textures included)."""
    cdp = page.context.new_cdp_session(page)
    usage = cdp.send("Runtime.getHeapUsage")
    cdp.detach()
    out = {
        "js_heap_used_mb": round(usage["usedSize"] / 1e6, 1),
        "array_buffers_mb": round(usage.get("backingStorageSize", 0) / 1e6, 1),
    }
    out["tab_mb"] = round(out["js_heap_used_mb"] + out["array_buffers_mb"], 1)
    try:
        bcdp = browser.new_browser_cdp_session()
        procs = bcdp.send("SystemInfo.getProcessInfo")["processInfo"]
        bcdp.detach()
        rss = hwm = 0
        by_type = {}
        for pr in procs:
            st = _proc_status(pr["id"])
            rss += st.get("VmRSS", 0)
            hwm += st.get("VmHWM", 0)
            by_type[pr["type"]] = round(by_type.get(pr["type"], 0) + st.get("VmRSS", 0) / 1024, 1)
        out["chromium_rss_mb"] = round(rss / 1024, 1)
        out["chromium_peak_rss_mb"] = round(hwm / 1024, 1)
        out["chromium_rss_by_process_mb"] = by_type
    except Exception as e:  # report, do not hide
        out["chromium_rss_error"] = str(e).splitlines()[0]
    return out


def _proc_status(pid):
    """VmRSS / VmHWM (kB) of a process from /proc (Linux)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def server_peak_mb(tb):
    st = _proc_status(tb.proc.pid) if getattr(tb, "proc", None) else {}
    return round(st.get("VmHWM", 0) / 1024, 1) or None


def run(logdir, width, height, pan_frames, anim_seconds, live_layout=True, select_rows=None, record_positions=False,
        embedding=None, browser=None):
    """Open `embedding` (default: the first that opens) of `logdir` in the tab and measure it; with
    `record_positions`, also return where every row is (layout and screen) when the selections are
    made, so that a test can answer them by brute force. `browser`: a Playwright browser to use
    (default: Chromium launched here)."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return run(logdir, width, height, pan_frames, anim_seconds, live_layout, select_rows,
                           record_positions, embedding, b)
            finally:
                b.close()

    result = {"load_average": {"start": load_average()}}
    with TensorBoard(logdir, without_tensorflow=True) as tb:
        listing = tb.wait_for_embeddings(300)
        emb = next(e for e in listing["embeddings"] if e["ok"] and embedding in (None, e["name"]))
        result["embedding"] = {k: emb[k] for k in ("run", "name", "rows", "dims")}
        result["embedding"]["sprite"] = {k: v for k, v in (emb["sprite"] or {}).items() if k != "page_sizes"}
        rows = emb["rows"]
        result["browser"] = "Chromium " + browser.version
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # The tab's own page (what TensorBoard puts in its iframe), without TensorBoard's UI around it.
        page.goto(tb.url + "/data/plugin_entry.html?name=active_labeling")
        page.wait_for_selector("[data-testid=al-embedding-select] option >> nth=1", state="attached", timeout=60000)
        value = page.eval_on_selector_all(
            "[data-testid=al-embedding-select] option",
            "(els, name) => els.find(e => e.value.endsWith('\\u0000' + name)).value", emb["name"])
        t0 = time.time()
        page.select_option("[data-testid=al-embedding-select]", value=value)
        page.wait_for_selector("[data-testid=al-labeling-view][data-ready=true]", timeout=900000)
        page.wait_for_function("window.__al.view.debug.firstFullFrameMs() >= 0", timeout=120000)
        result["time_to_first_full_frame_ms"] = round(page.evaluate("window.__al.view.debug.firstFullFrameMs()"), 1)
        result["time_to_ready_wall_s"] = round(time.time() - t0, 2)
        result["pages_loaded_at_open"] = page.evaluate("window.__al.view.map.scene.sprites.loadedPages()")
        result["memory_after_load"] = browser_memory(page, browser)
        result["load_average"]["after_load"] = load_average()
        log("first full frame after %.0f ms" % result["time_to_first_full_frame_ms"])

        # Panning at three zooms: the whole map (fit), the old benchmark's zoom 2, and close enough
        # that thumbnails are 24 px wide (readable: their pages are loaded first).
        views = {}
        for name, setup in (("whole map", "m.fitToData()"),
                            ("zoom 2", "m.fitToData(); m.zoomBy(2)"),
                            ("thumbnails 24 px", "m.fitToData(); m.zoomToThumbnailPx(24)")):
            t = time.time()
            page.evaluate("async () => { const m = window.__al.view.map; %s; await m.pagesSettled(); }" % setup)
            settle_s = time.time() - t
            r = page.evaluate(JS_FRAMES, [pan_frames, 3])
            v = summary(r.pop("times")) or {}
            v.update({k: (round(x, 1) if isinstance(x, float) else x) for k, x in r.items()})
            v["pages_wait_s"] = round(settle_s, 2)
            v["pages_loaded"] = page.evaluate("window.__al.view.map.scene.sprites.loadedPages()")
            v["texture_mb"] = round(page.evaluate("window.__al.view.map.scene.sprites.residentBytes()") / 1e6, 1)
            v["load_average"] = load_average()
            views[name] = v
            log("panning, %s: %s" % (name, v))
        result["panning"] = views
        result["memory_after_panning"] = browser_memory(page, browser)
        page.evaluate("window.__al.view.map.fitToData()")

        # Selections (layout space), each answered as the tab answers a click, a box or a lasso.
        build = page.evaluate("""() => { const sc = window.__al.view.map.scene; const ms = [];
            for (let i = 0; i < 3; i++) { sc.index.clear(); ms.push(sc.layoutIndex().buildMs); } return ms; }""")
        result["index_build_ms"] = {"runs": [round(x, 1) for x in build], "median": round(statistics.median(build), 1)}
        if record_positions:
            result["positions_at_selection"] = page.evaluate("""() => { const m = window.__al.view.map;
                const n = window.__al.view.debug.rows();
                return { layout: Array.from(m.scene.targetPositions()), screen: Array.from({ length: n }, (_, i) => m.screenOf(i)),
                         size: [m.canvas.clientWidth, m.canvas.clientHeight] }; }""")
        sel = {}
        focus_rows = select_rows or [rows // 3, (2 * rows) // 3, 7]
        for k in (20, 1000):
            answers = [page.evaluate(JS_SELECT, ["knn", {"row": r, "k": k}]) for r in focus_rows]
            sel["knn k=%d" % k] = {"ms": [round(a["ms"], 1) for a in answers], "rows": [a["rows"] for a in answers],
                                   "sums": [a["sum"] for a in answers], "focus_rows": focus_rows}
        for kind, arg in (("box", [0.35, 0.35, 0.6, 0.65]), ("lasso", [0.5, 0.5, 0.2])):
            answers = [page.evaluate(JS_SELECT, [kind, arg]) for _ in range(3)]
            sel[kind] = {"ms": [round(a["ms"], 1) for a in answers], "rows": [a["rows"] for a in answers],
                         "sums": [a["sum"] for a in answers], "region": arg}
        for v in sel.values():
            v["median_ms"] = round(statistics.median(v["ms"]), 1)
        page.evaluate("window.__al.view.ctl.clearSelection()")
        result["selection"] = sel
        # The row under the pointer (hover, click) after the view moved a little each time.
        ms = page.evaluate(JS_PICK)
        result["row_under_pointer_ms"] = {"ms": [round(x, 2) for x in ms], "median_ms": round(statistics.median(ms), 2)}
        result["load_average"]["after_selection"] = load_average()
        log("selection: %s" % {k: v["median_ms"] for k, v in sel.items()})

        # Animating frames without a server session: the map moves between two layouts (the
        # PCA preview and a shuffled copy) again and again, as it does between layout frames.
        page.evaluate("""() => { const sc = window.__al.view.map.scene; const a = sc.targetPositions().slice();
            const b = a.slice(); for (let i = 0; i < b.length; i += 3) { b[i] = a[i] * 0.8 + 0.1 * Math.sin(i); b[i + 1] = a[i + 1] * 0.8; }
            window.__alBench = { a, b, k: 0, timer: setInterval(() => { const s = window.__alBench; s.k ^= 1;
              sc.moveTo(s.k ? s.b : s.a, 700); window.__al.view.map.requestRender(); }, 700) };
            sc.moveTo(b, 700); window.__al.view.map.requestRender(); window.__al.view.debug.resetFrameTimes(); }""")
        time.sleep(anim_seconds)
        frames = page.evaluate("window.__al.view.debug.frameTimes()")
        page.evaluate("() => { clearInterval(window.__alBench.timer); }")
        result["moving_between_layouts"] = dict(summary(frames) or {"frames": 0}, seconds=anim_seconds)
        result["load_average"]["after_moving"] = load_average()
        log("moving between layouts: %s" % result["moving_between_layouts"])

        if live_layout:
            # A live t-SNE session on the server, frames while the map follows it.
            page.click("[data-testid=al-layout-toggle]")
            try:
                t_start = time.time()
                page.wait_for_function(
                    "(() => { const s = window.__al.view.debug.session(); return s && s.state === 'running' && s.iteration > 0; })()",
                    timeout=600000)
                result["layout_preparation_s"] = round(time.time() - t_start, 1)
                page.evaluate("window.__al.view.debug.resetFrameTimes()")
                time.sleep(anim_seconds)
                frames = page.evaluate("window.__al.view.debug.frameTimes()")
                it = page.evaluate("window.__al.view.debug.session().iteration")
                anim = summary(frames) or {"frames": 0}
                anim["iteration_reached"] = it
                anim["seconds"] = anim_seconds
            except Exception as e:  # report, do not hide: the rest of the numbers still stand
                msgs = page.eval_on_selector_all("[data-testid=al-error]", "els => els.map(e => e.textContent)")
                anim = {"error": "layout did not animate: %s; messages: %s" % (str(e).splitlines()[0], msgs)}
            result["layout_animating"] = anim
            result["load_average"]["after_animation"] = load_average()
            t = time.time()
            for _ in range(10):
                page.evaluate("1")
            result["layout_animating_page_roundtrip_ms"] = round((time.time() - t) * 100, 1)
        result["memory_end"] = browser_memory(page, browser)
        result["server_peak_rss_mb"] = server_peak_mb(tb)
        result["page_errors"] = errors
        context.close()
    return result


BIG_LOGDIR = "/tmp/al-big/logdir_1m"
BIG_READY = "/tmp/al-big/ready-1m"
BIG_LOCK = "/tmp/al-big.lock"
TARGET_PAN_P95_MS = {70000: 100, 1000000: 150}
TARGET_SELECT_MS = 200


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logdir", default=None,
                    help="logdir to open (default: Fashion-MNIST 70k in /tmp/al-fmnist, written first when missing; "
                         "with --big %s)" % BIG_LOGDIR)
    ap.add_argument("--big", action="store_true",
                    help="the 1,000,000-row case: waits for %s, runs under flock %s" % (BIG_READY, BIG_LOCK))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "frontend_bench.json"),
                    help="results JSON, one entry per size (a run replaces its own size's entry); .md and .png beside it")
    ap.add_argument("--label", default="after", help="name of this version of the code in the results (default %(default)s)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--pan-frames", type=int, default=40)
    ap.add_argument("--anim-seconds", type=float, default=8.0)
    ap.add_argument("--no-live-layout", action="store_true", help="skip the live t-SNE session (default: on below 200k rows)")
    ap.add_argument("--import-before", metavar="JSON",
                    help="add a result of this script's earlier version (one pan zoom, one size per file) as the "
                         "'before' run, and stop")
    args = ap.parse_args(argv)
    if args.import_before:
        with open(args.import_before) as f:
            write_results(args.out, from_earlier_version(json.load(f)))
        return
    if not os.path.exists(CHROMIUM):
        sys.exit("error: %s not found (apt-get install -y chromium)" % CHROMIUM)
    logdir = args.logdir or (BIG_LOGDIR if args.big else "/tmp/al-fmnist")
    lock = None
    if args.big:
        while not os.path.exists(BIG_READY) and not args.logdir:
            log("waiting for %s" % BIG_READY)
            time.sleep(30)
        import fcntl
        lock = open(BIG_LOCK, "w")
        log("waiting for %s" % BIG_LOCK)
        fcntl.flock(lock, fcntl.LOCK_EX)
    elif not os.path.isdir(logdir):
        subprocess.check_call([sys.executable, os.path.join(HERE, "write_fashion_mnist.py"), "--out", logdir])
    try:
        result = run(logdir, args.width, args.height, args.pan_frames, args.anim_seconds,
                     live_layout=not args.no_live_layout and not args.big)
    finally:
        if lock:
            lock.close()
    result["viewport"] = [args.width, args.height]
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                         "gl": "SwiftShader (software), headless"}
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["load_average"]["end"] = load_average()
    result["code"] = args.label
    result["command"] = "benchmarks/frontend_bench.py" + (" --big" if args.big else "")
    write_results(args.out, result)
    print(json.dumps(result, indent=2))


def from_earlier_version(old):
    """A result of the earlier version of this script (before lazy pages: panning at zoom 2 only, the
    live t-SNE's frames, JS heap) in this version's shape, as the 'before' run."""
    r = dict(old)
    r["code"] = "before"
    r["panning"] = {"zoom 2": old.get("panning")}
    for when in ("memory_after_load", "memory_end"):
        m = old.get(when) or {}
        if m:
            r[when] = dict(m, tab_mb=round((m.get("js_heap_used_mb") or 0) + (m.get("array_buffers_mb") or 0), 1))
    r.setdefault("command", "benchmarks/frontend_bench.py of the code before lazy pages")
    return r


def write_results(out, result):
    """Merge `result` into the results file under its size and code label; rewrite the .md and .png."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    allr = {"runs": []}
    if os.path.exists(out):
        with open(out) as f:
            old = json.load(f)
        allr = old if isinstance(old.get("runs"), list) else {"runs": []}
    rows = result["embedding"]["rows"]
    allr["runs"] = [r for r in allr["runs"] if not (r["embedding"]["rows"] == rows and r.get("code") == result["code"])]
    allr["runs"].append(result)
    allr["runs"].sort(key=lambda r: (r["embedding"]["rows"], r.get("code") != "before"))
    with open(out, "w") as f:
        json.dump(allr, f, indent=2)
        f.write("\n")
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as f:
        f.write(markdown(allr))
    try:
        plot(allr, os.path.splitext(out)[0] + ".png")
    except Exception as e:  # the numbers stand without the picture
        log("no plot: %s" % e)
    log("wrote %s and %s" % (out, md))


def pan_p95(r, view):
    v = (r.get("panning") or {}).get(view) or {}
    return v.get("p95_ms")


def markdown(allr):
    """The results as a short Markdown report: one column per run (size, version of the code)."""
    runs = allr["runs"]
    if not runs:
        return "# Frontend scale benchmark\n\nNo runs.\n"

    def col(r):
        return "%s rows, %s" % ("{:,}".format(r["embedding"]["rows"]), r.get("code", "after"))

    def fmt(x, unit=""):
        return "-" if x is None else "%s%s" % (x, unit)

    def frames(d):
        if not d:
            return "-"
        if d.get("error"):
            return d["error"]
        return "%s / %s ms (%s frames)" % (d.get("median_ms"), d.get("p95_ms"), d.get("frames"))

    views = []
    for r in runs:
        for k in (r.get("panning") or {}):
            if k not in views:
                views.append(k)
    lines = [
        "# Frontend scale benchmark",
        "",
        "The labeling tab in headless Chromium (software GL: SwiftShader), viewport %s x %s, every row a 28x28 "
        "thumbnail; produced by `benchmarks/frontend_bench.py` (70k) and `benchmarks/frontend_bench.py --big` (1M, "
        "under `flock /tmp/al-big.lock`). Targets (issue 13): pan frame p95 at most %d ms at 70k and %d ms at 1M; "
        "kNN, box and lasso answered in under %d ms." % (
            runs[0]["viewport"][0], runs[0]["viewport"][1], TARGET_PAN_P95_MS[70000], TARGET_PAN_P95_MS[1000000],
            TARGET_SELECT_MS),
        "",
        "| measure | " + " | ".join(col(r) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
        "| date; machine | " + " | ".join("%s; %s cores" % (r.get("date"), r["machine"]["cpus"]) for r in runs) + " |",
        "| 1-minute load average (start / after load / end) | " + " | ".join(
            "%s / %s / %s" % (r["load_average"].get("start"), r["load_average"].get("after_load"), r["load_average"].get("end"))
            for r in runs) + " |",
        "| time to first full frame | " + " | ".join(fmt(r.get("time_to_first_full_frame_ms"), " ms") for r in runs) + " |",
        "| picker to ready (wall) | " + " | ".join(fmt(r.get("time_to_ready_wall_s"), " s") for r in runs) + " |",
    ]
    for view in views:
        lines.append("| pan frame, %s: median / p95 | " % view + " | ".join(frames((r.get("panning") or {}).get(view)) for r in runs) + " |")
        lines.append("| &nbsp;&nbsp;drawn as; rows drawn; pages loaded (texture MB) | " + " | ".join(
            "-" if not ((r.get("panning") or {}).get(view) or {}).get("lod") else "%s%s at %s px; %s; %s (%s MB)" % (
                r["panning"][view].get("lod"), " (one image)" if r["panning"][view].get("dotsImage") else "",
                r["panning"][view].get("pointPx"), "{:,}".format(r["panning"][view].get("rowsDrawn") or 0),
                len(r["panning"][view].get("pages_loaded") or []), r["panning"][view].get("texture_mb"))
            for r in runs) + " |")
    lines.append("| frames while moving between two layouts: median / p95 | " + " | ".join(frames(r.get("moving_between_layouts")) for r in runs) + " |")
    lines.append("| frames while a live t-SNE runs: median / p95 | " + " | ".join(frames(r.get("layout_animating")) for r in runs) + " |")
    lines.append("| row under the pointer (hover, click), median | " + " | ".join(
        fmt((r.get("row_under_pointer_ms") or {}).get("median_ms"), " ms") for r in runs) + " |")
    lines.append("| spatial index build (median of 3) | " + " | ".join(fmt((r.get("index_build_ms") or {}).get("median"), " ms") for r in runs) + " |")
    kinds = []
    for r in runs:
        for k in (r.get("selection") or {}):
            if k not in kinds:
                kinds.append(k)
    for k in kinds:
        lines.append("| select: %s, median (rows) | " % k + " | ".join(
            "-" if k not in (r.get("selection") or {}) else "%s ms (%s rows)" % (
                r["selection"][k]["median_ms"], "{:,}".format(statistics.median(r["selection"][k]["rows"])))
            for r in runs) + " |")
    for when in ("memory_after_load", "memory_end"):
        lines.append("| tab memory %s: JS heap + ArrayBuffers | " % when.replace("memory_", "").replace("_", " ") + " | ".join(
            "-" if not r.get(when) else "%s MB (%s + %s)" % (
                r[when].get("tab_mb", round((r[when].get("js_heap_used_mb") or 0) + (r[when].get("array_buffers_mb") or 0), 1)),
                r[when].get("js_heap_used_mb"), r[when].get("array_buffers_mb"))
            for r in runs) + " |")
    lines.append("| all Chromium processes at the end: resident / peak (GPU process with the textures included) | " + " | ".join(
        "-" if not (r.get("memory_end") or {}).get("chromium_rss_mb") else "%s / %s MB" % (
            r["memory_end"]["chromium_rss_mb"], r["memory_end"].get("chromium_peak_rss_mb")) for r in runs) + " |")
    lines.append("| server peak resident memory | " + " | ".join(fmt(r.get("server_peak_rss_mb"), " MB") for r in runs) + " |")
    lines.append("| page errors | " + " | ".join(str(len(r.get("page_errors") or [])) for r in runs) + " |")
    notes = ["- %s: %s" % (col(r), r["note"]) for r in runs if r.get("note")]
    if notes:
        lines += [""] + notes
    lines += [
        "",
        "Software GL here: compare versions of the code on one machine, not absolute numbers; the machine is shared "
        "(2 cores: a load above 2 means the run shared the CPU with other work). No 16-core machine or GPU was at hand: "
        "16-core and GPU figures were not measured.",
        "",
    ]
    return "\n".join(lines)


def plot(allr, path):
    """Pan frame p95 per view and version, against the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = allr["runs"]
    views = ["whole map", "zoom 2", "thumbnails 24 px"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(runs))
    for i, r in enumerate(runs):
        vals = [pan_p95(r, v) or 0 for v in views]
        if r.get("code") == "before" and not any(vals):
            vals = [0, (r.get("panning") or {}).get("p95_ms") or 0, 0]
        xs = [j + i * width for j in range(len(views))]
        ax.bar(xs, vals, width, label="%s rows, %s (load %s)" % ("{:,}".format(r["embedding"]["rows"]), r.get("code"),
                                                                   r["load_average"].get("after_load")))
    for rows, t in TARGET_PAN_P95_MS.items():
        ax.axhline(t, ls="--", lw=1, color="grey")
        ax.text(len(views) - 0.4, t, "target %s: %d ms" % ("70k" if rows < 1e6 else "1M", t), va="bottom", fontsize=8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(views))])
    ax.set_xticklabels(views)
    ax.set_ylabel("pan frame p95 (ms)")
    ax.set_yscale("log")
    ax.set_title("Labeling tab, headless Chromium (SwiftShader), 2 cores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
