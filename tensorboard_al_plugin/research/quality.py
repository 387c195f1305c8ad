"""Embedding quality as in the paper's Table 1: 4-NN accuracy in a 3D layout.

:func:`quality_report` embeds all rows once with the project's t-SNE engine
(unsupervised: labels never reach the layout, so no label leaks into it;
features of more than 50 dimensions are first reduced to 50 with PCA), then
scores a 4-nearest-neighbour classifier on the 3D positions with stratified
k-fold cross-validation (mean +- standard deviation over folds). The same
4-NN score in the original feature space is reported beside it for reference.

``layouts`` adds semi-supervised UMAP (umap-learn, tsne/umap_layout.py, with
the tab's defaults: 15 neighbours, min_dist 0.1, umap-learn's epochs) on the
same PCA-50 input. ``with_labels`` adds each layout fed with labels, without
leaking them: per fold, the layout is computed with the training folds'
labels and the held-out fold unlabeled (-1), and the 4-NN classifier fitted
on the training rows' positions is scored on the held-out rows. t-SNE takes
the labels with the tab's defaults (label_importance f = 0.1, repulsion
emphasis r = 1), UMAP with label_weight 0.5 (umap-learn's target_weight).
"""
from __future__ import annotations

import time

import numpy as np

from ..active.layout import PERPLEXITY, THETA, make_layout_run, pca_for_tsne
from ..tsne.metrics import knn_cv_accuracy
from .datasets import check_features_labels

__all__ = ["quality_report", "LAYOUTS"]

LAYOUTS = ("tsne", "umap")


def _layout(method, X, labels, *, n_components, n_iter, random_state, engine):
    """Positions (N, n_components) of a finished layout; ``labels`` None: unsupervised."""
    if method == "umap":
        from ..tsne.umap_layout import SemiSupervisedUMAP, default_epochs
        run = SemiSupervisedUMAP(n_components=n_components, random_state=random_state).prepare(X, labels=labels)
        run.step(default_epochs(len(X)))
        return np.asarray(run.positions)
    if labels is None:
        run = make_layout_run(X, n_components=n_components, supervised=False, random_state=random_state,
                              engine=engine)
    else:
        from ..tsne import SemiSupervisedTSNE
        run = SemiSupervisedTSNE(n_components=n_components, perplexity=PERPLEXITY, theta=THETA,
                                 random_state=random_state).prepare(X, labels=labels)
    run.step(n_iter)
    return np.asarray(run.positions)


def _with_labels_accuracy(method, X, y, *, folds, k, **layout_kw):
    """Per fold: the layout sees the other folds' labels; 4-NN fitted there, scored on the fold."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    accs = []
    cv = StratifiedKFold(folds, shuffle=True, random_state=layout_kw["random_state"])
    for train, test in cv.split(X, y):
        labels = np.full(len(y), -1, np.int64)
        labels[train] = y[train]
        Y = _layout(method, X, labels, **layout_kw)
        knn = KNeighborsClassifier(n_neighbors=k).fit(Y[train], y[train])
        accs.append(float(knn.score(Y[test], y[test])))
    return np.asarray(accs)


def quality_report(features, labels, *, folds=5, random_state=0, n_components=3, n_iter=1000, k=4,
                   engine="ours", layouts=("tsne",), with_labels=False):
    """4-NN accuracy (mean, std over ``folds``) in an ``n_components``-D t-SNE of ``features``.

    layouts : some of ``LAYOUTS`` ("tsne", "umap"); with_labels : also each
        layout fed with the training folds' labels (see the module docstring).

    Returns ``{"n_samples", "n_classes", "n_components", "k", "folds",
    "tsne_knn_accuracy": {"mean", "std", "folds"}, "feature_knn_accuracy": {...}}``
    plus, for each further layout or labeled variant, ``"<layout>_knn_accuracy"``
    and ``"<layout>_with_labels_knn_accuracy"``, and ``"seconds"``: the wall
    time of each layout variant (all folds).
    """
    layouts = tuple(layouts)
    unknown = [m for m in layouts if m not in LAYOUTS]
    if not layouts or unknown:
        raise ValueError(f"layouts: expected some of {', '.join(LAYOUTS)}, got {', '.join(layouts) or 'none'}")
    X, y, classes = check_features_labels(features, labels, folds=folds)
    X50 = pca_for_tsne(X, 50, random_state)
    layout_kw = dict(n_components=n_components, n_iter=n_iter, random_state=random_state, engine=engine)

    def summary(acc):
        return {"mean": float(np.mean(acc)), "std": float(np.std(acc)), "folds": [float(a) for a in acc]}

    report = {"n_samples": int(len(X)), "n_classes": int(len(classes)), "n_components": int(n_components),
              "k": int(k), "folds": int(folds)}
    seconds = {}
    for method in layouts:
        t0 = time.perf_counter()
        positions = _layout(method, X50, None, **layout_kw)
        report[f"{method}_knn_accuracy"] = summary(
            knn_cv_accuracy(positions, y, folds=folds, k=k, random_state=random_state))
        seconds[method] = round(time.perf_counter() - t0, 2)
        if with_labels:
            t0 = time.perf_counter()
            report[f"{method}_with_labels_knn_accuracy"] = summary(
                _with_labels_accuracy(method, X50, y, folds=folds, k=k, **layout_kw))
            seconds[f"{method}_with_labels"] = round(time.perf_counter() - t0, 2)
    report["feature_knn_accuracy"] = summary(knn_cv_accuracy(X, y, folds=folds, k=k, random_state=random_state))
    if layouts != ("tsne",) or with_labels:
        report["seconds"] = seconds
    return report
