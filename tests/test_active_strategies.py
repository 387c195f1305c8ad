"""Query strategies rank the rows a sensible annotator or learner would ask about first."""
import numpy as np
import pytest

from tensorboard_al_plugin.active.classifier import make_classifier
from tensorboard_al_plugin.active.strategies import (check_strategies, deepfool_distance, ensemble_entropy,
                                                      entropy, least_confidence, margin, rank, tsne_focus_scores)
from tensorboard_al_plugin.active.suggest import predictions, suggest, train_classifier


def _two_clusters_and_bridge(seed=0):
    """Two labeled clusters at x = -4 and x = +4 and five unlabeled points near x = 0 (8 features:
    two informative, 30 of small noise, so that the D -> D/4 network has 8 hidden units)."""
    rng = np.random.default_rng(seed)
    left = rng.normal(size=(40, 2)) * 0.5 + [-4.0, 0.0]
    right = rng.normal(size=(40, 2)) * 0.5 + [4.0, 0.0]
    bridge = np.c_[np.linspace(-0.4, 0.4, 5), rng.normal(size=5) * 0.3]
    X = np.vstack([left, right, bridge])
    X = np.c_[X, rng.normal(size=(len(X), 30)) * 0.1].astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(40), -np.ones(5)].astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def trained():
    X, y = _two_clusters_and_bridge()
    lab = y >= 0
    clf = make_classifier(32, 2, random_state=0, epochs=100)
    clf.update(X[lab], y[lab])
    return X, y, clf


BRIDGE = set(range(80, 85))


@pytest.mark.parametrize("scorer", [least_confidence, margin, entropy])
def test_uncertainty_strategies_pick_points_between_two_clusters(trained, scorer):
    X, y, clf = trained
    top = rank(scorer(clf.predict_proba(X)), np.arange(len(X)), 5)
    assert len(set(top.tolist()) & BRIDGE) >= 4


def test_ensemble_entropy_picks_points_between_two_clusters(trained):
    X, y, clf = trained
    lab = y >= 0
    members = [clf] + [make_classifier(32, 2, random_state=s, epochs=100).update(X[lab], y[lab]) for s in (1, 2)]
    top = rank(ensemble_entropy([m.predict_proba(X) for m in members]), np.arange(len(X)), 5)
    assert len(set(top.tolist()) & BRIDGE) >= 4


def test_adversarial_smallest_perturbation_is_between_clusters_and_flips(trained):
    X, y, clf = trained
    dist = deepfool_distance(clf, X)
    assert np.all(dist >= 0)
    top = rank(-dist, np.arange(len(X)), 5)
    assert len(set(top.tolist()) & BRIDGE) >= 4
    assert dist[80:85].mean() < 0.25 * dist[:80].mean()


def test_margin_score_is_minus_the_gap_between_the_two_top_classes():
    p = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]])
    np.testing.assert_allclose(margin(p), [-0.2, -0.85])
    np.testing.assert_allclose(least_confidence(p), [0.5, 0.1])
    assert entropy(p)[0] > entropy(p)[1]


def test_tsne_focus_prefers_the_largest_homogeneous_unlabeled_group():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(30, 2)) * 0.3 + [10, 10]
    small = rng.normal(size=(5, 2)) * 0.3 + [-10, 10]
    scattered = rng.uniform(-30, 30, size=(10, 2)) + [0, -60]
    layout = np.vstack([big, small, scattered])
    labels = np.full(len(layout), -1)
    predicted = np.r_[np.zeros(30), np.ones(5), np.arange(10) % 2].astype(int)
    scores, _ = tsne_focus_scores(layout, labels, predicted=predicted)
    assert np.argmax(scores) < 30
    items = suggest("tsne", layout, labels, layout=layout, n=3)
    assert items[0]["row"] < 30
    # No classifier yet: the group is the focus's Barnes-Hut neighbourhood, all inside the big cluster.
    assert len(items[0]["group"]) >= 10 and all(r < 30 for r in items[0]["group"])


def test_suggest_returns_unlabeled_rows_with_prediction_for_every_strategy():
    X, y = _two_clusters_and_bridge()
    labels = [None if v < 0 else ("cat" if v == 0 else "dog") for v in y]
    labels = [lab if i % 4 == 0 else None for i, lab in enumerate(labels)]
    state = train_classifier(X, labels)
    for strategy in check_strategies("tsne,tsne-supervised,random,least-confidence,margin,entropy,ensemble,"
                                     "adversarial"):
        items = suggest(strategy, X, labels, layout=X[:, :2], classifier_state=state, n=4)
        assert len(items) == 4
        for item in items:
            assert labels[item["row"]] is None
            assert item["row"] in item["group"]
            assert item["predicted"] in ("cat", "dog") and 0.0 <= item["confidence"] <= 1.0
    names, conf, unc = predictions(X, state)
    assert len(names) == len(X) and conf.shape == unc.shape == (len(X),)


def test_suggest_explains_what_is_missing():
    X, y = _two_clusters_and_bridge()
    one_class = np.where(np.arange(len(y)) < 3, 0, -1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        suggest("margin", X, one_class)
    with pytest.raises(ValueError, match="layout"):
        suggest("tsne", X, one_class)
    with pytest.raises(ValueError, match="unknown strategy"):
        suggest("uncertainty", X, one_class)
    with pytest.raises(ValueError, match="must match"):
        suggest("random", X, one_class[:-1])
    assert len(suggest("random", X, one_class, n=7)) == 7


def test_tsne_suggestions_are_distinct_groups_before_repeats():
    """The top rows of one big cluster are one group: each suggestion is a new group first."""
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    sizes = [120, 40, 40, 40]
    Y = np.vstack([rng.normal(size=(m, 2)) * 0.6 + c for c, m in zip(centres, sizes)])
    X = np.c_[Y, rng.normal(size=(len(Y), 6)) * 0.1].astype(np.float32)
    labels = [None] * len(X)
    items = suggest("tsne", X, labels, layout=Y, n=4)
    assert len(items) == 4
    for i, a in enumerate(items):
        for b in items[:i]:
            assert a["row"] not in b["group"], "a later suggestion sits inside an earlier group"
    # with more asked than distinct groups exist, the list is still filled, distinct groups first
    items = suggest("tsne", X, labels, layout=Y, n=12)
    assert len(items) == 12
    repeats = [any(a["row"] in b["group"] for b in items[:i]) for i, a in enumerate(items)]
    assert repeats == sorted(repeats), "a repeat came before a distinct group"


def test_ensemble_suggestions_leave_the_callers_model_as_it_was():
    """The tab's background model is passed in: asking for ensemble suggestions must not train it
    further, or the predictions the tab shows stop matching the model that later suggestions use."""
    X, y = _two_clusters_and_bridge()
    labels = [None if v < 0 else int(v) for v in y]
    state = train_classifier(X, labels)
    before = state.predict_proba(X)
    items = suggest("ensemble", X, labels, classifier_state=state, n=3)
    assert len(items) == 3
    assert len(state.members) == 1
    np.testing.assert_array_equal(state.predict_proba(X), before)
