"""Algorithm 1 (annotation emulation) and its Barnes-Hut focus kernel."""
import numpy as np

from tensorboard_al_plugin.active.emulation import annotation_emulation, emulation_step
from tensorboard_al_plugin.active.neighbourhood import BarnesHutTree, best_knn_group, focus_counts


class StaticRun:
    """A layout that never moves; records what the emulation tells it."""

    def __init__(self, positions):
        self.positions = np.asarray(positions, float)
        self.iteration = 0
        self.label_updates = []

    def step(self, n_iter):
        self.iteration += n_iter

    def set_labels(self, labels):
        self.label_updates.append(np.array(labels))


# Rows on a line: class 0 at x = 0, 1, 2, 4.5 and class 1 at x = 3, 100, 101.
LINE_X = [0.0, 1.0, 2.0, 3.0, 4.5, 100.0, 101.0]
LINE_CLASSES = [0, 0, 0, 1, 0, 1, 1]


def test_emulation_counts_actions_exactly_as_algorithm_1_on_a_hand_built_layout():
    layout = np.c_[LINE_X, np.zeros(7)]
    run = StaticRun(layout)
    labels = np.full(7, -1)
    # theta_k -> 0 opens every cell: the focus kernel is the whole layout, so counts are exact class sizes.
    steps = list(annotation_emulation(run, LINE_CLASSES, max_actions=100, theta_k=1e-9, labels=labels,
                                      steps_between=5))
    got = [(s.group.focus, sorted(s.group.rows.tolist()), s.group.actions, s.total_actions) for s in steps]
    assert got == [
        # focus x=0 (3 unlabeled class-0 kin, lowest row); kNN 1, 2 are kin, x=3 would cost a deselect:
        # k=2 -> 3 labels / (select + slider) = 1.5 beats k=4 -> 4 / 3.
        (0, [0, 1, 2], 2, 2),
        # x=3 (class 1, 2 unlabeled kin far away): every neighbour within reach is class 0 -> alone, 1 action.
        (3, [3], 1, 3),
        # x=100 with x=101: k=1 -> 2 labels / 2 actions ties k=0 -> larger k wins.
        (5, [5, 6], 2, 5),
        # x=4.5 alone (its neighbour x=3 is class 1).
        (4, [4], 1, 6),
    ]
    assert (labels == LINE_CLASSES).all()
    assert len(run.label_updates) == 4 and run.iteration == 20
    assert [s.group.deselected.tolist() for s in steps] == [[], [], [], []]


def test_knn_walk_counts_one_action_per_deselected_odd_one():
    layout = np.c_[np.arange(6.0), np.zeros(6)]
    classes = np.array([0, 0, 1, 0, 0, 0])
    g = best_knn_group(layout, 0, classes, np.ones(6, bool))
    # k=5: 5 labels for select + slider + 1 deselect = 3 actions.
    assert g.k == 5 and g.actions == 3 and g.gained == 5
    assert g.deselected.tolist() == [2] and sorted(g.rows.tolist()) == [0, 1, 3, 4, 5]


def test_knn_walk_gains_nothing_from_rows_already_labeled():
    layout = np.c_[np.arange(4.0), np.zeros(4)]
    unlabeled = np.array([True, False, False, True])
    g = best_knn_group(layout, 0, np.zeros(4, int), unlabeled)
    assert g.gained == 2 and g.actions == 2 and g.k == 3


def test_emulation_stops_at_max_actions():
    rng = np.random.default_rng(0)
    layout = rng.normal(size=(60, 2))
    classes = np.arange(60) % 6  # maximally mixed: mostly single-row steps
    steps = list(annotation_emulation(StaticRun(layout), classes, max_actions=10))
    assert steps[-1].total_actions >= 10 and steps[-2].total_actions < 10


def test_barnes_hut_neighbourhood_resolves_near_points_and_summarises_far_clusters():
    rng = np.random.default_rng(0)
    near = np.array([[0.0, 0.0], [0.5, 0.0]])
    far_cluster = rng.normal(size=(20, 2)) * 0.2 + [100.0, 0.0]
    layout = np.vstack([near, far_cluster])
    tree = BarnesHutTree(layout)
    nb = tree.neighbourhood(0, theta_k=0.5)
    assert 1 in nb
    assert not set(nb.tolist()) & set(range(2, 22))
    # theta_k -> 0 opens every cell: everything but the point itself.
    assert tree.neighbourhood(0, theta_k=1e-9).tolist() == list(range(1, 22))


def test_barnes_hut_neighbourhood_grows_as_theta_k_shrinks_in_2d_and_3d():
    rng = np.random.default_rng(1)
    for d in (2, 3):
        tree = BarnesHutTree(rng.normal(size=(300, d)))
        for i in (0, 17, 299):
            sizes = [set(tree.neighbourhood(i, t).tolist()) for t in (2.0, 1.0, 0.5, 0.25)]
            assert all(a <= b for a, b in zip(sizes, sizes[1:]))
            assert i not in sizes[-1]


def test_focus_counts_match_the_neighbourhood_definition():
    rng = np.random.default_rng(2)
    layout = rng.normal(size=(200, 2))
    classes = rng.integers(0, 3, 200)
    unlabeled = rng.random(200) < 0.7
    counts = focus_counts(layout, classes, unlabeled, 0.5)
    tree = BarnesHutTree(layout)
    for i in range(200):
        if not unlabeled[i]:
            assert counts[i] == -1
            continue
        nb = tree.neighbourhood(i, 0.5)
        assert counts[i] == np.sum(unlabeled[nb] & (classes[nb] == classes[i]))


def test_duplicate_positions_do_not_break_the_tree():
    layout = np.zeros((10, 3))
    layout[5:] = 1.0
    tree = BarnesHutTree(layout)
    assert len(tree.neighbourhood(0, 0.5)) >= 4
    group, count = emulation_step(layout, np.r_[np.zeros(5), np.ones(5)].astype(int), np.full(10, -1))
    assert group.gained == 5 and group.actions == 2
