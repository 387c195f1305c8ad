"""Semi-supervised UMAP as a live layout (tsne/umap_layout.py) and in the server's sessions.

Skipped where umap-learn is not installed (the lean Python stages of scripts/test_pythons.sh).
"""
import time

import numpy as np
import pytest

pytest.importorskip("umap")
# the production filter (tsne/umap_layout.py, set at import) does not outlive pytest's collection
pytestmark = pytest.mark.filterwarnings("ignore:precomputed_knn")

from sklearn.datasets import load_digits  # noqa: E402

from tensorboard_al_plugin.sessions import SessionManager  # noqa: E402
from tensorboard_al_plugin.tsne import umap_layout  # noqa: E402
from tensorboard_al_plugin.tsne.metrics import knn_accuracy  # noqa: E402
from tensorboard_al_plugin.tsne.umap_layout import SemiSupervisedUMAP  # noqa: E402
from tests.test_import_path import run_python  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    rows = np.random.default_rng(0).permutation(len(d.target))[:500]
    return (d.data[rows] / 16.0).astype(np.float32), d.target[rows].astype(np.int64)


@pytest.fixture
def manager():
    m = SessionManager()
    yield m
    m.close()


def run_until_settled(manager, key, at_least=0, timeout=120):
    """The status once the session is done with at least ``at_least`` iterations."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = manager.status(key)
        assert st["state"] != "error", st
        if st["state"] == "done" and st["iteration"] >= at_least:
            return st
        time.sleep(0.05)
    raise AssertionError(f"not done in {timeout} s: {manager.status(key)}")


@pytest.mark.parametrize("dims", [2, 3])
def test_a_umap_session_reaches_done_with_its_epochs(manager, digits, dims):
    X, _ = digits
    st = manager.start("k", lambda: X, np.full(len(X), -1), {"n_components": dims, "random_state": 0,
                                                              "n_epochs": 120}, method="umap")
    assert st["method"] == "umap" and st["state"] in ("preparing", "waiting")
    done = run_until_settled(manager, "k")
    pos, iteration, objective, state = manager.positions("k")
    assert state == "done" and iteration == done["iteration"] == 120
    assert pos.shape == (len(X), dims) and pos.dtype == np.float32 and np.isfinite(pos).all()
    # the status keeps the t-SNE session's keys; UMAP computes no objective
    assert {"method", "state", "progress", "iteration", "objective", "n_components", "n_points", "params",
            "error", "freed", "waiting", "phase", "phase_progress", "eta_s"} <= set(done)
    assert done["objective"] is None and done["n_points"] == len(X) and done["progress"] == 1.0
    assert done["params"]["n_neighbors"] == 15 and done["params"]["label_weight"] == 0.5


def test_epochs_default_to_umap_learns_choice_for_n(manager, digits):
    X, _ = digits
    st = manager.start("k", lambda: X, np.full(len(X), -1), {"random_state": 0}, method="umap")
    assert st["params"]["n_epochs"] == 500 == umap_layout.default_epochs(len(X))
    manager.pause("k")
    assert umap_layout.default_epochs(10000) == 500 and umap_layout.default_epochs(10001) == 200


def test_stepping_in_chunks_is_one_uninterrupted_optimisation(digits):
    """The pass waits between granted epochs instead of restarting: 4 chunks of 15
    epochs give exactly the positions of one step of 60."""
    X, _ = digits
    whole = SemiSupervisedUMAP(random_state=3).prepare(X)
    whole.step(60, until=60)
    chunked = SemiSupervisedUMAP(random_state=3).prepare(X)
    frames = []
    for _ in range(4):
        chunked.step(15, until=60)
        frames.append(chunked.positions)
    whole.close()
    chunked.close()
    assert chunked.iteration == whole.iteration == 60
    np.testing.assert_array_equal(chunked.positions, whole.positions)
    # intermediate frames differ from each other: the layout moves while it optimises
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    # a frame is a copy, never written afterwards
    assert not np.shares_memory(frames[0], chunked.embedding)


def test_labels_as_target_pull_classes_apart(digits):
    X, y = digits
    plain = SemiSupervisedUMAP(random_state=0).prepare(X)
    plain.step(200)
    half = np.where(np.arange(len(y)) % 2 == 0, y, -1)
    guided = SemiSupervisedUMAP(random_state=0, label_weight=0.9).prepare(X, labels=half)
    guided.step(200)
    ignored = SemiSupervisedUMAP(random_state=0, label_weight=0.0).prepare(X, labels=half)
    ignored.step(200)
    for r in (plain, guided, ignored):
        r.close()
    assert not np.allclose(plain.positions, guided.positions)
    # label_weight 0 ignores the labels: the unsupervised layout, exactly
    np.testing.assert_array_equal(plain.positions, ignored.positions)
    # the labeled classes are tighter and farther apart than without labels
    from sklearn.metrics import silhouette_score
    labeled = half >= 0
    guided_s = silhouette_score(guided.positions[labeled], y[labeled])
    plain_s = silhouette_score(plain.positions[labeled], y[labeled])
    assert guided_s > plain_s + 0.05, (guided_s, plain_s)


def test_new_labels_mid_run_start_a_new_pass_from_the_current_positions(digits):
    X, y = digits
    run = SemiSupervisedUMAP(random_state=0, label_weight=0.9).prepare(X)
    run.step(50, until=200)
    before = run.positions
    assert (run.labels_applied == -1).all()
    run.set_labels(y)
    run.step(1, until=200)
    # applied at once, continuing from where the layout was (one epoch moves points a little)
    np.testing.assert_array_equal(run.labels_applied, y)
    assert run.iteration == 51
    step = np.linalg.norm(run.positions - before, axis=1)
    assert np.median(step) < 0.5 * np.ptp(before, axis=0).max()
    run.step(149, until=200)
    run.close()
    assert run.iteration == 200
    assert knn_accuracy(run.positions, y) > 0.95


def test_a_session_takes_new_labels_and_label_weight_while_running_or_done(manager, digits):
    X, y = digits
    manager.start("k", lambda: X, np.full(len(X), -1), {"random_state": 0, "n_epochs": 60,
                                                         "extra_iter": 40}, method="umap")
    done = run_until_settled(manager, "k")
    manager.set_labels("k", y)
    again = run_until_settled(manager, "k", done["iteration"] + 1)
    # a finished UMAP runs a new pass of extra_iter epochs with the labels
    assert again["iteration"] == done["iteration"] + 40
    st = manager.set_params("k", label_weight=1.0)
    assert st["params"]["label_weight"] == 1.0
    third = run_until_settled(manager, "k", again["iteration"] + 1)
    assert third["iteration"] == again["iteration"] + 40
    with pytest.raises(ValueError) as e:
        manager.set_params("k", theta=0.3)
    assert str(e.value) == "theta is no parameter of a UMAP layout; its live parameters are label_weight"


def test_pause_resume_and_free_keep_the_positions(manager, digits):
    X, _ = digits
    manager.start("k", lambda: X, np.full(len(X), -1), {"random_state": 0, "n_epochs": 400}, method="umap")
    deadline = time.monotonic() + 120
    while manager.status("k")["iteration"] < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    paused = manager.pause("k")
    assert paused["state"] == "paused"
    pos, it, _, _ = manager.positions("k")
    time.sleep(0.3)
    assert manager.positions("k")[1] == it
    manager.free("k")
    deadline = time.monotonic() + 30
    while not manager.status("k")["freed"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert manager.status("k")["freed"]
    manager.resume("k")
    done = run_until_settled(manager, "k")
    assert done["iteration"] == 400 and not done["freed"]


@pytest.mark.parametrize("params,message", [
    ({"n_neighbors": 500}, "n_neighbors: expected a whole number in [2, n_samples=500), got 500"),
    ({"n_neighbors": 1}, "n_neighbors: expected a whole number >= 2, got 1"),
    ({"label_weight": 1.5}, "label_weight: expected a number in [0, 1], got 1.5"),
    ({"min_dist": -0.1}, "min_dist: expected a number in [0, 1], got -0.1"),
    ({"n_epochs": 0}, "n_epochs: expected a whole number >= 1 or null, got 0"),
])
def test_bad_umap_parameters_are_refused_at_the_start_with_one_message(manager, digits, params, message):
    X, _ = digits
    with pytest.raises(ValueError) as e:
        manager.start("k", lambda: X, np.full(len(X), -1), params, method="umap")
    assert str(e.value) == message
    assert manager.status("k") is None


def test_without_umap_learn_a_start_says_how_to_install_it(manager, digits, monkeypatch):
    X, _ = digits
    monkeypatch.setattr(umap_layout, "umap_available", lambda: False)
    with pytest.raises(ValueError) as e:
        manager.start("k", lambda: X, np.full(len(X), -1), {}, method="umap")
    assert "pip install 'tensorboard-al[umap]'" in str(e.value)


def test_umap_learn_is_imported_only_by_a_umap_layout_and_never_imports_tensorflow():
    got = run_python("import tensorboard_al_plugin.plugin, tensorboard_al_plugin.sessions")
    assert "umap" not in got["modules"]
    got = run_python("import numpy as np\n"
                     "from tensorboard_al_plugin.tsne.umap_layout import SemiSupervisedUMAP\n"
                     "X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)\n"
                     "SemiSupervisedUMAP(random_state=0).prepare(X).step(5)")
    assert "umap.umap_" in got["modules"] and "pynndescent" in got["modules"]
    assert "tensorflow" not in got["modules"] and "umap.parametric_umap" not in got["modules"]


def test_quality_scores_umap_alone_and_fed_the_training_folds_labels(digits, tmp_path, capsys):
    from tensorboard_al_plugin.cli import main
    from tensorboard_al_plugin.research import quality_report
    X, y = digits
    rep = quality_report(X[:300], y[:300], folds=3, layouts=("umap",), with_labels=True)
    assert "tsne_knn_accuracy" not in rep and set(rep["seconds"]) == {"umap", "umap_with_labels"}
    for key in ("umap_knn_accuracy", "umap_with_labels_knn_accuracy", "feature_knn_accuracy"):
        assert len(rep[key]["folds"]) == 3 and 0.8 < rep[key]["mean"] <= 1.0, (key, rep[key])
    with pytest.raises(ValueError, match="layouts: expected some of tsne, umap, got isomap"):
        quality_report(X[:300], y[:300], layouts=("isomap",))
    np.save(tmp_path / "X.npy", X[:200])
    np.save(tmp_path / "y.npy", y[:200])
    assert main(["quality", "--features", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--folds", "3", "--layout", "umap", "--with-labels"]) == 0
    out = capsys.readouterr().out
    assert "3D UMAP:" in out and "3D UMAP, training folds' labels:" in out and "t-SNE" not in out


def test_a_umap_session_started_without_labels_takes_umap_learns_epochs_once_loaded(manager, digits):
    X, _ = digits
    manager.start("k", lambda: X[:300], None, {"random_state": 0}, method="umap")
    manager.set_labels("k", np.full(300, -1))  # before the features load: no budget to extend yet
    done = run_until_settled(manager, "k")
    assert done["iteration"] == done["params"]["n_epochs"] == 500 and "n_iter" not in done["params"]


def test_from_4096_rows_umap_learns_nn_descent_finds_the_neighbours_once():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(4, 6))
    X = (centres[np.arange(4200) % 4] + rng.normal(size=(4200, 6))).astype(np.float32)
    small = SemiSupervisedUMAP(random_state=0).prepare(X[:500])
    assert small.knn_search == "exact (the engine's)"
    run = SemiSupervisedUMAP(random_state=0, n_components=3).prepare(X)
    assert run.knn_search == "NN-descent (umap-learn)" and run._knn[0].shape == (4200, 15)
    # each row's own neighbour list starts with itself, as umap-learn's own search gives it
    assert (run._knn[0][:, 0] == np.arange(4200)).mean() > 0.99
    run.step(20, until=20)
    run.set_labels(np.arange(4200) % 4)
    run.step(5)  # a new graph from the kept neighbours
    assert run.positions.shape == (4200, 3) and np.isfinite(run.positions).all() and run.iteration == 25


def test_the_labeling_benchmark_labels_groups_in_a_umap_layout_too(tmp_path):
    """`tensorboard-al benchmark --layout umap`: Algorithm 1 on a live UMAP (unsupervised, and with the
    labels as a partial target), counted as on the t-SNE."""
    from tensorboard_al_plugin.active.layout import make_layout_run
    from tensorboard_al_plugin.research.benchmark import run_benchmark

    X, y = load_digits(return_X_y=True)
    run = make_layout_run(X[:300].astype(np.float32), engine="umap", supervised=True, random_state=0)
    assert run.label_weight == 0.5 and run.positions.shape == (300, 2)
    res = run_benchmark(X / 16.0, y, strategies="tsne,tsne-supervised", folds=2, max_actions=40, subset=400,
                        out_dir=str(tmp_path), progress=False, plot=False, tsne_options={"engine": "umap"})
    for strategy in ("tsne", "tsne-supervised"):
        curve = res["strategies"][strategy]["curve"]
        assert curve[0][0] == 0 and curve[-1][0] == 40
        assert curve[-1][1] > curve[0][1] + 0.3  # groups labeled in the UMAP teach the classifier
