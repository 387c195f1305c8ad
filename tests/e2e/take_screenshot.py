"""Take docs/screenshot.png (1440 x 900): the tab on the digits demo, partly
labeled, with a finished semi-supervised t-SNE, t-SNE focus suggestions in the
Suggest panel (and ringed on the map), a kNN group selected and a hover preview
with the classifier's prediction.

    .venv/bin/python tests/e2e/take_screenshot.py [--out docs/screenshot.png]

Works on a private copy of demo_logs (the bundled demo stays unlabeled).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    class_counts,
    error_messages,
    open_tab,
    pick_embedding,
    wait_for,
)
from tests.tbserver import TensorBoard  # noqa: E402

# Rows 0..9 of the digits are the digits 0..9: label a kNN group around each of the first six.
NAMES = ["zero", "one", "two", "three", "four", "five"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshot.png"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = tempfile.mkdtemp(prefix="al-shot-")
    logdir = os.path.join(tmp, "demo_logs")
    shutil.copytree(os.path.join(ROOT, "demo_logs"), logdir)
    try:
        with TensorBoard(logdir) as tb, sync_playwright() as p:
            tb.wait_for_embeddings()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            frame = open_tab(page, tb.url)
            pick_embedding(frame, "digits")

            def select_group(row, k):
                frame.fill("[data-testid=al-search]", "#%d" % row)
                frame.press("[data-testid=al-search]", "Enter")
                frame.fill("[data-testid=al-knn-value]", str(k))
                frame.press("[data-testid=al-knn-value]", "Enter")
                wait_for(lambda: int(frame.text_content("[data-testid=al-selection-count]")) == k + 1, 15,
                         "the group of #%d" % row, frame)

            for row, name in enumerate(NAMES):
                select_group(row, 40)
                frame.fill("[data-testid=al-label-input]", name)
                frame.press("[data-testid=al-label-input]", "Enter")
                wait_for(lambda: class_counts(frame).get(name, 0) > 0, 15, "label %s" % name, frame)

            # A full semi-supervised t-SNE with those labels (1,000 iterations).
            frame.click("[data-testid=al-layout-toggle]")
            wait_for(lambda: "done" in frame.text_content("[data-testid=al-layout-state]"), 300,
                     "the layout to finish", frame)
            wait_for(lambda: frame.get_attribute("[data-testid=al-classifier-status]", "data-status") == "ready",
                     120, "the classifier", frame)

            # What to label next: t-SNE focus suggestions.
            frame.select_option("[data-testid=al-suggest-strategy]", "tsne")
            frame.click("[data-testid=al-suggest-run]")
            wait_for(lambda: frame.locator("[data-testid=al-suggest-list] [data-row]").count() > 0, 60,
                     "suggestions", frame)

            # A fresh kNN group to label next: row 8 is an 8.
            select_group(8, 30)
            frame.fill("[data-testid=al-label-input]", "eight")
            # Colour the map by the classifier's predicted class; hide the digits' dark background.
            frame.select_option("[data-testid=al-color-by]", os.environ.get("AL_SHOT_COLOR", "prediction"))
            frame.fill("[data-testid=al-threshold]", os.environ.get("AL_SHOT_THRESHOLD", "0.1"))
            frame.uncheck("[data-testid=al-dim-others]")
            frame.evaluate("document.activeElement && document.activeElement.blur()")
            frame.evaluate("window.__al.view.debug.resetView()")
            time.sleep(1.0)
            # Hover the last suggestion to show the preview with the classifier's prediction.
            hover = int(frame.locator("[data-testid=al-suggest-list] [data-row]").last.get_attribute("data-row"))
            box = frame.locator("[data-testid=al-canvas]").bounding_box()
            pos = frame.evaluate("row => window.__al.view.debug.screenOf(row)", hover)
            if pos:
                page.mouse.move(box["x"] + pos[0] + 1, box["y"] + pos[1] + 1)
                page.mouse.move(box["x"] + pos[0], box["y"] + pos[1])
            time.sleep(1.5)
            assert error_messages(frame) == [], error_messages(frame)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            page.screenshot(path=args.out)
            browser.close()
        print("wrote", args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
