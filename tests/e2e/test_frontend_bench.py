"""The frontend benchmark's small version (CI): benchmarks/frontend_bench.py run on the
demo's digits in real headless Chromium, a few frames per view. It checks what the
benchmark computes, never a timing: the layout-space kNN groups, boxes and lassos the tab
answered with its spatial index are those a brute-force scan of every row gives, every
view was drawn, and the pages loaded are within the memory budget."""
import importlib.util
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _bench():
    path = os.path.join(HERE, "..", "..", "benchmarks", "frontend_bench.py")
    spec = importlib.util.spec_from_file_location("frontend_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point_in_polygon(x, y, poly):
    inside = False
    n = len(poly) // 2
    j = n - 1
    for i in range(n):
        xi, yi, xj, yj = poly[2 * i], poly[2 * i + 1], poly[2 * j], poly[2 * j + 1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def test_small_frontend_benchmark_answers_selections_as_brute_force_does(demo_logdir, browser):
    bench = _bench()
    r = bench.run(demo_logdir, 1400, 900, pan_frames=3, anim_seconds=1.0, live_layout=False,
                  select_rows=[0, 500, 1200], record_positions=True, embedding="digits", browser=browser)
    assert r["page_errors"] == []
    n = r["embedding"]["rows"]
    pos = r["positions_at_selection"]
    layout = np.asarray(pos["layout"], dtype=np.float32).reshape(n, 3).astype(np.float64)
    screen = pos["screen"]
    w, h = pos["size"]

    # kNN in the layout: the focus and its k nearest rows (ties in row order).
    for k in (20, 1000):
        got = r["selection"]["knn k=%d" % k]
        for focus, count, total in zip(got["focus_rows"], got["rows"], got["sums"]):
            d = ((layout - layout[focus]) ** 2).sum(axis=1)
            order = [i for i in np.lexsort((np.arange(n), d)) if i != focus][:k]
            assert count == k + 1
            assert total == focus + sum(int(i) for i in order)

    # Box: rows whose centre is inside the screen rectangle.
    box = r["selection"]["box"]
    x0, y0, x1, y1 = (box["region"][0] * w, box["region"][1] * h, box["region"][2] * w, box["region"][3] * h)
    inside = [i for i, p in enumerate(screen) if p and x0 <= p[0] <= x1 and y0 <= p[1] <= y1]
    assert len(inside) > 10, "the box holds rows"
    assert box["rows"] == [len(inside)] * 3
    assert box["sums"] == [sum(inside)] * 3

    # Lasso: the benchmark's 64-corner star.
    lasso = r["selection"]["lasso"]
    cx, cy, rad = lasso["region"]
    poly = []
    for i in range(64):
        a = i / 64 * 2 * math.pi
        rr = (0.7 if i % 2 else 1.0) * rad * h
        poly += [w * cx + rr * math.cos(a), h * cy + rr * math.sin(a)]
    inside = [i for i, p in enumerate(screen) if p and _point_in_polygon(p[0], p[1], poly)]
    assert len(inside) > 10, "the lasso holds rows"
    assert lasso["rows"] == [len(inside)] * 3
    assert lasso["sums"] == [sum(inside)] * 3

    # Every view was drawn; close up, thumbnails from the loaded page, within the budget.
    for view, v in r["panning"].items():
        assert v["frames"] == 3, view
    close = r["panning"]["thumbnails 24 px"]
    assert close["lod"] == "thumbnails" and close["pages_loaded"]
    assert 0 < close["texture_mb"] <= 1024 * 1024 * 1024 / 1e6
    assert r["memory_end"]["tab_mb"] > 0
    # The report renders.
    text = bench.markdown({"runs": [dict(r, viewport=[1400, 900], machine={"cpus": 2}, date="now", code="test")]})
    assert "select: box" in text and "pan frame, thumbnails 24 px" in text
