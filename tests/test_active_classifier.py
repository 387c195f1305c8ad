"""The paper's D -> D/4 classifier: learns, warm-starts, and both backends agree."""
import importlib.util

import numpy as np
import pytest

from tensorboard_al_plugin.active.classifier import make_classifier


def _blobs(n=200, d=32, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(scale=4.0, size=(3, d))
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_numpy_classifier_learns_separable_blobs():
    X, y = _blobs()
    clf = make_classifier(X.shape[1], 3, random_state=0).update(X[:150], y[:150])
    assert clf.score(X[150:], y[150:]) > 0.95
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_update_continues_from_current_weights():
    X, y = _blobs()
    clf = make_classifier(X.shape[1], 3, random_state=0, epochs=1)
    clf.update(X[:6], y[:6])
    w_after_first = clf.W1_.copy()
    clf.update(X[:6], y[:6])
    assert clf.n_updates_ == 2
    assert not np.allclose(w_after_first, clf.W1_)  # trained on, not re-initialised
    assert clf.hidden == X.shape[1] // 4 == 8


def test_same_seed_gives_same_numpy_classifier():
    X, y = _blobs()
    a = make_classifier(X.shape[1], 3, random_state=3).update(X, y)
    b = make_classifier(X.shape[1], 3, random_state=3).update(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        make_classifier(4, 2, backend="torch")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed")
def test_keras_backend_matches_numpy_within_noise():
    X, y = _blobs(n=300, d=32, seed=1)
    accs = {}
    for backend in ("numpy", "keras"):
        clf = make_classifier(32, 3, backend=backend, random_state=0)
        clf.update(X[:150], y[:150])
        accs[backend] = clf.score(X[150:], y[150:])
        W1, b1, W2, b2 = clf.logit_parts()
        assert W1.shape == (32, 8) and W2.shape == (8, 3)
    assert accs["numpy"] > 0.9 and accs["keras"] > 0.9
    assert abs(accs["numpy"] - accs["keras"]) < 0.08


def test_auto_backend_is_keras_exactly_when_tensorflow_imports():
    from tensorboard_al_plugin.active.classifier import resolve_backend

    try:
        import tensorflow  # noqa: F401
        expected = "keras"
    except ImportError:
        expected = "numpy"
    assert resolve_backend("auto") == expected
    assert resolve_backend("numpy") == "numpy"


@pytest.mark.parametrize("backend", ["numpy", pytest.param("keras", marks=pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed"))])
def test_a_copy_predicts_alike_and_trains_apart(backend):
    X, y = _blobs(n=90, d=8)
    clf = make_classifier(8, 3, backend=backend, random_state=0, epochs=5).update(X[:60], y[:60])
    twin = clf.copy()
    np.testing.assert_allclose(twin.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    before = clf.predict_proba(X)
    twin.update(X[:60], y[:60])
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert not np.allclose(twin.predict_proba(X), before)
