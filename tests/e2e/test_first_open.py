"""The first minutes with the tab (issue 11, defects 8 and 9, and the first layout's progress):

- one embedding opens straight on the map; with several the tab reopens the one
  last used in this browser for this log directory, and falls back to the table
  when that one is gone;
- "hide dark pixels" is chosen from the thumbnails' background (dark: just above
  it; light: off), says so, and remembers the user's own setting per embedding;
- the progress bar names the preparation step, and the first t-SNE frames unfold
  from the PCA preview instead of scattering the thumbnails.
"""
import os
import shutil

import numpy as np
import pytest

from tests.e2e.conftest import debug, open_tab, pick_embedding, wait_for, wait_ready
from tests.tbserver import TensorBoard

SELECT = "[data-testid=al-embedding-select]"
NOTE = "[data-testid=al-threshold-note]"


def _shapes(n, light, seed=0):
    """n 16 x 16 RGB thumbnails: a square of one of a few grey levels on a plain
    background (white on black, or black on white)."""
    rng = np.random.default_rng(seed)
    img = np.full((n, 16, 16, 3), 255 if light else 0, np.uint8)
    for i in range(n):
        y, x = rng.integers(3, 8, size=2)
        img[i, y:y + 6, x:x + 6] = 40 if light else 220
    return img


def _write(logdir, name, n=60, light=False, seed=0):
    from tensorboard_al_plugin import write_embedding

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    write_embedding(str(logdir), x, name=name, run=name, images=_shapes(n, light, seed))


def _same_port(logdir, port):
    """A tensorboard on `port` (localStorage belongs to the origin, so a 'reload'
    after a restart must come back to the same port)."""
    tb = TensorBoard(str(logdir), without_tensorflow=True)
    tb.port, tb.url = port, "http://127.0.0.1:%d" % port
    return tb


def _shown(frame):
    """'map:<run>/<name>' when the labeling view is open, else 'table'."""
    frame.wait_for_selector("[data-testid=al-labeling-view], [data-testid=al-embedding-list]")
    if frame.locator("[data-testid=al-labeling-view]").count():
        return "map:" + frame.eval_on_selector(SELECT, "s => s.value").replace("\u0000", "/")
    return "table"


def _open_map(frame, title):
    """The labeling view of `title`, picked in the drop-down only if the tab did not open it
    by itself (so that these tests check their own feature, not the one above)."""
    if _shown(frame) == "table":
        pick_embedding(frame, title)
    wait_ready(frame)


def _reload(page, url):
    """Open the tab afresh (a new page load, the browser's storage kept)."""
    page.goto("about:blank")
    return open_tab(page, url)


# ------------------------------------------------------------------ defect 9

def test_one_embedding_opens_straight_on_the_map(tb, page):
    frame = open_tab(page, tb.url)
    wait_ready(frame)
    assert _shown(frame) == "map:digits/digits"
    assert frame.locator("[data-testid=al-embedding-list]").count() == 0


def test_several_embeddings_reopen_the_last_used_per_logdir_and_fall_back_when_gone(tmp_path, page):
    a, b = tmp_path / "a", tmp_path / "b"
    for logdir in (a, b):
        _write(logdir, "alpha", seed=1)
        _write(logdir, "beta", seed=2)
    with TensorBoard(str(a), without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        port = tb.port
        frame = open_tab(page, tb.url)
        assert _shown(frame) == "table"          # nothing used yet: the table
        frame.click("[data-testid=al-embedding-row][data-name=beta]")
        wait_ready(frame)
        frame = _reload(page, tb.url)
        wait_ready(frame)
        assert _shown(frame) == "map:beta/beta"  # a reload reopens beta

    # Another log directory on the same address has its own memory: the table, not a's beta.
    with _same_port(b, port) as tb:
        tb.wait_for_embeddings()
        frame = _reload(page, tb.url)
        assert _shown(frame) == "table"

    # beta vanished from a (gamma came instead): back to the table, nothing opened in its place.
    shutil.rmtree(a / "beta")
    _write(a, "gamma", seed=3)
    with _same_port(a, port) as tb:
        assert sorted(e["name"] for e in tb.wait_for_embeddings()["embeddings"]) == ["alpha", "gamma"]
        frame = _reload(page, tb.url)
        assert _shown(frame) == "table"


# ------------------------------------------------------------------ defect 8

def test_dark_sprite_hides_its_background_by_default_and_a_user_setting_is_remembered(tb, page):
    frame = open_tab(page, tb.url)
    _open_map(frame, "digits")
    wait_for(lambda: frame.get_attribute(NOTE, "data-mode") == "dark", 15, "the background estimate", frame)
    note = frame.text_content(NOTE)
    auto = debug(frame, "d.threshold()")
    assert note == "auto: dark background detected (%.2f)" % auto, note
    # the digits' background is pure black: the default sits just above it
    assert 0 < auto <= 0.1
    assert float(frame.input_value("[data-testid=al-threshold]")) == pytest.approx(auto)
    shot = os.environ.get("AL_SHOT_DIR")
    if shot:
        page.screenshot(path=os.path.join(shot, "threshold_dark.png"))

    # The user's own setting wins, says so, and survives a reload.
    frame.fill("[data-testid=al-threshold]", "0.3")
    wait_for(lambda: debug(frame, "d.threshold()") == pytest.approx(0.3), 5, "the user's threshold", frame)
    assert frame.text_content(NOTE).startswith("yours (0.30); auto would be %.2f" % auto)
    frame = _reload(page, tb.url)
    _open_map(frame, "digits")
    wait_for(lambda: frame.get_attribute(NOTE, "data-mode") == "user", 15, "the remembered setting", frame)
    assert debug(frame, "d.threshold()") == pytest.approx(0.3)
    assert float(frame.input_value("[data-testid=al-threshold]")) == pytest.approx(0.3)
    # "use auto" forgets it
    frame.click("[data-testid=al-threshold-auto]")
    assert debug(frame, "d.threshold()") == pytest.approx(auto)
    assert frame.get_attribute(NOTE, "data-mode") == "dark"
    frame = _reload(page, tb.url)
    _open_map(frame, "digits")
    wait_for(lambda: frame.get_attribute(NOTE, "data-mode") == "dark", 15, "the automatic setting", frame)


def test_light_sprite_keeps_every_pixel_and_says_why(tmp_path, page):
    _write(tmp_path, "paper", n=80, light=True)
    with TensorBoard(str(tmp_path), without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        frame = open_tab(page, tb.url)
        _open_map(frame, "paper")
        wait_for(lambda: frame.get_attribute(NOTE, "data-mode") == "light", 15, "the background estimate", frame)
        assert frame.text_content(NOTE) == "auto: light background, nothing hidden (0)"
        assert debug(frame, "d.threshold()") == 0


# ------------------------------------------------------- first layout: progress and PCA -> t-SNE

PHASE_TEXT = ("Loading the features", "Nearest neighbours", "Affinities", "PCA initialisation",
              "First t-SNE iterations")
ROWS = [3, 100, 250, 400, 600, 800, 1000, 1200, 1400, 1700]

# Records, every animation frame, where the sample rows are drawn and where they head, and
# every text the progress bar shows.
RECORD = """([rows]) => {
  const d = window.__al.view.debug;
  window.__rec = [];
  window.__texts = [];
  const el = document.querySelector("[data-testid=al-progress-text]");
  new MutationObserver(() => window.__texts.push(el.textContent)).observe(el, {childList: true, characterData: true, subtree: true});
  const all = Array.from({length: d.rows()}, (_, i) => i);
  window.__first = null;
  const tick = (now) => {
    const source = d.positionsSource();
    window.__rec.push({t: now, source, drawn: d.drawnAt(rows), to: d.headingTo(rows)});
    if (source === "session" && window.__first === null) window.__first = d.headingTo(all);
    if (window.__rec.length < 3000) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def _dist(a, b):
    return float(np.mean(np.linalg.norm(np.asarray(a)[:, :2] - np.asarray(b)[:, :2], axis=1)))


def _sq(a, b):
    return float(np.sum((a - b) ** 2))


def test_progress_names_the_phase_and_the_pca_preview_unfolds_into_the_tsne(tb, page):
    frame = open_tab(page, tb.url)
    _open_map(frame, "digits")
    assert debug(frame, "d.positionsSource()") == "client-pca"
    preview = debug(frame, "d.drawnAt(args[0])", ROWS)
    preview_all = np.asarray(debug(frame, "d.drawnAt(Array.from({length: d.rows()}, (_, i) => i))"))[:, :2]
    frame.evaluate(RECORD, [ROWS])
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: (debug(frame, "d.session()") or {}).get("iteration", 0) > 60, 120, "the t-SNE to run", frame)
    page.wait_for_timeout(300)
    texts = frame.evaluate("() => window.__texts")
    rec = frame.evaluate("() => window.__rec")

    # The bar named the step under way (the server's phase), not just "preparing".
    named = [t for t in texts if t.startswith(PHASE_TEXT)]
    assert named, texts

    before = [r for r in rec if r["source"] != "session"]
    after = [r for r in rec if r["source"] == "session"]
    assert before and after
    # While the layout prepared, the map kept showing the PCA preview.
    for r in before:
        assert _dist(r["drawn"], preview) < 1e-6
    t0 = after[0]["t"]
    first_target = after[0]["to"]
    # No jump: the first frame drawn after the t-SNE's first frame arrived is still where
    # the preview was ...
    assert _dist(after[0]["drawn"], preview) < 0.05
    # ... and the t-SNE's first frame is turned to match the preview: of its axes flipped or
    # swapped every way, the one drawn lies nearest over all rows, in squared distance (a
    # PCA init whose axes came out flipped against the preview's would send every thumbnail
    # across the map).
    ft = np.asarray(frame.evaluate("() => window.__first"))[:, :2]
    turns = [ft * [sx, sy] for sx in (1, -1) for sy in (1, -1)]
    turns += [t[:, ::-1] for t in turns]
    assert _sq(ft, preview_all) <= min(_sq(t, preview_all) for t in turns) * (1 + 1e-6)
    # The thumbnails travel there over several frames: at two moments in the transition they
    # are neither at the preview nor where the frames lead yet.
    between = [r for r in after if r["t"] - t0 < 800
               and _dist(r["drawn"], preview) > 0.005 and _dist(r["drawn"], r["to"]) > 0.005]
    assert len(between) >= 2, [(round(r["t"] - t0), _dist(r["drawn"], preview), _dist(r["drawn"], r["to"]))
                               for r in after[:20]]
    assert between[-1]["t"] - between[0]["t"] > 0
    # ... and go on with the t-SNE's own frames.
    assert _dist(rec[-1]["to"], first_target) > 0.01
    assert not page.errors
