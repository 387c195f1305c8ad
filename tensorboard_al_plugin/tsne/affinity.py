"""Input affinities P: per-point perplexity calibration on a kNN graph.

P is returned as a symmetric scipy.sparse CSR matrix (float64) summing to 1,
p_ij = (p_j|i + p_i|j) / (2N), as in standard t-SNE.
"""
import numba
import numpy as np
import scipy.sparse as sp

from .nearest_neighbors import nearest_neighbors


@numba.njit(cache=True)
def _calibrate_row(d, target, tol, max_iter, out):
    """One row of ``_conditional_probabilities``: bisect beta until the entropy
    of exp(-beta d) is log(perplexity); writes the normalised kernel to out."""
    k = d.shape[0]
    # Distances are shifted by the nearest one so exp() never underflows
    # for far-away points; the shift cancels in the normalisation.
    dmin = d[0]
    for j in range(k):
        if d[j] < dmin:
            dmin = d[j]
    beta = 1.0
    lo = 0.0
    hi = np.inf
    s = 1.0
    for _ in range(max(1, max_iter)):
        s = 0.0
        sd = 0.0
        for j in range(k):
            e = np.exp(-beta * (d[j] - dmin))
            out[j] = e
            s += e
            sd += e * (d[j] - dmin)
        entropy = np.log(s) + beta * sd / s
        if abs(entropy - target) < tol:
            break
        if entropy > target:
            lo = beta
            beta = beta * 2.0 if hi == np.inf else 0.5 * (beta + hi)
        else:
            hi = beta
            beta = 0.5 * (beta + lo)
    for j in range(k):
        out[j] /= s


@numba.njit(parallel=True, cache=True)
def _conditional_probabilities(sq_distances, perplexity, tol=1e-5, max_iter=200):
    """Row-wise Gaussian kernels whose entropy matches log(perplexity).

    sq_distances : (N, k) squared distances to the k neighbours.
    Returns (N, k) conditional probabilities p_j|i (rows sum to 1).

    The row's bisection lives in ``_calibrate_row`` on purpose: written inline,
    the kernel sum ``s`` was assigned only inside the bisection loop yet read
    after it, so numba's parfor pass took it for a value carried from one
    prange iteration to the next (a reduction) and, with the bytecode of
    Python 3.12+, failed with "AssertionError: unexpected cycle in lookup()"
    (numba issues #10132, #9290). The prange body now holds no such variable.
    """
    n, k = sq_distances.shape
    out = np.empty((n, k))
    target = np.log(perplexity)
    for i in numba.prange(n):
        _calibrate_row(sq_distances[i], target, tol, max_iter, out[i])
    return out


# Rows calibrated per call of ``_conditional_probabilities`` when progress is
# reported: rows are independent, so the chunks give the same numbers as one call.
_CALIBRATE_ROWS = 4096


def joint_probabilities(indices, distances, perplexity, progress=None):
    """Symmetric P (CSR, sums to 1) from a kNN graph.

    indices : (N, k) int neighbour indices, distances : (N, k) Euclidean.
    progress : callable(fraction in [0, 1]) or None, called after each chunk
        of ``_CALIBRATE_ROWS`` rows is calibrated and once P is built.
    """
    n, k = indices.shape
    sq = np.ascontiguousarray(distances, dtype=np.float64) ** 2
    if progress is None:
        cond = _conditional_probabilities(sq, float(perplexity))
    else:
        cond = np.empty((n, k))
        for lo in range(0, n, _CALIBRATE_ROWS):
            hi = min(n, lo + _CALIBRATE_ROWS)
            cond[lo:hi] = _conditional_probabilities(sq[lo:hi], float(perplexity))
            # the symmetrisation below costs about as much as a tenth of the calibration
            progress(0.9 * hi / n)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    P = sp.csr_matrix((cond.ravel(), (rows, indices.ravel())), shape=(n, n))
    P = P + P.T
    P = P.tocsr()
    P.sum_duplicates()
    P.eliminate_zeros()
    P.data /= P.data.sum()
    if progress is not None:
        progress(1.0)
    return P


def perplexity_affinities(X, perplexity=20.0, n_neighbors=None, progress=None, phase_progress=None):
    """Sparse symmetric P for rows of X (N, D).

    n_neighbors defaults to min(N - 1, floor(3 * perplexity)).
    progress(fraction) is called while the neighbours are searched (the
    expensive part, 95% of the bar) and while the rows are calibrated.
    phase_progress(phase, fraction) says the same per phase: "neighbors"
    (after each block of rows searched), then "affinities" (after each chunk
    of rows calibrated).
    Returns (P, info) where info is a dict with the neighbour method used.
    """
    n = X.shape[0]
    k = n_neighbors if n_neighbors is not None else int(min(n - 1, np.floor(3 * perplexity)))
    k = max(1, min(k, n - 1))

    def report(phase, share, offset):
        def f(fraction):
            if phase_progress is not None:
                phase_progress(phase, fraction)
            if progress is not None:
                progress(offset + share * fraction)
        return f

    indices, distances, method = nearest_neighbors(X, k, progress=report("neighbors", 0.95, 0.0))
    P = joint_probabilities(indices, distances, perplexity, progress=report("affinities", 0.05, 0.95))
    return P, {"neighbors": method, "n_neighbors": k}


def check_affinities(P, n=None):
    """Validate a user-supplied affinity matrix; returns it as CSR float64.

    Must be square, symmetric, non-negative and sum to 1 (within 1e-3; it is
    renormalised exactly).
    """
    if not sp.issparse(P):
        raise ValueError(f"affinities: expected a scipy.sparse matrix, got {type(P).__name__}")
    P = sp.csr_matrix(P, dtype=np.float64)
    if P.shape[0] != P.shape[1]:
        raise ValueError(f"affinities: expected a square matrix, got shape {P.shape}")
    if n is not None and P.shape[0] != n:
        raise ValueError(f"affinities: expected shape ({n}, {n}) to match X, got {P.shape}")
    if P.shape[0] < 2:
        raise ValueError("affinities: expected at least 2 points")
    if not np.all(np.isfinite(P.data)) or np.any(P.data < 0):
        raise ValueError("affinities: expected finite non-negative entries")
    total = P.data.sum()
    if abs(total - 1.0) > 1e-3:
        raise ValueError(f"affinities: expected entries summing to 1, got {total:.6g}")
    asym = abs(P - P.T)
    if asym.nnz and asym.max() > 1e-9 * max(P.data.max(), 1e-300) + 1e-15:
        raise ValueError("affinities: expected a symmetric matrix (P == P.T)")
    P.setdiag(0)
    P.eliminate_zeros()
    P.sort_indices()
    P.data /= P.data.sum()
    return P
