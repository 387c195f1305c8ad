"""An embedding written by `tensorboard-al embed` from a folder of PNGs, opened in the tab: the hover
preview names the file (whole, even a long path), the search box finds a path, a part of one,
and a folder, and the folder found is labeled in one action."""
import os

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import canvas_box, class_counts, debug, open_tab, pick_embedding, wait_for
from tests.tbserver import TensorBoard
from tests.test_writer_cli import cli

LONG = "a_rather_long_folder_name_from_a_camera_export/2026-11-30_session_with_many_words"
FOLDERS = {"zebra": (230, 230, 230), "tiger": (230, 140, 20), LONG: (40, 90, 200)}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """60 PNGs in three folders (one nested deep, with long names), embedded with default features."""
    root = tmp_path_factory.mktemp("embed-tab")
    src = root / "animals"
    rng = np.random.default_rng(7)
    for folder, colour in FOLDERS.items():
        os.makedirs(src / folder)
        for i in range(20):
            a = np.clip(np.array(colour) + rng.normal(0, 25, (24, 24, 3)), 0, 255).astype(np.uint8)
            a[8:16, 8:16] = 255 - a[8:16, 8:16]
            Image.fromarray(a).save(str(src / folder / ("photo_%02d_taken_on_a_sunny_afternoon.png" % i)))
    logdir = root / "logs"
    r = cli("embed", str(src), "--logdir", str(logdir), "--quiet")
    assert r.returncode == 0, r.stderr
    return str(logdir), str(src)


@pytest.fixture
def tb_embed(embedded):
    with TensorBoard(embedded[0], without_tensorflow=True) as server:
        server.wait_for_embeddings()
        yield server


def tooltip(frame):
    return frame.text_content("[data-testid=al-tooltip]") if frame.is_visible("[data-testid=al-tooltip]") else None


def search(frame, text):
    frame.fill("[data-testid=al-search]", text)
    frame.press("[data-testid=al-search]", "Enter")


def test_hover_names_the_file_and_search_finds_it_by_path(page, tb_embed, embedded):
    frame = open_tab(page, tb_embed.url)
    pick_embedding(frame, "animals")
    paths = sorted("%s/photo_%02d_taken_on_a_sunny_afternoon.png" % (f, i) for f in FOLDERS for i in range(20))
    assert debug(frame, "d.rows()") == 60

    # Hover a point of the long folder: the preview shows its path, wrapped inside the preview.
    row = paths.index("%s/photo_07_taken_on_a_sunny_afternoon.png" % LONG)
    box = canvas_box(frame)
    x, y = debug(frame, "d.screenOf(args[0])", row)
    page.mouse.move(box["x"] + x + 1, box["y"] + y)
    page.mouse.move(box["x"] + x, box["y"] + y)
    wait_for(lambda: tooltip(frame), 10, "the hover preview", frame)
    hovered = debug(frame, "d.pickAt(args[0], args[1])", x, y)
    page.screenshot(path=os.path.join(os.environ.get("AL_SHOTS", "/tmp"), "embed_tab_hover.png"))
    text = tooltip(frame)
    assert "#%d" % hovered in text and "path" in text and paths[hovered] in text, text
    overflow = frame.eval_on_selector("[data-testid=al-tooltip]", "t => t.scrollWidth - t.clientWidth")
    assert overflow <= 0, "the path runs %d px out of the hover preview" % overflow
    # ... wrapped at its folders, and the column names beside it stay whole words on one line.
    lines = frame.eval_on_selector_all("[data-testid=al-tooltip] tr", """rows => rows.map(r => [...r.cells].map(td => {
        const range = document.createRange(); range.selectNodeContents(td);
        return new Set([...range.getClientRects()].map(q => Math.round(q.top))).size; }))""")
    assert all(name_lines == 1 for name_lines, _ in lines), lines
    # The file name begins a line of its own (the path breaks after a folder, not inside a name).
    name_at, cell_at, name = frame.eval_on_selector(
        "[data-testid=al-tooltip] tr[data-column=path] td + td", """td => {
            const last = [...td.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).pop();
            const range = document.createRange(); range.selectNodeContents(last);
            return [range.getClientRects()[0].left, td.getBoundingClientRect().left, last.textContent]; }""")
    assert name == "photo_07_taken_on_a_sunny_afternoon.png" and abs(name_at - cell_at) < 1, (name, name_at, cell_at)
    page.mouse.move(0, 0)

    # A whole path: exactly that row.
    search(frame, "tiger/photo_03_taken_on_a_sunny_afternoon.png")
    wait_for(lambda: debug(frame, "d.selection()") == [paths.index("tiger/photo_03_taken_on_a_sunny_afternoon.png")],
             10, "the searched path to be selected", frame)
    assert frame.text_content("[data-testid=al-search-message]") == ""
    # Part of a path (the file name without its folder).
    search(frame, "photo_11_taken")
    want = sorted(paths.index(p) for p in paths if "photo_11_taken" in p)
    wait_for(lambda: sorted(debug(frame, "d.selection()")) == want, 10, "the rows of photo_11", frame)
    # A folder: its 20 rows.
    search(frame, "zebra")
    wait_for(lambda: sorted(debug(frame, "d.selection()")) == list(range(paths.index("zebra/photo_00_taken_on_a_sunny_afternoon.png"),
                                                                        paths.index("zebra/photo_00_taken_on_a_sunny_afternoon.png") + 20)),
             10, "the zebra folder", frame)
    page.screenshot(path=os.path.join(os.environ.get("AL_SHOTS", "/tmp"), "embed_tab_search.png"))
    # The found folder is labeled in one action, into the label store the embed command made.
    frame.fill("[data-testid=al-label-input]", "zebra")
    frame.press("[data-testid=al-label-input]", "Enter")
    wait_for(lambda: class_counts(frame).get("zebra") == 20, 15, "the zebra label", frame)
    # The file's absolute path, as a file manager copies it.
    search(frame, os.path.join(embedded[1], "tiger", "photo_05_taken_on_a_sunny_afternoon.png"))
    wait_for(lambda: debug(frame, "d.selection()") == [paths.index("tiger/photo_05_taken_on_a_sunny_afternoon.png")],
             10, "the row of an absolute path", frame)
    search(frame, "lion/photo_01.png")
    wait_for(lambda: "No row" in frame.text_content("[data-testid=al-search-message]"), 10, "no match", frame)
    assert page.errors == []
