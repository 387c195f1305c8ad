"""Take docs/projector_labels.png: labels made in this plugin, shown by TensorBoard's stock Projector.

A stock Projector log of 300 digits (TSV tensor, single-column metadata, sprite,
an event file) gets 20 labels per digit through the plugin's HTTP route; then the
Projector tab is opened in headless Chromium, the run of this plugin's own
(``digits_tsv/plugins/active_labeling/_projector/digits``) is picked and the
points are coloured by ``label``.

    .venv/bin/python tests/e2e/take_projector_screenshot.py [--out docs/projector_labels.png]

The Projector's Polymer widgets are not reachable by selectors from Playwright
here, so the script clicks at fixed positions of the 1400 x 900 layout of
TensorBoard 2.21; check the picture after upgrading TensorBoard.
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.tbserver import PLUGIN, TensorBoard  # noqa: E402

PUBLISHED_RUN = "digits_tsv/plugins/active_labeling/_projector/digits"


def write_log(logdir: str, n: int = 300) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits
    from tensorboard.plugins import projector
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = os.path.join(logdir, "digits_tsv")
    os.makedirs(run)
    x, y = load_digits(return_X_y=True)
    x, y = x[:n], y[:n]
    np.savetxt(os.path.join(run, "t.tsv"), x, delimiter="\t", fmt="%g")
    with open(os.path.join(run, "meta.tsv"), "w") as f:
        f.write("".join("%d\n" % v for v in y))
    per_row = int(np.ceil(np.sqrt(n)))
    sprite = np.zeros((int(np.ceil(n / per_row)) * 8, per_row * 8), np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        sprite[r * 8:r * 8 + 8, c * 8:c * 8 + 8] = (x[i].reshape(8, 8) * 16).clip(0, 255)
    Image.fromarray(sprite).save(os.path.join(run, "sprite.png"))
    config = projector.ProjectorConfig()
    e = config.embeddings.add()
    e.tensor_name, e.tensor_path, e.metadata_path = "digits", "t.tsv", "meta.tsv"
    e.sprite.image_path = "sprite.png"
    e.sprite.single_image_dim.extend([8, 8])
    projector.visualize_embeddings(run, config)
    EventFileWriter(run).close()
    return y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "projector_labels.png"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    logdir = os.path.join(tempfile.mkdtemp(prefix="al-projector-shot-"), "logs")
    y = write_log(logdir)
    with TensorBoard(logdir) as tb:
        tb.wait_for_embeddings()
        for k in range(10):
            rows = [int(i) for i in np.where(y == k)[0][:20]]
            r = tb.post(PLUGIN + "/labels/assign", dict(run="digits_tsv", embedding="digits", rows=rows,
                                                         label="digit %d" % k))
            assert r.status == 200, r.body
        deadline = time.time() + 30
        while PUBLISHED_RUN not in tb.get_json("/data/plugin/projector/runs"):
            assert time.time() < deadline, "the Projector never listed %s" % PUBLISHED_RUN
            time.sleep(0.5)
        time.sleep(3)  # labels.tsv catches up 2 s after the last write
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(tb.url + "/#projector")
            time.sleep(12)
            page.mouse.click(150, 168)  # the run menu
            time.sleep(1.5)
            page.mouse.click(150, 217)  # its second entry: the plugin's run
            time.sleep(8)
            page.mouse.click(210, 278)  # "Color by"
            time.sleep(1.5)
            page.mouse.click(205, 345)  # "label"
            time.sleep(3)
            page.screenshot(path=args.out)
            browser.close()
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
