"""Frontend scale benchmark: the labeling tab on all 70,000 Fashion-MNIST
images, each drawn as its thumbnail, in headless Chromium.

    .venv/bin/python benchmarks/frontend_bench.py [--logdir DIR] [--out benchmarks/results/frontend_bench.json]

Writes the logdir first when it does not exist (benchmarks/write_fashion_mnist.py),
starts a real `tensorboard` on it, opens the tab and reports:

* time to first full frame: from choosing the embedding in the picker until
  the GPU has finished the first frame drawn with the tensor, labels and every
  sprite page loaded;
* frame time while panning: intervals between frames drawn while the view
  pans a little every frame (median and 95th percentile). A frame is drawn
  as soon as the GPU has finished the previous one;
* frame time while the layout animates: intervals between frames drawn while
  a server-side t-SNE runs and the map moves between polled frames. Here the
  map paces itself: after a frame the GPU took T ms for, the next starts no
  sooner than 2T after it, so that software GL leaves half the CPU to the page
  (and the test driver) instead of blocking it;
* JS heap after loading and at the end (Chrome DevTools Protocol
  Runtime.getHeapUsage: the V8 heap, and the ArrayBuffers outside it that
  hold the tensor and positions).

Headless Chromium draws with a software GL (SwiftShader) here; the numbers are
for comparing versions of this code on one machine, not absolute. The machine
may be shared: the 1-minute load average is recorded at every phase (on 2
cores, above 2 means the run shared the CPU with other work).

Writes the JSON and a Markdown summary next to it (same name, .md).
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


def heap_mb(page):
    """JS heap in use (MB) and the ArrayBuffer backing stores outside it (tensor, positions)."""
    cdp = page.context.new_cdp_session(page)
    usage = cdp.send("Runtime.getHeapUsage")
    cdp.detach()
    return {
        "js_heap_used_mb": round(usage["usedSize"] / 1e6, 1),
        "array_buffers_mb": round(usage.get("backingStorageSize", 0) / 1e6, 1),
    }


def run(logdir, width, height, pan_frames, anim_seconds):
    from playwright.sync_api import sync_playwright

    result = {"load_average": {"start": load_average()}}
    with TensorBoard(logdir) as tb:
        listing = tb.wait_for_embeddings(120)
        emb = next(e for e in listing["embeddings"] if e["ok"])
        result["embedding"] = {k: emb[k] for k in ("run", "name", "rows", "dims")}
        result["embedding"]["sprite"] = emb["sprite"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            result["browser"] = "Chromium " + browser.version
            page = browser.new_page(viewport={"width": width, "height": height})
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
            page.wait_for_selector("[data-testid=al-labeling-view][data-ready=true]", timeout=600000)
            page.wait_for_function("window.__al.view.debug.firstFullFrameMs() >= 0", timeout=60000)
            result["time_to_first_full_frame_ms"] = round(page.evaluate("window.__al.view.debug.firstFullFrameMs()"), 1)
            result["time_to_ready_wall_s"] = round(time.time() - t0, 2)
            result["draw_calls_per_frame"] = page.evaluate("window.__al.view.debug.drawCalls()")
            result["memory_after_load"] = heap_mb(page)
            result["load_average"]["after_load"] = load_average()
            log("first full frame after %.0f ms" % result["time_to_first_full_frame_ms"])

            # Panning: zoomed in a little so thumbnails are several pixels wide.
            page.evaluate("window.__al.view.debug.zoomBy(2)")
            page.evaluate("window.__al.view.debug.measureFrames(10, 0)")
            pan = page.evaluate("(n) => window.__al.view.debug.measureFrames(n, 3)", pan_frames)
            result["panning"] = summary(pan)
            result["load_average"]["after_panning"] = load_average()
            log("panning: %s" % result["panning"])
            page.evaluate("window.__al.view.debug.zoomBy(0.5)")

            # Layout animation: a live t-SNE session on the server, frames while the map moves.
            page.click("[data-testid=al-layout-toggle]")
            anim = {"note": None}
            try:
                t_start = time.time()
                page.wait_for_function(
                    "(() => { const s = window.__al.view.debug.session(); return s && s.state === 'running' && s.iteration > 0; })()",
                    timeout=300000)
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
            # Responsiveness while the layout animates: a round trip through the page's main thread.
            t = time.time()
            for _ in range(10):
                page.evaluate("1")
            result["layout_animating_page_roundtrip_ms"] = round((time.time() - t) * 100, 1)
            result["memory_end"] = heap_mb(page)
            result["page_errors"] = errors
            browser.close()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logdir", default=os.path.join(tempfile.gettempdir(), "fashion_mnist_logs"),
                    help="Fashion-MNIST logdir; written first when missing (default %(default)s)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "frontend_bench.json"))
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--pan-frames", type=int, default=60)
    ap.add_argument("--anim-seconds", type=float, default=8.0)
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        sys.exit("error: %s not found (apt-get install -y chromium)" % CHROMIUM)
    if not os.path.isdir(args.logdir):
        subprocess.check_call([sys.executable, os.path.join(HERE, "write_fashion_mnist.py"), "--out", args.logdir])
    result = run(args.logdir, args.width, args.height, args.pan_frames, args.anim_seconds)
    result["viewport"] = [args.width, args.height]
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                         "gl": "SwiftShader (software), headless"}
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["load_average"]["end"] = load_average()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    md = os.path.splitext(args.out)[0] + ".md"
    with open(md, "w") as f:
        f.write(markdown(result))
    print(json.dumps(result, indent=2))
    log("wrote %s and %s" % (args.out, md))


def markdown(r):
    """The results as a short Markdown report."""
    def cell(d, k):
        return "-" if not d or d.get(k) is None else str(d[k])

    e = r.get("embedding", {})
    sprite = e.get("sprite") or {}
    la = r.get("load_average", {})
    lines = [
        "# Frontend scale benchmark",
        "",
        "%s; %s, %s cores; %s; %s; viewport %s x %s." % (
            r.get("date"), r["machine"]["platform"], r["machine"]["cpus"], r.get("browser"), r["machine"]["gl"],
            r["viewport"][0], r["viewport"][1]),
        "",
        "Embedding: %s / %s, %s rows x %s dims, every row drawn as its %sx%s thumbnail (%s atlas page(s)); "
        "%s draw calls per frame." % (e.get("run"), e.get("name"), "{:,}".format(e.get("rows") or 0), e.get("dims"),
                                       sprite.get("thumb_width"), sprite.get("thumb_height"), sprite.get("pages"),
                                       r.get("draw_calls_per_frame")),
        "",
        "1-minute load average (2 cores; above 2 the run shared the CPU with other work): "
        + ", ".join("%s %s" % (k.replace("_", " "), v) for k, v in la.items()) + ".",
        "",
        "| measure | value |",
        "|---|---|",
        "| time to first full frame | %s ms |" % r.get("time_to_first_full_frame_ms"),
        "| picker to ready (wall) | %s s |" % r.get("time_to_ready_wall_s"),
    ]
    for name, key in (("panning", "panning"), ("layout animating", "layout_animating")):
        d = r.get(key) or {}
        if d.get("error"):
            lines.append("| %s | %s |" % (name, d["error"]))
            continue
        lines.append("| frame time while %s: median / p95 | %s / %s ms (%s frames) |" % (
            name, cell(d, "median_ms"), cell(d, "p95_ms"), cell(d, "frames")))
    anim = r.get("layout_animating") or {}
    if anim.get("iteration_reached") is not None:
        lines.append("| t-SNE preparation (affinities) before the first frame | %s s |" % r.get("layout_preparation_s"))
        lines.append("| t-SNE iteration reached after %s s of animation | %s |" % (anim.get("seconds"), anim.get("iteration_reached")))
    lines.append("| page round trip while the layout animates | %s ms |" % r.get("layout_animating_page_roundtrip_ms"))
    for when in ("memory_after_load", "memory_end"):
        m = r.get(when) or {}
        lines.append("| JS heap %s: V8 heap / ArrayBuffers | %s / %s MB |" % (
            when.replace("memory_", "").replace("_", " "), m.get("js_heap_used_mb"), m.get("array_buffers_mb")))
    lines.append("| page errors | %s |" % (len(r.get("page_errors") or []) or "none"))
    lines += [
        "",
        "Headless Chromium renders with SwiftShader (software GL) here: compare versions of the code on one machine, "
        "not absolute numbers. Produced by `benchmarks/frontend_bench.py`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
