"""Live t-SNE layouts for the emulation: a thin adapter over the project's engine.

The emulation and the benchmark drive layouts through :func:`make_layout_run`,
which returns an object with ``step(n_iter)``, ``set_labels(labels)`` (-1 =
unlabeled), ``positions`` (n, d) and ``iteration``: the live-run contract of
``tensorboard_al_plugin.tsne.SemiSupervisedTSNE.prepare``. One engine serves the
tab and the benchmark, so the benchmark numbers are those of the code the user
runs.

``engine="umap"`` lays out with the project's semi-supervised UMAP
(``tsne/umap_layout.py``, umap-learn) instead: unsupervised, or with the labels
as a partial target (label weight :data:`UMAP_SUPERVISED_WEIGHT`); a step is
epochs, and new labels start a new pass from the current map, as in the tab.

``engine="opentsne"`` exists only for development when the project's engine is
missing; it cannot supervise (labels are ignored) and is never picked
automatically.

Features of more than 50 dimensions are reduced to 50 with PCA before t-SNE
(the customary preprocessing for raw pixels); the classifier still sees the
full features.
"""
from __future__ import annotations

import numpy as np

__all__ = ["make_layout_run", "pca_for_tsne", "engine_available", "UNSUPERVISED", "SUPERVISED"]

#: t-SNE labeling without feeding labels back: f = r = 0.
UNSUPERVISED = {"label_importance": 0.0, "repulsion_emphasis": 0.0}
#: Supervision for ``tsne-supervised``: labeling importance f = 0.1 (the
#: engine's documented example) and repulsion emphasis r = 0.1. Chosen up front,
#: not tuned on any benchmark data set.
SUPERVISED = {"label_importance": 0.1, "repulsion_emphasis": 0.1}

#: UMAP's label weight (umap-learn's target_weight) for supervised labeling: the tab's default.
UMAP_SUPERVISED_WEIGHT = 0.5

PERPLEXITY = 20  # the paper's perplexity
THETA = 0.5


def engine_available():
    """True when ``tensorboard_al_plugin.tsne`` exports ``SemiSupervisedTSNE``."""
    try:
        from tensorboard_al_plugin.tsne import SemiSupervisedTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def pca_for_tsne(X, n_components=50, random_state=0):
    """PCA to ``n_components`` when X has more columns; otherwise X as float32."""
    X = np.asarray(X, dtype=np.float32)
    if X.shape[1] <= n_components:
        return X
    from tensorboard_al_plugin.tsne.pca import principal_components
    return principal_components(X, n_components, random_state=random_state)


def make_layout_run(X, *, n_components=2, supervised=False, random_state=0, engine="ours", labels=None):
    """Start a live layout of X (already PCA-reduced if wanted) and return the run.

    ``supervised=False`` gives the unsupervised layout (f = r = 0); ``True`` the
    paper's supervision. ``labels`` (n,) int, -1 = unlabeled.
    """
    n = len(X)
    if labels is None:
        labels = np.full(n, -1, np.int64)
    if engine == "ours":
        from tensorboard_al_plugin import tsne as tsne_module
        params = dict(SUPERVISED if supervised else UNSUPERVISED)
        model = tsne_module.SemiSupervisedTSNE(n_components=n_components, perplexity=PERPLEXITY, theta=THETA,
                                               random_state=random_state, **params)
        return model.prepare(np.asarray(X, np.float32), labels=np.asarray(labels))
    if engine == "umap":
        from tensorboard_al_plugin.tsne.umap_layout import SemiSupervisedUMAP
        model = SemiSupervisedUMAP(n_components=n_components, random_state=random_state,
                                   label_weight=UMAP_SUPERVISED_WEIGHT if supervised else 0.0)
        return model.prepare(np.asarray(X, np.float32), labels=np.asarray(labels))
    if engine == "opentsne":
        return _OpenTSNERun(X, n_components, random_state)
    raise ValueError(f"engine must be 'ours', 'umap' or 'opentsne', got {engine!r}.")


class _OpenTSNERun:
    """Development stand-in with the live-run contract; ignores labels."""

    def __init__(self, X, n_components, random_state):
        import openTSNE
        self._emb = openTSNE.TSNE(n_components=n_components, perplexity=PERPLEXITY, theta=THETA,
                                  negative_gradient_method="bh", random_state=random_state,
                                  n_jobs=1, verbose=False).prepare_initial(np.asarray(X, np.float64))
        self.iteration = 0

    def step(self, n_iter):
        # The paper's schedule: exaggeration 4 -> 1 and momentum 0.5 -> 0.8 over iterations 100..250.
        remaining = int(n_iter)
        while remaining > 0:
            chunk = min(remaining, 10) if self.iteration < 250 else remaining
            t = min(max((self.iteration - 100) / 150.0, 0.0), 1.0)
            self._emb = self._emb.optimize(chunk, exaggeration=4.0 - 3.0 * t, momentum=0.5 + 0.3 * t,
                                           learning_rate=200.0, n_jobs=1)
            self.iteration += chunk
            remaining -= chunk
        return self

    def set_labels(self, labels):
        return self

    @property
    def positions(self):
        return np.asarray(self._emb)
