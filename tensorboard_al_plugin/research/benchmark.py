"""The labeling-efficiency benchmark of Luus et al. (arXiv:1901.00675, section 4, Table 2).

Protocol (:func:`run_benchmark`):

- Stratified k-fold cross-validation (5 folds by default): each fold's training
  part is the pool the annotator labels, its held-out part the validation set.
- The classifier is the paper's D -> D/4 network (:mod:`tensorboard_al_plugin.active.classifier`), trained
  from its current state for 50 epochs after every 10 actions. Features are
  standardised (mean 0, variance 1 per column, fitted on all rows: no labels
  involved) before they reach it. With ``pca=k`` both the classifier and the
  layout see the first k principal components instead of the raw features.
- ``random`` and the classifier strategies label 10 rows per round, one action
  per row; their first round is random (no classifier exists yet).
- ``tsne`` / ``tsne-supervised`` run the annotation emulation (Algorithm 1,
  :mod:`tensorboard_al_plugin.active.emulation`) on a live layout of the pool from the project's t-SNE
  engine: unsupervised (f = r = 0) or with the paper's supervision. The layout
  sees the features reduced to 50 dimensions with PCA when they have more. It
  first runs ``initial_iterations`` unlabeled iterations; the classifier is
  retrained each time the action count passes a multiple of 10.
- ``tsne-assisted`` runs the classifier-assisted emulation
  (:mod:`tensorboard_al_plugin.active.assisted`, Algorithm 1's action
  accounting) on the unsupervised layout; the predictions the person sees come
  from a second copy of the network retrained after every step, as the tab's
  background trainer does; the scored network keeps the 10-action cadence.
- Full-label accuracy: the same network trained on the whole pool (fresh
  weights, ``full_label_epochs`` epochs) per fold; the target is 80% of it.
- ``actions_to_80`` per fold: the action count of the first retrain whose
  validation accuracy reaches the target (``None`` if it never does within
  ``max_actions``: the fold is *censored*, its true count is above the cap).
- ``censored``: how many folds never reached the target.
- ``mean_with_censored``: the mean over all folds with each censored fold
  counted at the cap ``max_actions``; when ``censored`` > 0 it is a lower
  bound (printed and plotted as ">=").
- ``mean``: the mean over the folds that reached the target only (``None`` if
  none did). Kept for older readers; it is biased low when folds are censored
  (it drops exactly the slowest folds), so compare strategies by
  ``mean_with_censored`` and ``censored``.
- ``curve``: the mean over folds of the validation accuracy after 0, 10, 20, ...
  actions (the latest retrain at or before that count).
- Top level: ``full_label_accuracy``, ``target_fraction`` (0.8),
  ``max_actions`` (the cap), ``folds`` and ``classifier_backend`` (the
  network that produced the numbers: "numpy" or "keras").

Writes ``out_dir/results.json`` and ``out_dir/curves.png`` (mean curve and
min-max band per strategy; a dot where each fold reached the target, a
triangle at the cap for each censored fold).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ..active.classifier import make_classifier, resolve_backend
from ..active.assisted import assisted_emulation
from ..active.emulation import K_MAX, THETA_K, annotation_emulation
from ..active.layout import make_layout_run, pca_for_tsne
from ..active.strategies import (CLASSIFIER_STRATEGIES, LAYOUT_STRATEGIES, UNCERTAINTY_SCORERS, check_strategies,
                                 deepfool_distance, ensemble_entropy, rank)
from ..tsne.pca import principal_components
from .datasets import check_features_labels, stratified_subset

__all__ = ["run_benchmark", "run_strategy", "plot_curves", "censored_summary", "TARGET_FRACTION", "ROUND_SIZE"]

TARGET_FRACTION = 0.8
ROUND_SIZE = 10  # rows per round for the baselines; actions between retrains for everyone
ENSEMBLE_SIZE = 5


def _standardisation(X):
    """(mean, scale) per column, a constant column scaled by 1: what the classifier's inputs are standardised by."""
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    sd[sd < 1e-8] = 1.0
    return mu, sd


def _standardise(X, mu, sd):
    return ((X - mu) / sd).astype(np.float32)


def _strategy_seed(random_state, fold, strategy):
    return int(random_state) * 1000 + fold * 37 + sum(map(ord, strategy)) % 997


def run_strategy(strategy, X_pool, y_pool, X_val, y_val, *, n_classes, max_actions=300, random_state=0,
                 tsne_features=None, tsne_options=None, classifier_backend="numpy", on_actions=None, on_round=None):
    """Label one pool with one strategy; return [(actions, validation accuracy), ...] at each retrain.

    ``tsne_features``: the pool's features for the layout (needed for t-SNE
    strategies). ``on_actions(n)`` is called with the number of new actions;
    ``on_round(actions, labels, classifier, accuracy)`` after each retrain
    (``labels``: the pool's class indices so far, -1 = unlabeled, a copy).
    """
    rng = np.random.default_rng(random_state)
    n_feat = X_pool.shape[1]
    clf = make_classifier(n_feat, n_classes, backend=classifier_backend, random_state=random_state)
    curve = [(0, clf.score(X_val, y_val))]
    labels = np.full(len(y_pool), -1, np.int64)

    def retrain(actions, models):
        lab = labels >= 0
        for m in models:
            m.update(X_pool[lab], labels[lab])
        curve.append((int(actions), clf.score(X_val, y_val)))
        if on_round is not None:
            on_round(int(actions), labels.copy(), clf, curve[-1][1])

    if strategy in LAYOUT_STRATEGIES:
        opts = dict(tsne_options or {})
        supervised = strategy == "tsne-supervised"
        run = make_layout_run(tsne_features, n_components=opts.get("n_components", 2), supervised=supervised,
                              random_state=random_state, engine=opts.get("engine", "ours"))
        run.step(opts.get("initial_iterations", 500))
        kernel = dict(theta_k=opts.get("theta_k", THETA_K), k_max=opts.get("k_max", K_MAX))
        if strategy == "tsne-assisted":
            steps = assisted_emulation(run, y_pool, predict=_tab_classifier(X_pool, n_classes, classifier_backend,
                                                                            random_state),
                                       max_actions=max_actions, labels=labels, **kernel)
        else:
            steps = annotation_emulation(run, y_pool, max_actions=max_actions, labels=labels,
                                         steps_between=opts.get("steps_between", 20), supervised=supervised, **kernel)
        next_retrain = ROUND_SIZE
        last_total = 0
        for step in steps:
            if on_actions:
                on_actions(step.total_actions - last_total)
            last_total = step.total_actions
            if step.total_actions >= next_retrain:
                retrain(step.total_actions, [clf])
                next_retrain = (step.total_actions // ROUND_SIZE + 1) * ROUND_SIZE
        if curve[-1][0] != last_total and last_total > 0:
            retrain(last_total, [clf])
        return curve

    members = [clf]
    if strategy == "ensemble":
        members += [make_classifier(n_feat, n_classes, backend=classifier_backend,
                                    random_state=random_state + 101 * (k + 1)) for k in range(ENSEMBLE_SIZE - 1)]
    actions = 0
    while actions < max_actions and (labels < 0).any():
        cand = np.flatnonzero(labels < 0)
        take = min(ROUND_SIZE, max_actions - actions, len(cand))
        if strategy == "random" or actions == 0:
            picks = rng.choice(cand, size=take, replace=False)
        else:
            Xc = X_pool[cand]
            if strategy in UNCERTAINTY_SCORERS:
                scores = UNCERTAINTY_SCORERS[strategy](clf.predict_proba(Xc))
            elif strategy == "ensemble":
                scores = ensemble_entropy([m.predict_proba(Xc) for m in members])
            elif strategy == "adversarial":
                scores = -deepfool_distance(clf, Xc)
            else:  # pragma: no cover - check_strategies guards this
                raise ValueError(f"unknown strategy {strategy!r}.")
            picks = rank(scores, cand, take)
        labels[picks] = y_pool[picks]
        actions += take
        if on_actions:
            on_actions(take)
        retrain(actions, members)
    return curve


def _tab_classifier(X_pool, n_classes, backend, random_state):
    """``predict(labels)`` for ``tsne-assisted``: the classifier the tab retrains after every labeling step.

    It is not the network the benchmark scores (that one keeps the protocol's
    retrain every 10 actions): the person sees the predictions of the tab's
    background trainer, which warm-starts 50 epochs on each new label version.
    None while fewer than two classes are labeled (the tab has no model then).
    """
    model = make_classifier(X_pool.shape[1], n_classes, backend=backend, random_state=random_state + 7)

    def predict(labels):
        known = labels >= 0
        if len(np.unique(labels[known])) < 2:
            return None
        model.update(X_pool[known], labels[known])
        return model.predict_proba(X_pool)

    return predict


def _curve_on_grid(curve, grid):
    acts = np.array([a for a, _ in curve])
    accs = np.array([c for _, c in curve])
    idx = np.searchsorted(acts, grid, side="right") - 1
    return accs[np.clip(idx, 0, None)]


def _actions_to_target(curve, target):
    for a, acc in curve:
        if acc >= target:
            return int(a)
    return None


def censored_summary(actions_to_target, cap):
    """``{"censored", "mean_with_censored", "mean"}`` of per-fold action counts (None = never reached).

    A fold that never reached the target within ``cap`` actions is censored:
    its count is only known to be above the cap, so it enters
    ``mean_with_censored`` at the cap (a lower bound of the true mean).
    ``mean`` averages the folds that reached the target (None if none did).
    """
    reached = [a for a in actions_to_target if a is not None]
    return {
        "censored": len(actions_to_target) - len(reached),
        "mean_with_censored": float(np.mean([cap if a is None else a for a in actions_to_target])),
        "mean": float(np.mean(reached)) if reached else None,
    }


def run_benchmark(features, labels, *, strategies, folds=5, max_actions=300, subset=None, out_dir,
                  random_state=0, progress=True, classifier_backend="numpy", tsne_options=None,
                  full_label_epochs=50, pca=None, plot=True, record_rounds=None, images=None, name="custom"):
    """Run the labeling-efficiency benchmark; write results.json and curves.png into ``out_dir``.

    features (n, D) numeric; labels (n,) any hashable class values;
    strategies: names from :data:`.strategies.STRATEGIES` (list or comma string);
    subset: stratified random subset size taken first (None = all rows).
    pca: if set, replace the features by their first ``pca`` principal
    components (fitted on all rows, no labels) for the classifier and the layout
    alike; None (default) gives the classifier the features as they are.
    ``tsne_options``: n_components (2), initial_iterations (500),
    steps_between (20), theta_k (0.5), k_max (100), engine ("ours").
    ``record_rounds``: a log directory; each strategy's run on each fold is
    written there as an embedding the tab can replay (run ``rounds/<name>``,
    embedding ``<strategy>-fold<k>``: the pool's features, ``images`` (one per
    row of ``features``) as thumbnails, the final labels, and every retrain as
    a round with the rows it queried, its held-out accuracy and the
    classifier's hidden layer for the model view; see rounds.py).
    Returns the dict written to results.json (see module docstring).
    """
    strategies = check_strategies(strategies)
    classifier_backend = resolve_backend(classifier_backend)
    if record_rounds is not None:
        from ..logdir import fs
        if not name or not all(ch.isalnum() or ch in "._-" for ch in name):
            raise ValueError(f"name {name!r} must be letters, digits, '.', '_' or '-'.")
        if fs.exists(fs.join(record_rounds, "rounds", name)):
            raise ValueError(f"{fs.join(record_rounds, 'rounds', name)} holds an earlier recording: remove it or "
                             "record into another log directory (rounds of two runs would mix).")
    X, y, classes = check_features_labels(features, labels)
    if max_actions is None or int(max_actions) < 1:
        raise ValueError(f"max_actions must be a positive integer, got {max_actions}.")
    max_actions = int(max_actions)
    if images is not None and len(images) != len(X):
        raise ValueError(f"images has {len(images)} entries, features have {len(X)} rows.")
    if subset is not None:
        if int(subset) < 2:
            raise ValueError(f"subset must be at least 2 rows, got {subset}.")
        keep = stratified_subset(y, subset, random_state)
        X, y, classes = check_features_labels(X[keep], classes[y[keep]])
        images = None if images is None else np.asarray(images)[keep]
    X, y, classes = check_features_labels(X, classes[y], folds=folds)
    folds = int(folds)
    if pca is not None:
        if int(pca) < 1:
            raise ValueError(f"pca must be a positive number of components, got {pca}.")
        X = principal_components(X, min(int(pca), *X.shape), random_state=random_state)
    n_classes = len(classes)
    mu, sd = _standardisation(X)
    Xc = _standardise(X, mu, sd)
    need_tsne = any(s in LAYOUT_STRATEGIES for s in strategies)
    Xt = pca_for_tsne(X, 50, random_state) if need_tsne else None

    from sklearn.model_selection import StratifiedKFold
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=random_state).split(Xc, y))

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=folds * len(strategies) * max_actions, unit="action", desc="benchmark", dynamic_ncols=True)

    full_acc = []
    curves = {s: [] for s in strategies}
    timings = {s: 0.0 for s in strategies}
    for f, (tr, va) in enumerate(splits):
        full = make_classifier(Xc.shape[1], n_classes, backend=classifier_backend, random_state=random_state + f,
                               epochs=full_label_epochs)
        full.update(Xc[tr], y[tr])
        full_acc.append(full.score(Xc[va], y[va]))
        for s in strategies:
            if bar is not None:
                bar.set_description(f"fold {f + 1}/{folds} {s}")
            done = [0]

            def on_actions(k, done=done):
                k = min(k, max_actions - done[0])
                if k > 0 and bar is not None:
                    bar.update(k)
                done[0] += max(k, 0)

            recorder = None if record_rounds is None else _RoundsRecorder(X, tr, classes, mu, sd)
            t0 = time.time()
            curve = run_strategy(s, Xc[tr], y[tr], Xc[va], y[va], n_classes=n_classes, max_actions=max_actions,
                                 random_state=_strategy_seed(random_state, f, s),
                                 tsne_features=None if Xt is None else Xt[tr], tsne_options=tsne_options,
                                 classifier_backend=classifier_backend, on_actions=on_actions,
                                 on_round=None if recorder is None else recorder.add)
            timings[s] += time.time() - t0
            if recorder is not None:
                recorder.write(record_rounds, "rounds/" + name, f"{s}-fold{f + 1}",
                               None if images is None else np.asarray(images)[tr])
            if bar is not None and done[0] < max_actions:
                bar.update(max_actions - done[0])
            curves[s].append(curve)
    if bar is not None:
        bar.close()

    grid = np.arange(0, max_actions + 1, ROUND_SIZE)
    results = {"full_label_accuracy": float(np.mean(full_acc)), "target_fraction": TARGET_FRACTION,
               "max_actions": max_actions, "folds": folds, "classifier_backend": classifier_backend,
               "strategies": {}}
    bands = {}
    for s in strategies:
        to80 = [_actions_to_target(c, TARGET_FRACTION * full_acc[f]) for f, c in enumerate(curves[s])]
        on_grid = np.stack([_curve_on_grid(c, grid) for c in curves[s]])
        results["strategies"][s] = {"actions_to_80": to80, **censored_summary(to80, max_actions),
                                    "curve": [[int(a), float(m)] for a, m in zip(grid, on_grid.mean(axis=0))]}
        bands[s] = on_grid
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    if plot:
        plot_curves(grid, bands, TARGET_FRACTION * results["full_label_accuracy"],
                    os.path.join(out_dir, "curves.png"), title=f"{len(X)} rows, {folds}-fold CV"
                    + (", groups labeled in a UMAP layout" if (tsne_options or {}).get("engine") == "umap" else ""),
                    actions_to_target={s: r["actions_to_80"] for s, r in results["strategies"].items()},
                    cap=max_actions)
    results_timings = {s: round(t, 1) for s, t in timings.items()}
    run_benchmark.last_timings = results_timings  # seconds per strategy, for reports; not part of the JSON
    return results


class _RoundsRecorder:
    """Keeps each retrain of one strategy on one fold, then writes them as a replayable embedding."""

    def __init__(self, X, pool, classes, mean, scale):
        self.features = X[pool]
        # The classifier saw the features standardised over all rows (_standardisation): the model view must too.
        self.mean = np.asarray(mean, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.names = [str(c) for c in classes]
        self.rounds = []

    def add(self, actions, labels, clf, accuracy):
        W1, b1, _, _ = clf.logit_parts()
        self.rounds.append((actions, labels, {"W1": np.array(W1, np.float32), "b1": np.array(b1, np.float32),
                                              "mean": self.mean, "scale": self.scale}, float(accuracy)))

    def write(self, logdir, run, name, images):
        from ..logdir import fs
        from ..logdir.embeddings import write_embedding
        from ..rounds import ACCURACY_ON, RoundStore

        final = self.rounds[-1][1] if self.rounds else np.full(len(self.features), -1)
        names = [self.names[c] if c >= 0 else None for c in final]
        emb_dir = write_embedding(logdir, self.features, name=name, run=run, images=images, labels=names,
                                  author="tensorboard-al benchmark")
        store = RoundStore(fs.join(emb_dir, "labels", "rounds"), len(self.features))
        for actions, labels, layer, accuracy in self.rounds:
            present = [self.names[c] for c in np.unique(labels[labels >= 0])]  # the classes labeled so far
            rnd = store.record(actions, [self.names[c] if c >= 0 else None for c in labels], present, layer)
            store.set_accuracy(rnd["id"], round(accuracy, 4), None, 0, on=ACCURACY_ON[1])
            # Each round's model view now, turned onto the one before: the replay moves without jumps.
            store.positions(rnd["round"], self.features)


def plot_curves(grid, per_fold, target, path, title="", actions_to_target=None, cap=None):
    """Validation accuracy against actions: mean line and min-max band over folds per strategy.

    ``actions_to_target`` ({strategy: [actions or None per fold]}, optional)
    adds a dot on the target line where each fold reached it and, for each
    censored fold (None: not reached within ``cap`` actions, default
    ``grid[-1]``), a triangle at the right edge, stacked below the target
    line in the strategy's colour. Returns the legend's labels.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    folds_of = actions_to_target or {}
    reached_at = {name: [a for a in folds if a is not None] for name, folds in folds_of.items()}
    censored_of = {name: len(folds) - len(reached_at[name]) for name, folds in folds_of.items()}
    step = min(0.025, 0.9 * target / max(sum(censored_of.values()), 1))
    stacked = 0
    for name, acc in per_fold.items():
        mean = acc.mean(axis=0)
        style = "-" if name.startswith("tsne") else "--"
        (line,) = ax.plot(grid, mean, style, label=name, linewidth=2 if name.startswith("tsne") else 1.3)
        ax.fill_between(grid, acc.min(axis=0), acc.max(axis=0), color=line.get_color(), alpha=0.12)
        reached = reached_at.get(name, [])
        if reached:
            ax.plot(reached, [target] * len(reached), "o", color=line.get_color(), markersize=4, zorder=3)
        censored = censored_of.get(name, 0)
        if censored:
            ys = [target - step * (stacked + k + 1) for k in range(censored)]
            x = grid[-1] + 0.015 * (grid[-1] - grid[0])  # just right of the axis, beyond every reached fold
            ax.plot([x] * censored, ys, ">", color=line.get_color(), markersize=7, clip_on=False, zorder=3)
            stacked += censored
    ax.axhline(target, color="k", linewidth=0.8, linestyle=":", label="80% of full-label accuracy")
    if any(reached_at.values()):
        ax.plot([], [], "o", color="0.3", markersize=4, label="a fold reached 80% here")
    if stacked:
        ax.plot([], [], ">", color="0.3", markersize=7,
                label="censored fold: not reached within %d actions" % (grid[-1] if cap is None else cap))
    ax.set_xlabel("labeling actions")
    ax.set_ylabel("validation accuracy")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    legend = ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return [t.get_text() for t in legend.get_texts()]
