"""The server's per-embedding workspace: one registry, the label files' policy, one idle policy."""

import os
import time

import numpy as np
import pytest

from tensorboard_al_plugin import write_embedding
from tensorboard_al_plugin.logdir import labels as labels_pkg
from tensorboard_al_plugin.logdir.catalog import Catalog, UnknownEmbedding
from tensorboard_al_plugin.logdir.labels import ConflictError, LabelError
from tensorboard_al_plugin.logdir.source import SourceError
from tensorboard_al_plugin.workspace import NoLayout, PartMissing, Workspaces, label_codes

from .test_sessions import _wait


def _features(n=120, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, 6))
    return (centres[np.arange(n) % 3] + rng.normal(size=(n, 6))).astype(np.float32)


@pytest.fixture
def logdir(tmp_path):
    write_embedding(str(tmp_path), _features(), name="e", run="r")
    write_embedding(str(tmp_path), _features(seed=1), name="f", run="r")
    return str(tmp_path)


@pytest.fixture
def hub(logdir):
    # A housekeeping period far in the future: the tests call tidy() themselves, with a clock they choose.
    workspaces = Workspaces(Catalog(logdir), default_author="tester", housekeeping_s=3600)
    yield workspaces
    workspaces.close()


def _tsv_labels(store):
    with open(store.projector_metadata_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [line.split("\t")[0] for line in lines[1:]]


def test_one_workspace_per_embedding_and_lookups_without_discovery(hub, logdir):
    ws = hub.get("r", "e")
    assert hub.get("r", "e") is ws
    assert hub.get("r", "f") is not ws
    assert hub.existing("r", "e") is ws
    assert hub.existing("r", "nope") is None  # no scan, no new entry for a name nobody opened
    with pytest.raises(UnknownEmbedding, match='unknown embedding "nope" in run "r"'):
        hub.get("r", "nope")
    with pytest.raises(NoLayout, match="no layout session for embedding e of run r"):
        ws.layout_status()
    with pytest.raises(PartMissing, match="has no sprite images"):
        ws.sprite_page(0)
    assert ws.metadata() == ([], [])


def test_a_broken_embedding_says_why(hub, logdir):
    os.remove(os.path.join(logdir, "r", "plugins", "active_labeling", "e", "tensor.bin"))
    hub.catalog.rescan()
    with pytest.raises(SourceError, match="embedding e of run r cannot be opened"):
        hub.get("r", "e")


def test_label_writes_pass_errors_through_and_count_versions(hub):
    ws = hub.get("r", "e")
    state = ws.write_labels("assign", rows=[0, 1, 2], label="cat", author="ann")
    assert state["version"] == 1 and state["labels"][:4] == ["cat", "cat", "cat", None]
    assert ws.write_labels("rename", old="cat", new="lion")["labels"][0] == "lion"
    assert ws.write_labels("undo")["labels"][0] == "cat"
    assert [r["author"] for r in ws.history()][:1] == ["ann"]
    with pytest.raises(LabelError):
        ws.write_labels("assign", rows=[10 ** 6], label="cat")
    with pytest.raises(ConflictError):
        for _ in range(10):
            ws.write_labels("undo")
    with pytest.raises(ValueError, match="unknown label action"):
        ws.write_labels("delete_everything")
    name, text = ws.export_csv()
    assert name == "r-e-labels.csv" and "cat" not in text.splitlines()[0]


def test_labels_tsv_catches_up_once_writing_pauses(hub, monkeypatch):
    monkeypatch.setattr(labels_pkg.store, "SNAPSHOT_EVERY_RECORDS", 10 ** 6)
    monkeypatch.setattr(labels_pkg.store, "SNAPSHOT_EVERY_SECONDS", 10 ** 6)
    ws = hub.get("r", "e")
    ws.write_labels("assign", rows=[0], label="a")   # a store's first write snapshots
    ws.write_labels("assign", rows=[1], label="b")   # this one does not
    store = ws.store()
    store.wait_snapshot()                              # written in the background
    assert _tsv_labels(store)[:2] == ["a", ""]
    now = time.monotonic()
    hub.tidy(now)                                      # writing has not paused yet
    assert _tsv_labels(store)[:2] == ["a", ""]
    hub.tidy(now + hub.flush_quiet_s + 0.1)
    assert _tsv_labels(store)[:2] == ["a", "b"]


def test_the_projector_entry_is_written_once_at_the_first_label(hub, logdir):
    config = os.path.join(logdir, "r", "projector_config.pbtxt")
    ws = hub.get("r", "e")
    ws.labels()
    before = os.stat(config).st_mtime_ns
    ws.write_labels("assign", rows=[0], label="a")
    assert ws._published is ws.source
    first = os.stat(config).st_mtime_ns
    os.utime(config, ns=(first - 10 ** 9, first - 10 ** 9))  # any rewrite would now show
    ws.write_labels("assign", rows=[1], label="b")
    assert os.stat(config).st_mtime_ns == first - 10 ** 9
    assert before <= first


def test_a_rewritten_embedding_gets_new_features_and_a_reopened_store(hub, logdir):
    ws = hub.get("r", "e")
    assert ws.features().shape == (120, 6)
    ws.write_labels("assign", rows=[0], label="a")
    time.sleep(0.01)
    write_embedding(logdir, np.ones((50, 4)), name="e", run="r")
    hub.catalog.rescan()
    assert hub.get("r", "e") is ws
    assert ws.features().shape == (50, 4) and ws.features().sum() == 200
    labels = ws.labels()["labels"]  # the store reopened for 50 rows; the user's label is kept
    assert len(labels) == 50 and labels[:2] == ["a", None]


def test_features_of_the_least_recently_used_embedding_are_dropped(logdir):
    hub = Workspaces(Catalog(logdir), housekeeping_s=3600, max_loaded_features=1)
    try:
        e, f = hub.get("r", "e"), hub.get("r", "f")
        first = e.features()
        assert e.features() is first  # kept while in use
        f.features()
        assert e._features is None and f._features is not None
        assert np.array_equal(e.features(), first)  # loaded again on demand
        assert f._features is None
    finally:
        hub.close()


def test_labels_reach_the_running_layout_and_an_idle_embedding_rests(hub):
    ws = hub.get("r", "e")
    ws.write_labels("assign", rows=[0, 3, 6], label="a")
    status = ws.start_layout("tsne", dict(perplexity=10, random_state=0, n_iter=100000))
    assert status["method"] == "tsne"
    _wait(lambda: ws.layout_status()["iteration"] > 0)
    session = hub.sessions()._sessions[ws.key]
    assert list(session.labels[:7]) == [0, -1, -1, 0, -1, -1, 0]
    ws.write_labels("assign", rows=[1], label="b")
    assert list(session.labels[:2]) == [0, 1]
    assert list(label_codes(ws.labels())[:2]) == [0, 1]
    predictions = ws.predictions()
    assert predictions["status"] in ("training", "ready")
    _wait(lambda: ws.predictions()["status"] == "ready")
    assert ws.features() is not None and hub.trainer().model(ws.key) is not None

    hub.tidy(time.monotonic() + hub.idle_s + 1)  # nobody asked about it for IDLE_S
    assert ws.resting and ws._features is None
    assert hub.trainer().model(ws.key) is None
    _wait(lambda: ws.layout_status()["freed"])
    frozen = ws.layout_positions()
    assert frozen[3] == "paused" and frozen[0].shape == (120, 2)

    # The next request wakes it: resume rebuilds the layout from where it was.
    again = hub.get("r", "e")
    assert again is ws and not ws.resting
    ws.layout("resume")
    _wait(lambda: ws.layout_status()["iteration"] > frozen[1] and not ws.layout_status()["freed"])


def test_bad_layout_requests_are_value_errors(hub):
    ws = hub.get("r", "e")
    with pytest.raises(ValueError, match='"method" must be "tsne", "pca" or "umap"'):
        ws.start_layout("umapp", {})
    with pytest.raises(ValueError, match="perplexity 50 is too large for 120 rows"):
        ws.start_layout("tsne", {"perplexity": 50})
    with pytest.raises(NoLayout):
        ws.layout("pause")
    ws.start_layout("pca", {})
    _wait(lambda: ws.layout_status()["state"] == "done")
    with pytest.raises(ValueError):
        ws.layout("params", label_importance=-5)


def test_label_codes_follow_the_classes_order_and_keep_unlabeled_rows():
    from tensorboard_al_plugin.workspace import label_codes

    state = {"labels": ["b", None, "a", "b", None],
             "classes": [{"name": "b", "count": 2}, {"name": "a", "count": 1}]}
    assert label_codes(state).tolist() == [0, -1, 1, 0, -1]
    # a label no class lists (never from the store) counts as unlabeled rather than failing
    assert label_codes({"labels": ["a", "zz"], "classes": [{"name": "a"}]}).tolist() == [0, -1]

