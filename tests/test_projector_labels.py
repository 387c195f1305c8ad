"""Labels of stock-Projector embeddings show up in the stock Projector, and the user's files stay untouched.

The server tests ask TensorBoard's own projector plugin (``/data/plugin/projector/...``)
what it serves, so they prove what a person opening the Projector tab sees.
"""

import hashlib
import os
import subprocess
import sys
import time
from urllib.parse import urlencode

import numpy as np
import pytest

from tests.fixture_logs import DIMS, ROWS, write_checkpoint_log, write_projector_tsv_log
from tests.tbserver import PLUGIN, TensorBoard

PROJECTOR = "/data/plugin/projector"
ROOT_RUN = "plugins/active_labeling/_projector/vectors"


def _digest(directory):
    """sha1 of every file outside this plugin's folder: what "the user's files" are."""
    out = {}
    for d, subdirs, files in os.walk(directory):
        subdirs[:] = [s for s in subdirs if s != "plugins"]
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                out[os.path.relpath(os.path.join(d, f), directory)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def _metadata(tb, run, name):
    r = tb.get(PROJECTOR + "/metadata?" + urlencode(dict(run=run, name=name)))
    assert r.status == 200, r.body[:300]
    lines = r.body.decode("utf-8").split("\n")
    # The Projector's own rule (vz_projector parseMetadata): whitespace-only lines are skipped.
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line.strip()]


def _wait_for_run(tb, run, timeout_s=30.0):
    deadline = time.time() + timeout_s
    runs = []
    while time.time() < deadline:
        runs = tb.get_json(PROJECTOR + "/runs")
        if run in runs:
            return runs
        time.sleep(0.5)
    raise AssertionError("the Projector never listed run %r (runs: %s)\n%s" % (run, runs, tb.log()))


def _metadata_once_labeled(tb, row, label, timeout_s=15.0):
    """The "(labels)" entry's metadata once ``row`` shows ``label`` (labels.tsv catches up after a pause)."""
    deadline = time.time() + timeout_s
    while True:
        header, rows = _metadata(tb, ROOT_RUN, "vectors (labels)")
        if rows[row][0] == label or time.time() > deadline:
            return header, rows
        time.sleep(0.5)


@pytest.fixture
def tsv_logdir(tmp_path):
    logdir = str(tmp_path / "logs")
    x = write_projector_tsv_log(logdir)
    return logdir, x


def test_projector_shows_labels_of_a_projector_embedding(tsv_logdir):
    logdir, x = tsv_logdir
    before = _digest(logdir)
    with TensorBoard(logdir) as tb:
        tb.wait_for_embeddings()
        E = dict(run=".", embedding="vectors")
        # Viewing alone publishes nothing: no run is added for an embedding nobody labeled.
        assert tb.get_json(PLUGIN + "/labels?" + urlencode(E))["version"] == 0
        pub = os.path.join(logdir, ROOT_RUN)
        assert not [f for f in os.listdir(pub) if "tfevents" in f or f.endswith(".pbtxt")]
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[0, 2], label="even one"))
        assert r.status == 200, r.body
        # A second label right after: the store's own snapshot rule (100 records or
        # 10 s, on a write) would leave it out of labels.tsv until the next write.
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[5], label="odd"), headers={"X-AL-User": "ann"})
        assert r.status == 200, r.body

        _wait_for_run(tb, ROOT_RUN)
        info = tb.get_json(PROJECTOR + "/info?" + urlencode(dict(run=ROOT_RUN)))
        [emb] = info["embeddings"]
        assert emb["tensorName"] == "vectors (labels)"
        assert emb["tensorShape"] == [ROWS, DIMS]
        assert emb["sprite"]["singleImageDim"] == [10, 10]

        header, rows = _metadata_once_labeled(tb, 5, "odd")
        # The user's metadata columns follow ours, so the entry can be coloured by them too.
        assert header == ["label", "author", "index", "name", "kind"]
        assert len(rows) == ROWS and [int(r[2]) for r in rows] == list(range(ROWS))
        assert [r[0] for r in rows[:6]] == ["even one", "", "even one", "", "", "odd"]
        assert rows[5][1] == "ann"
        assert [r[3:] for r in rows[:3]] == [["item0", "even"], ["item1", "odd"], ["item2", "even"]]

        # The tensor and sprite the Projector serves for that entry are the user's.
        r = tb.get(PROJECTOR + "/tensor?" + urlencode(dict(run=ROOT_RUN, name="vectors (labels)")))
        assert r.status == 200
        served = np.frombuffer(r.body, "<f4").reshape(ROWS, DIMS)
        np.testing.assert_allclose(served, x, rtol=1e-5)
        r = tb.get(PROJECTOR + "/sprite_image?" + urlencode(dict(run=ROOT_RUN, name="vectors (labels)")))
        with open(os.path.join(logdir, "sprite.png"), "rb") as f:
            assert r.status == 200 and r.body == f.read()
        # The user's own run still shows as before, and our tab lists no extra embedding.
        assert tb.get_json(PROJECTOR + "/info?run=.")["embeddings"][0]["tensorName"] == "vectors"
        names = {(e["run"], e["name"]) for e in tb.get_json(PLUGIN + "/embeddings")["embeddings"]}
        assert names == {(".", "vectors"), ("single", "single")}
    assert _digest(logdir) == before  # not one byte of the user's files changed


def test_links_follow_a_replaced_tensor(tsv_logdir, tmp_path):
    from tensorboard_al_plugin.logdir.catalog import scan_logdir
    from tensorboard_al_plugin.logdir.labels import LabelStore
    from tensorboard_al_plugin.logdir.projector_labels import publish_labels

    logdir, x = tsv_logdir
    [source] = [s for s in scan_logdir(logdir) if s.name == "vectors"]
    store = LabelStore(source.label_dir, source.rows)
    store.assign([1], "a")
    assert publish_labels(source, store.projector_metadata_path) == ROOT_RUN
    pub = os.path.join(logdir, ROOT_RUN)
    linked = os.path.join(pub, "tensor.tsv")
    assert os.path.samefile(linked, os.path.join(logdir, "vectors.tsv"))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(pub))
    config = os.path.join(pub, "projector_config.pbtxt")
    stamp = os.stat(config).st_mtime_ns
    time.sleep(0.01)
    assert publish_labels(source, store.projector_metadata_path) == ROOT_RUN
    assert os.stat(config).st_mtime_ns == stamp  # nothing rewritten when nothing changed

    # The user rewrites the tensor by writing a new file and renaming it over the old one.
    new = x * 2
    tmp = os.path.join(logdir, "vectors.tsv.new")
    with open(tmp, "w") as f:
        f.write("".join("\t".join("%g" % v for v in row) + "\n" for row in new))
    os.replace(tmp, os.path.join(logdir, "vectors.tsv"))
    assert not os.path.samefile(linked, os.path.join(logdir, "vectors.tsv"))
    [source] = [s for s in scan_logdir(logdir) if s.name == "vectors"]
    publish_labels(source, store.projector_metadata_path)
    assert os.path.samefile(linked, os.path.join(logdir, "vectors.tsv"))
    # Discovery never mistakes the published folder for a user's embedding.
    assert sorted(s.name for s in scan_logdir(logdir)) == ["single", "vectors"]


def test_copies_where_links_are_impossible(tmp_path, monkeypatch):
    """A failed hard link (another device) falls back to a copy, refreshed when the original changes."""
    from tensorboard_al_plugin.logdir import projector_labels

    logdir = str(tmp_path / "logs")
    write_projector_tsv_log(logdir)
    from tensorboard_al_plugin.logdir.catalog import scan_logdir
    from tensorboard_al_plugin.logdir.labels import LabelStore

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(projector_labels.os, "link", no_link)
    [source] = [s for s in scan_logdir(logdir) if s.name == "vectors"]
    store = LabelStore(source.label_dir, source.rows)
    store.assign([0], "x")
    projector_labels.publish_labels(source, store.projector_metadata_path)
    copy = os.path.join(logdir, ROOT_RUN, "sprite.png")
    original = os.path.join(logdir, "sprite.png")
    assert not os.path.samefile(copy, original)
    assert open(copy, "rb").read() == open(original, "rb").read()
    stamp = os.stat(copy).st_mtime_ns
    projector_labels.publish_labels(source, store.projector_metadata_path)
    assert os.stat(copy).st_mtime_ns == stamp  # unchanged original: not copied again
    from PIL import Image

    Image.new("RGB", (40, 40), (1, 2, 3)).save(original)
    os.utime(original, ns=(time.time_ns(), time.time_ns() + 10**9))
    [source] = [s for s in scan_logdir(logdir) if s.name == "vectors"]
    projector_labels.publish_labels(source, store.projector_metadata_path)
    assert open(copy, "rb").read() == open(original, "rb").read()


def test_two_threads_publishing_one_embedding_at_once_both_succeed(tmp_path):
    """Each hard link is made under a temp name of its own call (one per process would be shared:
    one thread's link is removed or renamed away under the other)."""
    import contextlib
    import threading

    from tensorboard_al_plugin.logdir.catalog import scan_logdir
    from tensorboard_al_plugin.logdir.labels import LabelStore
    from tensorboard_al_plugin.logdir.projector_labels import publish_labels

    logdir = str(tmp_path / "logs")
    write_projector_tsv_log(logdir)
    [source] = [s for s in scan_logdir(logdir) if s.name == "vectors"]
    store = LabelStore(source.label_dir, source.rows)
    store.assign([0], "x")
    start = threading.Barrier(2)
    errors = []

    def publish():
        start.wait()
        try:
            for _ in range(100):
                with contextlib.suppress(FileNotFoundError):  # so that every call links anew
                    os.remove(os.path.join(logdir, ROOT_RUN, "tensor.tsv"))
                publish_labels(source, store.projector_metadata_path)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    publish_labels(source, store.projector_metadata_path)
    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    publish_labels(source, store.projector_metadata_path)
    pub = os.path.join(logdir, ROOT_RUN)
    assert os.path.samefile(os.path.join(pub, "tensor.tsv"), os.path.join(logdir, "vectors.tsv"))
    assert [n for n in os.listdir(pub) if ".tmp-" in n] == []


def test_memory_filesystem_gets_copies(tmp_path):
    """Object stores cannot hard-link: the publication copies, through TensorBoard's file layer."""
    script = r"""
import numpy as np
from tensorboard.compat import tf
from tensorboard.plugins import projector
from tensorboard_al_plugin.logdir.catalog import scan_logdir
from tensorboard_al_plugin.logdir.labels import LabelStore
from tensorboard_al_plugin.logdir.projector_labels import publish_labels
g = tf.io.gfile
g.makedirs("memory://logs/run1")
with g.GFile("memory://logs/run1/t.tsv", "w") as f:
    f.write("1\t2\n3\t4\n5\t6\n")
c = projector.ProjectorConfig()
e = c.embeddings.add(); e.tensor_name = "emb"; e.tensor_path = "t.tsv"
with g.GFile("memory://logs/run1/projector_config.pbtxt", "w") as f:
    f.write(str(c))
[s] = scan_logdir("memory://logs")
store = LabelStore(s.label_dir, s.rows)
store.assign([2], "last")
store.wait_snapshot()
run = publish_labels(s, store.projector_metadata_path)
pub = "memory://logs/run1/" + run.split("/", 1)[1]
assert run == "run1/plugins/active_labeling/_projector/emb", run
with g.GFile(pub + "/tensor.tsv", "rb") as f:
    assert f.read() == b"1\t2\n3\t4\n5\t6\n"
text = g.GFile(pub + "/projector_config.pbtxt", "r").read()
assert 'metadata_path: "labels/labels.tsv"' in text and 'tensor_path: "tensor.tsv"' in text, text
assert any(n.startswith("events.out.tfevents") for n in g.listdir(pub))
assert g.GFile(pub + "/labels/labels.tsv", "r").read().splitlines()[3].split("\t")[0] == "last"
assert [x.name for x in scan_logdir("memory://logs")] == ["emb"]
print("ok")
"""
    from tests.tbserver import NO_TF_SHIM

    env = dict(os.environ, PYTHONPATH=NO_TF_SHIM + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_duplicate_names_get_their_own_stores(tmp_path):
    """A run-dir config and a plugin-assets config naming the same tensor are two embeddings, two stores."""
    from tensorboard_al_plugin.logdir.catalog import scan_logdir

    logdir = str(tmp_path / "logs")
    run = os.path.join(logdir, "r")
    assets = os.path.join(run, "plugins", "org_tensorflow_tensorboard_projector")
    os.makedirs(assets)
    for d, n in ((run, 3), (assets, 5)):
        with open(os.path.join(d, "t.tsv"), "w") as f:
            f.write("".join("%d\t0\n" % i for i in range(n)))
        with open(os.path.join(d, "projector_config.pbtxt"), "w") as f:
            f.write('embeddings { tensor_name: "t" tensor_path: "t.tsv" }\n')
    sources = scan_logdir(logdir)
    assert sorted(s.name for s in sources) == ["t", "t (2)"]
    assert len({s.label_dir for s in sources}) == 2


def test_checkpoint_embedding_labels_in_projector(tmp_path):
    """The TensorBoard tutorial's case: a checkpoint variable; labels arrive through `tensorboard-al import`."""
    pytest.importorskip("tensorflow")
    logdir = str(tmp_path / "logs")
    var = write_checkpoint_log(logdir)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("index,label\n0,first\n%d,last\n" % (ROWS - 1))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", "import", logdir, "--run", "ckpt",
                        "--embedding", var, str(csv_path)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert 'shows them in run "ckpt/plugins/active_labeling/_projector/' in r.stderr
    run = r.stderr.split('in run "', 1)[1].split('"', 1)[0]
    with TensorBoard(logdir) as tb:
        _wait_for_run(tb, run)
        info = tb.get_json(PROJECTOR + "/info?" + urlencode(dict(run=run)))
        assert var in [e["tensorName"] for e in info["embeddings"]]
        header, rows = _metadata(tb, run, var)
        assert header == ["label", "author", "index"]
        assert [r[0] for r in rows] == ["first"] + [""] * (ROWS - 2) + ["last"]
        assert [int(r[2]) for r in rows] == list(range(ROWS))
        r = tb.get(PROJECTOR + "/tensor?" + urlencode(dict(run=run, name=var)))
        served = np.frombuffer(r.body, "<f4").reshape(ROWS, DIMS)
        np.testing.assert_array_equal(served, np.arange(ROWS * DIMS, dtype=np.float32).reshape(ROWS, DIMS))


def test_a_relative_logdir_publishes_labels_too(tmp_path):
    """The README's own `--logdir demo_logs` is relative: labels must still reach the stock Projector.

    Before, every write logged "labels.tsv ... is not in the store folder ..." and
    `tensorboard-al import` printed it as a warning: the store's absolute path was
    compared with a label folder built from the relative logdir.
    """
    write_projector_tsv_log(str(tmp_path / "logs"))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("index,label\n1,from csv\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", "import", "logs", "--run", ".",
                        "--embedding", "vectors", "labels.csv"], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "not in the store folder" not in r.stderr and 'shows them in run "%s"' % ROOT_RUN in r.stderr, r.stderr
    with TensorBoard("logs", cwd=str(tmp_path)) as tb:
        tb.wait_for_embeddings()
        r = tb.post(PLUGIN + "/labels/assign", dict(run=".", embedding="vectors", rows=[0], label="served"))
        assert r.status == 200, r.body
        _wait_for_run(tb, ROOT_RUN)
        _, rows = _metadata_once_labeled(tb, 0, "served")
        assert [r[0] for r in rows[:2]] == ["served", "from csv"]
        assert "not in the store folder" not in tb.log()


def test_label_entry_of_a_written_embedding_shows_without_restart(tmp_path):
    """The stock Projector reads a run's config once and re-reads it only when the list of runs changes.

    Before, the "(labels)" entry of a ``write_embedding`` embedding was added to
    its run's config at the first label, after the Projector had cached that
    config: it appeared only once TensorBoard restarted.  The writer now puts it
    there (with a labels.tsv) when it writes the embedding.
    """
    from tensorboard_al_plugin import write_embedding

    logdir = str(tmp_path / "logs")
    rng = np.random.default_rng(0)
    write_embedding(logdir, rng.normal(size=(ROWS, DIMS)), name="pts", run="r1",
                    metadata={"class": ["c%d" % (i % 3) for i in range(ROWS)], "note": ["n%d" % i for i in range(ROWS)]})
    with TensorBoard(logdir) as tb:
        tb.wait_for_embeddings()
        # A person opens the Projector first: it reads (and caches) the run's config.
        runs = _wait_for_run(tb, "r1")
        assert "r1" in runs
        names = [e["tensorName"] for e in tb.get_json(PROJECTOR + "/info?run=r1")["embeddings"]]
        assert names == ["pts", "pts (labels)"]
        header, rows = _metadata(tb, "r1", "pts (labels)")
        assert header == ["label", "author", "index", "class", "note"]
        assert rows[4] == ["", "", "4", "c1", "n4"]
        # Then labels in the tab: the same TensorBoard shows them, no restart.
        r = tb.post(PLUGIN + "/labels/assign", dict(run="r1", embedding="pts", rows=[4], label="four"),
                    headers={"X-AL-User": "ann"})
        assert r.status == 200, r.body
        deadline = time.time() + 15
        while rows[4][0] != "four" and time.time() < deadline:
            time.sleep(0.5)
            header, rows = _metadata(tb, "r1", "pts (labels)")
        assert rows[4] == ["four", "ann", "4", "c1", "n4"]
        assert [e["tensorName"] for e in tb.get_json(PROJECTOR + "/info?run=r1")["embeddings"]] == names


def test_metadata_columns_named_like_ours_are_renamed(tmp_path):
    """A single-column metadata file (no header: the Projector calls that column "label") keeps its values."""
    from tensorboard_al_plugin.logdir.catalog import scan_logdir
    from tensorboard_al_plugin.logdir.labels import LabelStore

    logdir = str(tmp_path / "logs")
    write_projector_tsv_log(logdir)
    [source] = [s for s in scan_logdir(logdir) if s.name == "single"]
    store = LabelStore(source.label_dir, source.rows, metadata=source.load_metadata)
    store.assign([1], "mine")
    store.wait_snapshot()  # the first write's snapshot (and labels.tsv) is written in the background
    with open(store.projector_metadata_path) as f:
        lines = f.read().splitlines()
    names, _ = source.load_metadata()
    assert lines[0].split("\t")[:3] == ["label", "author", "index"]
    assert lines[0].split("\t")[3:] == [n + " (metadata)" if n in ("label", "author", "index") else n
                                        for n in names]
    assert [line.split("\t")[0] for line in lines[1:]] == ["", "mine", "", "", ""]
    assert [line.split("\t")[3] for line in lines[1:]] == ["c0", "c1", "c2", "c3", "c4"]
