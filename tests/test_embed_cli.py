"""`tensorboard-al embed SOURCE --logdir LOGDIR` end to end: a folder of PNGs (and every other kind of
image, and bad ones), a CSV with duplicate paths, an .npy array, and runs that fail or are killed."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tensorboard_al_plugin.logdir import embeddings
from tensorboard_al_plugin.logdir.catalog import scan_logdir
from tests.test_writer_cli import cli, only as only_source

PLUGIN = os.path.join("plugins", "active_labeling")


def only(logdir):
    s = only_source(logdir)
    assert s.ok, s.problems
    return s


def mixed_folder(root):
    """Good images of every kind and size, plus the bad inputs the command must name."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "cats", "small"))
    os.makedirs(os.path.join(root, "dogs"))
    good = {}

    def put(rel, img, **kw):
        img.save(os.path.join(root, rel), **kw)
        good[rel] = img.size

    for i in range(4):
        put("cats/rgb%d.png" % i, Image.fromarray(rng.integers(0, 255, (20 + i, 30, 3), np.uint8)))
    put("cats/small/grey.png", Image.fromarray(rng.integers(0, 255, (8, 8), np.uint8)))
    put("cats/small/rgba.png", Image.fromarray(rng.integers(0, 255, (16, 12, 4), np.uint8), "RGBA"))
    put("dogs/palette.png", Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).convert("P"))
    put("dogs/deep.png", Image.fromarray(rng.integers(0, 65535, (12, 12), np.uint16)))
    put("dogs/cmyk.jpg", Image.new("CMYK", (18, 14), (0, 200, 100, 0)))
    put("dogs/photo.webp", Image.fromarray(rng.integers(0, 255, (10, 40, 3), np.uint8)))
    put("dogs/scan.tiff", Image.fromarray(rng.integers(0, 255, (33, 17), np.uint8)))
    put("dogs/old.bmp", Image.fromarray(rng.integers(0, 255, (9, 9, 3), np.uint8)))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(buf, "PNG")
    with open(os.path.join(root, "dogs", "truncated.png"), "wb") as f:
        f.write(buf.getvalue()[:300])
    with open(os.path.join(root, "cats", "readme.png"), "w") as f:
        f.write("this is text, not a PNG")
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("ignored")
    outside = os.path.join(os.path.dirname(root), "private.png")
    Image.new("L", (5, 5)).save(outside)
    os.symlink(outside, os.path.join(root, "dogs", "escape.png"))
    return good


def test_embed_a_folder_names_every_bad_file_skips_it_and_writes_a_complete_embedding(tmp_path):
    root = str(tmp_path / "photos")
    good = mixed_folder(root)
    logdir = tmp_path / "logs"
    r = cli("embed", root, "--logdir", str(logdir), "--features", "pixels", "--size", "16", "--quiet")
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    expected = {"dogs/truncated.png": "truncated or corrupt", "cats/readme.png": "is not an image",
                "dogs/escape.png": "resolves outside the source folder"}
    for path, why in expected.items():
        assert any(line.startswith("tensorboard-al: skipped %s: " % path) and why in line for line in err), err
    assert any("skipped 3 inputs; all are listed in" in line for line in err), err
    assert any("ignored 1 file" in line and "notes.txt" in line for line in err), err
    assert "wrote %d images as pixels 16x16x3, flattened, 768-d" % len(good) in r.stdout

    s = only(logdir)
    assert (s.name, s.rows, s.dims) == ("photos", len(good), 16 * 16 * 3)
    columns, data = s.load_metadata()
    assert columns == ["path", "folder", "width", "height"]
    meta = dict(zip(columns, data))
    assert meta["path"] == sorted(good)
    assert meta["folder"][meta["path"].index("cats/small/grey.png")] == "cats/small"
    assert [(int(w), int(h)) for w, h in zip(meta["width"], meta["height"])] == [good[p] for p in sorted(good)]
    # Mixed sizes and an alpha channel: RGBA thumbnails, letterboxed into 64 px squares.
    assert (s.sprite.thumb_width, s.sprite.thumb_height) == (64, 64)
    page = np.asarray(Image.open(io.BytesIO(s.load_sprite_page(0))))
    assert page.shape[2] == 4
    # Features are the pixels in [0, 1]: the flat grey CMYK-free check on one known image.
    x = s.load_tensor()
    assert x.min() >= 0 and x.max() <= 1
    emb = os.path.join(str(logdir), PLUGIN, "photos")
    with open(os.path.join(emb, "skipped.tsv"), encoding="utf-8") as f:
        skipped = [line.split("\t")[0] for line in f.read().splitlines()]
    assert skipped[0] == "input" and sorted(skipped[1:]) == sorted(expected)
    about = json.load(open(os.path.join(emb, "embed.json")))
    assert about["rows"] == len(good) and about["skipped"] == 3 and about["input_shape"] == [16, 16, 3]
    # The stock Projector's config names it; nothing hidden is left beside it.
    assert "photos" in open(os.path.join(str(logdir), "projector_config.pbtxt")).read()
    assert sorted(os.listdir(os.path.join(str(logdir), PLUGIN))) == ["photos"]


def test_embed_a_csv_keeps_its_columns_and_lists_duplicate_paths(tmp_path):
    data = tmp_path / "data"
    os.makedirs(data / "imgs")
    for i in range(5):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(str(data / "imgs" / ("%d.png" % i)))
    lines = ["filename,species,notes"] + ["imgs/%d.png,s%d,n%d" % (i, i % 2, i) for i in range(5)]
    lines += ["imgs/1.png,dup,again", "../elsewhere.png,x,y"]
    (data / "list.csv").write_text("\n".join(lines) + "\n")
    logdir = tmp_path / "logs"
    r = cli("embed", str(data / "list.csv"), "--logdir", str(logdir), "--run", "r1", "--name", "pets",
            "--features", "pca:3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "skipped list.csv line 7: imgs/1.png is a duplicate of line 3 (the same file)" in r.stderr
    assert "skipped list.csv line 8: ../elsewhere.png resolves outside the CSV's folder" in r.stderr
    s = only(logdir)
    assert (s.run, s.name, s.rows, s.dims) == ("r1", "pets", 5, 3)
    columns, values = s.load_metadata()
    assert columns == ["path", "folder", "width", "height", "species", "notes"]
    assert values[0] == ["imgs/%d.png" % i for i in range(5)] and values[4] == ["s0", "s1", "s0", "s1", "s0"]
    # 8 px digits-like images: thumbnails upscaled x4 (crisp), kept grey.
    assert (s.sprite.thumb_width, s.sprite.thumb_height) == (32, 32)
    page = np.asarray(Image.open(io.BytesIO(s.load_sprite_page(0))))
    assert page.ndim == 2 and page[0:32, 32:64].min() == page[0:32, 32:64].max() == 40


def test_embed_an_npy_array_gives_its_pixels_as_features(tmp_path):
    arr = np.random.default_rng(3).integers(0, 255, (6, 5, 5), np.uint8)
    np.save(str(tmp_path / "digits.npy"), arr)
    r = cli("embed", str(tmp_path / "digits.npy"), "--logdir", str(tmp_path / "logs"), "--features", "pixels",
            "--quiet")
    assert r.returncode == 0, r.stderr
    s = only(tmp_path / "logs")
    assert s.name == "digits"
    np.testing.assert_allclose(s.load_tensor(), arr.reshape(6, -1) / 255.0, atol=1e-6)
    assert s.load_metadata() == (["index"], [[str(i) for i in range(6)]])


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no image files (.png, .jpg, .jpeg, .webp, .tif, .tiff, .bmp) in"),
    (lambda d: [open(os.path.join(d, n), "w").write("text") for n in ("a.png", "b.jpg")],
     "no usable image in %s: all 2 skipped (first: a.png: is not an image"),
    (lambda d: Image.new("L", (4, 4)).save(os.path.join(d, "one.png")),
     "only one usable image in %s (one.png); an embedding needs at least 2"),
])
def test_no_usable_image_is_one_error_line_and_writes_nothing(tmp_path, setup, message):
    src = tmp_path / "src"
    src.mkdir()
    setup(str(src))
    logdir = tmp_path / "logs"
    r = cli("embed", str(src), "--logdir", str(logdir), "--quiet")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("tensorboard-al: error: ") and (message % src if "%s" in message else message) in last
    assert not logdir.exists() or scan_logdir(str(logdir)) == []
    assert not (logdir / PLUGIN).exists() or os.listdir(str(logdir / PLUGIN)) == []


def test_csv_without_a_path_column_and_an_existing_name_are_refused_before_any_work(tmp_path):
    (tmp_path / "x.csv").write_text("name,label\na.png,cat\n")
    r = cli("embed", str(tmp_path / "x.csv"), "--logdir", str(tmp_path / "logs"), "--quiet")
    assert r.returncode == 1
    assert r.stderr.strip() == ("tensorboard-al: error: x.csv has no path column: name one column path or file or "
                                "filename or image (paths relative to %s); its columns: name, label" % tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        Image.new("L", (4, 4), i).save(str(src / ("%d.png" % i)))
    assert cli("embed", str(src), "--logdir", str(tmp_path / "logs"), "--quiet").returncode == 0
    before = open(tmp_path / "logs" / PLUGIN / "src" / "tensor.bin", "rb").read()
    r = cli("embed", str(src), "--logdir", str(tmp_path / "logs"), "--quiet")
    assert r.returncode == 1 and "embedding 'src' already exists" in r.stderr
    assert open(tmp_path / "logs" / PLUGIN / "src" / "tensor.bin", "rb").read() == before


def test_an_interrupt_while_writing_leaves_no_half_written_embedding(tmp_path):
    class InterruptedAtPage2(np.ndarray):
        """Thumbnails whose reading stops, as Ctrl-C would, when the second sprite page is read."""

        def __getitem__(self, key):
            if isinstance(key, slice) and (key.start or 0) > 0:
                raise KeyboardInterrupt
            return np.ndarray.__getitem__(self, key)

    n = 300
    thumbs = np.zeros((n, 512, 512, 1), np.uint8).view(InterruptedAtPage2)  # 256 per 8192 px page
    with pytest.raises(KeyboardInterrupt):
        embeddings.write_embedding_atomically(str(tmp_path), np.zeros((n, 2)), name="e", thumbnails=thumbs)
    assert os.listdir(str(tmp_path / PLUGIN)) == []
    assert not (tmp_path / "projector_config.pbtxt").exists()
    assert scan_logdir(str(tmp_path)) == []


def noise_pngs(folder, n, seed):
    """``n`` 48 x 48 px colour PNGs of noise in a new ``folder`` (enough work for a run to be caught midway)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), np.uint8)).save(str(folder / ("%03d.png" % i)))
    return folder


def test_a_killed_embed_leaves_either_nothing_or_the_whole_embedding(tmp_path):
    src = noise_pngs(tmp_path / "src", 400, seed=5)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    outcomes = set()
    for k, delay in enumerate([0.5, 1.5, 3.0, 60.0]):
        logdir = tmp_path / ("logs%d" % k)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(tmp))
        p = subprocess.Popen([sys.executable, "-m", "tensorboard_al_plugin.cli", "embed", str(src), "--logdir",
                              str(logdir), "--features", "pixels", "--quiet"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
        sources = scan_logdir(str(logdir)) if logdir.exists() else []
        if sources:
            (s,) = sources
            assert s.ok and s.rows == 400 and s.load_tensor().shape == (400, 48 * 48 * 3)
            outcomes.add("whole")
        else:
            outcomes.add("nothing")
        time.sleep(0.1)
    assert "whole" in outcomes  # the last run was left to finish
    # ... and removed the temporary arrays the killed runs could not.
    assert os.listdir(str(tmp)) == []


def test_default_thumbnails_keep_the_atlas_within_two_pages_for_large_sets():
    from tensorboard_al_plugin.embed import _thumbnail_side
    from tensorboard_al_plugin.logdir.source import SpriteLayout

    assert _thumbnail_side({(8, 8)}, 1797) == 32  # digits: x4, crisp
    assert _thumbnail_side({(28, 28)}, 1000) == 56
    assert _thumbnail_side({(28, 28)}, 70000) == 28  # Fashion-MNIST: native size, one page
    assert _thumbnail_side({(30, 20), (64, 64)}, 100) == 64
    side = _thumbnail_side({(30, 20), (64, 64)}, 70000)
    assert side == 43 and SpriteLayout.for_count(70000, side, side).pages == 2
    assert _thumbnail_side({(300, 200)}, 10 ** 6) == 16  # never smaller


def test_sigterm_mid_run_removes_the_temporary_arrays_and_the_partial_folder(tmp_path):
    src = noise_pngs(tmp_path / "src", 400, seed=6)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    logdir = tmp_path / "logs"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(tmp))
    p = subprocess.Popen([sys.executable, "-m", "tensorboard_al_plugin.cli", "embed", str(src), "--logdir",
                          str(logdir), "--features", "pixels", "--quiet"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not os.listdir(str(tmp)) and p.poll() is None:  # its temporary arrays exist: it is reading
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert os.listdir(str(tmp)) == []
    assert not (logdir / PLUGIN).exists() or os.listdir(str(logdir / PLUGIN)) == []
    assert not logdir.exists() or scan_logdir(str(logdir)) == []


def test_a_scan_never_lists_the_hidden_folder_an_embedding_is_built_in(tmp_path):
    import shutil

    emb = embeddings.write_embedding_atomically(str(tmp_path), np.zeros((3, 2)), name="e")
    partial = tmp_path / PLUGIN / (embeddings.PARTIAL_PREFIX + "f.tmp-1-00000000")
    shutil.copytree(emb, str(partial / "f"))  # a complete copy, as just before the rename
    assert [s.name for s in scan_logdir(str(tmp_path))] == ["e"]


@pytest.mark.parametrize("args, message", [
    (["--logdir", "s3://bucket/logs"], "s3://bucket/logs: an atomic write needs a local log directory"),
    (["--size", "0"], "--size 0: give a side in px between 1 and 4096"),
    (["--features", "pixels", "--exemplar", "full"], "exemplar='full' trains on top of a CNN"),
    (["--name", "a/b"], "name 'a/b' must be letters, digits"),
])
def test_bad_options_are_one_line_before_any_image_is_read(tmp_path, args, message):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        Image.new("L", (4, 4), i).save(str(src / ("%d.png" % i)))
    argv = ["embed", str(src)] + (args if "--logdir" in args else ["--logdir", str(tmp_path / "logs")] + args)
    r = cli(*argv, "--quiet")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorboard-al: error: " + message), lines
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("features", ["pixels", "pca"])
def test_an_image_that_fails_only_when_decoded_is_skipped_and_the_rows_still_agree(tmp_path, features):
    """Its header reads (so the scan keeps it) but its pixel data is cut short: it is skipped while
    reading, and the features, thumbnails and metadata all leave it out (before, the features kept
    every scanned row: "metadata column 'path' has 3 values, features have 4 rows")."""
    folder = noise_pngs(tmp_path / "photos", 3, seed=5)
    whole = io.BytesIO()  # a JPEG's header (and EXIF) come before its scan data: cut the scan short
    Image.fromarray(np.random.default_rng(6).integers(0, 255, (48, 48, 3), np.uint8)).save(whole, format="JPEG")
    (folder / "cut.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) * 2 // 3])
    r = cli("embed", str(folder), "--logdir", str(tmp_path / "logs"), "--features", features, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "skipped cut.jpg: is truncated or corrupt" in r.stderr
    s = only(tmp_path / "logs")
    assert s.rows == 3 and s.load_tensor().shape[0] == 3
    names, columns = s.load_metadata()
    assert sorted(columns[names.index("path")]) == ["000.png", "001.png", "002.png"]
