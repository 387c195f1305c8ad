"""A UMAP layout started from the tab, in a real headless Chromium against a real
`tensorboard` on a copy of demo_logs (digits, 1,797 images). Skipped without umap-learn."""
import os

import pytest

from tests.e2e.conftest import class_counts, debug, error_messages, open_tab, pick_embedding, wait_for

pytest.importorskip("umap")

ROWS = [0, 1, 2, 3, 500, 1000, 1796]
SHOT = os.environ.get("AL_UMAP_SCREENSHOT")  # a path: save the finished UMAP there


def epoch(frame):
    return int(frame.text_content("[data-testid=al-iteration]") or 0)


def test_umap_from_the_method_list_moves_the_thumbnails_and_finishes(page, tb):
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")
    wait_for(lambda: debug(frame, "d.positionsSource()") == "client-pca", 60, "the PCA preview", frame)

    # Choosing UMAP shows its parameters (from GET layout/schema) instead of t-SNE's.
    frame.select_option("[data-testid=al-layout-method]", "umap")
    assert frame.is_visible("[data-testid=al-param-n_neighbors]")
    assert not frame.is_visible("[data-testid=al-param-perplexity]")
    assert frame.text_content("[data-testid=al-layout-advanced] summary") == "more UMAP parameters"
    assert frame.text_content("[data-testid=al-layout-toggle]") == "Start UMAP"
    frame.click("[data-testid=al-layout-advanced] summary")
    assert frame.is_visible("[data-testid=al-param-label_weight]")
    assert not frame.is_visible("[data-testid=al-param-theta]")
    # the schema's label and bounds: a weight above 1 is refused in the field
    assert frame.text_content("[data-testid=al-param-label_weight] >> xpath=..").startswith("label weight")
    frame.fill("[data-testid=al-param-label_weight]", "1.5")
    frame.dispatch_event("[data-testid=al-param-label_weight]", "change")
    assert frame.input_value("[data-testid=al-param-label_weight]") == "0.5"
    frame.fill("[data-testid=al-param-n_epochs]", "300")
    frame.dispatch_event("[data-testid=al-param-n_epochs]", "change")

    preview = debug(frame, "d.headingTo(args[0])", ROWS)
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: epoch(frame) > 0, 180, "the first UMAP epochs", frame)
    assert "UMAP 2D" in frame.text_content("[data-testid=al-layout-state]")
    wait_for(lambda: debug(frame, "d.positionsSource()") == "session", 60, "the UMAP frames", frame)
    wait_for(lambda: "done" in frame.text_content("[data-testid=al-layout-state]"), 180, "UMAP to finish", frame)
    assert epoch(frame) == 300
    assert frame.text_content("[data-testid=al-layout-toggle]") == "Continue UMAP"
    wait_for(lambda: not debug(frame, "d.animating()"), 20, "the map to settle", frame)
    final = debug(frame, "d.headingTo(args[0])", ROWS)
    assert final != preview  # the thumbnails moved from the PCA preview to the UMAP
    session = debug(frame, "d.session()")
    assert session["method"] == "umap" and session["params"]["n_epochs"] == 300
    # UMAP counts epochs, computes no KL, and says what labels do to it
    assert frame.text_content("[data-testid=al-iteration-label]") == "epoch"
    assert frame.is_visible("[data-testid=al-umap-note]")
    assert "more epochs from the current map" in frame.text_content("[data-testid=al-umap-note]")
    assert not frame.is_visible("[data-testid=al-objective]")
    if SHOT:
        page.screenshot(path=SHOT)

    # Labels applied while it is done start a new pass: the epochs go on and rows move again.
    frame.fill("[data-testid=al-search]", "#0")
    frame.press("[data-testid=al-search]", "Enter")
    frame.fill("[data-testid=al-knn-value]", "40")
    frame.press("[data-testid=al-knn-value]", "Enter")
    wait_for(lambda: int(frame.text_content("[data-testid=al-selection-count]")) == 41, 15, "the group of #0",
             frame)
    frame.fill("[data-testid=al-label-input]", "zero")
    frame.click("[data-testid=al-apply-label]")
    wait_for(lambda: class_counts(frame).get("zero") == 41, 15, "the group to be labeled", frame)
    wait_for(lambda: epoch(frame) > 300, 60, "a new UMAP pass after labeling", frame)
    wait_for(lambda: "done" in frame.text_content("[data-testid=al-layout-state]"), 120, "the new pass to finish",
             frame)
    assert epoch(frame) == 600
    assert error_messages(frame) == [] and page.errors == []
