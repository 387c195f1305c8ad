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


@numba.njit(cache=True)
def _in_degrees(indices, n):
    """indptr of the (N, N) pattern of C + C^T before merging: row i holds its
    own k entries and one per row that lists i as a neighbour."""
    indptr = np.empty(n + 1, dtype=np.int64)
    indptr[0] = 0
    deg = np.full(n, indices.shape[1], dtype=np.int64)
    for i in range(indices.shape[0]):
        for t in range(indices.shape[1]):
            deg[indices[i, t]] += 1
    for i in range(n):
        indptr[i + 1] = indptr[i] + deg[i]
    return indptr


@numba.njit(cache=True)
def _scatter_transpose(indices, cond, indptr, cols, vals):
    """Each row's own entries first (its k neighbours), then the transposed
    ones, in the order of the rows that list it (one pass, sequential: the
    slots of a row are claimed one after another)."""
    n, k = indices.shape
    fill = np.empty(n, dtype=np.int64)
    for i in range(n):
        base = indptr[i]
        for t in range(k):
            cols[base + t] = indices[i, t]
            vals[base + t] = cond[i, t]
        fill[i] = base + k
    for i in range(n):
        for t in range(k):
            j = indices[i, t]
            cols[fill[j]] = i
            vals[fill[j]] = cond[i, t]
            fill[j] += 1


@numba.njit(parallel=True, cache=True)
def _merge_rows(indptr, cols, vals, out_nnz):
    """Sort each row by column and add up the entries of a repeated column
    (p_j|i + p_i|j), in place at the start of the row's slots; drops zeros
    (as scipy's eliminate_zeros) and the diagonal. out_nnz[i]: entries kept.

    Rows are taken in a few hundred runs, each with its own buffers, reused
    row after row (an allocation per row cost more than the sorting); a row
    is sorted as int64 keys column << 32 | slot, in place."""
    n = indptr.shape[0] - 1
    longest = 0
    for i in range(n):
        longest = max(longest, indptr[i + 1] - indptr[i])
    n_runs = min(n, 256)
    for run in numba.prange(n_runs):
        keys = np.empty(longest, dtype=np.int64)
        v = np.empty(longest)
        for i in range(run * n // n_runs, (run + 1) * n // n_runs):
            lo = indptr[i]
            m_in = indptr[i + 1] - lo
            for t in range(m_in):
                keys[t] = (np.int64(cols[lo + t]) << 32) | t
                v[t] = vals[lo + t]
            keys[:m_in].sort()
            m = 0
            t = 0
            while t < m_in:
                col = keys[t] >> 32
                acc = 0.0
                while t < m_in and (keys[t] >> 32) == col:
                    acc += v[keys[t] & 0xFFFFFFFF]
                    t += 1
                if acc != 0.0 and col != i:
                    cols[lo + m] = col
                    vals[lo + m] = acc
                    m += 1
            out_nnz[i] = m


@numba.njit(parallel=True, cache=True)
def _compact(indptr, cols, vals, new_indptr, out_cols, out_vals, scale):
    n = indptr.shape[0] - 1
    for i in numba.prange(n):
        src = indptr[i]
        dst = new_indptr[i]
        for t in range(new_indptr[i + 1] - dst):
            out_cols[dst + t] = cols[src + t]
            out_vals[dst + t] = vals[src + t] * scale


def symmetrize(indices, cond, n=None):
    """P = (C + C^T) / sum, CSR with sorted column indices, zeros and the
    diagonal dropped; C is the (N, N) sparse matrix with C[i, indices[i, t]] =
    cond[i, t]. The same matrix as scipy's ``C + C.T`` (then
    ``sum_duplicates``, ``eliminate_zeros`` and normalised) but built by
    compiled loops, the merging row-parallel: scipy's sparse addition runs
    on one core whatever the machine has. On two loaded cores the two cost
    the same (100,000 x 60 random neighbours: 0.85 s here, 0.77 s scipy,
    calibration 1.05 s, load 5.2); more cores share only this one.

    indices : (N, k) int, cond : (N, k) float64. Returns scipy.sparse CSR (n, n).
    """
    indices = np.ascontiguousarray(indices)
    cond = np.ascontiguousarray(cond, dtype=np.float64)
    n = indices.shape[0] if n is None else n
    indptr = _in_degrees(indices, n)
    cols = np.empty(indptr[-1], dtype=indices.dtype)
    vals = np.empty(indptr[-1], dtype=np.float64)
    _scatter_transpose(indices, cond, indptr, cols, vals)
    nnz = np.empty(n, dtype=np.int64)
    _merge_rows(indptr, cols, vals, nnz)
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nnz, out=new_indptr[1:])
    total = 2.0 * float(cond.sum())  # every entry of C appears twice in C + C^T
    out_cols = np.empty(new_indptr[-1], dtype=np.int32)
    out_vals = np.empty(new_indptr[-1], dtype=np.float64)
    _compact(indptr, cols, vals, new_indptr, out_cols, out_vals, 1.0 / total)
    del cols, vals
    index_dtype = np.int32 if new_indptr[-1] < np.iinfo(np.int32).max else np.int64
    P = sp.csr_matrix((out_vals, out_cols.astype(index_dtype, copy=False),
                       new_indptr.astype(index_dtype)), shape=(n, n))
    P.has_sorted_indices = True
    # the sum is taken again over what was kept (zeros and the diagonal were dropped)
    P.data /= P.data.sum()
    return P


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
            # the symmetrisation below costs about as much as a third of the calibration
            progress(0.75 * hi / n)
    del sq
    P = symmetrize(indices, cond, n)
    if progress is not None:
        progress(1.0)
    return P


_phase_listener = None


def set_phase_listener(listener):
    """Install a process-wide ``listener(phase, fraction)`` that hears the
    preparation phases of every layout prepared without a ``phase_progress``
    of its own (None: remove it); returns the previous one. For programs
    that own their process, as ``tensorboard-al`` for its progress bars: the
    layouts it prepares are deep inside the benchmark and quality code."""
    global _phase_listener
    previous, _phase_listener = _phase_listener, listener
    return previous


def phase_listener():
    """The listener installed by ``set_phase_listener`` (or None)."""
    return _phase_listener


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
    if phase_progress is None:
        phase_progress = _phase_listener
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
