"""One PCA for the package: pinned against numpy's SVD and scikit-learn's PCA, and used by every caller."""
import time

import numpy as np
import pytest
from sklearn.decomposition import PCA

from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
from tensorboard_al_plugin.tsne.pca import principal_components


def _data(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    # variances falling geometrically per axis, so that the principal axes are well defined
    return (rng.normal(size=(n, dim)) * 4.0 * 0.7 ** np.arange(dim) + 3.0).astype(np.float32)


def _numpy_pca(X, k):
    """The textbook reference: SVD of the centred rows, in float64."""
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return Xc @ vt[:k].T, vt[:k]


def test_exact_solver_is_numpys_svd_of_the_centred_float32_rows_bit_for_bit():
    X = _data(300, 12)
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    Y = principal_components(X, 3, solver="exact")
    assert Y.dtype == np.float32 and Y.shape == (300, 3)
    np.testing.assert_array_equal(Y, Xc @ vt[:3].T)


@pytest.mark.parametrize("solver,shape", [("auto", (400, 30)), ("auto", (3000, 20)), ("auto", (800, 600)),
                                          ("randomized", (6000, 60))])
def test_scikit_learn_solvers_are_scikit_learns_pca_bit_for_bit(solver, shape):
    X = _data(*shape, seed=1)
    Y = principal_components(X, 5, solver=solver, random_state=3)
    expected = PCA(n_components=5, svd_solver=solver, random_state=3).fit_transform(X)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, expected)


@pytest.mark.parametrize("solver", ["auto", "randomized", "exact"])
def test_every_solver_projects_on_the_leading_axes_centred_and_unscaled(solver):
    X = _data(2000, 40, seed=2)
    Y = principal_components(X, 4, solver=solver, random_state=0)
    ref, axes = _numpy_pca(X, 4)
    signs = np.sign((Y * ref).sum(axis=0))
    np.testing.assert_allclose(Y * signs, ref, rtol=0, atol=2e-3 * np.abs(ref).max())
    np.testing.assert_allclose(Y.mean(axis=0), 0.0, atol=1e-3)  # centred
    variances = Y.var(axis=0)
    assert np.all(np.diff(variances) < 0)  # first column along the largest variance
    if solver != "exact":
        # scikit-learn's sign convention: each axis's largest-magnitude entry is positive
        flipped = axes * signs[:, None]
        assert np.all(flipped[np.arange(4), np.abs(axes).argmax(axis=1)] > 0)


def test_bad_arguments_name_what_was_expected():
    X = _data(20, 4)
    with pytest.raises(ValueError, match=r"n_components: expected a whole number in \[1, 4\]"):
        principal_components(X, 5)
    with pytest.raises(ValueError, match="n_components"):
        principal_components(X, 0)
    with pytest.raises(ValueError, match="solver: expected one of"):
        principal_components(X, 2, solver="arpack")
    with pytest.raises(ValueError, match="X: expected a 2D array"):
        principal_components(X[0], 1)


def test_tsne_pca_initialisation_is_the_shared_pca_scaled_tiny():
    X = _data(500, 10, seed=4)
    run = SemiSupervisedTSNE(n_components=2, perplexity=10, random_state=5).prepare(X)
    # the initialisation draws the PCA's seed first from the run's generator
    seed = int(np.random.default_rng(5).integers(2**31))
    Y = principal_components(X, 2, random_state=seed).astype(np.float64)
    np.testing.assert_array_equal(run.positions, (Y / Y[:, 0].std() * 1e-4).astype(np.float32))


def test_pca_layout_session_is_the_shared_exact_pca():
    from tensorboard_al_plugin.sessions import SessionManager
    X = _data(150, 8, seed=6)
    m = SessionManager()
    try:
        m.start("p", lambda: X, None, {"n_components": 3}, method="pca")
        end = time.monotonic() + 30
        while m.status("p")["state"] != "done" and time.monotonic() < end:
            time.sleep(0.01)
        pos = m.positions("p")[0]
    finally:
        m.close()
    np.testing.assert_array_equal(pos, principal_components(X, 3, solver="exact"))


def test_reduction_before_a_layout_is_the_shared_pca():
    from tensorboard_al_plugin.active.layout import pca_for_tsne
    X = _data(300, 80, seed=7)
    np.testing.assert_array_equal(pca_for_tsne(X, 50, 2), principal_components(X, 50, random_state=2))
    np.testing.assert_array_equal(pca_for_tsne(X[:, :30], 50), X[:, :30])  # few columns: left as they are
