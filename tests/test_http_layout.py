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
        # steps come in chunks sized by time (a fast engine runs hundreds of iterations in one):
        # wait for a chunk after the one whose positions were read
        later = wait_for(tb, lambda s: s["iteration"] > max(it1, first["iteration"] + 20))
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


def _decode_u16(r):
    """A positions answer in format u16 decoded with its X-Bounds (docs/HTTP_API.md)."""
    assert r.status == 200, r.body
    assert r.headers["X-Format"] == "u16"
    rows, dims = int(r.headers["X-Rows"]), int(r.headers["X-Dims"])
    q = np.frombuffer(r.body, "<u2").reshape(rows, dims)
    bounds = np.array([float(v) for v in r.headers["X-Bounds"].split(",")]).reshape(dims, 2)
    lo, hi = bounds[:, 0], bounds[:, 1]
    values = lo + q * (hi - lo) / 65534
    return np.where(q == 65535, np.nan, values), (hi - lo) / 65534


def test_positions_in_u16_are_half_the_bytes_and_within_half_a_step(demo_logdir):
    """format=u16 on layout/positions, rounds' and the preview: 2 bytes a coordinate against
    the bounding box in X-Bounds; the float32 answer without the parameter is unchanged."""
    with TensorBoard(demo_logdir, without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        r = tb.post(PLUGIN + "/layout/start", dict(E, method="pca", n_components=2))
        assert r.status == 200, r.body
        wait_for(tb, lambda s: s["state"] == "done")
        plain = tb.get(PLUGIN + "/layout/positions" + Q)
        compact = tb.get(PLUGIN + "/layout/positions" + Q + "&format=u16")
        assert plain.headers["X-Format"] == "f32" and "X-Bounds" not in plain.headers
        assert compact.headers["X-Iteration"] == plain.headers["X-Iteration"]
        assert compact.headers["X-State"] == plain.headers["X-State"] == "done"
        y = np.frombuffer(plain.body, "<f4").reshape(1797, 2)
        assert len(compact.body) == len(plain.body) // 2
        decoded, step = _decode_u16(compact)
        assert np.all(np.abs(decoded - y) <= step / 2 * 1.0001 + 1e-6)
        assert np.allclose(decoded.min(axis=0), y.min(axis=0)) and np.allclose(decoded.max(axis=0), y.max(axis=0))

        r = tb.get(PLUGIN + "/layout/positions" + Q + "&format=f64")
        assert r.status == 400 and "format" in r.json()["error"]

        # the quick PCA preview the tab draws first: the features on their 3 principal axes
        from tensorboard_al_plugin.tsne.pca import principal_components

        t = tb.get(PLUGIN + "/tensor" + Q)
        x = np.frombuffer(t.body, "<f4").reshape(int(t.headers["X-Rows"]), int(t.headers["X-Dims"]))
        p = tb.get(PLUGIN + "/preview" + Q)
        assert p.status == 200 and (p.headers["X-Rows"], p.headers["X-Dims"]) == ("1797", "3")
        preview = np.frombuffer(p.body, "<f4").reshape(1797, 3)
        assert np.allclose(preview, principal_components(x, 3), atol=1e-3)
        decoded, step = _decode_u16(tb.get(PLUGIN + "/preview" + Q + "&format=u16"))
        assert np.all(np.abs(decoded - preview) <= step / 2 * 1.0001 + 1e-6)
        assert tb.get(PLUGIN + "/preview?run=digits&embedding=nope").status == 404


def test_feature_neighbours_route_is_the_brute_force_order(demo_logdir):
    """GET neighbours: row's k nearest rows in feature space as uint32, nearest first, ties by row;
    the tab asks for these instead of downloading the features."""
    with TensorBoard(demo_logdir, without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        t = tb.get(PLUGIN + "/tensor" + Q)
        x = np.frombuffer(t.body, "<f4").reshape(int(t.headers["X-Rows"]), int(t.headers["X-Dims"]))
        d = ((x - x[7]) ** 2).sum(axis=1)
        d[7] = np.inf
        want = np.argsort(d, kind="stable")
        for k in (1, 20, 1796, 5000):
            r = tb.get(PLUGIN + "/neighbours" + Q + "&row=7&k=%d" % k)
            assert r.status == 200, r.body
            got = np.frombuffer(r.body, "<u4")
            assert r.headers["X-Count"] == str(len(got)) == str(min(k, 1796))
            assert np.array_equal(got, want[:len(got)])
        for query, status in [("&row=1797&k=5", 400), ("&row=-1&k=5", 400), ("&row=0&k=0", 400), ("&k=5", 400)]:
            r = tb.get(PLUGIN + "/neighbours" + Q + query)
            assert r.status == status, (query, r.body)
            assert r.json()["error"]


def test_a_first_group_of_one_class_at_the_default_r_keeps_the_layout_running(demo_logdir):
    # the tab's defaults (r = 1): a person's first group is one class, so no labeled pair of two
    # classes exists; the correction's first check (age 4) used to end the session in
    # "error: ZeroDivisionError: float division by zero". Then a second class joins.
    with TensorBoard(demo_logdir) as tb:
        tb.wait_for_embeddings()
        r = tb.post(PLUGIN + "/layout/start", dict(E, method="tsne", n_components=2, random_state=0))
        assert r.status == 200, r.body
        # not given: the engine's default applies
        from tensorboard_al_plugin.tsne import supervision
        assert "repulsion_emphasis" not in r.json()["params"]
        assert supervision.DEFAULT_REPULSION_EMPHASIS == 1.0
        first = wait_for(tb, lambda s: s["iteration"] >= 10)
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=list(range(0, 210, 10)), label="zero"))
        assert r.status == 200
        one = wait_for(tb, lambda s: s["iteration"] > first["iteration"] + 40)
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=list(range(5, 215, 10)), label="one"))
        assert r.status == 200
        wait_for(tb, lambda s: s["iteration"] > one["iteration"] + 40)
        y, _, _ = positions(tb)
        assert np.all(np.isfinite(y))
