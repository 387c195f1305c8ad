"""Principal component analysis: the one projection every PCA in the package uses.

Four places project features on their leading principal axes: the t-SNE
initialisation (``tsne.SemiSupervisedTSNE``, ``initialization="pca"``), the
tab's PCA layout (``sessions``), the reduction to 50 dimensions before a
layout of raw pixels (``active.layout.pca_for_tsne``) and the benchmark's
``pca=`` option. All call :func:`principal_components`, so centring, dtype,
solver choice and sign convention are decided here once.
"""
import numbers

import numpy as np

__all__ = ["principal_components", "SOLVERS"]

#: "auto": scikit-learn's choice (covariance eigendecomposition for tall,
#: narrow X; full SVD up to 500 rows and columns; randomized SVD otherwise).
#: "randomized": scikit-learn's randomized SVD (Halko et al.), for large X
#: when a few components are wanted. "exact": one LAPACK SVD of the centred
#: rows, no random state.
SOLVERS = ("auto", "randomized", "exact")


def principal_components(X, n_components, *, solver="auto", random_state=0):
    """X projected on its first ``n_components`` principal axes.

    X : (N, D) numbers, converted to float32 (the projection is computed in
        float32, as every caller gives float32 features).
    n_components : int, 1 <= n_components <= min(N, D).
    solver : one of SOLVERS (see there).
    random_state : int seed for the "auto" and "randomized" solvers (the
        randomized SVD draws its test matrix from it); unused by "exact".

    Returns (N, n_components) float32: the centred rows (mean of each column
    subtracted, no scaling) times the axes, the first column along the
    largest variance. Signs: "auto" and "randomized" follow scikit-learn's
    ``svd_flip`` (the largest-magnitude entry of each axis is positive);
    "exact" keeps LAPACK's signs as they come. A caller that shows the result
    next to another projection must not assume the two agree in sign (the
    tab aligns axes when it switches from one layout to another).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2D array (n_samples, n_features), got {X.ndim}D")
    X = X.astype(np.float32, copy=False)
    if (isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral)
            or not 1 <= n_components <= min(X.shape)):
        raise ValueError(f"n_components: expected a whole number in [1, {min(X.shape)}] for X of "
                         f"shape {X.shape}, got {n_components!r}")
    n_components = int(n_components)
    if solver == "exact":
        Xc = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        return Xc @ vt[:n_components].T
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {', '.join(map(repr, SOLVERS))}, got {solver!r}")
    from sklearn.decomposition import PCA
    return PCA(n_components=n_components, svd_solver=solver,
               random_state=random_state).fit_transform(X).astype(np.float32, copy=False)
