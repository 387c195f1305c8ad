"""The labeling-efficiency benchmark runs end to end and refuses bad input with one clear sentence."""
import json
import os
import time

import numpy as np
import pytest

from tensorboard_al_plugin.active import STRATEGIES, load_dataset, quality_report, run_benchmark


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_benchmark_runs_all_strategies_end_to_end_on_a_small_subset_within_a_minute(digits, tmp_path):
    X, y = digits
    t0 = time.time()
    res = run_benchmark(X, y, strategies=list(STRATEGIES), folds=2, max_actions=30, subset=240, out_dir=str(tmp_path),
                        random_state=0, progress=False, tsne_options={"initial_iterations": 250})
    assert time.time() - t0 < 60
    with open(tmp_path / "results.json") as fh:
        written = json.load(fh)
    assert written == json.loads(json.dumps(res))
    assert set(written) == {"full_label_accuracy", "strategies"}
    assert 0.5 < written["full_label_accuracy"] <= 1.0
    assert list(written["strategies"]) == list(STRATEGIES)
    for name, r in written["strategies"].items():
        assert set(r) == {"actions_to_80", "mean", "curve"}
        assert len(r["actions_to_80"]) == 2
        assert all(a is None or (isinstance(a, int) and 0 < a <= 40) for a in r["actions_to_80"])
        reached = [a for a in r["actions_to_80"] if a is not None]
        assert r["mean"] == (pytest.approx(np.mean(reached)) if reached else None)
        assert [a for a, _ in r["curve"]] == [0, 10, 20, 30]
        assert all(0.0 <= acc <= 1.0 for _, acc in r["curve"])
    assert os.path.getsize(tmp_path / "curves.png") > 1000


def test_tsne_labeling_labels_many_rows_per_action(digits, tmp_path):
    from tensorboard_al_plugin.active.benchmark import run_strategy
    X, y = digits
    X, y = X[:300], y[:300]
    curve = run_strategy("tsne", X[:240], y[:240], X[240:], y[240:], n_classes=10, max_actions=20,
                         tsne_features=X[:240], tsne_options={"initial_iterations": 250})
    assert curve[-1][0] >= 20
    assert curve[-1][1] > 0.5  # ~20 actions of group labeling already give a usable classifier


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": np.zeros(99)}, "labels has 99 entries but features has 100 rows"),
    ({"labels": np.zeros(100)}, "single class"),
    ({"features": np.ones((4, 3)), "labels": np.arange(4) % 2}, "fewer than folds=5"),
    ({"strategies": ["tsne", "uncertainty"]}, "unknown strategy 'uncertainty'"),
    ({"features": np.ones(100)}, "features must be a 2D array"),
])
def test_benchmark_refuses_bad_input_with_one_clear_error(tmp_path, kwargs, message):
    args = {"features": np.random.default_rng(0).normal(size=(100, 4)), "labels": np.arange(100) % 2,
            "strategies": ["random"]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run_benchmark(args.pop("features"), args.pop("labels"), out_dir=str(tmp_path), progress=False, **args)
    assert not os.path.exists(tmp_path / "results.json")


def test_quality_report_refuses_bad_input():
    with pytest.raises(ValueError, match="single class"):
        quality_report(np.ones((10, 2)), np.zeros(10))


def test_quality_report_gives_4nn_accuracy_in_3d_tsne(digits):
    X, y = digits
    rep = quality_report(X[:300], y[:300], folds=3, n_iter=300)
    assert rep["n_components"] == 3 and rep["k"] == 4 and len(rep["tsne_knn_accuracy"]["folds"]) == 3
    assert rep["tsne_knn_accuracy"]["mean"] > 0.8
    assert rep["feature_knn_accuracy"]["mean"] > 0.8


def test_missing_fashion_mnist_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar")


def test_offline_datasets_load_as_features_and_labels(digits):
    X, y = digits
    assert X.shape == (1797, 64) and y.shape == (1797,) and X.max() <= 1.0
    Xf, yf = load_dataset("lfw")
    assert Xf.shape == (200, 625) and set(yf.tolist()) == {0, 1}
