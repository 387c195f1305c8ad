"""The plugin over HTTP in a real tensorboard: demo, Projector logs (TSV and checkpoint), bad input.

Runs twice: with TensorFlow, and with TensorFlow hidden (TensorBoard's stub file layer).
"""

import importlib.util
import json
import os

import numpy as np
import pytest

from tests.fixture_logs import ROWS, DIMS, write_broken_logs, write_checkpoint_log, write_projector_tsv_log
from tests.tbserver import PLUGIN, TensorBoard

# The lean venvs of the other Pythons (scripts/test.sh) have no TensorFlow:
# there the checkpoint run is not written and only the stub file layer runs.
HAVE_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def mixed_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    logdir = str(root / "logs")
    x = write_projector_tsv_log(logdir)
    ckpt_name = write_checkpoint_log(logdir) if HAVE_TF else None
    expect = write_broken_logs(logdir)
    from tensorboard_al_plugin import write_embedding

    write_embedding(logdir, np.eye(3, 5, dtype=np.float32), name="own", run="mine",
                    images=np.zeros((3, 4, 4), np.uint8), metadata={"a": [1, 2, 3], "b": ["x", "y", "z"]})
    return {"logdir": logdir, "x": x, "ckpt": ckpt_name, "expect": expect}


@pytest.fixture(scope="module", params=[True, False], ids=["with-tf", "without-tf"])
def server(request, mixed_logdir):
    if request.param and not HAVE_TF:
        pytest.skip("TensorFlow not installed")
    with TensorBoard(mixed_logdir["logdir"], without_tensorflow=not request.param) as tb:
        tb.with_tf = request.param
        tb.listing = {(e["run"], e["name"]): e for e in tb.wait_for_embeddings()["embeddings"]}
        yield tb


def q(run, name, **extra):
    from urllib.parse import urlencode

    return "?" + urlencode(dict(run=run, embedding=name, **extra))


def test_plugin_is_listed_as_dynamic_tab(server):
    plugins = server.get_json("/data/plugins_listing")
    entry = plugins["active_labeling"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Active Labeling"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/active_labeling/index.js"}


def test_frontend_module_is_served_and_exports_render(server):
    r = server.get(PLUGIN + "/index.js")
    assert r.status == 200
    assert "javascript" in r.headers["Content-Type"]
    assert b"render" in r.body and b"export" in r.body


def test_tsv_projector_log_written_by_tensorboard_api(server, mixed_logdir):
    e = server.listing[(".", "vectors")]
    assert e["ok"] and e["format"] == "projector" and (e["rows"], e["dims"]) == (ROWS, DIMS)
    assert e["metadata_columns"] == ["name", "kind"]
    assert e["sprite"]["thumb_width"] == 10 and e["sprite"]["pages"] == 1
    r = server.get(PLUGIN + "/tensor" + q(".", "vectors"))
    assert r.status == 200 and r.headers["X-Rows"] == str(ROWS)
    got = np.frombuffer(r.body, "<f4").reshape(ROWS, DIMS)
    np.testing.assert_allclose(got, mixed_logdir["x"], rtol=1e-5)
    meta = server.get_json(PLUGIN + "/metadata" + q(".", "vectors"))
    assert meta["columns"] == ["name", "kind"] and meta["data"][1][:2] == ["even", "odd"]
    r = server.get(PLUGIN + "/sprite" + q(".", "vectors", page=0))
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"


def test_single_column_metadata_has_no_header_row(server):
    e = server.listing[("single", "single")]
    assert e["ok"] and e["rows"] == 5
    meta = server.get_json(PLUGIN + "/metadata" + q("single", "single"))
    assert meta["data"] == [["c0", "c1", "c2", "c3", "c4"]]


def test_checkpoint_tensor_needs_tensorflow(server, mixed_logdir):
    name = mixed_logdir["ckpt"]
    if name is None:
        pytest.skip("TensorFlow not installed: no checkpoint written")
    e = server.listing[("ckpt", name)]
    if server.with_tf:
        assert e["ok"], e["problems"]
        r = server.get(PLUGIN + "/tensor" + q("ckpt", name))
        got = np.frombuffer(r.body, "<f4").reshape(ROWS, DIMS)
        np.testing.assert_array_equal(got, np.arange(ROWS * DIMS, dtype=np.float32).reshape(ROWS, DIMS))
    else:
        assert not e["ok"]
        assert "needs TensorFlow" in e["problems"][0]
        r = server.get(PLUGIN + "/tensor" + q("ckpt", name))
        assert r.status == 422 and "needs TensorFlow" in r.json()["error"]


def test_own_format_from_writer(server):
    e = server.listing[("mine", "own")]
    assert e["ok"] and e["format"] == "active_labeling" and (e["rows"], e["dims"]) == (3, 5)
    assert e["metadata_columns"] == ["a", "b"]
    assert e["sprite"]["thumb_width"] == 32  # 4 px images upscaled to a readable size
    meta = server.get_json(PLUGIN + "/metadata" + q("mine", "own"))
    assert meta["data"] == [["1", "2", "3"], ["x", "y", "z"]]
    # The writer's projector_config entry points into its own folder: listed once, not twice.
    assert [k for k in server.listing if k[0] == "mine"] == [("mine", "own")]


@pytest.mark.parametrize("run", ["bad_pbtxt", "bad_rows", "ragged", "nonnumeric", "sprite_missing",
                                 "sprite_untiled", "sprite_small", "escape"])
def test_bad_input_gets_one_clear_error(server, mixed_logdir, run):
    expected = mixed_logdir["expect"][run]
    entries = [e for (r, _), e in server.listing.items() if r == run]
    assert len(entries) == 1, entries
    e = entries[0]
    assert any(expected in p for p in e["problems"]), e["problems"]
    # Every route of that embedding answers with JSON naming the problem, never a traceback.
    for route in ("/tensor", "/metadata", "/sprite"):
        r = server.get(PLUGIN + route + q(run, e["name"], page=0))
        if r.status != 200:
            body = r.json()
            assert set(body) == {"error"} and "Traceback" not in body["error"]
    if run in ("ragged", "nonnumeric", "escape", "bad_pbtxt"):
        assert not e["ok"]
        r = server.get(PLUGIN + "/tensor" + q(run, e["name"]))
        assert r.status == 422 and expected in r.json()["error"]
    if run == "bad_rows":
        r = server.get(PLUGIN + "/metadata" + q(run, e["name"]))
        assert r.status == 422 and expected in r.json()["error"]
    if run.startswith("sprite"):
        assert e["ok"] and e["sprite"] is None
        r = server.get(PLUGIN + "/sprite" + q(run, e["name"], page=0))
        assert r.status == 422 and expected in r.json()["error"]


def test_unknown_run_and_embedding_are_404_and_bad_parameters_400(server):
    r = server.get(PLUGIN + "/tensor" + q("nope", "x"))
    assert r.status == 404 and 'unknown run "nope"' in r.json()["error"]
    r = server.get(PLUGIN + "/tensor" + q("mine", "nope"))
    assert r.status == 404 and 'unknown embedding "nope"' in r.json()["error"]
    r = server.get(PLUGIN + "/tensor?run=mine")
    assert r.status == 400 and "embedding" in r.json()["error"]
    r = server.get(PLUGIN + "/sprite" + q("mine", "own", page="x"))
    assert r.status == 400 and "integer" in r.json()["error"]
    r = server.get(PLUGIN + "/sprite" + q("mine", "own", page=7))
    assert r.status == 400 and "1 page" in r.json()["error"]
    r = server.get(PLUGIN + "/static/..%2F..%2Fplugin.py")
    assert r.status == 404


def test_good_embeddings_keep_working_next_to_broken_ones(server):
    ok = sorted(k for k, e in server.listing.items() if e["ok"])
    assert (".", "vectors") in ok and ("mine", "own") in ok and ("single", "single") in ok
    for run, name in ok:
        assert server.get(PLUGIN + "/tensor" + q(run, name)).status == 200


def test_demo_logs_serve_the_digits(demo_logdir):
    with TensorBoard(demo_logdir) as tb:
        listing = tb.wait_for_embeddings()["embeddings"]
        assert [(e["run"], e["name"], e["rows"], e["dims"], e["ok"], e["sprite"] is not None)
                for e in listing] == [("digits", "digits", 1797, 64, True, True)]
        r = tb.get(PLUGIN + "/tensor" + q("digits", "digits"))
        x = np.frombuffer(r.body, "<f4").reshape(1797, 64)
        from sklearn.datasets import load_digits

        np.testing.assert_array_equal(x, load_digits().data.astype(np.float32))
        meta = tb.get_json(PLUGIN + "/metadata" + q("digits", "digits"))
        assert meta["columns"] == ["digit"] and meta["data"][0][:3] == ["0", "1", "2"]
