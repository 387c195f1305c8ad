"""The layout's parameter table (tsne/params.py): bounds, defaults, messages,
and that the engine, the sessions and the tab's form agree with it."""
import inspect
import json
import math
import os
import re

import numpy as np
import pytest

from tensorboard_al_plugin import sessions
from tensorboard_al_plugin.tsne import SemiSupervisedTSNE, supervision
from tensorboard_al_plugin.tsne import params as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_TS = os.path.join(ROOT, "frontend", "src", "state.ts")


def test_the_live_list_is_the_engines_and_includes_theta():
    assert P.LIVE_PARAMS == P.live_params("tsne") == ("label_importance", "repulsion_emphasis",
                                                      "supervision_start", "point_learning_rate_epochs",
                                                      "learning_rate", "theta")
    # a running UMAP takes its label weight
    assert P.live_params("umap") == ("label_weight",) and P.live_params("pca") == ()
    assert not {"perplexity", "n_components", "method", "random_state", "n_iter"} & set(P.LIVE_PARAMS)


def test_the_engines_defaults_are_the_tables():
    sig = inspect.signature(SemiSupervisedTSNE.__init__).parameters
    for name in P.ESTIMATOR_PARAMS:
        assert sig[name].default == P.BY_NAME[name].default, name
    assert P.BY_NAME["label_importance"].default == supervision.DEFAULT_LABEL_IMPORTANCE
    assert P.BY_NAME["repulsion_emphasis"].default == supervision.DEFAULT_REPULSION_EMPHASIS


def test_the_sessions_take_the_tables_parameters():
    assert sessions.TSNE_PARAMS == P.ESTIMATOR_PARAMS
    assert sessions.SESSION_DEFAULTS == {"n_iter": 1000, "extra_iter": 300, "n_epochs": None}
    assert sessions.UMAP_PARAMS == ("n_components", "random_state", "n_neighbors", "min_dist", "label_weight")


def test_the_tabs_built_in_form_defaults_are_the_tables():
    """state.ts's form is the tab's fallback when the schema cannot be fetched."""
    with open(STATE_TS, encoding="utf-8") as f:
        form = f.read().split("form: {", 1)[1].split("}", 1)[0]
    seen = {}
    for name, raw in re.findall(r"^\s*(\w+):\s*([^,\n]+),\s*$", form, re.M):
        seen[name] = json.loads(raw)
    # the tab starts from seed 0 so that a layout can be repeated; the engine's default is random
    assert seen.pop("random_state") == 0 and P.BY_NAME["random_state"].default is None
    assert seen.pop("method") == "tsne"  # the layout method (t-SNE, UMAP or PCA), no table parameter
    for name, value in seen.items():
        assert value == P.BY_NAME[name].default, name
    assert set(seen) == {"n_components", "perplexity", "learning_rate", "label_importance",
                         "repulsion_emphasis", "supervision_start", "point_learning_rate_epochs",
                         "theta", "n_iter", "n_neighbors", "min_dist", "label_weight", "n_epochs"}


def test_every_default_passes_its_own_check():
    for p in P.PARAMS:
        assert P.check_param(p.name, p.default) == p.default, p.name
    assert P.check_params(P.defaults()) == P.defaults()


@pytest.mark.parametrize("name,value,n,message", [
    ("n_components", 4, None, "n_components: expected 2 or 3, got 4"),
    ("n_components", True, None, "n_components: expected 2 or 3, got True"),
    ("perplexity", 0, None, "perplexity: expected a finite number > 0, got 0"),
    ("perplexity", float("nan"), None, "perplexity: expected a finite number > 0, got nan"),
    ("perplexity", "20", None, "perplexity: expected a finite number > 0, got '20'"),
    ("perplexity", 60, 60, "perplexity: expected a number in (0, n_samples=60), got 60"),
    ("perplexity", -1, 60, "perplexity: expected a number in (0, n_samples=60), got -1"),
    ("learning_rate", 0, None, "learning_rate: expected 'auto' or a number > 0, got 0"),
    ("learning_rate", "fast", None, "learning_rate: expected 'auto' or a number > 0, got 'fast'"),
    ("learning_rate", -1, None, "learning_rate: expected a value >= 0, got -1"),
    ("learning_rate", math.inf, None, "learning_rate: expected a finite number >= 0, got inf"),
    ("theta", -0.5, None, "theta: expected a value >= 0, got -0.5"),
    ("label_importance", -0.1, None, "label_importance: expected a value >= 0, got -0.1"),
    ("label_importance", None, None, "label_importance: expected a finite number >= 0, got None"),
    ("repulsion_emphasis", True, None, "repulsion_emphasis: expected a finite number >= 0, got True"),
    ("supervision_start", 2.5, None, "supervision_start: expected a whole number of iterations, got 2.5"),
    ("point_learning_rate_epochs", -1, None, "point_learning_rate_epochs: expected a value >= 0, got -1"),
    ("random_state", -1, None, "random_state: expected a whole number >= 0 or null, got -1"),
    ("random_state", 1.5, None, "random_state: expected a whole number >= 0 or null, got 1.5"),
    ("method", "gpu", None, "method: expected 'auto', 'exact', 'fast', 'fft' or 'bh', got 'gpu'"),
    ("n_iter", -1, None, "n_iter: expected a whole number >= 0, got -1"),
    ("extra_iter", 1.0, None, "extra_iter: expected a whole number >= 0, got 1.0"),
    ("n_neighbors", 1, None, "n_neighbors: expected a whole number >= 2, got 1"),
    ("n_neighbors", 2.5, None, "n_neighbors: expected a whole number >= 2, got 2.5"),
    ("n_neighbors", 60, 60, "n_neighbors: expected a whole number in [2, n_samples=60), got 60"),
    ("min_dist", 1.5, None, "min_dist: expected a number in [0, 1], got 1.5"),
    ("min_dist", "0.1", None, "min_dist: expected a number in [0, 1], got '0.1'"),
    ("label_weight", -0.5, None, "label_weight: expected a number in [0, 1], got -0.5"),
    ("label_weight", float("nan"), None, "label_weight: expected a number in [0, 1], got nan"),
    ("n_epochs", 0, None, "n_epochs: expected a whole number >= 1 or null, got 0"),
    ("n_epochs", True, None, "n_epochs: expected a whole number >= 1 or null, got True"),
])
def test_a_bad_value_names_the_parameter_and_what_it_expects(name, value, n, message):
    with pytest.raises(ValueError) as e:
        P.check_param(name, value, n)
    assert str(e.value) == message


@pytest.mark.parametrize("name,value,expected", [
    ("n_components", 3, 3), ("perplexity", 5, 5.0), ("learning_rate", "auto", "auto"),
    ("learning_rate", 200, 200.0), ("theta", 0, 0.0), ("label_importance", 0, 0.0),
    ("supervision_start", 10.0, 10), ("point_learning_rate_epochs", np.int64(7), 7),
    ("random_state", None, None), ("random_state", np.int32(3), 3), ("method", "bh", "bh"),
    ("n_iter", 0, 0), ("extra_iter", np.int64(5), 5),
    ("n_neighbors", 99.0, 99), ("min_dist", 0, 0.0), ("label_weight", 1, 1.0), ("n_epochs", None, None),
    ("n_epochs", 200, 200),
])
def test_a_good_value_comes_back_as_the_engine_takes_it(name, value, expected):
    got = P.check_param(name, value, 100)
    assert got == expected and type(got) is type(expected)


def test_bounds_at_their_edges():
    # inclusive lower bounds take the bound, exclusive ones refuse it
    assert P.check_param("label_importance", 0) == 0.0 and P.check_param("supervision_start", 0) == 0
    with pytest.raises(ValueError):
        P.check_param("learning_rate", 0.0)
    assert P.check_param("perplexity", 59.99, 60) == 59.99
    assert P.check_param("perplexity", 1e-9, 60) == 1e-9


def test_live_checks_refuse_a_parameter_of_another_method():
    assert P.check_live_param("label_weight", 0.2, "umap") == 0.2
    with pytest.raises(ValueError) as e:
        P.check_live_param("theta", 0.2, "umap")
    assert str(e.value) == "theta is no parameter of a UMAP layout; its live parameters are label_weight"
    with pytest.raises(ValueError) as e:
        P.check_live_param("n_neighbors", 5, "umap")
    assert str(e.value) == "unknown parameter 'n_neighbors'; live parameters are label_weight"
    with pytest.raises(ValueError) as e:
        P.check_live_param("label_weight", 0.2, "tsne")
    assert str(e.value) == ("label_weight is no parameter of a t-SNE layout; its live parameters are "
                            "label_importance, repulsion_emphasis, supervision_start, "
                            "point_learning_rate_epochs, learning_rate, theta")


def test_live_checks_refuse_a_parameter_that_needs_a_restart():
    assert P.check_live_param("theta", 0.8) == 0.8
    with pytest.raises(ValueError) as e:
        P.check_live_param("perplexity", 3)
    assert str(e.value) == ("unknown parameter 'perplexity'; live parameters are label_importance, "
                            "repulsion_emphasis, supervision_start, point_learning_rate_epochs, "
                            "learning_rate, theta")


def test_check_params_refuses_unknown_names_and_fft_in_3d():
    with pytest.raises(ValueError, match=r"params: unknown parameter\(s\) \['bogus'\]; expected some of"):
        P.check_params({"bogus": 1})
    with pytest.raises(ValueError, match="method: 'fft' supports n_components=2 only"):
        P.check_params({"method": "fft", "n_components": 3})
    assert P.check_params({"method": "fft"}) == {"method": "fft"}


def test_the_schema_is_json_with_every_parameter():
    served = json.loads(json.dumps(P.schema(), allow_nan=False))
    by_name = {p["name"]: p for p in served["params"]}
    assert list(by_name) == [p.name for p in P.PARAMS]
    assert [n for n, p in by_name.items() if p["live"]] == list(P.LIVE_PARAMS) + ["label_weight"]
    assert by_name["perplexity"] == dict(by_name["perplexity"], kind="float", default=20.0, min=0,
                                         min_inclusive=False, max="n_samples", max_inclusive=False)
    assert by_name["learning_rate"]["kind"] == "auto_or_float" and by_name["learning_rate"]["default"] == "auto"
    assert by_name["n_components"]["choices"] == [2, 3]
    assert by_name["n_components"]["methods"] == ["tsne", "pca", "umap"]
    assert by_name["label_weight"] == dict(by_name["label_weight"], kind="float", default=0.5, min=0, max=1,
                                           min_inclusive=True, max_inclusive=True, live=True, methods=["umap"])
    assert by_name["n_epochs"]["nullable"] and by_name["n_epochs"]["default"] is None
    assert by_name["random_state"]["nullable"] and by_name["random_state"]["default"] is None
    assert by_name["n_iter"]["scope"] == "session" and by_name["n_iter"]["default"] == 1000
    for p in served["params"]:
        assert p["kind"] in P.KINDS and p["label"] and p["help"], p


def test_the_frontend_tests_schema_is_the_served_one():
    """frontend/test/layoutSchema.json stands for GET layout/schema in the tab's unit tests."""
    with open(os.path.join(ROOT, "frontend", "test", "layoutSchema.json"), encoding="utf-8") as f:
        assert json.load(f) == P.schema()
