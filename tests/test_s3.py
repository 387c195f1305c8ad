"""s3:// log directories against a real S3 API server (moto's server mode on 127.0.0.1).

Everything that talks S3 runs in a child process whose environment points
boto3 at the test server (``S3_ENDPOINT``, ``AWS_ENDPOINT_URL_S3`` and dummy
credentials): TensorBoard's stub file layer reads ``S3_ENDPOINT`` once, when
it is first imported, so the test process itself never touches S3 through it.
The test process reads the bucket with its own boto3 client bound to the
server.  With TensorFlow installed, ``tf.io.gfile`` has no ``s3://`` (TF 2.6
moved it to tensorflow-io); these tests run with TensorFlow present, as a
default install has it, and with it hidden.
"""

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter

import numpy as np
import pytest

from tests.s3server import MISSING, S3Server
from tests.tbserver import NO_TF_SHIM, PLUGIN, TensorBoard

pytestmark = pytest.mark.skipif(MISSING is not None, reason="S3 tests need a local S3 server: %s" % MISSING)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL_DIR = "run1/plugins/active_labeling/emb/labels"
ROWS = 40


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


def child_env(s3, *, tensorflow: bool) -> dict:
    env = s3.env()
    path = [ROOT] + ([] if tensorflow else [NO_TF_SHIM])
    env["PYTHONPATH"] = os.pathsep.join(path[::-1] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_python(s3, script: str, *, tensorflow: bool, timeout: float = 120):
    """Run ``script`` in a child bound to the test server; its last stdout line is JSON."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                       env=child_env(s3, tensorflow=tensorflow), timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def cli(s3, *args, tensorflow=True, timeout=120):
    return subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", *args], capture_output=True,
                          text=True, env=child_env(s3, tensorflow=tensorflow), timeout=timeout, cwd=ROOT)


def sample():
    rng = np.random.RandomState(7)
    x = rng.normal(size=(ROWS, 5)).astype(np.float32)
    images = rng.randint(0, 255, size=(ROWS, 8, 8)).astype(np.uint8)
    return x, images, [str(i % 10) for i in range(ROWS)]


@pytest.fixture(scope="module")
def local_tree(tmp_path_factory):
    """A log directory written on local disk: this plugin's format (run1) and a stock Projector TSV (run2)."""
    from tensorboard.plugins import projector

    from tensorboard_al_plugin import write_embedding

    root = tmp_path_factory.mktemp("s3src") / "logs"
    x, images, digits = sample()
    write_embedding(str(root), x, name="emb", run="run1", images=images, metadata={"digit": digits})
    run2 = root / "run2"
    run2.mkdir()
    (run2 / "vectors.tsv").write_text("".join("%d\t%d\n" % (i, -i) for i in range(6)))
    (run2 / "meta.tsv").write_text("".join("m%d\n" % i for i in range(6)))
    config = projector.ProjectorConfig()
    e = config.embeddings.add()
    e.tensor_name, e.tensor_path, e.metadata_path = "vectors", "vectors.tsv", "meta.tsv"
    (run2 / "projector_config.pbtxt").write_text(str(config))
    return str(root)


def upload(s3, local_root: str, bucket: str, prefix: str = "logs") -> str:
    """Copy a local log directory into a new bucket; returns its s3:// URL."""
    s3.create_bucket(bucket)
    client = s3.client()
    for dirpath, _, files in os.walk(local_root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = prefix + "/" + os.path.relpath(path, local_root).replace(os.sep, "/")
            with open(path, "rb") as f:
                client.put_object(Bucket=bucket, Key=key, Body=f.read())
    return "s3://%s/%s" % (bucket, prefix)


def labels_tsv(s3, bucket):
    """The label column of labels.tsv of run1/emb in the bucket, row 0 first."""
    text = s3.get(bucket, "logs/%s/labels.tsv" % LABEL_DIR).decode("utf-8")
    return [line.split("\t")[0] for line in text.splitlines()[1:]]


@pytest.mark.parametrize("tensorflow", [True, False], ids=["with-tensorflow", "without-tensorflow"])
def test_writer_catalog_and_label_store_on_s3(s3, tensorflow):
    # Fails on b44e594 with TensorFlow installed: tf.io.gfile has no s3://
    # ("File system scheme 's3' not implemented"); without TensorFlow it worked.
    bucket = s3.create_bucket("writer-tf" if tensorflow else "writer-notf")
    out = run_python(s3, """
        import json
        import numpy as np
        from tensorboard_al_plugin import write_embedding
        from tensorboard_al_plugin.logdir.catalog import scan_logdir
        from tensorboard_al_plugin.logdir.labels import LabelStore
        from tensorboard_al_plugin.logdir.projector import tensorflow_available
        from tests.test_s3 import sample
        x, images, digits = sample()
        logdir = "s3://%s/logs"
        write_embedding(logdir, x, name="emb", run="run1", images=images, metadata={"digit": digits},
                        labels=["seed" if i == 3 else None for i in range(len(x))])
        [s] = scan_logdir(logdir)
        store = LabelStore(s.label_dir, s.rows, default_author="alice")
        store.assign([0, 1, 2], "cat")
        store.undo()
        store.assign([5], "dog")
        store.flush()  # labels.tsv catches up (the server does this once writing pauses)
        again = LabelStore(s.label_dir, s.rows)  # a fresh reader sees the same labels
        print(json.dumps({"tf": tensorflow_available(), "listing": s.to_json(),
                          "tensor_ok": bool((s.load_tensor() == x).all()), "meta": s.load_metadata(),
                          "page": s.load_sprite_page(0)[:8].hex(), "layout": store.layout,
                          "labels": again.state()["labels"], "label_dir": s.label_dir}))
    """ % bucket, tensorflow=tensorflow)
    assert out["tf"] is tensorflow
    e = out["listing"]
    assert (e["run"], e["name"], e["rows"], e["dims"], e["ok"], e["problems"]) == ("run1", "emb", ROWS, 5, True, [])
    assert out["tensor_ok"]
    assert out["meta"] == [["digit"], [sample()[2]]]
    assert out["page"] == "89504e470d0a1a0a"  # a PNG
    assert out["layout"] == "segments"
    expected = [None] * ROWS
    expected[3], expected[5] = "seed", "dog"
    assert out["labels"] == expected
    assert out["label_dir"] == "s3://%s/logs/%s" % (bucket, LABEL_DIR)
    # The labels are objects in the bucket: one segment per action, and labels.tsv for the Projector.
    keys = s3.keys(bucket, "logs/" + LABEL_DIR + "/segments/")
    assert len([k for k in keys if k.endswith(".json")]) == 4  # seed, assign, undo, assign
    assert labels_tsv(s3, bucket)[3:6] == ["seed", "", "dog"]


def test_catalog_lists_both_formats_and_a_broken_source_on_s3(s3, local_tree):
    logdir = upload(s3, local_tree, "catalog")
    client = s3.client()
    # A third run whose config names a tensor that is not there: listed as broken, with the reason.
    client.put_object(Bucket="catalog", Key="logs/run3/projector_config.pbtxt",
                      Body=b'embeddings { tensor_name: "gone" tensor_path: "missing.tsv" }\n')
    out = run_python(s3, """
        import json
        from tensorboard_al_plugin.logdir.catalog import scan_logdir
        sources = scan_logdir("%s")
        ok = [s for s in sources if s.ok]
        print(json.dumps({"listing": [s.to_json() for s in sources],
                          "tensors": {s.name: s.load_tensor().tolist()[:2] for s in ok},
                          "meta": {s.name: s.load_metadata() for s in ok if s.load_metadata}}))
    """ % logdir, tensorflow=False)
    by_name = {e["name"]: e for e in out["listing"]}
    assert sorted(by_name) == ["emb", "gone", "vectors"]
    assert (by_name["emb"]["rows"], by_name["emb"]["format"], by_name["emb"]["ok"]) == (ROWS, "active_labeling", True)
    assert (by_name["vectors"]["rows"], by_name["vectors"]["dims"], by_name["vectors"]["ok"]) == (6, 2, True)
    assert by_name["gone"]["ok"] is False and "missing.tsv" in " ".join(by_name["gone"]["problems"])
    assert out["tensors"]["vectors"] == [[0.0, 0.0], [1.0, -1.0]]
    assert out["meta"]["vectors"] == [["metadata"], [["m%d" % i for i in range(6)]]]


def test_an_embedding_rewritten_with_the_same_shape_is_read_again(s3):
    # Fails on b44e594: TensorBoard's stub S3 layer stats an object's size
    # only, so a tensor rewritten with as many bytes (every epoch of a
    # training run) kept being served from the cache.
    s3.create_bucket("rewritten")
    out = run_python(s3, """
        import json
        import numpy as np
        from tensorboard_al_plugin import write_embedding
        from tensorboard_al_plugin.logdir.catalog import Catalog
        logdir = "s3://rewritten/logs"
        write_embedding(logdir, np.zeros((4, 2)), name="e", run="r")
        catalog = Catalog(logdir)
        before = float(catalog.tensor(catalog.get("r", "e")).sum())
        write_embedding(logdir, np.ones((4, 2)), name="e", run="r")
        catalog.rescan()
        print(json.dumps([before, float(catalog.tensor(catalog.get("r", "e")).sum())]))
    """, tensorflow=False)
    assert out == [0.0, 8.0]


def test_old_label_snapshots_are_deleted_from_the_bucket(s3, local_tree):
    # Fails on b44e594: TensorBoard's stub gfile has no remove, so every
    # snapshot (one per 100 actions or 10 s of labeling) stayed in the bucket.
    logdir = upload(s3, local_tree, "pruned")
    out = run_python(s3, """
        import json
        from tensorboard_al_plugin.logdir.labels import LabelStore
        store = LabelStore("%s/%s", %d)
        for i in range(6):
            store.assign([i], "k%%d" %% i)
            store.snapshot()
        print(json.dumps(LabelStore("%s/%s", %d).state()["labels"][:7]))
    """ % (logdir, LABEL_DIR, ROWS, logdir, LABEL_DIR, ROWS), tensorflow=False)
    assert out == ["k0", "k1", "k2", "k3", "k4", "k5", None]
    snapshots = [k for k in s3.keys("pruned", "logs/%s/" % LABEL_DIR) if "/snapshot-" in k]
    assert len(snapshots) == 3, snapshots  # the newest three
    assert snapshots[-1].rsplit("/", 1)[1].startswith("snapshot-0000000006-")


# Child: open the store, say so, wait for the go file, then write COUNT labels,
# printing "<i> <version>" after each acknowledged write.
WRITER = """
import os, sys, time
from tensorboard_al_plugin.logdir.labels import LabelStore
directory, n_rows, start, count, author, ready, go = sys.argv[1:8]
n_rows, start, count = int(n_rows), int(start), int(count)
store = LabelStore(directory, n_rows, default_author=author)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
for i in range(start, start + count):
    state = store.assign([i % n_rows], "w%d" % i)
    print(i, state["version"], flush=True)
"""


def test_two_writer_processes_on_s3_keep_every_action(s3, local_tree, tmp_path):
    # Two processes label the same embedding at once, both rows they share
    # and their own: S3 has no append and no lock, so each action is its own
    # object under a name only its writer uses; nothing may be lost or torn.
    bucket = "two-writers"
    logdir = upload(s3, local_tree, bucket)
    directory = "%s/%s" % (logdir, LABEL_DIR)
    go = str(tmp_path / "go")
    each, n_rows = 30, 10  # both writers hit the same rows: last writer wins per row
    env = child_env(s3, tensorflow=False)
    children = []
    for start, author in ((0, "alice"), (each, "bob")):
        ready = str(tmp_path / ("ready-" + author))
        children.append((ready, subprocess.Popen(
            [sys.executable, "-c", WRITER, directory, str(n_rows), str(start), str(each), author, ready, go],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)))
    deadline = time.time() + 120
    while not all(os.path.exists(ready) for ready, _ in children):  # both have opened the store
        for _, c in children:
            if c.poll() is not None:
                pytest.fail("a writer exited early: %s" % c.stderr.read().decode()[-3000:])
        if time.time() > deadline:
            pytest.fail("the writers did not open the store within 120 s")
        time.sleep(0.05)
    open(go, "w").close()
    children = [c for _, c in children]
    outputs = [c.communicate(timeout=120) for c in children]
    for c, (stdout, stderr) in zip(children, outputs):
        assert c.returncode == 0, stderr.decode()[-3000:]
        assert len(stdout.splitlines()) == each

    segments = [k for k in s3.keys(bucket, "logs/" + LABEL_DIR + "/segments/") if k.endswith(".json")]
    assert len(segments) == 2 * each  # one object per acknowledged action
    out = run_python(s3, """
        import json
        from tensorboard_al_plugin.logdir.labels import LabelStore
        store = LabelStore("%s", %d)
        history = store.history()
        state = store.state()
        print(json.dumps({"history": [[r["seq"], r["author"], r["label"], r["changes"]] for r in history],
                          "state": state, "replay": store.replay(), "problems": store.problems}))
    """ % (directory, n_rows), tensorflow=False)
    history = out["history"]
    assert out["problems"] == []
    assert len(history) == 2 * each
    assert Counter(author for _, author, _, _ in history) == {"alice": each, "bob": each}
    assert sorted(int(label[1:]) for _, _, label, _ in history) == list(range(2 * each))
    assert [seq for seq, _, _, _ in history] == list(range(1, 2 * each + 1))
    # Each record holds exactly the row its writer labeled: nothing garbled.
    for _, _, label, groups in history:
        i = int(label[1:])
        assert groups == [{"label": label, "rows": [i % n_rows]}]
    state = out["state"]
    assert state == out["replay"]  # the snapshot agrees with the history
    # The current label of each row is that of the last record that touched it.
    last = {}
    for _, _, label, _ in history:
        last[int(label[1:]) % n_rows] = label
    assert state["labels"] == [last[r] for r in range(n_rows)]
    # Each writer's own acknowledged versions only ever increase.
    for stdout, _ in outputs:
        versions = [int(line.split()[1]) for line in stdout.splitlines()]
        assert versions == sorted(versions)


def test_tensorboard_serves_an_s3_logdir_and_labels_land_in_the_bucket(s3, local_tree):
    # TensorBoard itself refuses an s3:// logdir when TensorFlow is installed
    # without tensorflow-io ("Unsupported filename scheme 's3'", from its data
    # ingester), so it is served as users must serve it: without TensorFlow,
    # through TensorBoard's stub file layer and boto3.
    bucket = "served"
    logdir = upload(s3, local_tree, bucket)
    with TensorBoard(logdir, env=child_env(s3, tensorflow=False),
                     extra_args=["--al_user", "annotator"]) as tb:
        listing = tb.wait_for_embeddings()
        by_name = {e["name"]: e for e in listing["embeddings"]}
        assert by_name["emb"]["ok"] and by_name["emb"]["rows"] == ROWS, json.dumps(listing)[:3000]
        assert by_name["vectors"]["ok"], listing
        q = "?run=run1&embedding=emb"
        r = tb.get(PLUGIN + "/tensor" + q)
        assert r.status == 200 and r.headers["X-Rows"] == str(ROWS)
        assert np.array_equal(np.frombuffer(r.body, "<f4").reshape(ROWS, 5), sample()[0])
        assert tb.get_json(PLUGIN + "/metadata" + q) == {"columns": ["digit"], "data": [sample()[2]]}
        r = tb.get(PLUGIN + "/sprite" + q + "&page=0")
        assert r.status == 200 and r.body[:4] == b"\x89PNG"
        r = tb.post(PLUGIN + "/labels/assign", {"run": "run1", "embedding": "emb", "rows": [1, 4], "label": "cat"})
        assert r.status == 200, r.body
        r = tb.post(PLUGIN + "/labels/assign", {"run": "run1", "embedding": "emb", "rows": [4], "label": "dog"})
        assert r.status == 200, r.body
        assert r.json()["labels"][:5] == [None, "cat", None, None, "dog"]
        r = tb.get(PLUGIN + "/labels/export" + q)
        assert r.status == 200, r.body
        rows = list(csv.DictReader(io.StringIO(r.body.decode("utf-8"))))
        assert [(x["index"], x["label"], x["author"], x["digit"]) for x in rows] == [
            ("1", "cat", "annotator", "1"), ("4", "dog", "annotator", "4")]
        # A stock Projector embedding gets labels too (stored under this plugin's folder).
        r = tb.post(PLUGIN + "/labels/assign", {"run": "run2", "embedding": "vectors", "rows": [0], "label": "v"})
        assert r.status == 200, r.body
        # labels.tsv (for the stock Projector) catches up once writing pauses.
        deadline = time.time() + 60
        while labels_tsv(s3, bucket)[1:5] != ["cat", "", "", "dog"] and time.time() < deadline:
            time.sleep(0.2)
    # The labels are in the bucket, and a new process reads them back.
    assert labels_tsv(s3, bucket)[1:5] == ["cat", "", "", "dog"]
    assert len([k for k in s3.keys(bucket, "logs/%s/segments/" % LABEL_DIR) if k.endswith(".json")]) == 2
    r = cli(s3, "export", logdir, "--run", "run1", "--embedding", "emb")
    assert r.returncode == 0, r.stderr
    assert [(x["index"], x["label"]) for x in csv.DictReader(io.StringIO(r.stdout))] == [("1", "cat"), ("4", "dog")]


def test_cli_ls_import_export_on_s3(s3, local_tree, tmp_path):
    # Fails on b44e594 (TensorFlow installed): every command died with a
    # traceback ending in "File system scheme 's3' not implemented".
    logdir = upload(s3, local_tree, "cli-labels")
    r = cli(s3, "ls", logdir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["run", "embedding", "rows", "dims", "format", "sprite", "status"]
    assert ["run1", "emb", str(ROWS), "5", "active_labeling", "yes", "ok"] in [line.split() for line in lines]
    src = tmp_path / "in.csv"
    src.write_text("index,label\n0,zero\n2,two\n7,zero\n")
    args = ["--run", "run1", "--embedding", "emb"]
    r = cli(s3, "import", logdir, *args, str(src), "--user", "bob")
    assert r.returncode == 0, r.stderr
    assert "3 of %d rows labeled in 2 classes" % ROWS in r.stdout
    out = tmp_path / "out.csv"
    r = cli(s3, "export", logdir, *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(x["index"], x["label"], x["author"], x["digit"]) for x in rows] == [
        ("0", "zero", "bob", "0"), ("2", "two", "bob", "2"), ("7", "zero", "bob", "7")]
    assert labels_tsv(s3, "cli-labels")[:3] == ["zero", "", "two"]


def test_cli_names_a_missing_bucket_in_one_line(s3):
    r = cli(s3, "ls", "s3://no-such-bucket/logs", tensorflow=False)
    assert r.returncode == 1
    assert r.stderr.startswith("tensorboard-al: error: ") and "Traceback" not in r.stderr, r.stderr
    assert "no-such-bucket" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_asks_for_a_folder_when_given_the_root_of_a_bucket(s3):
    # On b44e594: "tensorboard-al: error: substring not found" for s3://bucket
    # (from the stub's path split) and "does not exist" for s3://bucket/.
    s3.create_bucket("bucket-root")
    for logdir in ("s3://bucket-root", "s3://bucket-root/"):
        r = cli(s3, "ls", logdir, tensorflow=False)
        assert r.returncode == 1
        assert r.stderr.startswith("tensorboard-al: error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "root of a bucket" in r.stderr and "s3://bucket-root/logs" in r.stderr, r.stderr
