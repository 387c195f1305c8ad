"""What to label next: the tab's "Suggest" panel, arrays in and arrays out.

Use::

    state = train_classifier(features, labels)              # background retrain, warm-started
    state = train_classifier(features, labels, state=state) # ... when new labels arrive
    items = suggest("tsne-supervised", features, labels, layout=positions, classifier_state=state, n=10)

``features`` (n, D) numeric; ``labels`` length n of any label values, where
``None``, ``-1``, ``""`` and NaN mean unlabeled; ``layout`` (n, 2|3) current
positions (needed by the t-SNE strategies only).

Each suggestion is a dict::

    {"row": int,                 # the suggested focus row
     "score": float,             # the strategy's score, higher = ask first
     "group": [int, ...],        # rows to pre-select: for t-SNE focus the best kNN group of
                                 #   Algorithm 1 (odd ones already left out) judged by the current
                                 #   labels/predictions, or, with no classifier yet, the focus's
                                 #   unlabeled Barnes-Hut neighbourhood, nearest first; for
                                 #   tsne-assisted the rows to label as predicted; else [row]
     "predicted": label | None,  # the classifier's predicted label value for the row
     "confidence": float | None} # its probability

Strategies (see :mod:`.strategies`): ``tsne`` and ``tsne-supervised`` (same
focus score on the given layout), ``tsne-assisted`` (layout and classifier:
the focus is where the most unlabeled rows predicted like it lie around it,
each counted by how unsure the classifier is of it; ``group`` = the focus and
the unlabeled rows among its ``k_max`` nearest that the classifier predicts as
it, to label together with ``predicted``; as ``tsne`` until a classifier
exists; where no such group is left the score is the row's own doubt,
1 - confidence, i.e. least confidence), ``random``, ``least-confidence``, ``margin``,
``entropy``, ``ensemble``, ``adversarial``. Classifier strategies train a
classifier on the spot when no ``classifier_state`` is given; they need labels
of at least two classes. :func:`predictions` gives per-row predicted label,
confidence and uncertainty for colouring the map.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .classifier import make_classifier
from .strategies import (LAYOUT_STRATEGIES, UNCERTAINTY_SCORERS, check_strategies, deepfool_distance,
                         ensemble_entropy, entropy, rank, tsne_focus_scores)

__all__ = ["ClassifierState", "train_classifier", "suggest", "predictions", "parse_labels"]


def _is_unlabeled(v):
    if v is None:
        return True
    if isinstance(v, str):
        return v == ""
    try:
        return bool(np.isnan(v)) or v == -1
    except TypeError:
        return False


def parse_labels(labels, classes=()):
    """(codes (n,) int64 with -1 = unlabeled, class values list) for mixed label input.

    ``classes`` fixes the order of already known class values; new ones are
    appended in sorted order.
    """
    labels = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    known = list(classes)
    index = {c: i for i, c in enumerate(known)}
    new = sorted({v for v in labels if not _is_unlabeled(v) and v not in index}, key=lambda v: (str(type(v)), v))
    for v in new:
        index[v] = len(known)
        known.append(v)
    codes = np.array([-1 if _is_unlabeled(v) else index[v] for v in labels], dtype=np.int64)
    return codes, known


@dataclass
class ClassifierState:
    """A trained classifier (plus ensemble members) and the label values its outputs stand for."""

    classes: list
    members: list
    mean: np.ndarray
    scale: np.ndarray
    n_labeled: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def classifier(self):
        return self.members[0]

    def transform(self, X):
        return ((np.asarray(X, np.float32) - self.mean) / self.scale).astype(np.float32)

    def predict_proba(self, X):
        return self.classifier.predict_proba(self.transform(X))


def train_classifier(features, labels, *, state=None, ensemble_size=1, backend="numpy", random_state=0,
                     n_classes_hint=None):
    """Train (or continue training, 50 epochs) the paper's classifier on the labeled rows.

    The network's output layer is sized for at least ``n_classes_hint`` classes
    (default: the labeled classes + room for growth up to 2x, at least 10) so that
    a class appearing later does not force a restart; when it does outgrow, the
    state is rebuilt. Returns a :class:`ClassifierState`.
    """
    X = np.asarray(features, np.float32)
    codes, classes = parse_labels(labels, state.classes if state is not None else ())
    if len(codes) != len(X):
        raise ValueError(f"labels has {len(codes)} entries but features has {len(X)} rows; they must match.")
    lab = codes >= 0
    if len(set(codes[lab].tolist())) < 2:
        raise ValueError("the classifier needs labels of at least 2 classes.")
    if state is None or len(classes) > state.classifier.n_classes or len(state.members) < ensemble_size:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-8] = 1.0
        width = max(n_classes_hint or 0, len(classes), min(2 * len(classes), 10), 2)
        if state is not None and len(classes) <= state.classifier.n_classes:
            members = list(state.members)
            mean, scale = state.mean, state.scale
        else:
            members = []
        while len(members) < ensemble_size:
            members.append(make_classifier(X.shape[1], width, backend=backend,
                                           random_state=random_state + 101 * len(members)))
        state = ClassifierState(classes, members, mean.astype(np.float32), scale.astype(np.float32))
    state.classes = classes
    Xl = state.transform(X[lab])
    for m in state.members:
        m.update(Xl, codes[lab])
    state.n_labeled = int(lab.sum())
    return state


def predictions(features, state):
    """Per row: (predicted label values list, confidence (n,), entropy-based uncertainty (n,))."""
    proba = state.predict_proba(features)[:, :len(state.classes)]
    proba = proba / proba.sum(axis=1, keepdims=True)
    idx = proba.argmax(axis=1)
    return [state.classes[i] for i in idx], proba.max(axis=1), entropy(proba)


def suggest(strategy, features, labels, *, layout=None, classifier_state=None, n=10, theta_k=0.5, k_max=100,
            random_state=0):
    """The next ``n`` rows to label under ``strategy``; see the module docstring for the item format."""
    check_strategies([strategy])
    X = np.asarray(features, np.float32)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2D array (n_samples, n_features), got shape {X.shape}.")
    state = classifier_state
    codes, classes = parse_labels(labels, state.classes if state is not None else ())
    if len(codes) != len(X):
        raise ValueError(f"labels has {len(codes)} entries but features has {len(X)} rows; they must match.")
    cand = np.flatnonzero(codes < 0)
    if len(cand) == 0:
        return []
    n = int(n)
    needs_clf = strategy not in LAYOUT_STRATEGIES and strategy != "random"
    if state is None and (needs_clf or (codes >= 0).any()):
        try:
            state = train_classifier(X, labels, ensemble_size=5 if strategy == "ensemble" else 1,
                                     random_state=random_state)
        except ValueError:
            if needs_clf:
                raise ValueError(f"strategy {strategy!r} needs labels of at least 2 classes; "
                                 "label a few rows or use 'tsne' or 'random'.") from None
            state = None
    if strategy == "ensemble" and len(state.members) < 2:
        # Grow a copy: the caller's model (the tab's background one) must keep matching the
        # predictions it published, so it is neither extended nor trained further here.
        state = ClassifierState(list(state.classes), [m.copy() for m in state.members], state.mean, state.scale,
                                state.n_labeled, dict(state.extra))
        state = train_classifier(X, labels, state=state, ensemble_size=5, random_state=random_state)

    proba = None
    if state is not None:
        proba = state.predict_proba(X)[:, :len(state.classes)]
        proba = proba / proba.sum(axis=1, keepdims=True)

    group_of = {}
    if strategy in LAYOUT_STRATEGIES:
        from .assisted import assisted_focus_scores, prediction_group  # numba: imported when a layout is used
        from .neighbourhood import BarnesHutTree, best_knn_group

        if layout is None:
            raise ValueError(f"strategy {strategy!r} needs the current layout positions.")
        Y = np.asarray(layout, np.float64)
        if Y.shape[0] != len(X):
            raise ValueError(f"layout has {Y.shape[0]} rows but features has {len(X)}; they must match.")
        predicted = None if proba is None else proba.argmax(axis=1)
        assisted = strategy == "tsne-assisted" and predicted is not None
        if assisted:
            scores_all = assisted_focus_scores(Y, codes, predicted, proba.max(axis=1), theta_k=theta_k)
        else:
            scores_all, pseudo = tsne_focus_scores(Y, codes, predicted=predicted, theta_k=theta_k)
        scores = scores_all[cand].astype(np.float64)
        # The best-scoring rows of one big cluster are neighbours of each other, so
        # the top n would be n views of the same group: a row already inside a
        # better-ranked suggestion's group is skipped (looking at most 20 n deep).
        # When fewer than n distinct groups exist, the best skipped rows fill up.
        tree = BarnesHutTree(Y) if predicted is None else None

        def group_for(r):
            if predicted is None:
                # No class evidence for unlabeled rows: offer the focus kernel itself, nearest first.
                nb = tree.neighbourhood(r, theta_k)
                nb = nb[codes[nb] < 0]
                nb = nb[np.argsort(np.sum((Y[nb] - Y[r]) ** 2, axis=1), kind="stable")][:k_max]
                return [int(r)] + [int(v) for v in nb]
            if assisted:
                return [int(v) for v in prediction_group(Y, r, predicted, codes < 0, k_max=k_max)]
            return [int(v) for v in best_knn_group(Y, r, pseudo, codes < 0, k_max=k_max).rows]

        covered = np.zeros(len(X), dtype=bool)
        chosen, skipped = [], []
        for r in rank(scores, cand, 20 * n):
            r = int(r)
            if covered[r]:
                skipped.append(r)
                continue
            group_of[r] = group_for(r)
            covered[group_of[r]] = True
            chosen.append(r)
            if len(chosen) == n:
                break
        for r in skipped[:n - len(chosen)]:
            group_of[r] = group_for(r)
            chosen.append(r)
        top, score_of = chosen, scores_all
    else:
        if strategy == "random":
            scores = np.random.default_rng(random_state).random(len(cand))
        else:
            Xs = state.transform(X[cand])
            if strategy in UNCERTAINTY_SCORERS:
                scores = UNCERTAINTY_SCORERS[strategy](proba[cand])
            elif strategy == "ensemble":
                scores = ensemble_entropy([m.predict_proba(Xs) for m in state.members])
            else:  # adversarial
                scores = -deepfool_distance(state.classifier, Xs)
        top = rank(scores, cand, n)
        score_of = np.zeros(len(X))
        score_of[cand] = scores
    items = []
    for r in top:
        r = int(r)
        item = {"row": r, "score": float(score_of[r]), "group": group_of.get(r, [r]), "predicted": None,
                "confidence": None}
        if proba is not None:
            item["predicted"] = state.classes[int(proba[r].argmax())]
            item["confidence"] = float(proba[r].max())
        items.append(item)
    return items

