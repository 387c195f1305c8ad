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
