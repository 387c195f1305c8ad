"""A UMAP layout driven over HTTP in a real tensorboard (skipped without umap-learn)."""
import numpy as np
import pytest

from tests.tbserver import PLUGIN, TensorBoard
from tests.test_http_layout import E, Q, positions, wait_for

pytest.importorskip("umap")


def test_umap_layout_start_status_positions_labels_and_bad_parameters(demo_logdir):
    with TensorBoard(demo_logdir) as tb:
        tb.wait_for_embeddings()
        schema = {p["name"]: p for p in tb.get_json(PLUGIN + "/layout/schema")["params"]}
        assert schema["label_weight"]["methods"] == ["umap"] and schema["label_weight"]["live"]
        for body, message in [(dict(n_neighbors=1797), "n_neighbors: expected a whole number in [2, n_samples=1797)"),
                              (dict(label_weight=2), "label_weight: expected a number in [0, 1], got 2"),
                              (dict(min_dist="tight"), "min_dist: expected a number in [0, 1], got 'tight'")]:
            r = tb.post(PLUGIN + "/layout/start", dict(E, method="umap", **body))
            assert r.status == 400, (body, r.body)
            assert r.json()["error"].startswith(message), r.json()
        r = tb.post(PLUGIN + "/layout/start", dict(E, method="umap", n_components=3, random_state=0,
                                                    n_epochs=200, label_weight=0.8))
        assert r.status == 200, r.body
        started = r.json()
        assert started["method"] == "umap" and started["params"]["n_epochs"] == 200
        running = wait_for(tb, lambda s: s["iteration"] >= 1)
        # the keys of a t-SNE session's status, with no objective
        assert {"method", "state", "progress", "iteration", "objective", "n_components", "n_points", "params",
                "error", "freed", "waiting", "phase", "phase_progress", "eta_s"} <= set(running)
        assert running["objective"] is None and running["n_components"] == 3
        done = wait_for(tb, lambda s: s["state"] == "done")
        y, iteration, state = positions(tb)
        assert y.shape == (1797, 3) and np.isfinite(y).all() and iteration == done["iteration"] == 200
        assert state == "done"

        # labels written through the label routes start a new pass of extra_iter epochs
        r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=list(range(0, 200, 10)), label="zero"))
        assert r.status == 200
        again = wait_for(tb, lambda s: s["state"] == "done" and s["iteration"] > 200)
        assert again["iteration"] == 200 + again["params"]["extra_iter"]
        y2, _, _ = positions(tb)
        assert not np.allclose(y, y2)

        # the live label weight; a t-SNE parameter is refused by name
        r = tb.post(PLUGIN + "/layout/params", dict(E, label_weight=0.2))
        assert r.status == 200 and r.json()["params"]["label_weight"] == 0.2
        r = tb.post(PLUGIN + "/layout/params", dict(E, theta=0.3))
        assert r.status == 400 and "theta is no parameter of a UMAP layout" in r.json()["error"]
        status = tb.get_json(PLUGIN + "/layout/status" + Q)
        assert status["method"] == "umap"
