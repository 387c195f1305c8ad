"""benchmarks/tab_memory.py at CI size: a 3,000-row synthetic embedding, the same steps as at 1M."""
import importlib.util
import os
import threading


def test_tab_memory_benchmark_small_run_measures_every_step():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "tab_memory.py")
    spec = importlib.util.spec_from_file_location("tab_memory", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # In a thread of its own: the sync Playwright API refuses to start where an asyncio loop
    # runs, and other browser tests of the session leave theirs running in this thread.
    out = {}

    def run():
        try:
            out["r"] = bench.main(["--rows", "3000", "--out", "", "--timeout", "120"])
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    r = out["r"]
    assert r["rows"] == 3000 and r["sprite_pages"] == 1
    assert r["page_errors"] == [] and r["messages"] == []
    assert 0 < r["first_frame_s"] <= r["ready_s"]
    assert r["knn_group_s"] > 0, "the kNN group of 100 around row 0 was selected"
    for key in ("peak_while_opening", "after_open_gc", "after_knn"):
        m = r[key]
        # each of the three is rounded to 0.1 MiB on its own
        assert abs(m["heap_plus_buffers_mib"] - m["js_heap_mib"] - m["array_buffers_mib"]) <= 0.15
        assert m["js_heap_mib"] > 0 and m["renderer_rss_mib"] > 0
    frame = r["positions_frame_2d"]
    assert frame["u16_bytes"] * 2 == frame["f32_bytes"] == 3000 * 2 * 4
    # the u16 decode equals the float32 path within half a quantisation step of the normalised map
    assert frame["max_abs_diff"] <= 1 / 65534 + 1e-6
