"""tsne-assisted: the layout and the classifier together, with Algorithm 1's action accounting."""
import numpy as np
import pytest

from tensorboard_al_plugin.active.assisted import (GAIN_CAP, assisted_emulation, assisted_focus_scores,
                                                   assisted_step, prediction_group)
from tensorboard_al_plugin.active.classifier import make_classifier
from tensorboard_al_plugin.active.emulation import emulation_step
from tensorboard_al_plugin.active.neighbourhood import BarnesHutTree, best_knn_group
from tensorboard_al_plugin.active.suggest import suggest, train_classifier

ALL = 1e-9  # theta_k -> 0 opens every cell: the focus kernel is the whole layout


def _proba(predicted, n_classes=3, sure=0.9):
    p = np.full((len(predicted), n_classes), (1 - sure) / (n_classes - 1))
    p[np.arange(len(predicted)), predicted] = sure
    return p


class StaticRun:
    def __init__(self, positions):
        self.positions = np.asarray(positions, float)


# Rows 0..6 on a line (x = 0..6), rows 7 and 8 far away and labeled (classes 0 and 1 are known).
LINE = np.c_[np.r_[np.arange(7.0), 100.0, 101.0], np.zeros(9)]
LABELS = np.r_[np.full(7, -1), 0, 1]


def test_a_group_labeled_as_predicted_costs_the_correction_and_each_deselection():
    classes = np.array([0, 1, 1, 0, 0, 0, 0, 0, 1])
    # The classifier calls rows 0 and 2..6 "2" (wrong) and row 1 "1" (right).
    predicted = np.array([2, 1, 2, 2, 2, 2, 2, 0, 1])
    step = assisted_step(LINE, classes, LABELS, _proba(predicted), theta_k=ALL)
    # Focus: row 0, whose class-0 neighbours 3..6 and itself are all mispredicted (5, the most).
    # As predicted: rows predicted "2" near it = 0, 2, 3, 4, 5, 6 (row 1 is left out by the tool, free);
    # 1 to accept + 1 to correct "2" to "0" + 1 to deselect row 2 (class 1) = 3 actions for 5 labels.
    # The slider would take k=7 (rows 0, 3..7) for 1 + 1 + 2 deselections = 4 actions: dearer.
    assert step.kind == "as-predicted" and step.focus == 0
    assert sorted(step.rows.tolist()) == [0, 3, 4, 5, 6] and step.deselected.tolist() == [2]
    assert step.label == 0 and step.predicted == 2 and step.corrected
    assert step.actions == 3 and step.gained == 5


def test_the_slider_wins_when_the_predicted_group_is_dearer_and_its_deselections_count():
    classes = np.array([0, 0, 0, 1, 0, 0, 0, 0, 1])
    # Row 0 is predicted right, its class-0 neighbours wrong: the predicted group is row 0 alone.
    predicted = np.array([0, 2, 2, 2, 2, 2, 2, 0, 1])
    step = assisted_step(LINE, classes, LABELS, _proba(predicted), theta_k=ALL)
    assert step.kind == "slider" and step.focus == 0 and not step.corrected
    # select + slider + deselect row 3 = 3 actions; row 7 was labeled already and gains nothing.
    assert sorted(step.rows.tolist()) == [0, 1, 2, 4, 5, 6, 7] and step.deselected.tolist() == [3]
    assert step.actions == 3 and step.gained == 6


def test_without_a_classifier_the_step_is_algorithm_1s_focus_with_the_capped_slider():
    rng = np.random.default_rng(3)
    layout = rng.normal(size=(120, 2)) + np.repeat([[0, 0], [6, 0], [0, 6]], 40, axis=0)
    classes = np.repeat([0, 1, 2], 40)
    classes[::17] = (classes[::17] + 1) % 3  # a few odd ones inside each blob
    labels = np.full(120, -1)
    step = assisted_step(layout, classes, labels, None)
    group, _ = emulation_step(layout, classes, labels)
    expected = best_knn_group(layout, group.focus, classes, labels < 0, gain_cap=GAIN_CAP)
    assert step.kind == "slider" and step.focus == group.focus and step.predicted == -1
    assert step.rows.tolist() == expected.rows.tolist() and step.actions == expected.actions


def test_falls_back_to_the_smallest_margin_when_the_classifier_is_right_everywhere():
    classes = np.array([0, 0, 0, 1, 0, 0, 0, 0, 1])
    proba = _proba(classes)
    proba[4] = [0.45, 0.40, 0.15]  # right, but barely
    step = assisted_step(LINE, classes, LABELS, proba, theta_k=ALL)
    assert step.kind == "uncertainty" and step.rows.tolist() == [4] and step.actions == 1 and step.label == 0


def test_slider_gain_cap_prefers_a_clean_group_to_a_bigger_one_that_costs_deselections():
    layout = np.c_[np.arange(80.0), np.zeros(80)]
    classes = np.zeros(80, int)
    classes[50] = 1
    unlabeled = np.ones(80, bool)
    paper = best_knn_group(layout, 0, classes, unlabeled)
    assert paper.k == 79 and paper.actions == 3  # 79 labels for 3 actions beats 50 for 2
    capped = best_knn_group(layout, 0, classes, unlabeled, gain_cap=50)
    assert capped.k == 49 and capped.actions == 2 and capped.gained == 50


def test_emulation_accounting_is_exact_and_never_applies_a_wrong_label():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [3, 0], [0, 3], [3, 3]], float)
    classes = np.repeat(np.arange(4), 60)
    layout = centres[classes] + rng.normal(size=(240, 2))  # touching blobs: groups cost deselections
    # Noisy features, so that the classifier is wrong in places.
    X = np.c_[layout + rng.normal(size=(240, 2)) * 1.5, rng.normal(size=(240, 6))].astype(np.float32)
    model = make_classifier(8, 4, random_state=0)
    calls = []

    def predict(labels):
        calls.append(labels.copy())
        known = labels >= 0
        if len(np.unique(labels[known])) < 2:
            return None
        model.update(X[known], labels[known])
        return model.predict_proba(X)

    labels = np.full(240, -1)
    steps = list(assisted_emulation(StaticRun(layout), classes, predict=predict, max_actions=60, labels=labels))
    assert steps and len(calls) == len(steps)
    total = 0
    kinds = set()
    for before, step in zip(calls, steps):
        kinds.add(step.kind)
        assert (classes[step.rows] == step.label).all() and (classes[step.deselected] != step.label).all()
        if step.kind == "as-predicted":
            assert step.actions == 1 + int(step.corrected) + len(step.deselected)
            assert step.corrected == (step.predicted != classes[step.focus])
        elif step.kind == "slider":
            k = len(step.rows) + len(step.deselected) - 1
            assert step.actions == 1 + (k > 0) + len(step.deselected) and not step.corrected
        else:
            assert step.kind == "uncertainty" and step.actions == 1 and len(step.rows) == 1
        assert step.gained == int(np.sum(before[step.rows] < 0))
        total += step.actions
        assert step.total_actions == total and step.total_labeled == int(np.sum(before >= 0)) + step.gained
    assert steps[-1].total_actions >= 60 or (labels >= 0).all()
    assert ((labels == classes) | (labels < 0)).all()  # every applied label is the true class
    assert steps[0].kind == "slider" and steps[0].predicted == -1  # no classifier before two classes
    assert {"slider", "uncertainty"} <= kinds


def test_focus_sums_match_the_neighbourhood_definition():
    rng = np.random.default_rng(2)
    layout = rng.normal(size=(150, 2))
    classes = rng.integers(0, 3, 150)
    weights = rng.random(150)
    tree = BarnesHutTree(layout)
    sums = tree.focus_sums(classes, weights, 0.5)
    for i in range(150):
        nb = tree.neighbourhood(i, 0.5)
        assert sums[i] == pytest.approx(np.sum(weights[nb][classes[nb] == classes[i]]))


def test_tool_score_counts_doubtful_rows_predicted_alike_and_the_group_is_the_predicted_one():
    predicted = np.array([2, 1, 2, 2, 2, 2, 2, 0, 1])
    confidence = np.array([0.5, 0.9, 0.6, 0.5, 0.5, 0.5, 0.9, 0.99, 0.99])
    scores = assisted_focus_scores(LINE, LABELS, predicted, confidence, theta_k=ALL)
    doubt = 1 - confidence
    same = (predicted == 2) & (LABELS < 0)
    assert scores[0] == pytest.approx(doubt[same].sum())  # itself and every other unlabeled "2"
    assert scores[1] == pytest.approx(doubt[1])  # no other unlabeled row is predicted "1"
    assert (scores[7:] == -1).all()
    assert prediction_group(LINE, 0, predicted, LABELS < 0).tolist() == [0, 2, 3, 4, 5, 6]
    assert prediction_group(LINE, 0, predicted, LABELS < 0, k_max=3).tolist() == [0, 2, 3]


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    y = np.repeat(np.arange(3), 40)
    Y = centres[y] + rng.normal(size=(120, 2))
    X = np.c_[Y, rng.normal(size=(120, 6)) * 0.1].astype(np.float32)
    return X, Y, y


def test_suggest_offers_groups_to_label_as_predicted():
    X, Y, y = _blobs()
    names = np.array(["ant", "bee", "cat"])
    labels = [None] * 120
    for r in (0, 1, 40, 41):  # ant and bee known, cat never labeled
        labels[r] = names[y[r]]
    state = train_classifier(X, labels)
    items = suggest("tsne-assisted", X, labels, layout=Y, classifier_state=state, n=3)
    assert len(items) == 3
    proba = state.predict_proba(X)[:, :len(state.classes)]
    predicted = np.array(state.classes)[proba.argmax(axis=1)]
    for item in items:
        assert item["group"][0] == item["row"] and labels[item["row"]] is None
        assert all(labels[r] is None for r in item["group"])
        assert set(predicted[item["group"]]) == {item["predicted"]}  # one label applies to the whole group
    # Distinct groups first, as for t-SNE focus.
    assert not any(b["row"] in a["group"] for i, a in enumerate(items) for b in items[i + 1:])


def test_suggest_without_a_classifier_is_t_sne_focus():
    X, Y, y = _blobs(1)
    labels = [None] * 120
    assert suggest("tsne-assisted", X, labels, layout=Y, n=4) == suggest("tsne", X, labels, layout=Y, n=4)
    with pytest.raises(ValueError, match="layout"):
        suggest("tsne-assisted", X, labels, n=4)
