"""Query strategies: which unlabeled rows to label next.

Every scorer returns one float per candidate row, **higher = ask first**; the
ranking is :func:`rank` (stable, so ties keep row order).

- ``random``: a seeded permutation.
- ``least-confidence``: 1 - max_c p(c|x).
- ``margin``: -(p_top1 - p_top2); the smallest margin first.
- ``entropy``: -sum_c p log p.
- ``ensemble``: entropy of the mean prediction of several independently
  initialised copies of the classifier (Fast Forward Labs' "Ensemble").
- ``adversarial``: -||r(x)||, the length of the smallest perturbation that
  flips the classifier's prediction, found with DeepFool (Moosavi-Dezfooli et
  al. 2016) on the D -> D/4 network; the rows closest to a decision boundary
  first.
- ``tsne`` / ``tsne-supervised``: the t-SNE focus of Algorithm 1, i.e. the
  number of unlabeled rows sharing the row's class inside its Barnes-Hut
  neighbourhood in the current layout. Without ground truth the class is the
  current evidence: a row's own label if it has one, else the classifier's
  prediction; with neither, every unlabeled neighbour counts (pure density).
- ``tsne-assisted``: the layout and the classifier together (:mod:`.assisted`):
  the focus is where a big same-class area is mispredicted, its group is
  labeled "as predicted" with the odd ones out deselected; without ground
  truth the score is :func:`assisted_focus_scores` (each unlabeled
  neighbour predicted like the row counts by how unsure the classifier is).

Probabilities are ``(n, n_classes)`` arrays; features ``(n, D)``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "STRATEGIES", "UNCERTAINTY_STRATEGIES", "CLASSIFIER_STRATEGIES", "TSNE_STRATEGIES", "LAYOUT_STRATEGIES",
    "least_confidence", "margin", "entropy", "ensemble_entropy", "deepfool_distance",
    "tsne_focus_scores", "rank", "check_strategies",
]

STRATEGIES = ("tsne", "tsne-supervised", "tsne-assisted", "random", "least-confidence", "margin", "entropy",
              "ensemble", "adversarial")
#: Algorithm 1 on an unsupervised or a supervised layout.
TSNE_STRATEGIES = ("tsne", "tsne-supervised")
#: Every strategy that needs the current layout (Algorithm 1's and the classifier-assisted groups).
LAYOUT_STRATEGIES = TSNE_STRATEGIES + ("tsne-assisted",)
UNCERTAINTY_STRATEGIES = ("least-confidence", "margin", "entropy")
CLASSIFIER_STRATEGIES = UNCERTAINTY_STRATEGIES + ("ensemble", "adversarial")


def check_strategies(strategies):
    """Return the strategies as a list; ValueError naming the first unknown one."""
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",") if s.strip()]
    strategies = list(strategies)
    if not strategies:
        raise ValueError(f"strategies is empty; choose from {', '.join(STRATEGIES)}.")
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}.")
    return strategies


def least_confidence(proba):
    return 1.0 - np.max(proba, axis=1)


def margin(proba):
    top2 = np.sort(proba, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def entropy(proba):
    p = np.clip(proba, 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=1)


def ensemble_entropy(probas):
    """Entropy of the averaged prediction; ``probas`` is a list of (n, C) arrays."""
    return entropy(np.mean(np.stack(probas), axis=0))


UNCERTAINTY_SCORERS = {"least-confidence": least_confidence, "margin": margin, "entropy": entropy}


def deepfool_distance(classifier, X, *, max_iter=10, overshoot=0.02):
    """L2 norm of DeepFool's minimal prediction-flipping perturbation per row of X.

    Works on the ReLU network exposed by ``classifier.logit_parts()`` (W1, b1,
    W2, b2): at each iteration the logits are linearised and the row moves to the
    nearest linearised boundary (times 1 + ``overshoot``); rows whose prediction
    has not flipped after ``max_iter`` iterations get the accumulated length
    (a lower bound; they are far from any boundary anyway). Rows where every
    logit difference has zero gradient (all ReLUs off) get ``inf``.
    """
    W1, b1, W2, b2 = (np.asarray(a, np.float64) for a in classifier.logit_parts())
    X0 = np.asarray(X, np.float64)
    n = len(X0)
    G = W1.T @ W1  # ||W1 v||^2 = v' G v: avoids forming (n, C, D) gradients
    h0 = X0 @ W1 + b1
    start_pred = np.argmax(np.maximum(h0, 0) @ W2 + b2, axis=1)
    r_total = np.zeros_like(X0)
    active = np.arange(n)
    stuck = np.zeros(n, bool)
    for _ in range(max_iter):
        if len(active) == 0:
            break
        x = X0[active] + (1 + overshoot) * r_total[active]
        h = x @ W1 + b1
        mask = (h > 0).astype(np.float64)
        z = np.maximum(h, 0) @ W2 + b2
        p0 = start_pred[active]
        flipped = np.argmax(z, axis=1) != p0
        still = ~flipped
        active = active[still]
        if len(active) == 0:
            break
        mask, z, p0 = mask[still], z[still], p0[still]
        rows = np.arange(len(active))
        dW = W2[None, :, :] - W2[:, p0].T[:, :, None]  # (m, H, C): w_k - w_pred in hidden space
        v = mask[:, :, None] * dW
        norm2 = np.einsum("mhc,hg,mgc->mc", v, G, v)
        dz = np.abs(z - z[rows, p0][:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = dz / np.sqrt(norm2)
        ratio[rows, p0] = np.inf
        ratio[~np.isfinite(ratio)] = np.inf
        best = np.argmin(ratio, axis=1)
        ok = np.isfinite(ratio[rows, best])
        vb = v[rows, :, best]  # (m, H)
        step = (dz[rows, best] + 1e-4) / np.maximum(norm2[rows, best], 1e-12)
        r = (vb @ W1.T) * step[:, None]
        r_total[active[ok]] += r[ok]
        stuck[active[~ok]] = True
        active = active[ok]
    dist = np.linalg.norm((1 + overshoot) * r_total, axis=1)
    dist[stuck] = np.inf
    return dist


def tsne_focus_scores(layout, labels, *, predicted=None, theta_k=0.5, candidates=None):
    """Algorithm 1's focus count without ground truth.

    labels (n,) int, -1 = unlabeled; predicted (n,) int class guesses or None.
    Returns (scores, pseudo_classes): scores -1 where not a candidate.
    """
    from .neighbourhood import BarnesHutTree
    labels = np.asarray(labels, np.int64)
    unlabeled = labels < 0
    if predicted is None:
        pseudo = np.where(unlabeled, 0, labels)
        if (~unlabeled).any():
            # Unknown class for unlabeled rows: a class of their own, so they count as each other's kin.
            pseudo = np.where(unlabeled, labels.max() + 1, labels)
    else:
        pseudo = np.where(unlabeled, np.asarray(predicted, np.int64), labels)
    cand = unlabeled if candidates is None else np.asarray(candidates, bool)
    return BarnesHutTree(layout).focus_counts(pseudo, unlabeled, theta_k, cand), pseudo


def rank(scores, candidates, n=None):
    """Candidate rows ordered by descending score (stable); at most n."""
    candidates = np.asarray(candidates)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ranked = candidates[order]
    return ranked if n is None else ranked[:n]
