"""k-nearest-neighbour search for the sparse input affinities: exact below
``APPROXIMATE_MIN_ROWS`` rows; from there exact over k-means cells when the
data fall into separate clusters, else approximate (FAISS HNSW).

Only the k nearest neighbours of each point carry non-negligible affinity at
the perplexities t-SNE uses (k ~ 3 x perplexity), so the input similarities are
a sparse graph and never an N x N matrix.

Cells (``_partition``, then ``_exact_neighbors(cells=...)``): FAISS k-means
groups the rows into up to 256 cells; a cell whose centre is farther from a row
than its reach (the distance of its farthest member) plus the row's k-th
neighbour distance cannot hold a neighbour (triangle inequality). On 256
sampled rows, whose k-th distance is found by brute force, the share of rows in
the cells that cannot be ruled out is measured; when it is at most
``CELLS_MAX_FRACTION`` the exact search below runs block by block (a block
within one cell) over the needed cells only, with the same float32 GEMM, heap
and float64 proof. Data in separate clusters of many dimensions (20 Gaussian
clusters in 50-D) are where approximate indexes fail (HNSW's recall was 0.72
at 1,000,000 rows) and where this costs a few per cent of the N^2 distances.

Approximate search (``_hnsw_neighbors``): FAISS's HNSW graph index
(IndexHNSWFlat, float32), built and queried by FAISS's OpenMP threads in
batches (so that progress can be reported), asked for k + 1 candidates per row
(the row itself among them), whose distances are then recomputed in float64 and
re-ranked. Its recall@k against the exact search is measured by
benchmarks/knn_bench.py (0.997 on Fashion-MNIST 70,000 x 50) and checked by
tests/test_knn.py on a seeded set. Why FAISS HNSW and not pynndescent, FAISS
IVF or hnswlib: README, "The semi-supervised t-SNE engine", and
benchmarks/results/knn_bench.md.

Exact search (below the threshold, where it costs no more than the
approximate one and is exact):
Rows are sorted by their projection p_i on the principal axis
(|p_i - p_j| <= |x_i - x_j|) and handled in blocks of consecutive rows. The
blocks are shared out among as many Python threads as numba uses; each
thread runs its blocks from start to end with numpy's BLAS held to one thread
and serial compiled kernels that release the GIL. (Parallel numba loops
between two-thread BLAS calls made the two thread pools trade the cores: on
2 cores each call waited milliseconds, 28-200 ns per distance where the
GEMM needs ~2.) Per block:

1. a float32 GEMM (numpy's BLAS) gives, for the block's rows i and a chunk of
   columns j, s_ij = |x_j|^2 - 2 x_i . x_j, which ranks the j for a fixed i
   exactly like the squared distance;
2. a compiled (numba) loop keeps, per row, the k + margin smallest s_ij in a
   max-heap; runs of 32 columns are rejected at once against the heap's top;
3. chunks are taken outward from the block (nearest projections first) until
   the heaps' tops prove that the remaining columns, farther away in
   projection alone, cannot enter (about 2/3 of all pairs are computed on
   Fashion-MNIST, a third are skipped);
4. the candidates' distances are recomputed in float64 as sum (x_i - x_j)^2
   and the k smallest kept.

Exactness: float32 rounding moves s_ij by at most E_i (a bound from the
dot-product error analysis, ``_error_bound``). Every column left out has
s >= the heap's top, so when top - (k-th smallest candidate s) >= 2 E_i no
left-out column can beat the k-th neighbour found; rows where the margin is
thinner (near-duplicate clouds) are searched again by brute force in float64.
Ties at the k-th distance are broken arbitrarily (the distances are the same
as any exact search's).
"""
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

import numba
import numpy as np

# rows per block and columns per GEMM chunk: each thread's (rows x columns)
# float32 chunk (1 MB) stays in its core's L2 while it is scanned
_BLOCK_ROWS = 128
# rows per block of the cell search: a cell's rows (or a part of at most this
# many) share their bounds, so blocks can be large, and the Python work of a
# block (its cells' bounds and order) is paid once for many rows. 256 x 2048
# measured best of 128-1024 rows x 512-2048 columns (100,000 clustered rows)
_CELL_BLOCK_ROWS = 256
_CHUNK_COLS = 2048
# extra heap slots beyond k, so that float32 ties rarely force a re-search
_MARGIN = 8
# columns rejected together against the heap's top
_RUN = 32
_EPS32 = float(np.finfo(np.float32).eps)

# From this many rows on, ``method="auto"`` searches approximately (FAISS HNSW):
# measured on two cores (benchmarks/results/knn_bench.md), the exact search
# costs N^2 and passes the approximate one near this size; below it the exact
# search is as fast and exact.
APPROXIMATE_MIN_ROWS = 40_000
# Above the threshold the search stays exact when the data fall into separate
# clusters: rows are grouped into k-means cells, and when, on a sample of rows,
# the cells that the triangle inequality cannot rule out hold at most this share
# of all rows, the exact search over those cells is chosen (it then computes at
# most about this share of the N^2 distances). Otherwise HNSW.
CELLS_MAX_FRACTION = 0.1
# k-means cells (fewer for small N: at least ~100 rows a cell) and sampled rows
_N_CELLS = 256
_CELL_SAMPLE = 256
# HNSW graph: links per node, candidate list while building and while searching
# (at least k + 1 is needed; the recall@k of 0.98 wanted needs about 2k).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH_PER_K = 2.0
# rows per FAISS add/search call: progress is reported after each
_HNSW_BATCH = 16384
# share of the approximate search's time spent building the graph (progress)
_HNSW_BUILD_SHARE = 0.5
# share of the progress bar for the k-means cells and their sample ("auto" above the threshold)
_PARTITION_SHARE = 0.05


@numba.njit(inline="always")
def _sift_down(hv, hi, m):
    # restore the max-heap property from the root, size m
    pos = 0
    v = hv[0]
    idx = hi[0]
    while True:
        c = 2 * pos + 1
        if c >= m:
            break
        if c + 1 < m and hv[c + 1] > hv[c]:
            c += 1
        if hv[c] <= v:
            break
        hv[pos] = hv[c]
        hi[pos] = hi[c]
        pos = c
    hv[pos] = v
    hi[pos] = idx


# The kernels of the exact search's blocks are serial and release the GIL: each
# of the search's threads runs its own blocks (its GEMMs on a one-thread BLAS).
@numba.njit(nogil=True, fastmath=True, cache=True)
def _init_heaps(cand_v, cand_i):
    for r in range(cand_v.shape[0]):
        for s in range(cand_v.shape[1]):
            cand_v[r, s] = np.inf
            cand_i[r, s] = -1


@numba.njit(nogil=True, fastmath=True, cache=True)
def _select_block(G, sq, start, col0, cand_v, cand_i):
    """Push columns col0.. (G[r, c] + sq[c] for the c-th column of G) into
    the max-heaps of rows start + r, skipping the row itself."""
    R, n = G.shape
    m = cand_v.shape[1]
    n_runs = n // _RUN
    for r in range(R):
        row = start + r - col0
        g = G[r]
        hv = cand_v[r]
        hi = cand_i[r]
        top = hv[0]
        for run in range(n_runs):
            base = run * _RUN
            lo = np.float32(np.inf)
            for j in range(base, base + _RUN):
                v = g[j] + sq[j]
                lo = min(lo, v)
            if lo >= top:
                continue
            for j in range(base, base + _RUN):
                v = g[j] + sq[j]
                if v < top and j != row:
                    hv[0] = v
                    hi[0] = j + col0
                    _sift_down(hv, hi, m)
                    top = hv[0]
        for j in range(n_runs * _RUN, n):
            v = g[j] + sq[j]
            if v < top and j != row:
                hv[0] = v
                hi[0] = j + col0
                _sift_down(hv, hi, m)
                top = hv[0]


@numba.njit(nogil=True, cache=True)
def _refine(X64, start, cand_v, cand_i, k, err, complete, out_i, out_d, redo):
    """Exact float64 distances of the candidates, k smallest sorted into
    out_i / out_d (rows start..); redo[r] = True when the float32 margin does
    not prove that no left-out column is nearer (``complete``: every other
    row is a candidate, nothing was left out)."""
    R, m = cand_v.shape
    dim = X64.shape[1]
    for r in range(R):
        row = start + r
        order = np.argsort(cand_v[r])
        # k-th smallest approximate value vs the heap's top (the threshold
        # every left-out column failed)
        a_k = cand_v[r, order[k - 1]]
        a_top = cand_v[r, order[m - 1]]
        if not complete and not (a_top - a_k >= 2.0 * err[r]):
            redo[r] = True
            continue
        d = np.empty(m)
        for s in range(m):
            j = cand_i[r, s]
            if j < 0:
                d[s] = np.inf
                continue
            acc = 0.0
            for c in range(dim):
                diff = X64[row, c] - X64[j, c]
                acc += diff * diff
            d[s] = acc
        o = np.argsort(d, kind="mergesort")
        for t in range(k):
            out_i[row, t] = cand_i[r, o[t]]
            out_d[row, t] = np.sqrt(d[o[t]])


@numba.njit(parallel=True, cache=True)
def _brute_rows(X64, rows, k, out_i, out_d):
    """Plain float64 brute force for the listed rows (the rare re-searches)."""
    n, dim = X64.shape
    for t in numba.prange(rows.shape[0]):
        row = rows[t]
        d = np.empty(n)
        for j in range(n):
            acc = 0.0
            for c in range(dim):
                diff = X64[row, c] - X64[j, c]
                acc += diff * diff
            d[j] = acc
        d[row] = np.inf
        o = np.argsort(d, kind="mergesort")
        for s in range(k):
            out_i[row, s] = o[s]
            out_d[row, s] = np.sqrt(d[o[s]])


def _error_bound(sq64, dim):
    """Per-row bound on |fl32(s_ij) - s_ij| over all j (see module docstring).

    GEMM: |fl(x.y) - x.y| <= gamma_D |x||y|, so 2|.| <= gamma_D (|x_i|^2 + |x_j|^2);
    |x_j|^2 rounded to float32 and the final addition add a few ulps of
    |x_i|^2 + |x_j|^2. Doubled for safety.
    """
    u = _EPS32 / 2.0
    gamma = (dim + 2) * u / (1.0 - (dim + 2) * u)
    return 2.0 * (gamma + 4.0 * u) * (sq64 + sq64.max())


def _principal_axis(X64, n_iter=30, seed=0):
    """A unit vector along (roughly) the largest variance of the centred X64;
    any unit vector gives a valid distance bound, a good one prunes more."""
    rng = np.random.default_rng(seed)
    sample = X64 if X64.shape[0] <= 20000 else X64[rng.choice(X64.shape[0], 20000, replace=False)]
    v = sample.var(axis=0)
    v = v / max(np.linalg.norm(v), 1e-300)
    for _ in range(n_iter):
        w = sample.T @ (sample @ v)
        norm = np.linalg.norm(w)
        if not norm > 0:
            break
        v = w / norm
    return v


EXACT_METHOD = "exact (projection-pruned blocked float32 GEMM + numba top-k, float64 re-rank)"
EXACT_CELLS_METHOD = "exact (k-means cells pruned by the triangle inequality, blocked float32 GEMM + numba top-k, float64 re-rank)"


# searches running now (sessions prepare in threads of their own) and the
# limit that holds numpy's BLAS to one thread while any of them runs
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None


@contextlib.contextmanager
def _one_thread_blas():
    """numpy's BLAS on one thread while the block is run (threadpoolctl, which
    scikit-learn brings; without it BLAS is left as it is). The limit is
    process-wide, so concurrent searches share one: the first sets it, the
    last restores the threads as they were (each restoring its own would
    leave BLAS on one thread when two searches overlap)."""
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                _blas_limit = None
            else:
                _blas_limit = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def _faiss():
    try:
        import faiss
    except ImportError:  # a dependency (setup.py); missing only in a hand-made environment
        return None
    return faiss


def nearest_neighbors(X, k, progress=None, method="auto"):
    """The k nearest neighbours of every row of ``X``, itself excluded.

    Parameters
    ----------
    X : ndarray (N, D) float
    k : int, 1 <= k < N
    progress : callable(fraction in [0, 1]) or None, called after each block
        of rows (exact) or batch of rows added to / searched in the graph.
    method : "auto" (approximate from ``APPROXIMATE_MIN_ROWS`` rows, else
        exact), "exact" or "approximate" (FAISS HNSW; exact when FAISS is
        not installed, which the returned method says).

    Returns
    -------
    indices : ndarray (N, k) int32, neighbours sorted by distance.
    distances : ndarray (N, k) float64, Euclidean distances (float64 even
        when the search is approximate: the candidates are re-ranked).
    method : str, the search used (reported by the benchmark).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2D array, got {X.ndim}D")
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k: expected 1 <= k < {n}, got {k}")
    if method not in ("auto", "exact", "approximate"):
        raise ValueError(f"method: expected 'auto', 'exact' or 'approximate', got {method!r}")
    faiss = _faiss()
    if method == "auto" and n >= APPROXIMATE_MIN_ROWS and faiss is not None:
        assign, centroids, share = _partition(faiss, X, k)
        nearest_neighbors.last_cells_share = share
        if progress is not None:
            # the cells and their sample (seconds at 1,000,000 rows) as the first part of the bar
            progress(_PARTITION_SHARE)
            rest = progress
            progress = lambda f: rest(_PARTITION_SHARE + (1.0 - _PARTITION_SHARE) * f)  # noqa: E731
        if share <= CELLS_MAX_FRACTION:
            return _exact_neighbors(X, k, progress, cells=(assign, centroids))
        method = "approximate"
    if method == "approximate" and faiss is not None:
        return _hnsw_neighbors(faiss, X, k, progress)
    return _exact_neighbors(X, k, progress)


def _partition(faiss, X, k, seed=0):
    """k-means cells of X and how much of the exact search they would save:
    (assign (N,) int, centroids (C, D), share in [0, 1]).

    On ``_CELL_SAMPLE`` random rows the k-th neighbour distance r_i is found by
    brute force; a cell c (centre mu_c, every member within reach_c of it) can
    hold a neighbour of row i only when |x_i - mu_c| - reach_c <= r_i. The
    share of rows in such cells, averaged over the sample, estimates the share
    of distances the cell search computes.
    """
    n, dim = X.shape
    n_cells = int(min(_N_CELLS, max(2, n // 100)))
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    km = faiss.Kmeans(dim, n_cells, niter=10, seed=seed + 1, max_points_per_centroid=64)
    km.train(X32)
    assign = km.index.search(X32, 1)[1][:, 0]
    centroids = km.centroids.astype(np.float64)
    sizes = np.bincount(assign, minlength=n_cells)
    reach = _cell_reach(X32, assign, centroids)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, min(n, _CELL_SAMPLE), replace=False)
    sq = np.einsum("ij,ij->i", X32, X32, dtype=np.float64)
    share = np.empty(len(sample))
    for lo in range(0, len(sample), 32):
        rows = sample[lo:lo + 32]
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (X32[rows] @ X32.T)
        d2[np.arange(len(rows)), rows] = np.inf
        r = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0.0))
        dc = np.sqrt(((X32[rows, None, :] - centroids[None]) ** 2).sum(axis=2))
        share[lo:lo + 32] = ((dc - reach[None, :] <= r[:, None]) * sizes[None, :]).sum(axis=1) / n
    return assign, centroids, float(share.mean())


def _cell_reach(X, assign, centres, chunk=8192):
    """Per cell, the distance of its farthest row from its centre (float64),
    chunk by chunk: no (N, D) float64 temporaries (1.2 GB at 10^6 x 50)."""
    reach = np.zeros(centres.shape[0])
    for lo in range(0, X.shape[0], chunk):
        a = assign[lo:lo + chunk]
        diff = X[lo:lo + chunk] - centres[a]
        np.maximum.at(reach, a, np.sqrt(np.einsum("ij,ij->i", diff, diff)))
    return reach


@numba.njit(parallel=True, cache=True)
def _rerank(X, cand, k, out_i, out_d, redo):
    """Each row's k nearest of its candidates (cand[i]; -1 = none, the row
    itself skipped) by float64 distance; redo[i] when fewer than k remain."""
    n, m = cand.shape
    dim = X.shape[1]
    for i in numba.prange(n):
        d = np.full(m, np.inf)
        valid = 0
        for s in range(m):
            j = cand[i, s]
            if j < 0 or j == i:
                continue
            acc = 0.0
            for c in range(dim):
                diff = np.float64(X[i, c]) - np.float64(X[j, c])
                acc += diff * diff
            d[s] = acc
            valid += 1
        if valid < k:
            redo[i] = True
            continue
        o = np.argsort(d, kind="mergesort")
        for t in range(k):
            out_i[i, t] = cand[i, o[t]]
            out_d[i, t] = np.sqrt(d[o[t]])


def _hnsw_neighbors(faiss, X, k, progress):
    """Approximate search: FAISS HNSW graph, k + 1 candidates, float64 re-rank."""
    n, dim = X.shape
    # centring changes no distance and keeps float32 precision where it matters
    X32 = np.ascontiguousarray(X - X.mean(axis=0, dtype=np.float64), dtype=np.float32)
    # FAISS's OpenMP threads: as many as the engine's numba loops use
    faiss.omp_set_num_threads(max(1, numba.get_num_threads()))
    index = faiss.IndexHNSWFlat(dim, HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    for lo in range(0, n, _HNSW_BATCH):
        hi = min(n, lo + _HNSW_BATCH)
        index.add(X32[lo:hi])
        if progress is not None:
            progress(_HNSW_BUILD_SHARE * hi / n)
    m = min(n, k + 1)
    index.hnsw.efSearch = _ef_search(k, n)
    cand = np.empty((n, m), dtype=np.int64)
    for lo in range(0, n, _HNSW_BATCH):
        hi = min(n, lo + _HNSW_BATCH)
        cand[lo:hi] = index.search(X32[lo:hi], m)[1]
        if progress is not None:
            progress(_HNSW_BUILD_SHARE + (1 - _HNSW_BUILD_SHARE) * hi / n)
    del index
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float64)
    redo = np.zeros(n, dtype=np.bool_)
    del X32
    # distances from the rows as given (float32 from prepare(): no copy)
    X = np.ascontiguousarray(X)
    _rerank(X, cand, k, indices, distances, redo)
    if redo.any():
        # the graph gave too few candidates (does not happen with efSearch > k
        # on ordinary data): those rows by brute force
        _brute_rows(X.astype(np.float64), np.flatnonzero(redo), k, indices, distances)
    return indices, distances, (f"approximate (FAISS HNSW, M={HNSW_M}, efConstruction="
                                f"{HNSW_EF_CONSTRUCTION}, efSearch={_ef_search(k, n)}; float64 re-rank)")


def _ef_search(k, n):
    """efSearch used for k neighbours among n rows."""
    return max(min(n, k + 1), int(np.ceil(HNSW_EF_SEARCH_PER_K * k)))


def _exact_neighbors(X, k, progress, cells=None):
    """The exact search (module docstring); same contract as ``nearest_neighbors``.

    cells : None (rows ordered along the principal axis, columns pruned by
        projection) or (assign (N,) int, centroids (C, D)) from ``_partition``
        (rows ordered by cell, whole cells pruned by the triangle inequality).
    """
    X64 = np.array(X, dtype=np.float64)
    n, dim = X64.shape
    # centring changes no distance and shrinks |x|^2, hence the float32 error
    mean = X64.mean(axis=0)
    X64 -= mean
    if cells is None:
        # Rows sorted along one axis v: |v.(x_i - x_j)| <= |x_i - x_j|, so once a
        # row's k-th neighbour is known to lie within r, columns whose projection
        # is farther than r need no distance at all. Columns are visited outward
        # from each row block in chunks until both sides are ruled out.
        axis = _principal_axis(X64)
        proj = X64 @ axis
        order = np.argsort(proj, kind="stable")
        proj = np.ascontiguousarray(proj[order])
    else:
        assign, centroids = cells
        order = np.argsort(assign, kind="stable")
    X64 = np.ascontiguousarray(X64[order])
    X32 = X64.astype(np.float32)
    Xm2 = -2.0 * X32
    sq64 = np.einsum("ij,ij->i", X64, X64)
    sq32 = sq64.astype(np.float32)
    err = _error_bound(sq64, dim)
    m = min(n - 1, k + _MARGIN)
    ind_s = np.empty((n, k), dtype=np.int32)
    dist_s = np.empty((n, k), dtype=np.float64)
    redo = np.zeros(n, dtype=np.bool_)
    R_max = min(n, _BLOCK_ROWS if cells is None else _CELL_BLOCK_ROWS)
    C = _CHUNK_COLS
    local = threading.local()

    def buffers(R):
        # this thread's GEMM tile and heaps (rows 0..R)
        if not hasattr(local, "G"):
            local.G = np.empty((R_max, C), dtype=np.float32)
            local.cand_v = np.empty((R_max, m), dtype=np.float32)
            local.cand_i = np.empty((R_max, m), dtype=np.int64)
        return local.G, local.cand_v[:R], local.cand_i[:R]

    def scan(start, stop, a, b, buf):
        # columns a..b into the block's heaps, in GEMM chunks of at most C;
        # returns the distances computed
        G, cand_v, cand_i = buf
        for lo in range(a, b, C):
            hi = min(b, lo + C)
            np.matmul(Xm2[start:stop], X32[lo:hi].T, out=G[:stop - start, :hi - lo])
            _select_block(G[:stop - start, :hi - lo], sq32[lo:hi], start, lo, cand_v, cand_i)
        return (stop - start) * (b - a)

    def radius(start, stop, cand_v):
        # radius bound per row: the heap's top is an approximate s of a
        # real column, so the k-th neighbour is at most this far
        top = cand_v.max(axis=1).astype(np.float64)
        r = np.sqrt(np.maximum(top + sq64[start:stop] + err[start:stop], 0.0))
        return r * (1 + 1e-9) + 1e-12

    def scan_projection(start, stop, buf):
        # first chunk: the columns around the block itself
        centre = (start + stop) // 2
        left = max(0, min(n - C, centre - C // 2))
        right = min(n, left + C)
        scanned = scan(start, stop, left, right, buf)
        pb = proj[start:stop]
        while True:
            r = radius(start, stop, buf[1])
            need_lo = np.searchsorted(proj, (pb - r).min(), side="left")
            need_hi = np.searchsorted(proj, (pb + r).max(), side="right")
            go_left = left > need_lo
            go_right = right < need_hi
            if not (go_left or go_right):
                return scanned
            # the side whose next column is nearer in projection first
            if go_left and (not go_right or
                            proj[centre] - proj[left - 1] <= proj[right] - proj[centre]):
                a, b = max(need_lo, left - C), left
                left = a
            else:
                a, b = right, min(need_hi, right + C)
                right = b
            scanned += scan(start, stop, a, b, buf)

    if cells is not None:
        # cell c holds the sorted rows bounds[c]..bounds[c + 1]; every row of
        # it lies within reach[c] of its centre, so a row x is at least
        # |x - centre| - reach[c] from all of them (triangle inequality)
        n_cells = centroids.shape[0]
        mu = np.asarray(centroids, dtype=np.float64) - mean
        a_sorted = np.asarray(assign)[order]
        bounds = np.searchsorted(a_sorted, np.arange(n_cells + 1), side="left")
        reach = _cell_reach(X64, a_sorted, mu) * (1 + 1e-9) + 1e-12
        mu_sq = (mu * mu).sum(axis=1)

    def scan_cells(start, stop, buf):
        cand_v = buf[1]
        xb = X64[start:stop]
        dc = np.sqrt(np.maximum(sq64[start:stop, None] + mu_sq[None, :] - 2.0 * xb @ mu.T, 0.0))
        # |x - centre| in float64 from the expanded form: its rounding error is
        # far below the relative slack added to reach and r
        lower = dc - reach[None, :] - 1e-9 * (dc + reach[None, :])
        todo = np.argsort(lower.min(axis=0), kind="stable")
        todo = todo[bounds[todo + 1] > bounds[todo]]
        scanned = 0
        visited = 0
        # until every heap holds real columns, take cells in order of nearness
        while visited < len(todo) and not np.isfinite(cand_v.max()):
            c = todo[visited]
            scanned += scan(start, stop, bounds[c], bounds[c + 1], buf)
            visited += 1
        rest = todo[visited:]
        while len(rest):
            r = radius(start, stop, cand_v)
            rest = rest[(lower[:, rest] <= r[:, None]).any(axis=0)]
            if not len(rest):
                break
            c = rest[0]
            scanned += scan(start, stop, bounds[c], bounds[c + 1], buf)
            rest = rest[1:]
        return scanned

    def search_block(start, stop):
        # one block's candidates, proof and float64 re-rank (rows start..stop
        # of ind_s / dist_s / redo: no other block writes them)
        buf = buffers(stop - start)
        _init_heaps(buf[1], buf[2])
        scanned = scan_projection(start, stop, buf) if cells is None else scan_cells(start, stop, buf)
        _refine(X64, start, buf[1], buf[2], k, err[start:stop], m == n - 1,
                ind_s, dist_s, redo[start:stop])
        return stop - start, scanned

    if cells is None:
        blocks = [(start, min(n, start + R_max)) for start in range(0, n, R_max)]
    else:
        # a block never spans two cells
        blocks = [(start, min(bounds[c + 1], start + R_max))
                  for c in range(n_cells) for start in range(bounds[c], bounds[c + 1], R_max)]
    # Blocks run on the engine's thread count of Python threads, each with a
    # one-thread BLAS and the serial kernels above (which release the GIL).
    # Parallel numba kernels between multi-threaded BLAS calls made two thread
    # pools hand the cores back and forth: on 2 cores each small call waited
    # milliseconds (~200 ns per distance at 50,000 rows, against ~2 of GEMM).
    scanned = 0
    done = 0
    threads = max(1, min(numba.get_num_threads(), len(blocks)))
    with _one_thread_blas(), ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(search_block, start, stop) for start, stop in blocks]
        try:
            for future in as_completed(futures):
                rows, block_scanned = future.result()
                scanned += block_scanned
                done += rows
                if progress is not None:
                    progress(done / n)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    if redo.any():
        _brute_rows(X64, np.flatnonzero(redo), k, ind_s, dist_s)
    # the share of all (row, column) distances actually computed
    nearest_neighbors.last_scanned_fraction = scanned / float(n) / n
    # the sorted copies go before the answer is put back in the rows' order
    # (1.6 GB at 10^6 x 50)
    del X64, X32, Xm2
    np.take(order.astype(np.int32), ind_s, out=ind_s)
    indices = np.empty_like(ind_s)
    indices[order] = ind_s
    del ind_s
    distances = np.empty_like(dist_s)
    distances[order] = dist_s
    return indices, distances, EXACT_METHOD if cells is None else EXACT_CELLS_METHOD
