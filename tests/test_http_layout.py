"""A live layout session driven over HTTP in a real tensorboard."""

import time

import numpy as np
import pytest

from tests.tbserver import PLUGIN, TensorBoard

E = {"run": "digits", "embedding": "digits"}
Q = "?run=digits&embedding=digits"


def positions(tb):
    r = tb.get(PLUGIN + "/layout/positions" + Q)
    assert r.status == 200, r.body
    rows, dims = int(r.headers["X-Rows"]), int(r.headers["X-Dims"])
    return np.frombuffer(r.body, "<f4").reshape(rows, dims), int(r.headers["X-Iteration"]), r.headers["X-State"]


def wait_for(tb, predicate, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = tb.get_json(PLUGIN + "/layout/status" + Q)
        if status["state"] == "error":
            raise AssertionError(status)
        if predicate(status):
            return status
        time.sleep(0.3)
    raise AssertionError("timed out; last status %s" % status)


def test_session_start_poll_label_pause_resume(demo_logdir):
    with TensorBoard(demo_logdir) as tb:
        tb.wait_for_embeddings()
        assert tb.get(PLUGIN + "/layout/status" + Q).status == 404
        r = tb.post(PLUGIN + "/layout/start", dict(E, method="tsne", n_components=2, perplexity=20,
                                                    label_importance=0.1, repulsion_emphasis=0.1,
                                                    random_state=0))
        assert r.status == 200, r.body
        first = wait_for(tb, lambda s: s["iteration"] >= 20)
        y1, it1, _ = positions(tb)
        assert y1.shape == (1797, 2) and np.all(np.isfinite(y1))
        later = wait_for(tb, lambda s: s["iteration"] > first["iteration"] + 20)
        y2, it2, _ = positions(tb)
        assert it2 > it1 and not np.allclose(y1, y2)
        assert later["objective"] is not None

        # Labels written through the label routes reach the running session.
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=list(range(0, 200, 10)), label="zero"))
        assert r.status == 200
        wait_for(tb, lambda s: s["iteration"] > later["iteration"] + 10)

        r = tb.post(PLUGIN + "/layout/params", dict(E, label_importance=0.5))
        assert r.status == 200 and r.json()["params"]["label_importance"] == 0.5

        paused = tb.post(PLUGIN + "/layout/pause", E).json()
        time.sleep(1.0)
        a = tb.get_json(PLUGIN + "/layout/status" + Q)
        time.sleep(1.0)
        b = tb.get_json(PLUGIN + "/layout/status" + Q)
        assert a["state"] == b["state"] == "paused" and a["iteration"] == b["iteration"]
        assert paused["state"] == "paused"
        tb.post(PLUGIN + "/layout/resume", E)
        wait_for(tb, lambda s: s["state"] == "running" and s["iteration"] > b["iteration"])

        # A reload finds the running session (status answers without a new start).
        again = tb.get_json(PLUGIN + "/layout/status" + Q)
        assert again["iteration"] >= b["iteration"]


def test_pca_layout_and_bad_parameters(demo_logdir):
    with TensorBoard(demo_logdir) as tb:
        tb.wait_for_embeddings()
        r = tb.post(PLUGIN + "/layout/start", dict(E, method="pca", n_components=3))
        assert r.status == 200, r.body
        wait_for(tb, lambda s: s["state"] == "done")
        y, _, _ = positions(tb)
        assert y.shape == (1797, 3)
        for body, message in [(dict(n_components=4), "n_components"),
                              (dict(perplexity=5000), "perplexity"),
                              (dict(label_importance=-1), "label_importance"),
                              (dict(method="isomap"), "method")]:
            r = tb.post(PLUGIN + "/layout/start", dict(E, **body))
            assert r.status == 400, (body, r.body)
            assert message in r.json()["error"]
        r = tb.post(PLUGIN + "/layout/pause", {"run": "digits", "embedding": "nope"})
        assert r.status == 404


def test_preparing_layout_names_its_phases_with_monotone_progress(tmp_path):
    """A t-SNE on a few thousand rows says which preparation step it is in
    (phase), how far the whole preparation is (progress, never moving back)
    and, once it can tell, the seconds left (eta_s)."""
    from tensorboard_al_plugin import write_embedding

    rng = np.random.default_rng(0)
    n = 5000
    centres = rng.normal(scale=4.0, size=(10, 32))
    x = (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, 32))).astype(np.float32)
    write_embedding(str(tmp_path), x, name="blobs")
    q = "?run=.&embedding=blobs"
    with TensorBoard(str(tmp_path), without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        r = tb.post(PLUGIN + "/layout/start", dict(run=".", embedding="blobs", method="tsne", perplexity=20,
                                                    random_state=0))
        assert r.status == 200, r.body
        seen = [r.json()]
        deadline = time.time() + 120
        while seen[-1]["iteration"] == 0 and time.time() < deadline:
            seen.append(tb.get_json(PLUGIN + "/layout/status" + q))
            assert seen[-1]["state"] != "error", seen[-1]
    preparing = [s for s in seen if s["state"] == "preparing"]
    phases = [s["phase"] for s in preparing]
    distinct = list(dict.fromkeys(phases))
    assert len(distinct) >= 2, distinct
    assert set(distinct) <= {"loading", "neighbors", "affinities", "pca", "first_iterations"}, distinct
    # the phases come in the engine's order, and the bar never moves back
    order = ["loading", "neighbors", "affinities", "pca", "first_iterations"]
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    progress = [s["progress"] for s in preparing]
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] <= 1
    for s in preparing:
        assert 0 <= s["phase_progress"] <= 1
        assert s["eta_s"] is None or s["eta_s"] >= 0
    # the existing keys stay; a running layout has no phase left
    assert seen[-1]["iteration"] > 0 and seen[-1]["phase"] is None and seen[-1]["eta_s"] is None
    assert {"method", "state", "progress", "iteration", "objective", "n_points", "waiting"} <= set(seen[-1])


def test_layout_schema_route_serves_the_parameter_table(demo_logdir):
    """GET layout/schema is tsne/params.py's table: what the tab builds its form from."""
    from tensorboard_al_plugin.tsne import params

    with TensorBoard(demo_logdir) as tb:
        r = tb.get(PLUGIN + "/layout/schema")
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        served = r.json()
        assert served == params.schema()
        live = [p["name"] for p in served["params"] if p["live"]]
        assert "theta" in live and "perplexity" not in live
