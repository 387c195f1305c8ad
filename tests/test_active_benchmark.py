"""The labeling-efficiency benchmark runs end to end and refuses bad input with one clear sentence."""
import json
import os

import numpy as np
import pytest

from tensorboard_al_plugin.active import STRATEGIES
from tensorboard_al_plugin.research import load_dataset, quality_report, run_benchmark


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_benchmark_runs_all_strategies_end_to_end_on_a_small_subset(digits, tmp_path):
    # (Its time is the benchmark's business, not a unit test's: it took 128 s on a busy 2-core machine.)
    X, y = digits
    res = run_benchmark(X, y, strategies=list(STRATEGIES), folds=2, max_actions=30, subset=240, out_dir=str(tmp_path),
                        random_state=0, progress=False, tsne_options={"initial_iterations": 250})
    with open(tmp_path / "results.json") as fh:
        written = json.load(fh)
    assert written == json.loads(json.dumps(res))
    assert set(written) == {"full_label_accuracy", "target_fraction", "max_actions", "folds", "classifier_backend",
                            "strategies"}
    assert (written["target_fraction"], written["max_actions"], written["folds"]) == (0.8, 30, 2)
    assert written["classifier_backend"] == "numpy"
    assert 0.5 < written["full_label_accuracy"] <= 1.0
    assert list(written["strategies"]) == list(STRATEGIES)
    for name, r in written["strategies"].items():
        assert set(r) == {"actions_to_80", "mean", "censored", "mean_with_censored", "curve"}
        assert len(r["actions_to_80"]) == 2
        assert all(a is None or (isinstance(a, int) and 0 < a <= 40) for a in r["actions_to_80"])
        reached = [a for a in r["actions_to_80"] if a is not None]
        assert r["mean"] == (pytest.approx(np.mean(reached)) if reached else None)
        assert r["censored"] == 2 - len(reached)
        assert r["mean_with_censored"] == pytest.approx(np.mean(reached + [30] * r["censored"]))
        assert [a for a, _ in r["curve"]] == [0, 10, 20, 30]
        assert all(0.0 <= acc <= 1.0 for _, acc in r["curve"])
    assert os.path.getsize(tmp_path / "curves.png") > 1000


def test_folds_that_never_reach_the_target_are_censored_at_the_cap_not_dropped():
    from tensorboard_al_plugin.research.benchmark import censored_summary

    # The example: "tsne 53.7 (-, 54, 57, 50, -)" averaged only the three folds that got there.
    got = censored_summary([None, 54, 57, 50, None], 300)
    assert got["censored"] == 2
    assert got["mean_with_censored"] == pytest.approx((300 + 54 + 57 + 50 + 300) / 5)
    assert got["mean"] == pytest.approx(53.67, abs=0.01)  # the old meaning, kept for older readers
    assert censored_summary([None, None], 300) == {"censored": 2, "mean_with_censored": 300.0, "mean": None}
    assert censored_summary([10, 20], 300) == {"censored": 0, "mean_with_censored": 15.0, "mean": 15.0}


def test_censored_folds_are_marked_in_the_plot_legend(tmp_path):
    from tensorboard_al_plugin.research.benchmark import plot_curves

    grid = np.arange(0, 301, 10)
    acc = {"tsne": np.tile(np.linspace(0.1, 0.9, len(grid)), (5, 1)),
           "random": np.tile(np.linspace(0.1, 0.5, len(grid)), (5, 1))}
    legend = plot_curves(grid, acc, 0.7, str(tmp_path / "c.png"), cap=300,
                         actions_to_target={"tsne": [None, 54, 57, 50, None], "random": [None] * 5})
    assert "censored fold: not reached within 300 actions" in legend
    assert "a fold reached 80% here" in legend
    assert os.path.getsize(tmp_path / "c.png") > 1000
    legend = plot_curves(grid, acc, 0.7, str(tmp_path / "d.png"), actions_to_target={"tsne": [54] * 5})
    assert not any("censored" in label for label in legend)


def test_cli_benchmark_uses_the_numpy_network_by_default_and_prints_censored_folds(tmp_path):
    import subprocess
    import sys

    # A short cap, so that some folds never reach 80% of the full-label accuracy.
    script = ("import sys; from tensorboard_al_plugin import cli; rc = cli.main(sys.argv[1:]); "
              "print('tensorflow imported:', 'tensorflow' in sys.modules); sys.exit(rc)")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", script, "benchmark", "--dataset", "digits", "--subset", "200",
                        "--folds", "3", "--max-actions", "20", "--strategies", "random,margin",
                        "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "tensorflow imported: False" in r.stdout
    assert "(numpy classifier)" in r.stdout
    with open(out / "results.json") as fh:
        written = json.load(fh)
    assert written["classifier_backend"] == "numpy"
    lines = r.stdout.splitlines()
    assert "folds that never did within 20 actions are censored: counted as 20 and marked >=" in r.stdout
    for name, res in written["strategies"].items():
        row = next(line for line in lines if line.split()[:1] == [name])
        shown = ", ".join(">=20" if a is None else str(a) for a in res["actions_to_80"])
        assert row.endswith("(%s)" % shown)
        assert "%d of 3" % res["censored"] in row
        assert (">=%.1f" if res["censored"] else "%.1f") % res["mean_with_censored"] in row
    assert any(res["censored"] for res in written["strategies"].values())


def test_tsne_labeling_labels_many_rows_per_action(digits, tmp_path):
    from tensorboard_al_plugin.research.benchmark import run_strategy
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
