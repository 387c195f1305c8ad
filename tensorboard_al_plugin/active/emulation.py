"""Annotation emulation: Algorithm 1 of Luus et al. (arXiv:1901.00675).

An emulated annotator labels a pool by looking at its live t-SNE layout. Each
step:

1. build the Barnes-Hut tree over the current layout;
2. for every unlabeled row i count the unlabeled rows of i's (true) class in its
   Barnes-Hut neighbourhood N_theta_K(i) (the perceptual focus kernel, see
   :mod:`.neighbourhood`);
3. take the row with the highest count as the focus (ties: lowest row);
4. walk the focus's exact kNN in ascending layout distance, counting actions
   (1 to select the focus, 1 to set the kNN slider when k > 0, 1 per
   different-class neighbour deselected) and keep the k with the best
   labels-gained / actions (:func:`.neighbourhood.best_knn_group`);
5. apply the label to the kept rows, hand the labels to the layout
   (``set_labels``) and let it run ``steps_between`` more iterations.

With an unsupervised layout (f = r = 0) labels do not enter the gradient, so the
extra iterations would only polish a converged layout; ``steps_between`` is
skipped there to save time (pass ``step_unsupervised=True`` to run them anyway).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbourhood import BarnesHutTree, KnnGroup, best_knn_group

__all__ = ["EmulationStep", "emulation_step", "annotation_emulation", "THETA_K", "K_MAX"]

THETA_K = 0.5  # Barnes-Hut accuracy of the focus kernel, the engine's theta
K_MAX = 100  # the kNN slider's range, as in TensorBoard Projector


@dataclass
class EmulationStep:
    """One labeling action group: ``group`` got the focus's class for ``group.actions`` actions."""

    group: KnnGroup
    focus_count: int
    total_actions: int
    total_labeled: int
    label: int


def emulation_step(layout, classes, labels, *, theta_k=THETA_K, k_max=K_MAX):
    """Algorithm 1's choice for one step on a fixed layout.

    layout (n, d); classes (n,) true class per row; labels (n,) current labels,
    -1 = unlabeled. Returns ``(KnnGroup, focus_count)`` or ``(None, 0)`` when
    nothing is left to label.
    """
    labels = np.asarray(labels)
    unlabeled = labels < 0
    if not unlabeled.any():
        return None, 0
    counts = BarnesHutTree(layout).focus_counts(classes, unlabeled, theta_k)
    focus = int(np.argmax(counts))  # counts are -1 on labeled rows
    return best_knn_group(layout, focus, classes, unlabeled, k_max=k_max), int(counts[focus])


def annotation_emulation(run, classes, *, max_actions=300, theta_k=THETA_K, k_max=K_MAX, steps_between=20,
                         supervised=True, step_unsupervised=False, labels=None):
    """Run Algorithm 1 on a live layout ``run`` until ``max_actions`` are spent.

    ``run`` follows the engine's live-run contract (``positions``, ``step``,
    ``set_labels``) and should already hold a converged layout. Yields an
    :class:`EmulationStep` per labeling step; the current labels are available
    as ``labels`` (the array passed in, or a fresh one) and are updated in place
    before each yield.
    """
    classes = np.asarray(classes, np.int64)
    labels = np.full(len(classes), -1, np.int64) if labels is None else labels
    total = 0
    while total < max_actions:
        group, count = emulation_step(run.positions, classes, labels, theta_k=theta_k, k_max=k_max)
        if group is None:
            return
        label = int(classes[group.focus])
        labels[group.rows] = label
        total += group.actions
        yield EmulationStep(group, count, total, int(np.sum(labels >= 0)), label)
        if supervised:
            run.set_labels(labels)
        if steps_between and (supervised or step_unsupervised):
            run.step(steps_between)
