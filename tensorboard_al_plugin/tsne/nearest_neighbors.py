"""k-nearest-neighbour search for the sparse input affinities.

Only the k nearest neighbours of each point carry non-negligible affinity at
the perplexities t-SNE uses (k ~ 3 x perplexity), so the input similarities are
a sparse graph and never an N x N matrix.
"""
import numpy as np
from sklearn.neighbors import NearestNeighbors

# Above this many rows the exact search is done in row chunks so that progress
# can be reported and the distance blocks stay small; the search itself stays
# exact (scikit-learn's blocked GEMM + heap kernel), which on 70,000 x 50
# float32 rows is faster on two cores than the approximate indexes we tried.
_CHUNK_ROWS = 4096


def nearest_neighbors(X, k, progress=None):
    """Exact k nearest neighbours of every row of ``X``, itself excluded.

    Parameters
    ----------
    X : ndarray (N, D) float
    k : int, 1 <= k < N
    progress : callable(fraction in [0, 1]) or None, called after each chunk.

    Returns
    -------
    indices : ndarray (N, k) int32, neighbours sorted by distance.
    distances : ndarray (N, k) float64, Euclidean distances.
    method : str, the search used (reported by the benchmark).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    index = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X)
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(n, start + _CHUNK_ROWS)
        dist, ind = index.kneighbors(X[start:stop])
        rows = np.arange(start, stop)
        # Drop the point itself; with duplicate rows it need not come first,
        # and when it is missing altogether the farthest neighbour goes.
        is_self = ind == rows[:, None]
        no_self = ~is_self.any(axis=1)
        is_self[no_self, -1] = True
        keep = ~is_self
        indices[start:stop] = ind[keep].reshape(-1, k)
        distances[start:stop] = dist[keep].reshape(-1, k)
        if progress is not None:
            progress(stop / n)
    return indices, distances, "exact (brute force, scikit-learn)"
