"""The labeling tab in a real headless Chromium against a real `tensorboard`
on a copy of demo_logs (digits, 1,797 images)."""
import csv
import io

from tests.e2e.conftest import (
    canvas_box,
    class_counts,
    debug,
    open_tab,
    pick_embedding,
    wait_for,
    wait_ready,
)


def iteration(frame):
    return int(frame.text_content("[data-testid=al-iteration]") or 0)


def selection_count(frame):
    return int(frame.text_content("[data-testid=al-selection-count]"))


def set_iterations(frame, n):
    """The t-SNE iteration budget (under "more t-SNE parameters"); 1,797 digits take ~5 s per 1,000."""
    if not frame.is_visible("[data-testid=al-param-n_iter]"):
        frame.click("[data-testid=al-layout-advanced] summary")
    frame.fill("[data-testid=al-param-n_iter]", str(n))
    frame.press("[data-testid=al-param-n_iter]", "Enter")
    frame.dispatch_event("[data-testid=al-param-n_iter]", "change")


def start_layout_and_see_it_advance(frame):
    frame.click("[data-testid=al-layout-toggle]")
    first = wait_for(lambda: iteration(frame) > 0 and iteration(frame), 120, "the iteration counter to start", frame)
    wait_for(lambda: iteration(frame) > first, 60, "the iteration counter to advance", frame)


def test_digits_label_knn_group_undo_redo_reload_export(page, tb_tf):
    tb = tb_tf
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")

    set_iterations(frame, 2000)  # long enough to watch it advance
    start_layout_and_see_it_advance(frame)

    frame.fill("[data-testid=al-search]", "#0")
    frame.press("[data-testid=al-search]", "Enter")
    frame.fill("[data-testid=al-knn-slider]", "20")
    wait_for(lambda: selection_count(frame) == 21, 10, "21 selected (row 0 and its 20 neighbours)")
    assert debug(frame, "d.focus()") == 0
    group = debug(frame, "d.selection()")
    assert group[0] == 0 and len(set(group)) == 21

    frame.fill("[data-testid=al-label-input]", "zero")
    frame.click("[data-testid=al-apply-label]")
    wait_for(lambda: class_counts(frame).get("zero") == 21, 15, "the legend to count 21 zeros")

    frame.click("[data-testid=al-undo]")
    wait_for(lambda: class_counts(frame).get("zero", 0) == 0, 15, "undo to bring the count to 0")
    frame.click("[data-testid=al-redo]")
    wait_for(lambda: class_counts(frame).get("zero") == 21, 15, "redo to bring the count back to 21")

    # Labels live on the server: a reload shows them again (the tab reopens the same embedding).
    page.reload()
    frame = open_tab(page, tb.url)
    wait_ready(frame)
    wait_for(lambda: class_counts(frame).get("zero") == 21, 15, "the label to survive a reload")
    assert debug(frame, "d.labelOf(0)") == "zero"
    # Undo history is on the server too: undo works after the reload.
    assert not frame.is_disabled("[data-testid=al-undo]")

    with page.expect_download() as dl:
        frame.click("[data-testid=al-export]")
    path = dl.value.path()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    labeled = {int(r["index"]): r["label"] for r in rows if r["label"]}
    assert sorted(labeled) == sorted(group)
    assert set(labeled.values()) == {"zero"}
    assert "digit" in rows[0], "metadata columns are exported next to the label"
    assert page.errors == []


def test_3d_layout_orbit_box_and_lasso_selection(page, tb):
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")

    frame.select_option("[data-testid=al-layout-dims]", "3")
    set_iterations(frame, 100000)  # runs until paused
    start_layout_and_see_it_advance(frame)
    assert "3D" in frame.text_content("[data-testid=al-layout-state]")
    # Pause so positions hold still while selecting.
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: "paused" in frame.text_content("[data-testid=al-layout-state]"), 30, "the layout to pause")
    wait_for(lambda: not debug(frame, "d.animating()"), 10, "the animation to settle")

    box = canvas_box(frame)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    # Orbit: dragging with the pan tool rotates the 3D view, so row 0 moves on screen.
    before = debug(frame, "d.screenOf(0)")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 10, steps=6)
    page.mouse.up()
    after = debug(frame, "d.screenOf(0)")
    assert before != after

    # Box selection: every selected row is inside the rectangle, and some are.
    frame.click("[data-testid=al-tool-box]")
    x0, y0, x1, y1 = cx - 120, cy - 90, cx + 120, cy + 90
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    n_box = wait_for(lambda: selection_count(frame), 10, "a box selection")
    for row in debug(frame, "d.selection()"):
        sx, sy = debug(frame, "d.screenOf(args[0])", row)
        assert x0 - 1 <= box["x"] + sx <= x1 + 1 and y0 - 1 <= box["y"] + sy <= y1 + 1

    # Lasso: a triangle left of the centre replaces the selection...
    frame.click("[data-testid=al-tool-lasso]")
    tri = [(cx - 200, cy - 150), (cx - 10, cy), (cx - 200, cy + 150)]
    page.mouse.move(*tri[0])
    page.mouse.down()
    for p in tri[1:] + [tri[0]]:
        page.mouse.move(*p, steps=8)
    page.mouse.up()
    n_lasso = wait_for(lambda: selection_count(frame), 10, "a lasso selection")
    lasso_rows = debug(frame, "d.selection()")
    for row in lasso_rows:
        sx, sy = debug(frame, "d.screenOf(args[0])", row)
        assert box["x"] + sx <= cx, "a lasso row lies right of the triangle"

    # ...and with shift it adds to it.
    page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    frame.click("[data-testid=al-tool-box]")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()
    page.keyboard.up("Shift")
    combined = wait_for(lambda: selection_count(frame) > n_lasso and selection_count(frame), 10, "shift-box to add")
    assert combined <= n_lasso + n_box

    # Label the group with the keyboard flow: type, Enter.
    frame.fill("[data-testid=al-label-input]", "blob")
    frame.press("[data-testid=al-label-input]", "Enter")
    wait_for(lambda: class_counts(frame).get("blob") == combined, 15, "the group to be labeled")
    assert page.errors == []


def test_start_continues_a_finished_layout_and_only_restart_restarts(page, tb):
    """Issue 11, defect 3: "Start" on a finished t-SNE threw it away (iteration 1900 -> 8)."""
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")
    set_iterations(frame, 300)
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: "done" in frame.text_content("[data-testid=al-layout-state]"), 180, "the layout to finish", frame)
    finished = iteration(frame)
    assert finished >= 300
    assert frame.text_content("[data-testid=al-layout-toggle]") == "Continue t-SNE"
    frame.click("[data-testid=al-layout-toggle]")
    wait_for(lambda: iteration(frame) > finished, 60, "the layout to continue past %d" % finished, frame)
    assert iteration(frame) > finished  # never back to a fresh start
    wait_for(lambda: "done" in frame.text_content("[data-testid=al-layout-state]"), 180, "the extension to finish", frame)
    extended = iteration(frame)
    assert extended > finished
    frame.click("[data-testid=al-layout-restart]")
    wait_for(lambda: iteration(frame) < extended, 60, "Restart to start over", frame)
    assert page.errors == []
