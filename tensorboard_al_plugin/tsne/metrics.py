"""Quality measures of an embedding."""
import numpy as np
from sklearn.neighbors import NearestNeighbors


def knn_accuracy(Y, labels, k=4, mask=None):
    """Leave-one-out k-NN accuracy of ``labels`` in the embedding Y (N, d).

    Each point (of ``mask``, default all) is classified by the majority label of
    its k nearest other points; ties go to the label whose nearest member is
    closest. Returns a float in [0, 1].
    """
    labels = np.asarray(labels)
    n = Y.shape[0]
    _, ind = NearestNeighbors(n_neighbors=min(k + 1, n)).fit(Y).kneighbors(Y)
    rows = np.arange(n)
    # drop the point itself (first unless duplicates)
    keep = ind != rows[:, None]
    nb = np.array([r[m][:k] for r, m in zip(ind, keep)])
    nl = labels[nb]
    pred = np.empty(n, dtype=labels.dtype)
    for i in range(n):
        vals, first, counts = np.unique(nl[i], return_index=True, return_counts=True)
        best = counts == counts.max()
        pred[i] = vals[best][np.argmin(first[best])]
    sel = np.ones(n, dtype=bool) if mask is None else np.asarray(mask)
    return float((pred[sel] == labels[sel]).mean())


# The tab draws the layout normalised so that its larger half-extent is 1 and
# each thumbnail THUMBNAIL_WIDTH_SQRT_N / sqrt(N) world units wide at the
# default thumbnail size (frontend/src/camera.ts normalizePositions,
# frontend/src/mapView.ts halfSize: half-size 1.6 / sqrt(N)).
THUMBNAIL_WIDTH_SQRT_N = 3.2


def thumbnail_width(n):
    """Width of one thumbnail in the units of ``normalized_layout`` for N points."""
    return THUMBNAIL_WIDTH_SQRT_N / np.sqrt(max(1, n))


def normalized_layout(Y):
    """Y (N, 2) centred on its bounding box and scaled so its larger half-extent is 1,
    as the tab draws it."""
    Y = np.asarray(Y, dtype=np.float64)[:, :2]
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    half = float((hi - lo).max()) / 2
    return (Y - (lo + hi) / 2) / (half if half > 0 else 1.0)


def label_legibility(Y, labels):
    """How legible the labeled points' thumbnails are in the whole-map view of the tab.

    Y : (N, 2) layout; labels : (N,) int, -1 = unlabeled. Thumbnails are
    squares of ``thumbnail_width(N)`` in the tab's normalised layout (at the
    tab's default thumbnail size, before any zoom; in a 900 px tall view one
    is 900 / 2.2 * 3.2 / sqrt(N) px wide: 31 px at 1,797 points, 19 px at 5,000).

    Returns a dict:
      ``hidden_fraction``: fraction of labeled points whose thumbnail is more
        than half covered by the thumbnail of another labeled point;
      ``nn_widths``: median distance from a labeled point to the nearest other
        labeled point, in thumbnail widths (below 1 they overlap; 0.5: the tab
        must zoom 2x before the two are side by side).
    """
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    if rows.shape[0] < 2:
        return {"hidden_fraction": 0.0, "nn_widths": float("inf")}
    from scipy.spatial import cKDTree

    P = normalized_layout(Y)[rows]
    w = thumbnail_width(Y.shape[0])
    tree = cKDTree(P)
    dist, _ = tree.query(P, k=2)
    nn = dist[:, 1] / w
    hidden = np.zeros(rows.shape[0], dtype=bool)
    # Two squares of side w overlap by more than half only when both offsets
    # are below w / 2 ((w - dx)(w - dy) > w^2 / 2 needs dx, dy < w / 2).
    for i, js in enumerate(tree.query_ball_point(P, r=w / 2, p=np.inf)):
        d = np.abs(P[js] - P[i])
        cover = np.clip(w - d[:, 0], 0, None) * np.clip(w - d[:, 1], 0, None) / (w * w)
        cover[np.asarray(js) == i] = 0.0
        hidden[i] = cover.max(initial=0.0) > 0.5
    return {"hidden_fraction": float(hidden.mean()), "nn_widths": float(np.median(nn))}
