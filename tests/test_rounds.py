"""Active-learning rounds: every classifier retrain is one, stored next to the labels, replayable over HTTP."""

import json
import os
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tensorboard_al_plugin import write_embedding
from tensorboard_al_plugin.active import train_classifier
from tensorboard_al_plugin.logdir.catalog import Catalog
from tensorboard_al_plugin.rounds import RoundStore, align_to, cv_accuracy, hidden_layer, model_view
from tensorboard_al_plugin.workspace import Workspaces
from tests.tbserver import PLUGIN, TensorBoard

from .test_sessions import _wait


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400].astype(np.float32), y[:400]


def _labels(y, per_class, classes):
    labels = [None] * len(y)
    for c in classes:
        for r in np.flatnonzero(y == c)[:per_class]:
            labels[r] = "d%d" % c
    return labels


def _model(X, labels):
    state = train_classifier(X, labels)
    return state.classes, hidden_layer(state)


def test_model_view_is_the_hidden_layer_on_its_principal_axes(digits):
    X, y = digits
    state = train_classifier(X, _labels(y, 10, range(3)))
    view = model_view(X, hidden_layer(state))
    assert view.shape == (400, 3) and view.dtype == np.float32
    assert np.allclose(view.mean(axis=0), 0, atol=1e-3)  # centred principal components
    var = view.var(axis=0)
    assert var[0] >= var[1] >= var[2] > 0
    # The classifier's view separates what it was trained on: each class's rows lie closer to their own centre.
    centres = np.array([view[y == c].mean(axis=0) for c in range(3)])
    rows = np.flatnonzero(y < 3)
    nearest = np.argmin(((view[rows, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == y[rows]) > 0.8


def test_align_to_turns_a_flipped_rotated_copy_back():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    b = (a @ q).astype(np.float32) * np.array([-1, 1, 1], np.float32)
    assert np.allclose(align_to(a, b), a, atol=1e-4)
    assert align_to(None, b) is b


def test_cv_accuracy_is_estimated_on_labeled_rows_only(digits):
    X, y = digits
    mean, std, folds = cv_accuracy(X, _labels(y, 12, range(4)))
    assert folds == 3 and 0.7 <= mean <= 1 and std >= 0
    assert cv_accuracy(X, _labels(y, 12, [0])) == (None, None, 0)       # one class
    one_each = _labels(y, 1, range(5))
    assert cv_accuracy(X, one_each) == (None, None, 0)                   # one row per class


def test_rounds_record_changes_survive_reload_and_skip_damage(tmp_path, digits):
    X, y = digits
    store = RoundStore(str(tmp_path / "rounds"), 400)
    assert store.rounds() == []
    first = _labels(y, 5, range(2))
    r1 = store.record(3, first, *_model(X, first), train_seconds=0.25)
    assert r1["round"] == 1 and r1["n_labeled"] == 10 and r1["train_seconds"] == 0.25
    assert sorted(row for row, _ in r1["changed"]) == sorted(i for i, v in enumerate(first) if v)
    second = list(first)
    second[int(np.flatnonzero(y == 2)[0])] = "d2"
    second[int(np.flatnonzero(y == 2)[1])] = "d2"
    cleared = int(np.flatnonzero(y == 0)[0])
    second[cleared] = None
    store.record(5, second, *_model(X, second))
    # An older model finishing late (or another process that recorded it) adds no round.
    assert store.record(4, second, *_model(X, second))["round"] == 2
    # Recording is cheap: no model view is computed until someone asks for it.
    assert sorted(p.suffix for p in (tmp_path / "rounds").iterdir()) == [".json", ".json", ".npz", ".npz"]

    again = RoundStore(str(tmp_path / "rounds"), 400)
    rounds = again.rounds()
    assert [r["round"] for r in rounds] == [1, 2] and [r["version"] for r in rounds] == [3, 5]
    assert (cleared, None) in rounds[1]["changed"] and len(rounds[1]["changed"]) == 3
    assert again.labels_at(2) == second and again.labels_at(1) == first
    p1, p2 = again.positions(1, X), again.positions(2, X)
    assert p1.shape == p2.shape == (400, 3)
    # Round 2 is turned onto round 1, shown before: consecutive views stay close instead of flipping.
    assert np.linalg.norm(p2 - p1) < np.linalg.norm(-p2 - p1)
    # Computed once, then kept (float16 on disk).
    assert len(list((tmp_path / "rounds").glob("*.npy"))) == 2
    assert np.allclose(RoundStore(str(tmp_path / "rounds"), 400).positions(2, X), p2, atol=1e-2)
    with pytest.raises(IndexError, match="round 3 does not exist; there are 2"):
        again.positions(3, X)

    # Accuracy estimates only when asked, newest first, stored in the round.
    missing = again.missing_accuracy()
    assert [n for n, _ in missing] == [2, 1]
    again.estimate(*missing[0], X)
    # Round 2 has two rows of d2: two folds, the most that class allows.
    assert RoundStore(str(tmp_path / "rounds"), 400).rounds()[1]["accuracy_folds"] == 2

    # Damage: a round that does not parse is skipped and said; files of other names are never read.
    (tmp_path / "rounds" / "r-0000000000001-deadbeef.json").write_text("{not json")
    (tmp_path / "rounds" / "notes.json").write_text(json.dumps({"id": "x"}))
    damaged = RoundStore(str(tmp_path / "rounds"), 400)
    assert [r["version"] for r in damaged.rounds()] == [3, 5]
    assert len(damaged.problems) == 1 and "r-0000000000001-deadbeef.json skipped" in damaged.problems[0]
    # The embedding rewritten with other rows: its old rounds are not shown.
    assert RoundStore(str(tmp_path / "rounds"), 300).rounds() == []


def test_every_retrain_is_a_round_and_accuracies_come_when_looked_at(tmp_path, digits):
    X, y = digits
    write_embedding(str(tmp_path), X, name="d", run="r")
    hub = Workspaces(Catalog(str(tmp_path)), housekeeping_s=3600)
    try:
        ws = hub.get("r", "d")
        ws.predictions()  # the tab asks: from now on every label write retrains
        versions = []
        offered = set()
        for c in range(3):
            if c == 2:  # suggestions asked before a round are kept with it
                offered = {it["row"] for it in ws.suggest("random", 5)["items"]}
            rows = [int(i) for i in np.flatnonzero(y == c)[:8]]
            versions.append(ws.write_labels("assign", rows=rows, label="d%d" % c)["version"])
            _wait(lambda: (ws.predictions()["version"] or 0) >= versions[-1] or
                  ws.predictions()["status"] == "needs_labels")
        _wait(lambda: len(ws.round_store().rounds()) == 2)  # one class alone trains no model
        listed = ws.rounds()
        assert [r["version"] for r in listed["rounds"]] == versions[1:]
        assert listed["rounds"][0]["suggested"] == [] and set(listed["rounds"][1]["suggested"]) == offered
        assert listed["estimating"] and all(r["accuracy"] is None for r in listed["rounds"])
        _wait(lambda: not ws.rounds()["estimating"])
        assert all(r["accuracy"] is not None for r in ws.rounds()["rounds"])
        assert os.path.isdir(os.path.join(ws.source.label_dir, "rounds"))
    finally:
        hub.close()


def test_rounds_over_http(tmp_path, digits):
    X, y = digits
    write_embedding(str(tmp_path), X, name="d", run="r")
    q = "?run=r&embedding=d"
    e = {"run": "r", "embedding": "d"}
    with TensorBoard(str(tmp_path)) as tb:
        tb.wait_for_embeddings()
        assert tb.get_json(PLUGIN + "/rounds" + q) == {"rounds": [], "estimating": False, "problems": []}
        tb.get_json(PLUGIN + "/active/predictions" + q)
        for c in range(2):
            rows = [int(i) for i in np.flatnonzero(y == c)[:8]]
            tb.post(PLUGIN + "/labels/assign", dict(e, rows=rows, label="d%d" % c))
        deadline = time.time() + 60
        while time.time() < deadline and not tb.get_json(PLUGIN + "/rounds" + q)["rounds"]:
            tb.get_json(PLUGIN + "/active/predictions" + q)
            time.sleep(0.3)
        rounds = tb.get_json(PLUGIN + "/rounds" + q)["rounds"]
        assert len(rounds) == 1 and rounds[0]["n_labeled"] == 16 and len(rounds[0]["changed"]) == 16
        r = tb.get(PLUGIN + "/rounds/positions" + q + "&round=1")
        assert r.status == 200 and r.headers["X-Rows"] == "400" and r.headers["X-Dims"] == "3"
        assert len(r.body) == 400 * 3 * 4
        assert np.isfinite(np.frombuffer(r.body, "<f4")).all()
        r = tb.get(PLUGIN + "/rounds/positions" + q + "&round=2")
        assert r.status == 404 and "round 2 does not exist; there are 1" in r.json()["error"]
        r = tb.get(PLUGIN + "/rounds/positions" + q + "&round=0")
        assert r.status == 400 and 'query parameter "round" must be >= 1' in r.json()["error"]
        r = tb.get(PLUGIN + "/rounds?run=r&embedding=nope")
        assert r.status == 404 and 'unknown embedding "nope"' in r.json()["error"]


def test_benchmark_records_rounds_the_tab_can_replay(tmp_path, digits):
    from tensorboard_al_plugin.research.benchmark import ROUND_SIZE, run_benchmark

    X, y = digits
    X = X / 16.0
    logs = str(tmp_path / "logs")
    result = run_benchmark(X[:200], y[:200], strategies="random,entropy", folds=2, max_actions=30,
                           out_dir=str(tmp_path / "out"), progress=False, plot=False, record_rounds=logs,
                           images=X[:200].reshape(-1, 8, 8), name="digits")
    hub = Workspaces(Catalog(logs), housekeeping_s=3600)
    try:
        for strategy in ("random", "entropy"):
            for fold in (1, 2):
                ws = hub.get("rounds/digits", "%s-fold%d" % (strategy, fold))
                assert ws.source.sprite is not None and ws.source.rows == 100
                rounds = ws.rounds()
                assert not rounds["estimating"]  # held-out accuracies came with the recording
                listed = rounds["rounds"]
                assert [r["version"] for r in listed] == [10, 20, 30]
                assert all(len(r["changed"]) == ROUND_SIZE for r in listed)
                assert all(r["accuracy_on"] == "held-out set" and r["accuracy"] is not None for r in listed)
                # The curve of results.json is the accuracies of these rounds (averaged over folds).
                labels = ws.labels()["labels"]
                assert sum(v is not None for v in labels) == 30  # the final labels are the store's
                assert ws.round_positions(3).shape == (100, 3)
        mean_at_30 = dict(result["strategies"]["entropy"]["curve"])[30]
        at_30 = [hub.get("rounds/digits", "entropy-fold%d" % f).rounds()["rounds"][2]["accuracy"] for f in (1, 2)]
        assert abs(np.mean(at_30) - mean_at_30) < 1e-3
    finally:
        hub.close()
    with pytest.raises(ValueError, match="holds an earlier recording"):
        run_benchmark(X[:200], y[:200], strategies="random", folds=2, max_actions=10, out_dir=str(tmp_path / "o2"),
                      progress=False, plot=False, record_rounds=logs, name="digits")
