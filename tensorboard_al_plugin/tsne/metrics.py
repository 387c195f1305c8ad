"""Quality measures of an embedding.

Two k-NN accuracies, which answer different questions and give different numbers:

- :func:`knn_accuracy`: leave-one-out, one float. How well does each point's
  neighbourhood in the layout predict its label? Used by the t-SNE tests and
  benchmarks (benchmarks/tsne_bench.py, label_legibility.py).
- :func:`knn_cv_accuracy`: stratified k-fold cross-validation of scikit-learn's
  k-NN classifier, one accuracy per fold. The protocol of Luus et al.'s
  Table 1, used by the quality report (``tensorboard-al quality``).
"""
import numpy as np


def knn_accuracy(Y, labels, k=4, mask=None):
    """Leave-one-out k-NN accuracy of ``labels`` in the embedding Y (N, d).

    Each point (of ``mask``, default all) is classified by the majority label of
    its k nearest other points; ties go to the label whose nearest member is
    closest. Returns a float in [0, 1]. (For the cross-validated score of
    the paper's Table 1 see :func:`knn_cv_accuracy`.)
    """
    # imported here: importing scikit-learn writes KMP_* variables into the
    # environment, which importing the engine must not do
    from sklearn.neighbors import NearestNeighbors
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


def knn_cv_accuracy(points, y, *, folds=5, k=4, random_state=0):
    """Per-fold accuracy of a k-NN classifier on ``points`` (n, d) with stratified k-fold CV.

    Each fold's held-out rows are classified by scikit-learn's
    ``KNeighborsClassifier(n_neighbors=k)`` fitted on the other folds (its tie
    rule: the smallest class index among the tied). ``y`` (n,) class
    indices; folds are shuffled with ``random_state``. Returns (folds,)
    float64. Unlike :func:`knn_accuracy` (leave-one-out over all points),
    a point's neighbours come only from the other folds.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    cv = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    return cross_val_score(KNeighborsClassifier(n_neighbors=k), points, y, cv=cv)


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
