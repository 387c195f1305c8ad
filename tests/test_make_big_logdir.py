"""benchmarks/make_big_logdir.py on a tiny Fashion-MNIST stand-in: repeats are shifted noisy copies,
the embedding is complete and readable, the same seed gives the same bytes."""
import gzip
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)

import make_big_logdir  # noqa: E402

from tensorboard_al_plugin.logdir.catalog import scan_logdir  # noqa: E402


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_source(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "fmnist"
    source.mkdir()
    for prefix, n in (("train", 8), ("t10k", 4)):
        _write_idx(str(source / ("%s-images-idx3-ubyte.gz" % prefix)), rng.integers(0, 256, (n, 28, 28)))
        _write_idx(str(source / ("%s-labels-idx1-ubyte.gz" % prefix)), np.arange(n) % 10)
    return str(source)


def test_repeats_are_shifted_noisy_copies_and_seeded():
    ramp = np.add.outer(np.arange(28), np.arange(28)) * 4  # smooth pictures: a 2 px shift changes them a little
    base = np.stack([(ramp + 5 * i) % 256 for i in range(10)]).astype(np.uint8)
    rows = make_big_logdir.make_chunk(base, 5, 10, seed=3, shift=2, noise=12.0)
    assert np.array_equal(rows[:5], base[5:])  # rows 5..9: the originals
    assert not np.array_equal(rows[5:], base[:5])  # rows 10..14: copies of 0..4, changed
    assert np.abs(rows[5:].astype(int) - base[:5]).mean() < 40
    assert np.array_equal(rows, make_big_logdir.make_chunk(base, 5, 10, seed=3, shift=2, noise=12.0))


def test_a_small_logdir_is_complete_and_readable(tmp_path):
    source = _fake_source(tmp_path)
    out, ready, result = str(tmp_path / "logs"), str(tmp_path / "ready"), str(tmp_path / "result.json")
    make_big_logdir.main(["--rows", "30", "--source", source, "--out", out, "--name", "tiny", "--chunk", "7",
                          "--components", "5", "--ready", ready, "--json", result])
    assert os.path.exists(ready)
    with open(result) as f:
        figures = json.load(f)
    assert figures["rows"] == 30 and figures["peak_rss_mib"] > 0
    [emb] = scan_logdir(out)
    assert (emb.name, emb.rows, emb.dims, emb.problems) == ("tiny", 30, 5, [])
    assert emb.sprite.pages == 1 and emb.metadata_columns == ["class"]
    names, values = emb.load_metadata()
    assert values[0][:3] == ["T-shirt/top", "Trouser", "Pullover"] and values[0][12] == "T-shirt/top"
    x = emb.load_tensor()
    assert np.isfinite(x).all() and not np.array_equal(x[0], x[12])
    assert not [n for n in os.listdir(out) if n.startswith(".make_big_logdir")]  # the thumbnail file is gone
