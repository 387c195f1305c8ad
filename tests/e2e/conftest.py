"""Fixtures for the end-to-end tests: a real `tensorboard` on a private copy of
demo_logs, and Debian's headless Chromium driven by Playwright (never a
downloaded browser)."""
import os
import re
import time

import pytest

from tests.tbserver import TensorBoard

CHROMIUM = os.environ.get("AL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TAB = "active_labeling"


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not found at %s (apt-get install -y chromium)" % CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()


@pytest.fixture
def tb(demo_logdir):
    """`tensorboard --logdir` on a private copy of demo_logs, with TensorFlow hidden
    (TensorBoard then reads files through its own stub layer, as in an install
    without TensorFlow): it starts in about a second instead of eight."""
    with TensorBoard(demo_logdir, without_tensorflow=True) as server:
        server.wait_for_embeddings()
        yield server


@pytest.fixture
def tb_tf(demo_logdir):
    """The same with TensorFlow importable, as most users run it."""
    with TensorBoard(demo_logdir) as server:
        server.wait_for_embeddings()
        yield server


def open_tab(page, url, timeout_s=60.0):
    """Open TensorBoard's Active Labeling tab; return the plugin's iframe."""
    page.goto(url + "/#" + TAB)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for f in page.frames:
            if "plugin_entry.html" in f.url and "name=" + TAB in f.url:
                f.wait_for_selector("[data-testid=al-embedding-select]", timeout=timeout_s * 1000)
                return f
        # Not time.sleep: Playwright only processes frame events inside its own calls.
        page.wait_for_timeout(200)
    raise AssertionError("the Active Labeling iframe did not appear; frames: %s" % [f.url for f in page.frames])


def pick_embedding(frame, title="digits"):
    """Choose an embedding in the picker by its title and wait until the map is complete."""
    options = frame.eval_on_selector_all(
        "[data-testid=al-embedding-select] option", "els => els.map(e => [e.value, e.textContent])")
    value = next(v for v, text in options if re.match(re.escape(title) + r" \(", text))
    frame.select_option("[data-testid=al-embedding-select]", value=value)
    wait_ready(frame)


def wait_ready(frame, timeout_s=60.0):
    frame.wait_for_selector("[data-testid=al-labeling-view][data-ready=true]", timeout=timeout_s * 1000)


def class_counts(frame):
    return dict(frame.eval_on_selector_all(
        "[data-testid=al-class-list] li[data-class]",
        "els => els.map(e => [e.dataset.class, Number(e.dataset.count)])"))


def wait_for(fn, timeout_s=30.0, what="condition", frame=None):
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    shown = error_messages(frame) if frame is not None else []
    raise AssertionError("timed out waiting for %s (last value %r); messages in the tab: %s" % (what, last, shown))


def error_messages(frame):
    """Error banners the tab shows (each one clear sentence)."""
    return frame.eval_on_selector_all("[data-testid=al-error]", "els => els.map(e => e.textContent)")


def canvas_box(frame):
    return frame.locator("[data-testid=al-canvas]").bounding_box()


def debug(frame, expr, *args):
    """Evaluate `expr` with the tab's inspection hooks bound to `d`."""
    return frame.evaluate("([args]) => { const d = window.__al.view.debug; return (%s); }" % expr, [list(args)])
