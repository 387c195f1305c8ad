"""Embedding quality as in the paper's Table 1: 4-NN accuracy in a 3D t-SNE.

:func:`quality_report` embeds all rows once with the project's t-SNE engine
(unsupervised: labels never reach the layout, so no label leaks into it;
features of more than 50 dimensions are first reduced to 50 with PCA), then
scores a 4-nearest-neighbour classifier on the 3D positions with stratified
k-fold cross-validation (mean +- standard deviation over folds). The same
4-NN score in the original feature space is reported beside it for reference.
"""
from __future__ import annotations

import numpy as np

from ..active.layout import make_layout_run, pca_for_tsne
from ..tsne.metrics import knn_cv_accuracy
from .datasets import check_features_labels

__all__ = ["quality_report"]


def quality_report(features, labels, *, folds=5, random_state=0, n_components=3, n_iter=1000, k=4,
                   engine="ours"):
    """4-NN accuracy (mean, std over ``folds``) in an ``n_components``-D t-SNE of ``features``.

    Returns ``{"n_samples", "n_classes", "n_components", "k", "folds",
    "tsne_knn_accuracy": {"mean", "std", "folds"}, "feature_knn_accuracy": {...}}``.
    """
    X, y, classes = check_features_labels(features, labels, folds=folds)
    run = make_layout_run(pca_for_tsne(X, 50, random_state), n_components=n_components, supervised=False,
                          random_state=random_state, engine=engine)
    run.step(n_iter)
    positions = np.asarray(run.positions)
    tsne_acc = knn_cv_accuracy(positions, y, folds=folds, k=k, random_state=random_state)
    feat_acc = knn_cv_accuracy(X, y, folds=folds, k=k, random_state=random_state)

    def summary(acc):
        return {"mean": float(np.mean(acc)), "std": float(np.std(acc)), "folds": [float(a) for a in acc]}

    return {"n_samples": int(len(X)), "n_classes": int(len(classes)), "n_components": int(n_components),
            "k": int(k), "folds": int(folds), "tsne_knn_accuracy": summary(tsne_acc),
            "feature_knn_accuracy": summary(feat_acc)}
