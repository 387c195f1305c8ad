"""The writer API, the sprite atlas layout and the `tensorboard-al demo` / `ls` commands."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tensorboard_al_plugin import write_embedding
from tensorboard_al_plugin.logdir import source as source_mod
from tensorboard_al_plugin.logdir.catalog import scan_logdir


def cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def only(logdir):
    sources = scan_logdir(str(logdir))
    assert len(sources) == 1, sources
    return sources[0]


def test_writer_round_trip_with_pandas_like_table_and_rgb_images(tmp_path):
    class Table:  # the part of the pandas API the writer relies on
        columns = ["name", "size"]

        def __getitem__(self, c):
            return {"name": ["a", "b", "c", "d"], "size": np.array([1.5, 2, 3, 4])}[c]

    images = np.random.default_rng(0).integers(0, 255, size=(4, 40, 40, 3), dtype=np.uint8)
    x = np.arange(8, dtype=np.float64).reshape(4, 2)
    write_embedding(str(tmp_path), x, name="e", run="r1", images=images, metadata=Table())
    s = only(tmp_path)
    assert (s.run, s.name, s.rows, s.dims, s.ok) == ("r1", "e", 4, 2, True)
    np.testing.assert_array_equal(s.load_tensor(), x.astype(np.float32))
    assert s.load_metadata() == (["name", "size"], [["a", "b", "c", "d"], ["1.5", "2.0", "3.0", "4.0"]])
    page = np.asarray(Image.open(io.BytesIO(s.load_sprite_page(0))))
    assert s.sprite.thumb_width == 40  # >= 32 px: kept as is
    np.testing.assert_array_equal(page[40:80, 0:40], images[2])  # row-major cells, 2 per row


def test_images_from_files_are_fitted_into_square_thumbnails(tmp_path):
    paths = []
    for i, size in enumerate([(100, 50), (30, 90)]):
        p = tmp_path / ("img%d.png" % i)
        Image.new("RGB", size, (255, 0, 0)).save(p)
        paths.append(str(p))
    write_embedding(str(tmp_path / "logs"), np.zeros((2, 3)), images=paths)
    s = only(tmp_path / "logs")
    assert (s.sprite.thumb_width, s.sprite.thumb_height) == (64, 64)


def test_many_thumbnails_spill_over_several_atlas_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(source_mod, "MAX_PAGE_PX", 64)
    n = 41  # 16 px thumbs -> 4 per row, 16 per page -> 3 pages, the last with 9
    images = np.stack([np.full((16, 16), i * 5, np.uint8) for i in range(n)])
    write_embedding(str(tmp_path), np.random.default_rng(1).normal(size=(n, 3)), images=images,
                    thumbnail_size=16)
    s = only(tmp_path)
    assert (s.sprite.per_row, s.sprite.per_page, s.sprite.pages) == (4, 16, 3)
    assert s.sprite.page_sizes == [(64, 64), (64, 64), (64, 48)]
    last = np.asarray(Image.open(io.BytesIO(s.load_sprite_page(2))))
    k = 40 - 32  # thumbnail 40 is cell 8 of page 2: row 2, column 0
    assert last[(k // 4) * 16 + 8, (k % 4) * 16 + 8] == 40 * 5
    # The stock Projector takes one sprite image only: no sprite in its entry then.
    with open(tmp_path / "projector_config.pbtxt") as f:
        assert "sprite" not in f.read()


@pytest.mark.parametrize("kwargs, message", [
    (dict(features=np.zeros(5)), "features must be a 2-D array"),
    (dict(features=np.array([[1.0, np.nan], [0, 0]])), "features row 0 holds NaN"),
    (dict(features=np.zeros((3, 2)), metadata={"c": [1, 2]}), "metadata column 'c' has 2 values"),
    (dict(features=np.zeros((3, 2)), metadata={"c": ["a", "b\tc", "d"]}), "row 1 holds a tab"),
    (dict(features=np.zeros((3, 2)), images=np.zeros((2, 8, 8))), "images has 2 entries"),
    (dict(features=np.zeros((3, 2)), images=np.zeros((3, 8, 8, 2))), "C in 1, 3, 4"),
    (dict(features=np.zeros((3, 2)), name="a/b"), "name 'a/b' must be"),
    (dict(features=np.zeros((3, 2)), run="../up"), "must be a relative path inside the logdir"),
])
def test_writer_rejects_bad_input_with_a_clear_message(tmp_path, kwargs, message):
    features = kwargs.pop("features")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        write_embedding(str(tmp_path), features, **kwargs)
    assert scan_logdir(str(tmp_path)) == []  # nothing half-written is listed


def test_writer_keeps_other_entries_of_an_existing_projector_config(tmp_path):
    write_embedding(str(tmp_path), np.zeros((2, 2)), name="one")
    write_embedding(str(tmp_path), np.ones((3, 2)), name="two")
    write_embedding(str(tmp_path), np.ones((4, 2)), name="one")  # rewrite replaces, never duplicates
    with open(tmp_path / "projector_config.pbtxt") as f:
        text = f.read()
    assert text.count('tensor_name: "one"') == 1 and text.count('tensor_name: "two"') == 1
    assert {(s.name, s.rows) for s in scan_logdir(str(tmp_path))} == {("one", 4), ("two", 3)}


def test_demo_and_ls_json(tmp_path):
    out = tmp_path / "demo"
    r = cli("demo", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    r = cli("ls", str(out), "--json")
    assert r.returncode == 0, r.stderr
    listing = json.loads(r.stdout)["embeddings"]
    assert [(e["run"], e["name"], e["rows"], e["dims"], e["format"], e["sprite"] is not None, e["problems"])
            for e in listing] == [("digits", "digits", 1797, 64, "active_labeling", True, [])]
    r = cli("ls", str(out))
    assert "digits  digits     1797  64    active_labeling  yes     ok" in r.stdout


def test_bundled_demo_logs_match_a_fresh_demo():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    s = only(os.path.join(root, "demo_logs"))
    from sklearn.datasets import load_digits

    d = load_digits()
    np.testing.assert_array_equal(s.load_tensor(), d.data.astype(np.float32))
    assert s.load_metadata()[1][0] == [str(v) for v in d.target]
    assert (s.sprite.thumb_width, s.sprite.pages) == (32, 1)


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    r = cli("ls", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["tensorboard-al: error: log directory %s does not exist"
                                             % (tmp_path / "missing")]
    r = cli("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
