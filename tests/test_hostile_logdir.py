"""A hostile log directory (issue 10, section 2): every file in it is untrusted input.

Each case below happened on the previous main (b44e594): symlinks of the
plugin's own files to files outside the logdir were served, a symlinked
``labels/`` folder received the label store's writes (and lost its stray
files), a ``checkpoint`` state file naming a checkpoint outside was
followed, a FIFO config hung the scan, ``/dev/zero`` was read without limit,
a large sprite was decoded on every request, and a truncated checkpoint was
listed as ok and then answered 500.

One real tensorboard serves one hostile logdir for the HTTP cases; the scan
cases run ``tensorboard-al ls`` as a subprocess (with a timeout, so a hang
fails instead of blocking) or the catalog in-process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image

from tensorboard_al_plugin import write_embedding
from tests.fixture_logs import DIMS, ROWS, _config, _tsv, write_checkpoint_log
from tests.tbserver import PLUGIN, TensorBoard

HERE = os.path.dirname(os.path.abspath(__file__))
HAS_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAS_TF, reason="TensorFlow is not installed (checkpoint cases)")
SECRET = b"a secret outside the log directory\n"
OWN = ("plugins", "active_labeling", "e")
CKPT_PREFIX = "embedding.ckpt-1"
CKPT_DATA = CKPT_PREFIX + ".data-00000-of-00001"
CKPT_VARIABLE = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
BIG_SPRITE = (8400, 20)  # wider than a page (8192 px): the plugin cuts pages out of it


def _features(seed=0):
    return np.random.default_rng(seed).normal(size=(ROWS, DIMS)).astype(np.float32)


def _own(logdir, run):
    """An embedding of this plugin's own format in ``run``; returns its folder."""
    write_embedding(logdir, _features(), name="e", run=run, images=np.zeros((ROWS, 4, 4), np.uint8),
                    metadata={"a": [str(i) for i in range(ROWS)], "b": ["x"] * ROWS})
    return os.path.join(logdir, run, *OWN)


def _move_out(path, target):
    """Move ``path`` to ``target`` (outside the logdir) and leave a symlink to it behind."""
    shutil.move(path, target)
    os.symlink(target, path)


def _png_header(path, width, height):
    """A PNG whose header claims ``width`` x ``height`` px: a decompression bomb's first bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _projector_run(logdir, run, **entry):
    run_dir = os.path.join(logdir, run)
    os.makedirs(run_dir, exist_ok=True)
    _tsv(os.path.join(run_dir, "t.tsv"), _features(1))
    _config(logdir, run, [dict(tensor_name=run, tensor_path="t.tsv", **entry)])
    return run_dir


def _checkpoint_runs(logdir, outside):
    """A real TensorFlow checkpoint, copied into runs that each spoil it in one way."""
    base = os.path.join(os.path.dirname(outside), "ckpt-source")
    write_checkpoint_log(base)
    source = os.path.join(base, "ckpt")
    for run in ("ckpt_ok", "ckpt_link_data", "ckpt_truncated"):
        shutil.copytree(source, os.path.join(logdir, run))
    shutil.copytree(source, os.path.join(outside, "ckpt"))
    # The state file names a checkpoint outside; the config next to it names only the variable.
    run_dir = os.path.join(logdir, "ckpt_outside")
    os.makedirs(run_dir)
    shutil.copy(os.path.join(source, "projector_config.pbtxt"), run_dir)
    with open(os.path.join(run_dir, "checkpoint"), "w") as f:
        prefix = os.path.join(outside, "ckpt", CKPT_PREFIX)
        f.write('model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' % (prefix, prefix))
    _move_out(os.path.join(logdir, "ckpt_link_data", CKPT_DATA), os.path.join(outside, "linked.data"))
    with open(os.path.join(logdir, "ckpt_truncated", CKPT_DATA), "r+b") as f:
        f.truncate(8)  # the variable's bytes are cut


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    logdir, outside = str(root / "logs"), str(root / "outside")
    os.makedirs(outside)
    _own(logdir, "good")

    # A symlink that stays inside the logdir is fine.
    emb = _own(logdir, "link_inside")
    os.makedirs(os.path.join(logdir, "shared"))
    shutil.move(os.path.join(emb, "tensor.bin"), os.path.join(logdir, "shared", "tensor.bin"))
    os.symlink(os.path.join("..", "..", "..", "..", "shared", "tensor.bin"), os.path.join(emb, "tensor.bin"))

    _move_out(os.path.join(_own(logdir, "link_tensor"), "tensor.bin"), os.path.join(outside, "tensor.bin"))
    _move_out(os.path.join(_own(logdir, "link_metadata"), "metadata.tsv"), os.path.join(outside, "metadata.tsv"))
    _move_out(os.path.join(_own(logdir, "link_manifest"), "manifest.json"), os.path.join(outside, "manifest.json"))
    emb = _own(logdir, "link_sprite")
    os.remove(os.path.join(emb, "sprite_0.png"))
    with open(os.path.join(outside, "secret"), "wb") as f:
        f.write(SECRET)
    os.symlink(os.path.join(outside, "secret"), os.path.join(emb, "sprite_0.png"))

    # labels/ a symlink to a folder outside, with a stray file the store must not delete.
    emb = _own(logdir, "link_labels")
    os.makedirs(os.path.join(outside, "labels"))
    with open(os.path.join(outside, "labels", "notes.tmp-1"), "w") as f:
        f.write("keep me")
    shutil.rmtree(os.path.join(emb, "labels"))  # the writer's own (empty) label store
    os.symlink(os.path.join(outside, "labels"), os.path.join(emb, "labels"))
    # A parent of the label folder a symlink: a Projector run whose plugins/active_labeling leads outside.
    run_dir = _projector_run(logdir, "link_plugin_folder")
    os.makedirs(os.path.join(outside, "plugin_folder"))
    os.makedirs(os.path.join(run_dir, "plugins"))
    os.symlink(os.path.join(outside, "plugin_folder"), os.path.join(run_dir, "plugins", "active_labeling"))
    # Files of the label folder that are symlinks: the history, and a dangling lock.
    emb = _own(logdir, "link_history")
    shutil.rmtree(os.path.join(emb, "labels"))  # the writer's own (empty) label store
    os.makedirs(os.path.join(emb, "labels"))
    with open(os.path.join(outside, "history.jsonl"), "wb") as f:
        f.write(b"")
    os.symlink(os.path.join(outside, "history.jsonl"), os.path.join(emb, "labels", "history.jsonl"))
    os.symlink(os.path.join(outside, "lock"), os.path.join(emb, "labels", ".lock"))

    _projector_run(logdir, "planted_tmp")  # gets links under guessable temp names once the server runs

    run_dir = _projector_run(logdir, "big_sprite", sprite=("sprite.png", [20, 20]))
    Image.new("RGB", BIG_SPRITE, (200, 30, 30)).save(os.path.join(run_dir, "sprite.png"))
    run_dir = _projector_run(logdir, "bomb_sprite", sprite=("sprite.png", [20, 20]))
    _png_header(os.path.join(run_dir, "sprite.png"), 40000, 40000)

    # A manifest beyond the size limit (valid JSON, padded with spaces).
    emb = _own(logdir, "big_manifest")
    with open(os.path.join(emb, "manifest.json"), "rb") as f:
        manifest = f.read()
    with open(os.path.join(emb, "manifest.json"), "wb") as f:
        f.write(manifest + b" " * (5 << 20))

    if HAS_TF:
        _checkpoint_runs(logdir, outside)
    before = {p: sorted(os.listdir(p)) for p in (outside, os.path.join(outside, "labels"),
                                                 os.path.join(outside, "plugin_folder"))}
    return {"logdir": logdir, "outside": outside, "before": before}


@pytest.fixture(scope="module")
def server(hostile):
    with TensorBoard(hostile["logdir"]) as tb:
        tb.listing = {e["run"]: e for e in tb.wait_for_embeddings()["embeddings"]}
        yield tb


def q(run, name="e", **extra):
    return "?" + urlencode(dict(run=run, embedding=name, **extra))


def _problems(entry):
    return " | ".join(entry["problems"])


def test_symlinks_inside_the_logdir_are_followed(server):
    for run in ("good", "link_inside"):
        entry = server.listing[run]
        assert entry["ok"] and entry["sprite"] and entry["metadata_columns"] == ["a", "b"], entry
        r = server.get(PLUGIN + "/tensor" + q(run))
        assert r.status == 200
        assert np.array_equal(np.frombuffer(r.body, "<f4").reshape(ROWS, DIMS), _features())


def test_own_files_linked_outside_are_never_served(server):
    for run in ("link_tensor", "link_manifest"):
        entry = server.listing[run]
        assert not entry["ok"] and "outside the log directory" in _problems(entry), entry
        r = server.get(PLUGIN + "/tensor" + q(run))
        assert r.status == 422 and "outside the log directory" in r.json()["error"]

    entry = server.listing["link_metadata"]
    assert entry["ok"] and entry["metadata_columns"] == [], entry
    assert "metadata ignored" in _problems(entry) and "outside the log directory" in _problems(entry)
    r = server.get(PLUGIN + "/metadata" + q("link_metadata"))
    assert r.status == 422 and "outside the log directory" in r.json()["error"]

    entry = server.listing["link_sprite"]
    assert entry["ok"] and entry["sprite"] is None, entry
    assert "sprite ignored" in _problems(entry) and "outside the log directory" in _problems(entry)
    r = server.get(PLUGIN + "/sprite" + q("link_sprite", page=0))
    assert r.status == 422 and SECRET not in r.body


def _assign(server, run, name="e"):
    return server.post(PLUGIN + "/labels/assign", {"run": run, "embedding": name, "rows": [0, 1], "label": "cat"})


def test_label_folder_linked_outside_gets_no_writes_and_keeps_its_files(server, hostile):
    entry = server.listing["link_labels"]
    assert not entry["ok"] and not entry["labels_supported"], entry
    assert "labels" in _problems(entry) and "outside the log directory" in _problems(entry)
    r = _assign(server, "link_labels")
    assert 400 <= r.status < 500 and "outside the log directory" in r.json()["error"]

    entry = server.listing["link_plugin_folder"]
    assert not entry["ok"] and "outside the log directory" in _problems(entry), entry
    r = _assign(server, "link_plugin_folder", "link_plugin_folder")
    assert 400 <= r.status < 500
    after = {p: sorted(os.listdir(p)) for p in hostile["before"]}
    assert after == hostile["before"]  # nothing written, the stray notes.tmp-1 kept


def test_label_files_that_are_symlinks_are_not_followed(server, hostile):
    assert server.listing["link_history"]["ok"]
    r = _assign(server, "link_history")
    assert 400 <= r.status < 500, (r.status, r.body)
    assert "symbolic link" in r.json()["error"]
    assert os.path.getsize(os.path.join(hostile["outside"], "history.jsonl")) == 0
    assert not os.path.lexists(os.path.join(hostile["outside"], "lock"))
    # The good embedding beside it still labels.
    r = _assign(server, "good")
    assert r.status == 200 and r.json()["labels"][:3] == ["cat", "cat", None]


def test_links_planted_under_guessable_temp_names_are_not_written_through(server, hostile):
    """Publishing labels for the stock Projector writes files by temp name and rename."""
    folder = os.path.join(hostile["logdir"], "planted_tmp", "plugins", "active_labeling", "_projector", "planted_tmp")
    os.makedirs(folder)
    victim = os.path.join(os.path.dirname(hostile["outside"]), "victim.txt")
    with open(victim, "w") as f:
        f.write("untouched")
    for name in ("projector_config.pbtxt", "published.json"):
        os.symlink(victim, os.path.join(folder, "%s.tmp-%d" % (name, server.proc.pid)))
    r = _assign(server, "planted_tmp", "planted_tmp")  # the first label publishes
    assert r.status == 200, r.body
    with open(victim) as f:
        assert f.read() == "untouched"
    assert os.path.isfile(os.path.join(folder, "projector_config.pbtxt"))


def test_a_sprite_beyond_the_pixel_limit_is_a_listed_problem(server):
    entry = server.listing["bomb_sprite"]
    assert entry["ok"] and entry["sprite"] is None, entry
    assert "1600000000 pixels" in _problems(entry) and "pixel limit" in _problems(entry)


def test_a_large_sprite_is_cut_into_pages_and_served(server):
    entry = server.listing["big_sprite"]
    assert entry["ok"] and entry["sprite"]["pages"] == 1, entry
    for _ in range(2):
        r = server.get(PLUGIN + "/sprite" + q("big_sprite", "big_sprite", page=0))
        assert r.status == 200
        with Image.open(__import__("io").BytesIO(r.body)) as page:
            assert page.size == tuple(entry["sprite"]["page_sizes"][0])


def test_a_large_sprite_is_decoded_once_per_process(hostile, monkeypatch):
    """Counts the decodes of the big image (Pillow's load), across two page requests and a rescan."""
    from PIL import ImageFile

    from tensorboard_al_plugin.logdir.catalog import scan_logdir

    decodes = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self):
        if self.size == BIG_SPRITE and self.__dict__.get("_im", self.__dict__.get("im")) is None:
            decodes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    first = [s for s in scan_logdir(hostile["logdir"]) if s.run == "big_sprite"][0]
    page = first.load_sprite_page(0)
    assert len(decodes) <= 1
    seen = len(decodes)
    assert first.load_sprite_page(0) == page
    again = [s for s in scan_logdir(hostile["logdir"]) if s.run == "big_sprite"][0]
    assert again.load_sprite_page(0) == page
    assert len(decodes) == seen


def test_a_manifest_beyond_the_size_limit_is_listed_broken(server):
    entry = server.listing["big_manifest"]
    assert not entry["ok"], entry
    assert "manifest.json" in _problems(entry) and "limit" in _problems(entry)


@needs_tf
def test_checkpoints_outside_the_logdir_are_not_followed(server):
    entry = server.listing["ckpt_ok"]
    assert entry["ok"] and (entry["rows"], entry["dims"]) == (ROWS, DIMS), entry
    for run in ("ckpt_outside", "ckpt_link_data"):
        entries = [e for e in server.listing.values() if e["run"] == run]
        assert entries and not any(e["ok"] for e in entries), entries
        assert "outside the log directory" in " | ".join(_problems(e) for e in entries)
        for e in entries:
            r = server.get(PLUGIN + "/tensor" + q(run, e["name"]))
            assert r.status in (404, 422)


@needs_tf
def test_a_truncated_checkpoint_is_listed_broken_never_a_500(server):
    entries = [e for e in server.listing.values() if e["run"] == "ckpt_truncated"]
    assert entries and not any(e["ok"] for e in entries), entries
    for e in entries:
        r = server.get(PLUGIN + "/tensor" + q("ckpt_truncated", e["name"]))
        assert r.status in (404, 422), (r.status, r.body[:300])


@needs_tf
def test_a_checkpoint_damaged_after_the_scan_is_a_source_error(tmp_path):
    from tensorboard_al_plugin.logdir.catalog import Catalog
    from tensorboard_al_plugin.logdir.source import SourceError

    write_checkpoint_log(str(tmp_path))
    catalog = Catalog(str(tmp_path))
    (source,) = catalog.list(max_age_s=0)
    assert source.ok, source.problems
    with open(os.path.join(str(tmp_path), "ckpt", CKPT_DATA), "r+b") as f:
        f.truncate(8)
    with pytest.raises(SourceError, match="cannot be read"):
        catalog.tensor(source)


# -- the scan, through `tensorboard-al ls` ------------------------------------------


def _ls(logdir, max_memory=None):
    """`tensorboard-al ls --json` in a child process; a hang fails by the timeout, a flood by ``max_memory``."""
    script = textwrap.dedent("""
        import resource, sys
        if sys.argv[1] != "-":  # address space: reading /dev/zero without limit fails fast
            resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
        from tensorboard_al_plugin.cli import main
        sys.exit(main(sys.argv[2:]))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", script, str(max_memory or "-"), "ls", "--json", logdir],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return {(e["run"], e["name"]): e for e in json.loads(r.stdout)["embeddings"]}


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
def test_fifos_and_devices_are_listed_broken_without_blocking_the_scan(tmp_path):
    logdir = str(tmp_path / "logs")
    _own(logdir, "good")
    os.makedirs(os.path.join(logdir, "fifo_config"))
    os.mkfifo(os.path.join(logdir, "fifo_config", "projector_config.pbtxt"))
    run_dir = _projector_run(logdir, "fifo_tensor")
    os.remove(os.path.join(run_dir, "t.tsv"))
    os.mkfifo(os.path.join(run_dir, "t.tsv"))
    emb = _own(logdir, "fifo_metadata")
    os.remove(os.path.join(emb, "metadata.tsv"))
    os.mkfifo(os.path.join(emb, "metadata.tsv"))
    emb = _own(logdir, "dev_zero")
    os.remove(os.path.join(emb, "manifest.json"))
    os.symlink("/dev/zero", os.path.join(emb, "manifest.json"))

    found = _ls(logdir, max_memory=4 << 30)
    assert found[("good", "e")]["ok"]
    fifo = [e for (run, _), e in found.items() if run == "fifo_config"]
    assert len(fifo) == 1 and not fifo[0]["ok"] and "not a regular file" in _problems(fifo[0])
    e = found[("fifo_tensor", "fifo_tensor")]
    assert not e["ok"] and "not a regular file" in _problems(e)
    e = found[("fifo_metadata", "e")]
    assert e["ok"] and "metadata ignored" in _problems(e) and "not a regular file" in _problems(e)
    e = found[("dev_zero", "e")]
    assert not e["ok"] and "outside the log directory" in _problems(e)


@needs_tf
@needs_fifo
def test_a_fifo_checkpoint_state_file_does_not_block_the_scan(tmp_path):
    logdir = str(tmp_path / "logs")
    write_checkpoint_log(logdir)
    run_dir = os.path.join(logdir, "ckpt")
    os.remove(os.path.join(run_dir, "checkpoint"))
    os.mkfifo(os.path.join(run_dir, "checkpoint"))
    found = _ls(logdir)
    entries = list(found.values())
    assert entries and not any(e["ok"] for e in entries)
    assert "not a regular file" in " | ".join(_problems(e) for e in entries)


def test_size_limits_hold_on_remote_log_directories():
    """fsspec's memory:// (TensorBoard's stub file layer): an oversized manifest is refused, not read."""
    script = textwrap.dedent("""
        import json
        import numpy as np
        from tensorboard.compat import tf
        from tensorboard_al_plugin import write_embedding
        from tensorboard_al_plugin.logdir.catalog import scan_logdir
        write_embedding("memory://logs", np.zeros((3, 2)), name="e", run="r")
        path = "memory://logs/r/plugins/active_labeling/e/manifest.json"
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data + b" " * (5 << 20))
        [s] = scan_logdir("memory://logs")
        print(json.dumps(s.to_json()))
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "no_tensorflow") + os.pathsep + os.path.dirname(HERE))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    entry = json.loads(r.stdout.strip().splitlines()[-1])
    assert not entry["ok"] and "manifest.json" in _problems(entry) and "limit" in _problems(entry)
