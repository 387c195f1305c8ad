"""An embedding of 200,000 rows with 28 x 28 thumbnails in the tab (issue 13, "done when"):
real headless Chromium against a real tensorboard on a log directory the test writes
itself (synthetic clusters, small thumbnails, the package's writer: seconds).

It opens (PCA preview, then every sprite page), the map shows thumbnails, a click
focuses a row with its feature-space kNN group (asked of the server: the tab holds no
features), a label goes to the group and is saved (a second tensorboard reads it from
disk), and the browser's JS heap + ArrayBuffers are printed."""
import importlib.util
import io
import os

import numpy as np
import pytest

from tests.e2e.conftest import canvas_box, class_counts, debug, error_messages, open_tab, wait_for, wait_ready
from tests.tbserver import PLUGIN, TensorBoard

ROWS = 200_000
DIMS = 50
LABEL = "big-group"


def _bench():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "tab_memory.py")
    spec = importlib.util.spec_from_file_location("tab_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def big_logdir(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("big"))
    _bench().write_synthetic(logdir, ROWS, dims=DIMS)
    return logdir


def _non_background_share(png: bytes) -> float:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(pixels - background).sum(axis=1) > 30).mean())


def test_200k_rows_open_show_thumbnails_select_knn_and_label_is_saved(page, big_logdir, tmp_path):
    bench = _bench()
    with TensorBoard(big_logdir, without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        frame = open_tab(page, tb.url)
        options = frame.eval_on_selector_all("[data-testid=al-embedding-select] option",
                                             "els => els.map(e => [e.value, e.textContent])")
        value = next(v for v, text in options if text.startswith("synthetic ("))
        baseline = bench.browser_memory(page, gc=True)
        frame.select_option("[data-testid=al-embedding-select]", value=value)
        wait_for(lambda: debug(frame, "d.positionsSource()") == "client-pca", 120, "the PCA preview", frame)
        wait_ready(frame, timeout_s=180)
        assert debug(frame, "d.rows()") == ROWS
        # What the open embedding adds to the page (JS heap + ArrayBuffers, after a GC) stays below
        # the float32 features alone: the tab no longer downloads them (before: +49 MiB here).
        opened = bench.browser_memory(page, gc=True)
        added = opened["heap_plus_buffers_mib"] - baseline["heap_plus_buffers_mib"]
        features_mib = ROWS * DIMS * 4 / 2 ** 20
        assert added < features_mib, "the open embedding holds %.0f MiB, the features are %.0f" % (added, features_mib)

        # The map shows: thumbnails cover a good part of the canvas (looked at: big_map.png).
        wait_for(lambda: not debug(frame, "d.animating()"), 30, "the preview to settle", frame)
        shot = frame.locator("[data-testid=al-canvas]").screenshot()
        out_dir = os.environ.get("AL_SCREENSHOT_DIR", str(tmp_path))
        with open(os.path.join(out_dir, "big_map.png"), "wb") as f:
            f.write(shot)
        covered = _non_background_share(shot)
        assert covered > 0.05, "only %.1f%% of the map differs from its background" % (100 * covered)

        # A click on the map focuses the row under the pointer with its 20 nearest rows in feature space.
        box = canvas_box(frame)
        x, y = debug(frame, "d.screenOf(args[0])", 0)
        page.mouse.click(box["x"] + x, box["y"] + y)
        focus = wait_for(lambda: debug(frame, "d.focus()") >= 0 and debug(frame, "d.focus()") + 1, 10,
                         "a focused row", frame) - 1
        wait_for(lambda: int(frame.text_content("[data-testid=al-selection-count]")) == 21, 20,
                 "the focus and its 20 neighbours", frame)
        r = tb.get(PLUGIN + "/neighbours?run=.&embedding=synthetic&row=%d&k=20" % focus)
        assert r.status == 200, r.body
        group = sorted(debug(frame, "d.selection()"))
        assert group == sorted([focus] + np.frombuffer(r.body, "<u4").tolist())

        frame.fill("[data-testid=al-label-input]", LABEL)
        frame.click("[data-testid=al-apply-label]")
        wait_for(lambda: class_counts(frame).get(LABEL) == 21, 30, "the legend to count 21", frame)
        labeled = bench.browser_memory(page, gc=True)
        assert error_messages(frame) == [] and page.errors == []

    # Saved: a fresh tensorboard reads the label from the log directory.
    with TensorBoard(big_logdir, without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        labels = tb.get_json(PLUGIN + "/labels?run=.&embedding=synthetic")["labels"]
    assert sorted(i for i, label in enumerate(labels) if label == LABEL) == group

    print("\n200k x %d in the tab, JS heap + ArrayBuffers after GC: %.0f MiB before opening, %.0f opened (+%.0f), "
          "%.0f labeled; renderer %.0f MiB, GPU process %.0f MiB resident"
          % (DIMS, baseline["heap_plus_buffers_mib"], opened["heap_plus_buffers_mib"], added,
             labeled["heap_plus_buffers_mib"], labeled["renderer_rss_mib"], labeled["gpu_rss_mib"]))
