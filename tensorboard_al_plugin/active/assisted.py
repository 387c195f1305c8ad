"""Classifier-assisted groups (``tsne-assisted``): the layout and the classifier together.

Algorithm 1 (:mod:`.emulation`) looks at the layout only: the person labels the
biggest unlabeled same-class area of the map, whether or not the classifier
already knows it. The tab also colours the map by the classifier's
predictions, so a person can see where the model is *wrong*, and it offers
"label as predicted" for a group the model agrees on. ``tsne-assisted`` uses
both:

1. **Focus where the model is wrong.** Once a classifier exists (labels of two
   classes), the focus is the unlabeled row with the most unlabeled rows of its
   own class *that the classifier mispredicts* in its Barnes-Hut neighbourhood
   (the focus kernel of Algorithm 1), counting itself; a class that has no
   label yet weighs ``1 + new_class_bonus`` times (the legend shows which
   classes the model has never seen). An area the model already gets right
   teaches it little, however big. Before the classifier exists, the focus is
   Algorithm 1's.
2. **Two ways to label the focus's group**, the cheaper per label wins:

   - *as predicted* (the Suggest panel's group; it wins only when strictly cheaper): the focus and the unlabeled
     rows among its ``k_max`` nearest (layout) that the classifier predicts as
     the focus's class, pre-selected by the tool; the person accepts it
     (1 action), corrects the label if the prediction of the focus is wrong
     (1 action) and deselects every row whose true class differs (1 action
     each);
   - *slider* (Algorithm 1's walk): select the focus (1), set the kNN slider
     (1 if k > 0), deselect each different-class row (1 each), with k chosen
     for the best labels per action where labels beyond ``gain_cap`` in one
     group count no more (:func:`.neighbourhood.best_knn_group`): early on
     the model needs many distinct groups more than bigger ones, so a
     clean group of 50 for 2 actions beats 100 for 5.

   "Per label" counts the rows the model mispredicts fully and the rows it
   already gets right at ``right_weight``.
3. **Fallback to uncertainty** when no area is left where the model is wrong on
   two or more rows of one class: the unlabeled row with the smallest margin
   between its two likeliest classes, 1 action.

The accounting is Algorithm 1's: selecting is an action, setting the slider is
an action, each deselection is an action, applying the label is not; a wrong
predicted label is never accepted silently, its correction is an action. The
emulated person knows the true classes, as in Algorithm 1 (they see the
thumbnails), and sees the predictions of the classifier the tab retrains
after every labeling step.

Shapes: layout ``(n, 2|3)``; classes, labels ``(n,)`` int (labels -1 =
unlabeled); proba ``(n, C)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbourhood import BarnesHutTree, best_knn_group
from .strategies import margin

__all__ = ["AssistedStep", "assisted_step", "assisted_emulation", "prediction_group", "assisted_focus_scores",
           "GAIN_CAP", "NEW_CLASS_BONUS", "RIGHT_WEIGHT"]

#: Labels beyond this many in one slider group count no more when the person picks k.
GAIN_CAP = 50
#: Extra weight of a class that has no label yet when choosing the focus.
NEW_CLASS_BONUS = 3.0
#: Worth of a label the classifier already predicts right, against 1 for a mispredicted one.
RIGHT_WEIGHT = 0.1


@dataclass
class AssistedStep:
    """One labeling step of ``tsne-assisted``.

    ``kind``: "slider" (Algorithm 1's walk), "as-predicted" (the suggested
    group) or "uncertainty" (the fallback, one row); ``rows`` get ``label``;
    ``deselected``: rows removed by hand; ``predicted``: the classifier's
    label for the focus (-1 without a classifier); ``corrected``: the person
    had to replace a wrong predicted label; ``actions``: this step's cost.
    """

    kind: str
    focus: int
    rows: np.ndarray
    deselected: np.ndarray
    label: int
    predicted: int
    corrected: bool
    actions: int
    gained: int
    total_actions: int = 0
    total_labeled: int = 0


def prediction_group(layout, focus, predicted, unlabeled, *, k_max=100):
    """The "label as predicted" group of ``focus``: itself, then the unlabeled rows among its
    ``k_max`` nearest in the layout (nearest first) that the classifier predicts as it."""
    Y = np.asarray(layout, np.float64)
    focus = int(focus)
    d2 = np.sum((Y - Y[focus]) ** 2, axis=1)
    d2[focus] = -1.0
    order = np.argsort(d2, kind="stable")[:int(min(k_max, len(Y) - 1)) + 1]
    keep = np.asarray(unlabeled, bool)[order] & (np.asarray(predicted)[order] == predicted[focus])
    keep[0] = True
    return order[keep]


def assisted_focus_scores(layout, labels, predicted, confidence, *, theta_k=0.5, tree=None):
    """The Suggest panel's ``tsne-assisted`` score, without ground truth.

    The emulated person focuses where the classifier is wrong; the tool does
    not know where that is, so it counts, for each unlabeled row i, the
    unlabeled rows predicted like i in i's Barnes-Hut neighbourhood (and i
    itself), each weighted by 1 - confidence: the expected number of rows the
    group would correct. labels (n,) int, -1 = unlabeled; predicted (n,)
    class index; confidence (n,) in [0, 1]. Returns (n,) float, -1 on labeled
    rows.
    """
    labels = np.asarray(labels, np.int64)
    unlabeled = labels < 0
    doubt = np.where(unlabeled, 1.0 - np.asarray(confidence, np.float64), 0.0)
    tree = BarnesHutTree(layout) if tree is None else tree
    pseudo = np.where(unlabeled, np.asarray(predicted, np.int64), labels)
    scores = tree.focus_sums(pseudo, doubt, theta_k, unlabeled)
    scores[unlabeled] += doubt[unlabeled]
    return scores


def _slider_step(layout, focus, classes, unlabeled, k_max, gain_cap, predicted):
    g = best_knn_group(layout, focus, classes, unlabeled, k_max=k_max, gain_cap=gain_cap)
    label = int(classes[focus])
    return AssistedStep("slider", int(focus), g.rows, g.deselected, label, predicted, False, g.actions, g.gained)


def _as_predicted_step(layout, focus, classes, unlabeled, predicted, k_max):
    group = prediction_group(layout, focus, predicted, unlabeled, k_max=k_max)
    label = int(classes[focus])
    right = classes[group] == label
    corrected = int(predicted[focus]) != label
    actions = 1 + int(corrected) + int(np.sum(~right))
    return AssistedStep("as-predicted", int(focus), group[right], group[~right], label, int(predicted[focus]),
                        corrected, actions, int(np.sum(right & unlabeled[group])))


def assisted_step(layout, classes, labels, proba=None, *, tree=None, theta_k=0.5, k_max=100, gain_cap=GAIN_CAP,
                  new_class_bonus=NEW_CLASS_BONUS, right_weight=RIGHT_WEIGHT):
    """The emulated person's next step (see the module docstring), or None when all rows are labeled.

    ``proba``: the classifier's probabilities for every row, or None before a
    classifier exists (the step is then Algorithm 1's focus with the slider
    walk). ``tree``: a :class:`.neighbourhood.BarnesHutTree` of ``layout`` to
    reuse (built when None).
    """
    classes = np.asarray(classes, np.int64)
    labels = np.asarray(labels, np.int64)
    unlabeled = labels < 0
    if not unlabeled.any():
        return None
    tree = BarnesHutTree(layout) if tree is None else tree
    if proba is None:
        counts = tree.focus_counts(classes, unlabeled, theta_k)
        return _slider_step(layout, int(np.argmax(counts)), classes, unlabeled, k_max, gain_cap, -1)
    proba = np.asarray(proba)
    predicted = proba.argmax(axis=1)
    wrong = unlabeled & (predicted != classes)
    counts = (tree.focus_counts(classes, wrong, theta_k, unlabeled) + wrong).astype(np.float64)
    seen = np.zeros(max(proba.shape[1], int(classes.max()) + 1), bool)
    seen[labels[~unlabeled]] = True
    counts *= np.where(seen[classes], 1.0, 1.0 + new_class_bonus)
    counts[~unlabeled] = -1.0
    if counts.max() < 2.0:
        cand = np.flatnonzero(unlabeled)
        row = int(cand[np.argmax(margin(proba[cand]))])  # stable: the lowest row among ties
        label = int(classes[row])
        return AssistedStep("uncertainty", row, np.array([row]), np.array([], np.int64), label, int(predicted[row]),
                            False, 1, 1)
    focus = int(np.argmax(counts))

    def worth(step):
        gained = step.rows[unlabeled[step.rows]]
        return (np.sum(wrong[gained]) + right_weight * np.sum(~wrong[gained])) / step.actions

    slider = _slider_step(layout, focus, classes, unlabeled, k_max, gain_cap, int(predicted[focus]))
    as_predicted = _as_predicted_step(layout, focus, classes, unlabeled, predicted, k_max)
    return as_predicted if worth(as_predicted) > worth(slider) else slider


def assisted_emulation(run, classes, *, predict, max_actions=300, labels=None, theta_k=0.5, k_max=100,
                       gain_cap=GAIN_CAP, new_class_bonus=NEW_CLASS_BONUS, right_weight=RIGHT_WEIGHT):
    """Run ``tsne-assisted`` on the layout ``run`` (``positions``) until ``max_actions`` are spent.

    ``predict(labels)`` returns the classifier's probabilities (n, C) after
    training on ``labels`` (-1 = unlabeled), or None while there is no
    classifier (fewer than two labeled classes); it is called before every
    step, as the tab retrains after every labeling. The layout is not told the
    labels (an unsupervised layout does not move for them), so the
    Barnes-Hut tree is built once. Yields an :class:`AssistedStep` per step,
    with ``total_actions`` and ``total_labeled`` filled in; ``labels`` (the
    array passed in, or a fresh one) is updated in place before each yield.
    """
    classes = np.asarray(classes, np.int64)
    labels = np.full(len(classes), -1, np.int64) if labels is None else labels
    layout = np.asarray(run.positions, np.float64)
    tree = BarnesHutTree(layout)
    total = 0
    while total < max_actions and (labels < 0).any():
        step = assisted_step(layout, classes, labels, predict(labels), tree=tree, theta_k=theta_k, k_max=k_max,
                             gain_cap=gain_cap, new_class_bonus=new_class_bonus, right_weight=right_weight)
        labels[step.rows] = step.label
        total += step.actions
        step.total_actions, step.total_labeled = total, int(np.sum(labels >= 0))
        yield step
