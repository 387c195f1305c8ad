"""Predictions and suggestions over HTTP: background retraining, every strategy's answer, bad requests."""

import time

import numpy as np
from sklearn.datasets import load_digits

from tests.tbserver import PLUGIN, TensorBoard

E = {"run": "digits", "embedding": "digits"}
Q = "?run=digits&embedding=digits"


def wait_predictions(tb, version, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = tb.get_json(PLUGIN + "/active/predictions" + Q)
        if p["status"] in ("ready", "needs_labels", "error") and (p["version"] or -1) >= version:
            return p
        time.sleep(0.3)
    raise AssertionError("no predictions for version %d: %s" % (version, p))


def test_predictions_retrain_in_the_background_and_suggestions(demo_logdir):
    y = load_digits().target
    with TensorBoard(demo_logdir) as tb:
        tb.wait_for_embeddings()
        p = tb.get_json(PLUGIN + "/active/predictions" + Q)
        assert p["status"] in ("training", "needs_labels") and "predicted" not in p
        r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy="margin"))
        assert r.status == 400 and "at least 2 classes" in r.json()["error"]
        r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy="tsne"))
        assert r.status == 409 and "start the layout" in r.json()["error"]
        r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy="psychic"))
        assert r.status == 400 and "unknown strategy" in r.json()["error"]

        # Label 15 true examples of each digit, one action per class.
        version = 0
        for digit in range(10):
            rows = [int(i) for i in np.flatnonzero(y == digit)[:15]]
            version = tb.post(PLUGIN + "/labels/assign", dict(E, rows=rows, label="d%d" % digit)).json()["version"]
        p = wait_predictions(tb, version)
        assert p["status"] == "ready", p
        # The default is the numpy network (about 20x faster than Keras on a CPU), with
        # TensorFlow installed or not (issue 11: default to the fastest backend)
        assert p["backend"] == "numpy"
        assert sorted(p["classes"]) == ["d%d" % d for d in range(10)]
        predicted = np.array([p["classes"][i] for i in p["predicted"]])
        accuracy = np.mean(predicted == np.array(["d%d" % d for d in y]))
        assert accuracy > 0.6, accuracy  # 150 labels, chance is 0.1
        assert len(p["confidence"]) == 1797 and 0 <= min(p["confidence"]) <= max(p["confidence"]) <= 1

        for strategy in ("random", "least-confidence", "margin", "entropy", "ensemble", "adversarial"):
            r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy=strategy, n=5))
            assert r.status == 200, (strategy, r.body)
            items = r.json()["items"]
            assert len(items) == 5
            labeled = set(int(i) for d in range(10) for i in np.flatnonzero(y == d)[:15])
            assert all(it["row"] not in labeled for it in items)

        tb.post(PLUGIN + "/layout/start", dict(E, method="pca", n_components=2))
        deadline = time.time() + 60
        while tb.get_json(PLUGIN + "/layout/status" + Q)["state"] != "done" and time.time() < deadline:
            time.sleep(0.2)
        r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy="tsne", n=3))
        assert r.status == 200, r.body
        items = r.json()["items"]
        assert len(items) == 3 and all(len(it["group"]) >= 1 and it["group"][0] == it["row"] for it in items)

        # Classifier-assisted groups (issue 14): every row of a group is unlabeled and predicted
        # as the group's "predicted", the label to apply to all of them.
        r = tb.post(PLUGIN + "/active/suggest", dict(E, strategy="tsne-assisted", n=4))
        assert r.status == 200, r.body
        items = r.json()["items"]
        assert len(items) == 4 and any(len(it["group"]) > 1 for it in items)
        p = wait_predictions(tb, version)
        row_prediction = [p["classes"][i] for i in p["predicted"]]
        for it in items:
            assert it["group"][0] == it["row"] and it["predicted"] in p["classes"]
            assert not set(it["group"]) & labeled
            assert {row_prediction[g] for g in it["group"]} == {it["predicted"]}


def test_status_says_training_once_a_second_class_arrives(demo_logdir):
    """Issue 11, defect 1: after "needs labels" (one class), labeling a second class must
    answer "training" (then "ready"), never the stale "needs_labels" that made the tab stop
    polling; before, the error of the one-class model was reported over the pending retrain."""
    y = load_digits().target
    with TensorBoard(demo_logdir, extra_args=["--al_classifier", "numpy"]) as tb:
        tb.wait_for_embeddings()
        rows = [int(i) for i in np.flatnonzero(y == 0)[:10]]
        v1 = tb.post(PLUGIN + "/labels/assign", dict(E, rows=rows, label="zero")).json()["version"]
        p = wait_predictions(tb, -1)
        assert p["status"] == "needs_labels", p
        deadline = time.time() + 60  # the one-class model of v1 is done once its error is in
        while tb.get_json(PLUGIN + "/active/predictions" + Q)["status"] != "needs_labels":
            assert time.time() < deadline
            time.sleep(0.2)
        rows = [int(i) for i in np.flatnonzero(y == 1)[:10]]
        v2 = tb.post(PLUGIN + "/labels/assign", dict(E, rows=rows, label="one")).json()["version"]
        assert v2 > v1
        p = tb.get_json(PLUGIN + "/active/predictions" + Q)
        assert p["status"] in ("training", "ready"), p
        p = wait_predictions(tb, v2)
        assert p["status"] == "ready" and sorted(p["classes"]) == ["one", "zero"], p
