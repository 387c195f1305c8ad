"""The Suggest panel in a real headless Chromium against a real `tensorboard`:
the classifier trains in the background as labels arrive, uncertainty and
t-SNE suggestions are shown and accepted, predictions show on hover, and a
group the model is sure of is labeled as predicted."""
from tests.e2e.conftest import class_counts, debug, error_messages, open_tab, pick_embedding, wait_for
from tests.e2e.test_labeling_tab import set_iterations


def selection_count(frame):
    return int(frame.text_content("[data-testid=al-selection-count]"))


def classifier(frame):
    el = frame.locator("[data-testid=al-classifier-status]")
    return el.get_attribute("data-status"), el.get_attribute("data-version"), el.text_content()


def label_group(frame, row, k, name):
    frame.fill("[data-testid=al-search]", "#%d" % row)
    frame.press("[data-testid=al-search]", "Enter")
    frame.fill("[data-testid=al-knn-slider]", str(k))
    wait_for(lambda: selection_count(frame) == k + 1, 10, "the group of #%d" % row, frame)
    before = class_counts(frame).get(name, 0)
    frame.fill("[data-testid=al-label-input]", name)
    frame.click("[data-testid=al-apply-label]")
    wait_for(lambda: class_counts(frame).get(name, 0) > before, 15, "the label %s" % name, frame)


def suggestions(frame):
    return frame.eval_on_selector_all(
        "[data-testid=al-suggest-list] [data-row]",
        "els => els.map(e => ({row: Number(e.dataset.row), size: Number(e.dataset.groupSize)}))")


def ask(frame, strategy):
    """Choose a strategy, press Suggest, and wait for the list (or a message)."""
    frame.select_option("[data-testid=al-suggest-strategy]", strategy)
    # The click marks the panel busy at once; wait until the answer is in.
    frame.click("[data-testid=al-suggest-run]")
    wait_for(lambda: frame.text_content("[data-testid=al-suggest-run]") == "Suggest"
             and not frame.is_disabled("[data-testid=al-suggest-run]"), 60, "the suggestions of %s" % strategy, frame)
    return suggestions(frame), frame.text_content("[data-testid=al-suggest-message]")


def accept_first(page, frame):
    items = suggestions(frame)
    assert items, "no suggestions listed"
    first = items[0]
    frame.click("[data-testid=al-suggest-list] [data-row='%d']" % first["row"])
    wait_for(lambda: selection_count(frame) == first["size"], 10, "the group of the first suggestion to be selected", frame)
    assert debug(frame, "d.focus()") == first["row"]
    assert debug(frame, "d.selection()")[0] == first["row"]
    return first


def test_classifier_status_margin_and_tsne_suggestions(page, tb, tmp_path):
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")

    # Nothing labeled: the classifier says it needs labels; uncertainty strategies say why they cannot run.
    wait_for(lambda: classifier(frame)[0] == "needs_labels", 30, "the classifier to ask for labels", frame)
    items, msg = ask(frame, "margin")
    assert items == [] and "2 classes" in msg, msg

    # Label a few points of two classes through the UI (rows 0 and 1 are a 0 and a 1).
    label_group(frame, 0, 5, "zero")
    label_group(frame, 1, 5, "one")
    version = debug(frame, "d.labelVersion()")
    wait_for(lambda: classifier(frame)[0] == "ready" and classifier(frame)[1] == str(version), 60,
             "the classifier to retrain on the new labels", frame)
    assert "ready" in classifier(frame)[2]

    # Margin suggestions: unlabeled rows, listed with thumbnails and marked on the map.
    items, msg = ask(frame, "margin")
    assert len(items) == 10 and msg == "", msg
    assert all(debug(frame, "d.labelOf(args[0])", it["row"]) is None for it in items)
    assert sorted(debug(frame, "d.suggested()")) == sorted(it["row"] for it in items)
    assert frame.locator("[data-testid=al-suggest-list] canvas").count() == 10
    first = accept_first(page, frame)
    assert first["size"] == 1  # uncertainty strategies offer single points

    # Hovering a point shows the classifier's prediction and confidence.
    frame.click("[data-testid=al-clear-selection]")
    debug(frame, "d.resetView()")
    box = frame.locator("[data-testid=al-canvas]").bounding_box()
    x, y = debug(frame, "d.screenOf(args[0])", 0)
    assert 0 < x < box["width"] and 0 < y < box["height"], (x, y, box)
    page.mouse.move(box["x"] + x + 1, box["y"] + y + 1)
    page.mouse.move(box["x"] + x, box["y"] + y)
    frame.wait_for_selector("[data-testid=al-tooltip-predicted]", timeout=10000)
    assert "zero" in frame.text_content("[data-testid=al-tooltip-predicted]")
    assert "%" in frame.text_content("[data-testid=al-tooltip-predicted]")
    page.mouse.move(box["x"] + 5, box["y"] + 5)

    # Colour by prediction and by uncertainty (drawn by the shader; no errors).
    frame.select_option("[data-testid=al-color-by]", "prediction")
    frame.select_option("[data-testid=al-color-by]", "uncertainty")
    assert frame.is_visible("[data-testid=al-uncertainty-legend]")
    frame.select_option("[data-testid=al-color-by]", "label")

    # "Label as predicted": the ten nearest rows of #0 are zeros the model is sure of
    # (with two classes every prediction is at least 50% sure).
    frame.fill("[data-testid=al-sure-threshold]", "50")
    frame.press("[data-testid=al-sure-threshold]", "Enter")
    frame.fill("[data-testid=al-search]", "#0")
    frame.press("[data-testid=al-search]", "Enter")
    frame.fill("[data-testid=al-knn-slider]", "10")
    wait_for(lambda: not frame.is_disabled("[data-testid=al-label-as-predicted]"), 10, "the model to be sure of the group", frame)
    assert frame.get_attribute("[data-testid=al-label-as-predicted]", "data-label") == "zero"
    frame.click("[data-testid=al-label-as-predicted]")
    wait_for(lambda: class_counts(frame).get("zero") == 11, 15, "the group to be labeled zero", frame)

    # t-SNE focus needs a layout: first a clear message, then suggestions from the running layout.
    items, msg = ask(frame, "tsne")
    assert items == [] and "layout" in msg, msg
    set_iterations(frame, 100000)  # still running when the suggestions are asked for
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: int(frame.text_content("[data-testid=al-iteration]") or 0) > 100, 120, "the layout to run", frame)
    assert "running" in frame.text_content("[data-testid=al-layout-state]")
    items, msg = ask(frame, "tsne")
    assert len(items) == 10 and msg == "", msg
    assert any(it["size"] > 1 for it in items), "t-SNE focus suggests groups"
    first = accept_first(page, frame)
    assert first["size"] > 1

    # t-SNE + classifier groups (issue 14): each suggestion is a group the model predicts alike;
    # accepted, it is labeled as predicted in one click.
    version = debug(frame, "d.labelVersion()")
    wait_for(lambda: classifier(frame)[0] == "ready" and classifier(frame)[1] == str(version), 60,
             "the classifier to retrain on the labels so far", frame)
    items, msg = ask(frame, "tsne-assisted")
    assert len(items) == 10 and msg == "", msg
    assert "classifier" in frame.text_content("[data-testid=al-suggest-panel] .al-small")
    first = accept_first(page, frame)
    predicted = frame.get_attribute("[data-testid=al-suggest-list] [data-row='%d']" % first["row"], "data-predicted")
    assert predicted in ("zero", "one")
    wait_for(lambda: not frame.is_disabled("[data-testid=al-label-as-predicted]"), 10,
             "label as predicted to be offered for the suggested group", frame)
    assert frame.get_attribute("[data-testid=al-label-as-predicted]", "data-label") == predicted
    page.screenshot(path=str(tmp_path / "tsne-assisted.png"))
    before = class_counts(frame).get(predicted, 0)
    frame.click("[data-testid=al-label-as-predicted]")
    wait_for(lambda: class_counts(frame).get(predicted, 0) == before + first["size"], 15,
             "the suggested group to be labeled %s" % predicted, frame)
    assert error_messages(frame) == []
    assert page.errors == []
