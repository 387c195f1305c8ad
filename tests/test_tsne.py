"""Semi-supervised t-SNE engine: exactness, schedules, live changes, quality."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

from tensorboard_al_plugin.tsne import SemiSupervisedTSNE, knn_accuracy, perplexity_affinities
from tensorboard_al_plugin.tsne import repulsion


def _blobs(n=60, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _supervised_run(n_components=2, method="exact", n=60, seed=0):
    """A run whose labels, f, r and u_i are all non-trivial."""
    X, y = _blobs(n, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.5, y, -1)
    run = SemiSupervisedTSNE(n_components=n_components, perplexity=8, label_importance=0.7,
                             repulsion_emphasis=0.9, point_learning_rate_epochs=10,
                             method=method, random_state=seed).prepare(X, labels=labels)
    run.step(6)
    later = labels.copy()
    later[(labels < 0) & (rng.random(n) < 0.5)] = 1
    later[:3] = 0  # relabel a few: their ramp restarts
    run.set_labels(later)
    run.step(4)  # ramps now at 1.0 and 0.4
    u = run.point_learning_rates()
    assert 0 < u[u > 0].min() < 1 and u.max() == 1.0
    # spread the points out so that t_ij is far from both 0 and 1
    Y = rng.normal(scale=2.0, size=(n, n_components))
    return run, Y


def _assert_gradient_is_derivative(run, Y):
    """run.gradient(Y) against central differences of run.objective."""
    grad = run.gradient(Y)
    eps = 1e-6
    num = np.empty_like(Y)
    for idx in np.ndindex(*Y.shape):
        Yp, Ym = Y.copy(), Y.copy()
        Yp[idx] += eps
        Ym[idx] -= eps
        num[idx] = (run.objective(Yp) - run.objective(Ym)) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7 * np.abs(num).max())


@pytest.mark.parametrize("n_components", [2, 3])
def test_exact_gradient_equals_finite_differences_of_objective(n_components):
    run, Y = _supervised_run(n_components)
    _assert_gradient_is_derivative(run, Y)


def test_supervision_changes_gradient_and_objective():
    run, Y = _supervised_run(2)
    g1, o1 = run.gradient(Y), run.objective(Y)
    run.set_params(label_importance=0.0, repulsion_emphasis=0.0)
    assert not np.allclose(g1, run.gradient(Y))
    assert o1 != run.objective(Y)


@pytest.mark.parametrize("n_components,method,tol", [(2, "fft", 0.03), (2, "bh", 0.03),
                                                    (3, "bh", 0.03)])
def test_fast_gradient_within_tolerance_of_exact(n_components, method, tol):
    # Stated tolerance: the L2 error of the gradient is below 3% of the L2 norm
    # of the repulsive gradient (the only approximated part; near convergence
    # the total gradient is a small difference of two large forces), and the
    # objective is within 1%, at a realistic converged layout.
    X, y = _blobs(1000, d=10, k=6, seed=1)
    labels = np.where(np.arange(1000) % 3 == 0, y, -1)
    kw = dict(n_components=n_components, perplexity=20, label_importance=0.3,
              repulsion_emphasis=0.5, point_learning_rate_epochs=0, random_state=1)
    exact = SemiSupervisedTSNE(method="exact", **kw).prepare(X, labels=labels)
    exact.step(260)
    Y = exact.positions.astype(np.float64)
    fast = SemiSupervisedTSNE(method=method, **kw).prepare(X, labels=labels)
    ge, gf = exact.gradient(Y), fast.gradient(Y)
    rep, Z = repulsion.exact_repulsion(Y, np.full(1000, -1, np.int32), np.zeros(1000), 0.0)
    assert np.linalg.norm(gf - ge) / np.linalg.norm(4 * rep / Z) < tol
    assert abs(fast.objective(Y) - exact.objective(Y)) < 1e-2 * exact.objective(Y)


def test_supervision_correction_tree_matches_exact_pairs():
    rng = np.random.default_rng(3)
    Y = rng.normal(scale=5.0, size=(800, 3))
    codes = rng.integers(-1, 4, size=800).astype(np.int32)
    u = rng.random(800)
    rep_e, z_e, exact = repulsion.supervision_correction(Y, codes, u, 0.8)
    assert exact
    rep_t, z_t, exact = repulsion.supervision_correction(Y, codes, u, 0.8, theta=0.3,
                                                         exact_max_pairs=0)
    assert not exact
    assert np.linalg.norm(rep_t - rep_e) / np.linalg.norm(rep_e) < 0.02
    assert abs(z_t - z_e) / z_e < 0.01
    # unlabeled points get no correction
    assert np.all(rep_t[codes < 0] == 0)
    # at the default, coarser opening angle the error stays far below the
    # size of the whole repulsive force it is added to
    rep_d, z_d, _ = repulsion.supervision_correction(Y, codes, u, 0.8, exact_max_pairs=0)
    rep_all, _ = repulsion.exact_repulsion(Y, np.full(800, -1, np.int32), np.zeros(800), 0.0)
    assert np.linalg.norm(rep_d - rep_e) / np.linalg.norm(rep_all) < 0.01
    assert abs(z_d - z_e) / z_e < 0.03


@pytest.mark.parametrize("on_grid", [True, False])
def test_fft_supervised_repulsion_matches_exact_pairs(on_grid):
    # b_ij = 1 + r u_i u_j on labeled pairs of different labels, on the FFT
    # path: per-class charges on the grid or the tree correction added. Stated tolerance: the correction's
    # L2 error below 5% of the correction's norm, Z within 0.5%.
    rng = np.random.default_rng(4)
    n = 3000
    centres = rng.normal(scale=12.0, size=(4, 2))
    y = rng.integers(0, 4, size=n)
    Y = centres[y] + rng.normal(scale=3.0, size=(n, 2))
    codes = np.where(rng.random(n) < 0.5, y, -1).astype(np.int32)
    codes[rng.random(n) < 0.05] = 3             # some labels far from their class
    u = np.where(codes >= 0, rng.uniform(0.2, 1.0, size=n), 0.0)
    u[:50] = 0.0                                # labeled, ramp not started: no correction
    r = 0.8
    plain_e, _ = repulsion.exact_repulsion(Y, codes, u, 0.0)
    rep_e, z_e = repulsion.exact_repulsion(Y, codes, u, r)
    plain_f, _ = repulsion.fft_repulsion_2d(Y)
    rep_f, z_f = repulsion.fft_repulsion_2d(Y, codes=codes, u=u, repulsion_emphasis=r,
                                            on_grid=on_grid)
    corr_e = rep_e - plain_e
    assert np.linalg.norm((rep_f - plain_f) - corr_e) / np.linalg.norm(corr_e) < 0.05
    assert abs(z_f - z_e) / z_e < 5e-3
    # points without a correction get the unsupervised forces, up to the rounding of the
    # grid's parallel sums (their order varies between runs: seen 1e-8 relative on Python 3.12)
    off = (codes < 0) | (u == 0)
    np.testing.assert_allclose(rep_f[off], plain_f[off], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_fft_correction_class_grids_equal_the_whole_grid(scale, monkeypatch):
    # each class's potential on a small grid of its own over its boxes, on the
    # correction grid's lattice, is what the whole grid gives for that class:
    # same node charges, same kernel between nodes (only float32 rounding
    # apart). scale 0.3: a layout under 60 units, whose plain repulsion has
    # finer boxes than the correction's own grid. Strays made too dear to
    # leave any point off its class's grid (test_fft_correction_sums_strays_exactly)
    monkeypatch.setattr(repulsion, "STRAY_PAIRS_PER_NODE2", 1e-12)
    rng = np.random.default_rng(6)
    n = 6000
    centres = np.array([[-60.0, -60.0], [60.0, -50.0], [0.0, 70.0], [55.0, 55.0], [-50.0, 40.0]])
    y = rng.integers(0, 5, size=n)
    Y = (centres[y] + rng.normal(scale=4.0, size=(n, 2))) * scale
    codes = np.where(rng.random(n) < 0.6, y, -1)
    codes[:20] = 4                              # a few labels far from their class
    active = np.flatnonzero(codes >= 0)
    cls = codes[active].astype(np.int64)
    uL = rng.uniform(0.3, 1.0, size=active.size)
    p = 4
    lo, h, n_boxes, n_nodes = repulsion._geometry(Y, p, 50, 1.2)
    first, wts = repulsion._interp_weights(Y, lo, h, n_boxes, p)
    order, cost, grid = repulsion._correction_grids(Y, first, wts, active, cls, 5, h, n_boxes,
                                                    p, 1.2)
    first_L, wts_L, h_L, n_boxes_L, (origin, side), strays = grid
    assert strays is None
    assert h_L == 1.2 and (h == 1.2) == (scale == 1.0)
    cls_o = cls[order]
    boxes = repulsion._class_boxes(first_L, np.arange(active.size), cls_o, 5, p)
    # every class's boxes lie in its grid; compact classes get a grid of a
    # quarter side or less, the scattered class 4 the whole one
    assert np.all(origin >= 0) and np.all(origin + side[:, None] <= n_boxes_L)
    assert np.all(boxes[:, :, 0] >= origin) and np.all(boxes[:, :, 1] < origin + side[:, None])
    assert np.all(side[:4] <= -(-n_boxes_L // 4)) and side[4] == n_boxes_L
    whole = (np.zeros((5, 2), dtype=np.int64), np.full(5, n_boxes_L))
    rep_s, z_s = repulsion._grid_correction(*grid, cls_o, uL[order], 0.7, p, 2)
    rep_w, z_w = repulsion._grid_correction(*grid[:4], whole, None, cls_o, uL[order], 0.7, p, 2)
    # (measured 3e-6 and 2e-7; one node off, 1e-4)
    assert np.linalg.norm(rep_s - rep_w) / np.linalg.norm(rep_w) < 3e-5
    assert abs(z_s - z_w) / z_w < 3e-5
    # and the correction they make is the exact one, within the grid's tolerance
    u = np.zeros(n)
    u[active] = uL
    plain_e, zp_e = repulsion.exact_repulsion(Y, codes.astype(np.int32), u, 0.0)
    rep_e, z_e = repulsion.exact_repulsion(Y, codes.astype(np.int32), u, 0.7)
    _, _, rep_c, z_c = repulsion.fft_repulsion_2d(Y, codes=codes.astype(np.int32), u=u,
                                                  repulsion_emphasis=0.7, on_grid=True, parts=True)
    corr_e = rep_e - plain_e
    assert np.linalg.norm(rep_c - corr_e) / np.linalg.norm(corr_e) < 0.05
    assert abs(z_c - (z_e - zp_e)) / (z_e - zp_e) < 0.01


def test_class_windows_leave_out_the_few_points_far_from_their_class():
    # class 0: 1,000 points over 13 x 13 boxes and 3 far away; class 1: 150
    # points elsewhere. A stray costs 2 x 1,003 pairs: 125 node^2 at 16 pairs
    # each, against 160,000 node^2 of the whole grid (100 boxes of 4 nodes)
    rng = np.random.default_rng(0)
    bx = np.concatenate([rng.integers(10, 23, size=(1000, 2)), [[90, 90], [95, 3], [60, 61]],
                         rng.integers(70, 73, size=(150, 2))])
    cls = np.repeat([0, 0, 1], [1000, 3, 150])
    sides = repulsion._window_sides(100)
    assert list(sides) == [100, 50, 25, 13]
    args = (4, 16.0, 2, 1e-3, 5e-3)     # p, pairs a node^2, margin, shares near and out
    origin, side, stray, cost = repulsion._class_windows(bx, cls, 2, sides, *args)
    assert list(side) == [13, 13]
    assert np.flatnonzero(stray).tolist() == [1000, 1001, 1002]
    assert list(origin[0]) == [10, 10]
    assert cost == pytest.approx(2 * 52 ** 2 + 2 * 3 * 1003 / 16.0)
    # strays too dear: class 0 keeps every point on the whole grid
    origin, side, stray, _ = repulsion._class_windows(bx, cls, 2, sides, 4, 1e-9, 2, 1e-3, 5e-3)
    assert list(side) == [100, 13] and not stray.any()
    # more than 0.5 % of the class out (6 of 1,006), or more than 0.1 % of it (2 of 1,005) out
    # just past the window's edge, where the grid's error on its own class's neighbours would
    # stay: the window grows until neither is
    for extra in ([[80, 20], [20, 80], [50, 90]], [[24, 15], [23, 12]]):
        more = np.concatenate([bx[:1003], extra, bx[1003:]])
        c2 = np.repeat([0, 1], [1003 + len(extra), 150])
        _, side, stray, _ = repulsion._class_windows(more, c2, 2, sides, *args)
        assert side[0] > 13 and stray.sum() <= 0.005 * (1003 + len(extra))


def test_fft_correction_sums_strays_exactly(monkeypatch):
    # labels of class 4 put on points of the other clusters would spread
    # class 4's grid over the whole layout: they are left off it (strays)
    # and summed exactly, a stray over its whole class, every other point of
    # the class over its strays. The correction is the exact one within the
    # grid's tolerance (test_fft_supervised_repulsion_matches_exact_pairs),
    # at the strays too
    rng = np.random.default_rng(6)
    n = 20000
    centres = np.array([[-60.0, -60.0], [60.0, -50.0], [0.0, 70.0], [55.0, 55.0], [-50.0, 40.0]])
    y = rng.integers(0, 5, size=n)
    Y = centres[y] + rng.normal(scale=4.0, size=(n, 2))
    codes = np.where(rng.random(n) < 0.6, y, -1).astype(np.int32)
    codes[:12] = 4
    u = np.where(codes >= 0, rng.uniform(0.3, 1.0, size=n), 0.0)
    active = np.flatnonzero(codes >= 0)
    p = 4
    lo, h, n_boxes, _ = repulsion._geometry(Y, p, 50, 1.2)
    first, wts = repulsion._interp_weights(Y, lo, h, n_boxes, p)
    order, _, grid = repulsion._correction_grids(Y, first, wts, active, codes[active].astype(np.int64),
                                                 5, h, n_boxes, p, 1.2)
    side, strays = grid[4][1], grid[5]
    assert np.all(side <= -(-grid[3] // 4))
    stray = np.zeros(n, dtype=bool)
    stray[active[order]] = strays[0]
    far = np.arange(12)[y[:12] != 4]
    assert far.size >= 6 and stray[far].all()
    assert stray.sum() == far.size
    np.testing.assert_array_equal(strays[1], Y[active[order]])
    plain_e, zp_e = repulsion.exact_repulsion(Y, codes, u, 0.0)
    rep_e, z_e = repulsion.exact_repulsion(Y, codes, u, 0.7)
    _, _, rep_c, z_c = repulsion.fft_repulsion_2d(Y, codes=codes, u=u, repulsion_emphasis=0.7,
                                                  on_grid=True, parts=True)
    corr_e = rep_e - plain_e
    assert np.linalg.norm(rep_c - corr_e) / np.linalg.norm(corr_e) < 0.05
    assert np.linalg.norm((rep_c - corr_e)[stray]) / np.linalg.norm(corr_e[stray]) < 0.05
    assert abs(z_c - (z_e - zp_e)) / (z_e - zp_e) < 0.01
    # and it is what class 4 on a grid over all its points gives, but for the grid's error on
    # pairs 100 units apart (measured 3e-5 at the strays, 1.5e-4 for the rest of class 4,
    # 6e-6 on Z; without the strays' own class subtracted 5e-3 and 1.5e-3, without their
    # share of Z 1e-3)
    monkeypatch.setattr(repulsion, "STRAY_PAIRS_PER_NODE2", 1e-12)
    _, _, rep_w, z_w = repulsion.fft_repulsion_2d(Y, codes=codes, u=u, repulsion_emphasis=0.7,
                                                  on_grid=True, parts=True)
    core = (codes == 4) & ~stray
    assert np.linalg.norm((rep_c - rep_w)[stray]) / np.linalg.norm(rep_w[stray]) < 5e-4
    assert np.linalg.norm((rep_c - rep_w)[core]) / np.linalg.norm(rep_w[core]) < 5e-4
    assert abs(z_c - z_w) / z_w < 5e-5


def test_fft_supervised_repulsion_with_one_class_is_unsupervised():
    # one labeled class: no pair of different labels, b = 1 everywhere
    rng = np.random.default_rng(5)
    Y = rng.normal(scale=8.0, size=(2000, 2))
    codes = np.where(rng.random(2000) < 0.5, 2, -1).astype(np.int32)
    u = (codes >= 0) * 1.0
    rep0, z0 = repulsion.fft_repulsion_2d(Y)
    for on_grid in (True, False, None):
        rep, z = repulsion.fft_repulsion_2d(Y, codes=codes, u=u, repulsion_emphasis=0.5,
                                            on_grid=on_grid)
        np.testing.assert_array_equal(rep, rep0)
        assert z == z0


def test_objective_follows_live_changes_of_supervision():
    # the layout-free part of the objective is computed lazily: a change of
    # labels or parameters between two objectives must show in the second
    run, Y = _supervised_run()
    before = run.objective(Y)
    run.set_params(repulsion_emphasis=0.2, label_importance=0.1)
    after = run.objective(Y)
    fresh, _ = _supervised_run()
    fresh.set_params(repulsion_emphasis=0.2, label_importance=0.1)
    assert after != before
    assert after == pytest.approx(fresh.objective(Y), rel=1e-12)
    labels = run.labels
    labels[labels >= 0] = -1
    run.set_labels(labels)
    plain = SemiSupervisedTSNE(perplexity=8, method="exact").prepare(affinities=run.P)
    assert run.objective(Y) == pytest.approx(plain.objective(Y), rel=1e-12)


def test_no_supervision_is_plain_tsne():
    X, y = _blobs(80, seed=2)
    kw = dict(perplexity=10, method="exact", random_state=0)
    plain = SemiSupervisedTSNE(**kw).prepare(X)
    labeled = SemiSupervisedTSNE(label_importance=0.0, repulsion_emphasis=0.0, **kw).prepare(
        X, labels=y)
    # plain t-SNE gradient, written out densely: 4 sum_j (p_ij - q_ij) t_ij (y_i - y_j)
    Y = np.random.default_rng(0).normal(size=(80, 2))
    P = plain.P.toarray()
    diff = Y[:, None, :] - Y[None, :, :]
    t = 1.0 / (1.0 + (diff ** 2).sum(-1))
    np.fill_diagonal(t, 0.0)
    Q = t / t.sum()
    ref = 4.0 * (((P - Q) * t)[:, :, None] * diff).sum(1)
    kl = (P[P > 0] * np.log(P[P > 0] / Q[P > 0])).sum()
    np.testing.assert_allclose(labeled.gradient(Y), ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(labeled.objective(Y), kl, rtol=1e-10)
    plain.step(30)
    labeled.step(30)
    np.testing.assert_array_equal(plain.positions, labeled.positions)


def test_exaggeration_and_momentum_schedules():
    X, _ = _blobs(30)
    run = SemiSupervisedTSNE(perplexity=5, random_state=0).prepare(X)
    assert [run.exaggeration_at(i) for i in (0, 100, 175, 250, 900)] == [4.0, 4.0, 2.5, 1.0, 1.0]
    assert np.allclose([run.momentum_at(i) for i in (0, 100, 175, 250, 900)],
                       [0.5, 0.5, 0.65, 0.8, 0.8])
    assert run.learning_rate_at(0) == 50.0  # floor: 30 / 16 is tiny
    run.set_params(learning_rate=12.5)
    assert run.learning_rate_at(0) == 12.5


def test_point_learning_rate_ramps_linearly_from_labeling():
    X, _ = _blobs(30)
    run = SemiSupervisedTSNE(perplexity=5, point_learning_rate_epochs=20,
                             random_state=0).prepare(X)
    run.step(10)
    labels = np.full(30, -1)
    labels[:5] = 1
    run.set_labels(labels)
    assert np.all(run.point_learning_rates() == 0)
    assert np.allclose(run.point_learning_rates(15)[:5], 0.25)
    assert np.allclose(run.point_learning_rates(30)[:5], 1.0)
    assert np.allclose(run.point_learning_rates(99)[:5], 1.0)
    assert np.all(run.point_learning_rates(99)[5:] == 0)
    run.set_params(point_learning_rate_epochs=0)
    assert np.all(run.point_learning_rates()[:5] == 1.0)
    # the per-iteration path (labeled rows only) gives the same u as the public function
    labels[10:12] = 0
    run.set_labels(labels)
    for params in ({"point_learning_rate_epochs": 20}, {"supervision_start": 40},
                   {"point_learning_rate_epochs": 0}):
        run.set_params(**params)
        for it in (0, 10, 15, 39, 40, 45, 70):
            np.testing.assert_array_equal(run._learning_rates(it), run.point_learning_rates(it))


def test_labels_have_no_effect_before_supervision_start():
    X, y = _blobs(60, seed=4)
    kw = dict(perplexity=8, label_importance=1.0, repulsion_emphasis=1.0, supervision_start=20,
              point_learning_rate_epochs=0, method="exact", random_state=0)
    plain = SemiSupervisedTSNE(**kw).prepare(X)
    sup = SemiSupervisedTSNE(**kw).prepare(X, labels=y)
    plain.step(20)
    sup.step(20)
    np.testing.assert_array_equal(plain.positions, sup.positions)
    assert np.all(sup.point_learning_rates() == 1.0)  # u switches on at s (K = 0)
    plain.step(5)
    sup.step(5)
    assert not np.allclose(plain.positions, sup.positions)


def test_set_labels_mid_run_pulls_classes_apart():
    X, y = _blobs(90, k=3, seed=5)
    run = SemiSupervisedTSNE(perplexity=10, label_importance=1.0, repulsion_emphasis=1.0,
                             point_learning_rate_epochs=10, method="exact",
                             random_state=0).prepare(X)
    run.step(50)
    before = run.objective()
    run.set_labels(y)
    assert run.iteration == 50
    assert run.objective() == before  # u_i still 0 at the labeling iteration
    run.step(10)
    assert np.allclose(run.point_learning_rates(), 1.0)
    run.step(100)
    assert np.all(np.isfinite(run.positions))
    # at most one of the 90 points among another class's: 90 points in t-SNE are chaotic (float
    # rounding of other numba/numpy versions moves the end), one point in a neighbour's 4-NN is noise
    assert knn_accuracy(run.positions, y, k=4) >= 89 / 90
    with pytest.raises(ValueError, match="labels"):
        run.set_labels(y[:-1])


def test_precomputed_affinities_give_the_same_run():
    X, _ = _blobs(50, seed=6)
    P, _ = perplexity_affinities(X, perplexity=8)
    init = np.random.default_rng(0).normal(scale=1e-4, size=(50, 2))
    a = SemiSupervisedTSNE(perplexity=8, initialization=init).prepare(X)
    b = SemiSupervisedTSNE(perplexity=8, initialization=init).prepare(affinities=P)
    a.step(20)
    b.step(20)
    np.testing.assert_allclose(a.positions, b.positions, rtol=1e-6)
    with pytest.raises(ValueError, match="affinities"):
        SemiSupervisedTSNE(perplexity=8).prepare(affinities=sp.csr_matrix(P * 2))


def test_prepare_reports_progress():
    X, _ = _blobs(40)
    seen = []
    SemiSupervisedTSNE(perplexity=5).prepare(X, progress=seen.append)
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert seen == sorted(seen)


@pytest.mark.parametrize("kwargs,fit_args,match", [
    (dict(perplexity=60), {}, "perplexity"),
    (dict(label_importance=-0.1), {}, "label_importance"),
    (dict(repulsion_emphasis=-1), {}, "repulsion_emphasis"),
    (dict(n_components=4), {}, "n_components"),
    (dict(method="gpu"), {}, "method"),
    (dict(learning_rate=0), {}, "learning_rate"),
    (dict(), dict(labels=np.zeros(10, dtype=int)), "labels"),
    (dict(), dict(nan=True), "X"),
])
def test_bad_parameters_raise_clear_value_errors(kwargs, fit_args, match):
    X, _ = _blobs(60)
    if fit_args.pop("nan", False):
        X[3, 2] = np.nan
    with pytest.raises(ValueError, match=match):
        SemiSupervisedTSNE(**kwargs).prepare(X, **fit_args)


def test_live_params_are_checked():
    X, _ = _blobs(30)
    run = SemiSupervisedTSNE(perplexity=5).prepare(X)
    with pytest.raises(ValueError, match="label_importance"):
        run.set_params(label_importance=-1)
    with pytest.raises(ValueError, match="unknown parameter"):
        run.set_params(perplexity=3)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def test_digits_3d_four_nn_accuracy_at_least_097(digits):
    X, y = digits
    Y = SemiSupervisedTSNE(n_components=3, random_state=0).fit(X, n_iter=500)
    assert Y.shape == (1797, 3) and Y.dtype == np.float32
    assert knn_accuracy(Y, y, k=4) >= 0.97


def test_supervision_with_20_percent_true_labels_does_not_hurt_unlabeled(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    known = rng.random(y.shape[0]) < 0.2
    labels = np.where(known, y, -1)
    kw = dict(random_state=0, point_learning_rate_epochs=20)
    plain = SemiSupervisedTSNE(**kw).fit(X, labels, n_iter=500)
    sup = SemiSupervisedTSNE(label_importance=0.1, repulsion_emphasis=0.1, **kw).fit(
        X, labels, n_iter=500)
    acc_plain = knn_accuracy(plain, y, k=4, mask=~known)
    acc_sup = knn_accuracy(sup, y, k=4, mask=~known)
    assert acc_sup >= acc_plain - 0.002, (acc_sup, acc_plain)


def test_affinities_match_perplexity_and_are_symmetric_and_normalised():
    from tensorboard_al_plugin.tsne.affinity import _conditional_probabilities
    from tensorboard_al_plugin.tsne.nearest_neighbors import nearest_neighbors
    X, _ = _blobs(200, seed=7)
    X[5] = X[6]  # a duplicate row must not break the neighbour search
    ind, dist, _ = nearest_neighbors(X, 30)
    assert ind.shape == (200, 30) and not np.any(ind == np.arange(200)[:, None])
    cond = _conditional_probabilities(dist ** 2, 10.0)
    entropy = -(cond * np.log(np.maximum(cond, 1e-300))).sum(1)
    np.testing.assert_allclose(np.exp(entropy), 10.0, rtol=1e-3)
    P, info = perplexity_affinities(X, perplexity=10)
    assert info["n_neighbors"] == 30
    assert abs(P.sum() - 1) < 1e-12 and abs(P - P.T).max() < 1e-15 and P.diagonal().sum() == 0


@pytest.mark.parametrize("kind", ["gaussian", "ties", "duplicates"])
def test_exact_knn_equals_scikit_learn(kind):
    from sklearn.neighbors import NearestNeighbors

    from tensorboard_al_plugin.tsne.nearest_neighbors import nearest_neighbors
    rng = np.random.default_rng(5)
    if kind == "gaussian":
        X = rng.normal(size=(3000, 20)).astype(np.float32) + 50.0  # offset: float32 cancellation
    elif kind == "ties":
        X = rng.integers(0, 4, size=(3000, 3)).astype(np.float32)  # many equal distances
    else:
        X = np.repeat(rng.normal(size=(150, 8)), 20, axis=0).astype(np.float32)
    k = 30
    ind, dist, method = nearest_neighbors(X, k)
    assert method.startswith("exact")
    ref_d, ref_i = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(
        X.astype(np.float64)).kneighbors(X.astype(np.float64))
    # scikit-learn returns the point itself among its zero-distance neighbours:
    # drop one zero from each row (the distances, not which index, are unique)
    ref_d = np.sort(ref_d, axis=1)[:, 1:]
    np.testing.assert_allclose(dist, ref_d, rtol=1e-6, atol=1e-6)
    n = X.shape[0]
    assert np.all(ind != np.arange(n)[:, None])
    assert np.all(np.diff(dist, axis=1) >= 0)
    true_d = np.sqrt(((X[np.arange(n)[:, None]].astype(np.float64)
                       - X[ind].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(dist, true_d, rtol=1e-9, atol=1e-9)
    # where the k-th distance is not tied with the next one, the neighbour
    # sets are the same
    full_d, full_i = NearestNeighbors(n_neighbors=k + 2, algorithm="brute").fit(
        X.astype(np.float64)).kneighbors(X.astype(np.float64))
    clear = full_d[:, k] < full_d[:, k + 1] - 1e-9
    for row in np.flatnonzero(clear)[:500]:
        want = set(full_i[row, :k + 1]) - {row}
        assert set(ind[row]) == want


@pytest.mark.parametrize("n_components", [2, 3])
def test_gradient_equals_finite_differences_once_the_ramp_has_ended(n_components):
    # after the ramp the weights are written out once (not applied on the fly): the pair stays exact
    run, Y = _supervised_run(n_components)
    run.step(20)
    assert np.all(run.point_learning_rates()[run.labels >= 0] == 1.0)
    assert run._pairs is None
    _assert_gradient_is_derivative(run, Y)


def _dense_supervised(run, Y):
    """(gradient, objective) of KL(P' || Q') at Y written out densely from the
    definition (supervision's docstring), with the run's labels, u, f and r."""
    from tensorboard_al_plugin.tsne import supervision
    P = run.P.toarray()
    n = P.shape[0]
    labels, u = run.labels, run.point_learning_rates()
    f, r = run.params["label_importance"], run.params["repulsion_emphasis"]
    on = (labels[:, None] >= 0) & (labels[None, :] >= 0)
    same = on & (labels[:, None] == labels[None, :])
    other = on & ~same
    uu = np.outer(u, u)
    n_l = (labels >= 0).sum()
    n_s = np.array([(labels == c).sum() if c >= 0 else 1 for c in labels])
    a = np.ones((n, n))
    cap = supervision.CLASS_SIZE_FACTOR_CAP
    a[same] = (1.0 + uu * f * np.minimum(n / n_s, cap)[:, None])[same]
    inv_o = 1.0 / np.maximum(n_l - n_s, 1)
    a[other] = np.maximum(1.0 - uu * f * n * 0.5 * (inv_o[:, None] + inv_o[None, :]),
                          supervision.ATTRACTION_FLOOR)[other]
    b = np.where(other, 1.0 + uu * r, 1.0)
    Pp = a * P / (a * P).sum()
    diff = Y[:, None, :] - Y[None, :, :]
    t = 1.0 / (1.0 + (diff ** 2).sum(-1))
    np.fill_diagonal(t, 0.0)
    Qp = b * t / (b * t).sum()
    grad = 4.0 * (((Pp - Qp) * t)[:, :, None] * diff).sum(1)
    nz = Pp > 0
    return grad, float((Pp[nz] * np.log(Pp[nz] / Qp[nz])).sum())


@pytest.mark.parametrize("n_components", [2, 3])
def test_labels_added_after_a_ramp_has_ended_give_the_supervised_gradient(n_components):
    # A person labels group after group: the weights are written out with the settled points'
    # u at each change, and only the pairs with a point still ramping are added on the fly
    # (every labeled pair only while all of them ramp). Gradient and objective against the
    # dense definition with every point's current u: while some ramp, and once all have ended.
    X, y = _blobs(60, seed=3)
    rng = np.random.default_rng(3)
    first = np.where(rng.random(60) < 0.4, y, -1)
    run = SemiSupervisedTSNE(n_components=n_components, perplexity=8, label_importance=0.7,
                             repulsion_emphasis=0.9, point_learning_rate_epochs=10,
                             method="exact", random_state=3).prepare(X, labels=first)
    run.step(4)
    assert run._pairs is not None and run._pairs[0].size == (first >= 0).sum()  # all ramp
    run.step(8)
    assert run._pairs is None                   # the first labels' ramp has ended
    later = first.copy()
    new = np.flatnonzero(first < 0)[:8]
    later[new] = y[new]
    moved = np.flatnonzero(first >= 0)[:2]
    later[moved] = (first[moved] + 1) % 3       # relabeled: their ramp restarts
    run.set_labels(later)
    run.step(4)
    u = run.point_learning_rates()
    ramping = (later >= 0) & (u < 1.0)
    assert set(np.flatnonzero(ramping)) == set(new) | set(moved)
    P = run.P
    rows = np.repeat(np.arange(60), np.diff(P.indptr))
    both = (later[rows] >= 0) & (later[P.indices] >= 0)
    with_ramping = both & (ramping[rows] | ramping[P.indices])
    assert 0 < with_ramping.sum() < both.sum()
    assert run._pairs[2].size == with_ramping.sum()
    # a change of parameters mid-ramp writes the weights out again, where some u_i are 0.4
    run.set_params(label_importance=0.6)
    Y = rng.normal(scale=2.0, size=(60, n_components))
    for at in (0.4, 0.7):
        assert np.all(run.point_learning_rates()[ramping] == pytest.approx(at))
        grad, kl = _dense_supervised(run, Y)
        np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
        assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
        run.step(3)
    assert np.all(run.point_learning_rates()[later >= 0] == 1.0)
    grad, kl = _dense_supervised(run, Y)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
    assert run._pairs is None                   # every ramp has ended: the list is gone


def test_the_settled_pairs_weights_and_objective_follow_a_session(monkeypatch):
    # The settled labeled pairs go by class pair: the objective's layout-free part from sums
    # of p and p log p by class pair, the weights by rewriting only the pairs of two classes
    # (the table changes with every new label) and writing those of the points settled since
    # (supervision.ClassPairSums, TSNERun._write_settled). Along a session (groups added, a
    # class with a smaller id joining, which renumbers the classes, a relabeling, a change
    # of parameters) gradient and objective must equal the dense definition's, and the
    # objective the pair-by-pair sum (CLASS_PAIR_MAX_CLASSES = 0).
    from tensorboard_al_plugin.tsne import supervision
    X, y = _blobs(150, k=4, seed=5)
    y = y + 1                                   # ids 1..4; 0 joins later
    rng = np.random.default_rng(5)
    X = X + rng.normal(scale=2.0, size=X.shape).astype(np.float32)   # classes that mix
    start = np.where(rng.random(150) < 0.3, y, -1)
    start[y == 1] = -1
    run = SemiSupervisedTSNE(n_components=2, perplexity=10, label_importance=0.5,
                             repulsion_emphasis=0.8, point_learning_rate_epochs=6,
                             method="exact", random_state=5).prepare(X, labels=start)
    Y = rng.normal(scale=3.0, size=(150, 2))
    grown, rewritten = [], []
    real_grow, real_rewrite = supervision._with_neighbours, supervision._rewrite_entries
    monkeypatch.setattr(supervision, "_with_neighbours",
                        lambda *a: grown.append(a[2].size) or real_grow(*a))
    monkeypatch.setattr(supervision, "_rewrite_entries",
                        lambda *a: rewritten.append(a[0].size) or real_rewrite(*a))
    labels = start.copy()
    unlabeled = list(np.flatnonzero((start < 0) & (y != 1)))
    for k in range(8):
        if k == 3:
            labels[y == 1] = 0                  # a new class, below every other id
        elif k == 5:
            moved = np.flatnonzero(labels >= 2)[:3]
            labels[moved] = 2 + (labels[moved] - 1) % 3   # relabeled: everything afresh
        elif k == 6:
            run.set_params(label_importance=0.3)
        else:
            group, unlabeled = unlabeled[:6], unlabeled[6:]
            labels[group] = y[group]
        run.set_labels(labels)
        run.step(7)                             # the group's ramp ends: it settles
        grad, kl = _dense_supervised(run, Y)
        np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9,
                                   atol=1e-12 * np.abs(grad).max())
        assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
        assert run._pw_written is not None
    # the writings but the first and those after the relabeling and the change of parameters
    # went by class pair: the pairs of two classes rewritten, a group's pairs added
    # (two writings a stage: the new labels, then their ramp's end)
    assert len(rewritten) >= 10 and max(rewritten) > 100, rewritten
    assert len(grown) >= 5 and 0 < min(grown) and max(grown) < 50, grown


@pytest.mark.parametrize("n_components", [2, 3])
def test_labels_that_ramp_alike_give_the_supervised_gradient(n_components):
    # every label given at once ramps from the same iteration: the pairs' list holds G p_ij
    # and the ramp's share of the objective comes by class pair (TSNERun._uniform_ramp).
    # Gradient and objective against the dense definition along the ramp; a label importance
    # whose floor can bind, and groups with ramps of their own, take the general pass.
    X, y = _blobs(90, k=3, seed=8)
    rng = np.random.default_rng(8)
    X = X + rng.normal(scale=2.0, size=X.shape).astype(np.float32)   # classes that mix
    labels = np.where(rng.random(90) < 0.5, y, -1)
    Y = rng.normal(scale=2.0, size=(90, n_components))
    for f, uniform in ((0.2, True), (40.0, False)):
        run = SemiSupervisedTSNE(n_components=n_components, perplexity=8, label_importance=f,
                                 repulsion_emphasis=0.9, point_learning_rate_epochs=10,
                                 method="exact", random_state=8).prepare(X, labels=labels)
        for at in (3, 7, 12):
            run.step(at - run.iteration)
            run._refresh_weights(run.iteration)
            assert run._pairs is not None or at == 12
            assert (run._ramp_sums is not None) == (uniform and at < 10)
            grad, kl = _dense_supervised(run, Y)
            np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9,
                                       atol=1e-12 * np.abs(grad).max())
            assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
    # a group labeled mid-ramp: two begins, the general pass
    later = labels.copy()
    later[np.flatnonzero(labels < 0)[:5]] = y[np.flatnonzero(labels < 0)[:5]]
    run = SemiSupervisedTSNE(n_components=n_components, perplexity=8, label_importance=0.2,
                             repulsion_emphasis=0.9, point_learning_rate_epochs=10,
                             method="exact", random_state=8).prepare(X, labels=labels)
    run.step(4)
    assert run._ramp_sums is not None
    run.set_labels(later)
    run.step(2)
    assert run._pairs is not None and run._ramp_sums is None
    grad, kl = _dense_supervised(run, Y)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)


def test_the_sums_of_a_ramp_alike_become_the_settled_pairs_sums_at_its_end(monkeypatch):
    # labels given at once ramp alike: their pairs' sums by class pair, taken at the ramp's
    # start, are the settled pairs' sums at its end (TSNERun._settled_sums_from), so the first
    # objective after it makes no pass with a logarithm per labeled pair. The objective must
    # still be the dense definition's, there and after a change of labels.
    from tensorboard_al_plugin.tsne import supervision
    X, y = _blobs(90, k=3, seed=8)
    rng = np.random.default_rng(8)
    X = X + rng.normal(scale=2.0, size=X.shape).astype(np.float32)   # classes that mix
    labels = np.where(rng.random(90) < 0.5, y, -1)
    run = SemiSupervisedTSNE(n_components=2, perplexity=8, label_importance=0.2,
                             repulsion_emphasis=0.9, point_learning_rate_epochs=10,
                             method="exact", random_state=8).prepare(X, labels=labels)
    run.step(4)
    ramp = run._ramp_sums
    assert ramp is not None
    summed = []
    real = supervision._class_pair_sums
    monkeypatch.setattr(supervision, "_class_pair_sums",
                        lambda *a: summed.append(a[6].size) or real(*a))
    run.step(8)                                 # the ramp (10 iterations) has ended
    assert run._pairs is None and run._class_pairs is ramp
    Y = rng.normal(scale=2.0, size=(90, 2))
    grad, kl = _dense_supervised(run, Y)
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert summed == []
    fresh = supervision.ClassPairSums().update(run._P, run._codes, run._class_ids(),
                                               run._labels >= 0)
    np.testing.assert_allclose(ramp._sp, fresh._sp, rtol=1e-12)
    np.testing.assert_allclose(ramp._sl, fresh._sl, rtol=1e-12)
    # a group more: its pairs are added to the handed-over sums, which stay the right ones
    more = labels.copy()
    free = np.flatnonzero(labels < 0)[:5]
    more[free] = y[free]
    run.set_labels(more)
    run.step(12)
    grad, kl = _dense_supervised(run, Y)
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert run._class_pairs is ramp and summed
    fresh = supervision.ClassPairSums().update(run._P, run._codes, run._class_ids(), more >= 0)
    np.testing.assert_allclose(ramp._sp, fresh._sp, rtol=1e-12)
    # a point relabeled: the sums go and are taken afresh
    more[np.flatnonzero(more >= 0)[0]] = (more[np.flatnonzero(more >= 0)[0]] + 1) % 3
    run.set_labels(more)
    run.step(12)
    grad, kl = _dense_supervised(run, Y)
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)


def test_the_weights_array_is_made_with_the_labels_not_where_they_first_settle():
    # pw first differs from P where the first labeled points settle (the end of their ramp);
    # its array, a copy of P's values (830 MB at 10^6 points, ~0.5 s of first touches), is
    # made when the labels come (TSNERun._reserve) so that iteration does not stall. The
    # copy must still hold P when it is taken, whatever happened in between, and a run
    # without label importance never makes it.
    X, y = _blobs(90, k=3, seed=8)
    rng = np.random.default_rng(8)
    labels = np.where(rng.random(90) < 0.5, y, -1)
    kw = dict(n_components=2, perplexity=8, repulsion_emphasis=0.9, point_learning_rate_epochs=10,
              method="exact", random_state=8)
    run = SemiSupervisedTSNE(label_importance=0.2, **kw).prepare(X, labels=labels)
    P = run._P                                  # the run's own (P is the caller's order)
    spare = run._pw_spare
    assert spare is not None and spare is not P.data and run._pw is P.data
    np.testing.assert_array_equal(spare, P.data)
    run.step(6)                                 # ramping: pw is still P
    assert run._pw is P.data and run._pw_spare is spare
    run.step(6)                                 # settled: pw is the copy, now written
    assert run._pw is spare and run._pw_spare is None
    assert not np.array_equal(run._pw, P.data)
    Y = rng.normal(scale=2.0, size=(90, 2))
    grad, kl = _dense_supervised(run, Y)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    assert run.objective(Y) == pytest.approx(kl, rel=1e-10)
    # no label importance: pw stays P and nothing is copied; turned on: the copy comes then
    run = SemiSupervisedTSNE(label_importance=0.0, **kw).prepare(X, labels=labels)
    run.step(12)
    assert run._pw is run._P.data and run._pw_spare is None
    run.set_params(label_importance=0.2)
    assert run._pw_spare is not None
    run.step(12)
    assert run._pw is not run._P.data and run._pw_spare is None
    grad, kl = _dense_supervised(run, Y)
    np.testing.assert_allclose(run.gradient(Y), grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    # nothing labeled: nothing copied
    run = SemiSupervisedTSNE(label_importance=0.2, **kw).prepare(X)
    assert run._pw_spare is None


def test_the_settled_pairs_share_of_the_objective_is_the_pair_by_pair_sum(monkeypatch):
    from tensorboard_al_plugin.tsne import supervision
    X, y = _blobs(150, k=4, seed=6)
    rng = np.random.default_rng(6)
    labels = np.where(rng.random(150) < 0.3, y, -1)
    runs = [SemiSupervisedTSNE(n_components=2, perplexity=10, label_importance=0.5,
                               repulsion_emphasis=0.8, point_learning_rate_epochs=6,
                               method="exact", random_state=6).prepare(X, labels=labels)
            for _ in range(2)]
    Y = rng.normal(scale=3.0, size=(150, 2))
    unlabeled = np.flatnonzero(labels < 0)
    for k in range(3):
        labels[unlabeled[6 * k:6 * k + 6]] = y[unlabeled[6 * k:6 * k + 6]]
        for run in runs:
            run.set_labels(labels)
            run.step(8 if k else 3)             # a ramp still running, then settled ones
        with monkeypatch.context() as m:
            m.setattr(supervision, "CLASS_PAIR_MAX_CLASSES", 0)
            direct = runs[1].objective(Y)
        assert runs[0].objective(Y) == pytest.approx(direct, rel=1e-12, abs=1e-12)


def _clusters_run(method, n_components=2, n=3000, seed=7, every=None, monkeypatch=None, r=1.0):
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    if every is not None:
        monkeypatch.setattr(tsne_mod, "CORRECTION_EVERY", every)
        if every == 1:   # fresh on every iteration: no reuse past the interval either
            monkeypatch.setattr(tsne_mod, "CORRECTION_TOLERANCE", 0.0)
    X, y = _blobs(n, d=10, k=6, seed=seed)
    labels = np.where(np.random.default_rng(seed).random(n) < 0.5, y, -1)
    run = SemiSupervisedTSNE(n_components=n_components, perplexity=20, label_importance=0.5,
                             repulsion_emphasis=r, method=method,
                             random_state=0).prepare(X, labels=labels)
    return run, y, labels


@pytest.mark.parametrize("method", ["fft", "bh"])
def test_step_reuses_the_correction_between_refreshes_and_after_label_changes(method, monkeypatch):
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    # the interval alone (a tolerance of 0: no reuse past it, whatever the estimate)
    monkeypatch.setattr(tsne_mod, "CORRECTION_TOLERANCE", 0.0)
    run, y, labels = _clusters_run(method, n=2000)
    run.step(1)
    kept = run._correction
    assert kept is not None and kept.iteration == 0   # computed at iteration 0 ...
    run.step(tsne_mod.CORRECTION_EVERY - 1)
    assert run._correction is kept             # ... reused up to CORRECTION_EVERY - 1 ...
    run.step(1)
    assert run._correction.iteration == tsne_mod.CORRECTION_EVERY  # ... and computed afresh
    # step's objective (its last iteration, at most every OBJECTIVE_EVERY) keeps to the interval:
    # a readout with the reused correction's Z, within a fraction of a percent of the exact one
    run.step(tsne_mod.OBJECTIVE_EVERY)
    at = run.iteration - 1
    assert run.last_objective_iteration == at
    assert run._correction.iteration == at - at % tsne_mod.CORRECTION_EVERY != at
    assert np.isfinite(run.last_objective)
    # that readout at the current positions against the exact objective (a fresh correction)
    readout = run._evaluate(run._Y, 1.0, reuse=True)[1]
    assert run._correction.iteration < run.iteration    # the kept one was used
    assert readout == pytest.approx(run.objective(), rel=2e-3) and readout != run.objective()
    # labels given to unlabeled points only keep it (their u starts at 0, where the kept one
    # has nothing of theirs); a relabel (or a change of r) drops it: the next iteration
    # computes a fresh one
    kept = run._correction
    more = labels.copy()
    more[np.flatnonzero(labels < 0)[:40]] = 0
    run.set_labels(more)
    assert run._correction is kept
    relabeled = labels.copy()
    relabeled[:50] = (y[:50] + 1) % 6
    run.set_labels(relabeled)
    assert run._correction is None
    run.step(1)
    assert run._correction.iteration == run.iteration - 1
    run.set_params(repulsion_emphasis=0.5)
    assert run._correction is None
    # gradient() is exact, never the reused correction: it equals a fresh run's at the same state
    g = run.gradient()
    assert run._correction is None or run._correction.iteration < run.iteration
    np.testing.assert_allclose(g, run.gradient())


def test_the_correction_is_reused_longer_where_r_is_small(monkeypatch):
    # the reused correction's error grows with r times its age: r * (interval - 1) stays at
    # the r = 1 figure (CORRECTION_EVERY - 1), between CORRECTION_EVERY and CORRECTION_MAX_EVERY
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    every, most = tsne_mod.CORRECTION_EVERY, tsne_mod.CORRECTION_MAX_EVERY
    assert [tsne_mod.correction_interval(r) for r in (5.0, 1.0, 0.75, 0.5, 0.3, 0.1, 0.01)] == \
        [every, every, 5, 7, 11, most, most] == [4, 4, 5, 7, 11, 16, 16]
    run, y, labels = _clusters_run("fft", n=2000)
    run.set_params(repulsion_emphasis=0.1)
    run.step(1)
    kept = run._correction
    run.step(most - 1)
    assert run._correction is kept and kept.iteration == 0
    run.step(1)
    assert run._correction.iteration == most
    # CORRECTION_EVERY = 1 with a tolerance of 0 means a fresh correction on every iteration
    monkeypatch.setattr(tsne_mod, "CORRECTION_EVERY", 1)
    monkeypatch.setattr(tsne_mod, "CORRECTION_TOLERANCE", 0.0)
    assert tsne_mod.correction_interval(0.1) == 1
    run.step(1)
    assert run._correction.iteration == most + 1


def _reused_force_error(run, kept):
    """|F_reused - F_fresh| / |F_fresh| over the labeled points at the run's
    positions, F = (rep + rep_c) / (Z + Z_c), the kept correction as step uses it."""
    rep, Z, rep_c, Z_c = run._repulsion_parts(run._Y)
    lab = run._codes >= 0
    fresh = ((rep + rep_c) / (Z + Z_c))[lab]
    reused = ((rep + kept.rep_c) / (Z + kept.Z_c))[lab]
    return float(np.linalg.norm(reused - fresh) / np.linalg.norm(fresh)), rep


@pytest.mark.parametrize("method", ["fft", "bh"])
def test_reuse_error_tracks_the_error_of_a_kept_correction(method):
    # the estimate step decides with (the exact correction on 64 labeled points, now against
    # then) against the whole error of the kept correction on every labeled point, along a run
    # from the ramp through the end of exaggeration to the settled layout
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    run, y, labels = _clusters_run(method, n=2000)
    ratios = []
    for at in (30, 150, 245, 400):
        run.step(at - run.iteration)
        run._refresh_weights(run.iteration)
        _, Z, rep_c, Z_c = run._repulsion_parts(run._Y)
        kept = tsne_mod._Kept(rep_c, Z_c, run.iteration, run._Y, run._codes, run._u.copy(),
                              run._lab_idx, 1.0)
        assert kept.targets.size == tsne_mod.CORRECTION_SAMPLE
        for age in (4, 8, 15):
            run.step(age - (run.iteration - at))
            run._refresh_weights(run.iteration)
            err, rep = _reused_force_error(run, kept)
            est = tsne_mod.reuse_error(run._Y, rep, kept, run._codes, run._u, run._lab_idx, 1.0)
            if err > 1e-3:              # above the repulsion's own noise between iterations
                ratios.append(est / err)
    assert len(ratios) >= 8
    assert 0.5 < min(ratios) and max(ratios) < 2.0, ratios


def test_past_its_interval_a_correction_is_kept_while_its_estimated_error_is_small(monkeypatch):
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    every, most = tsne_mod.CORRECTION_EVERY, tsne_mod.CORRECTION_MAX_EVERY
    tol = tsne_mod.CORRECTION_TOLERANCE
    run, y, labels = _clusters_run("fft", n=2000)
    run.step(400)                       # the layout has settled: r = 1 keeps it longer

    def window(n):
        """Iterations of the fresh corrections over n steps, and the real error of each
        reused correction at each iteration where step used it."""
        fresh, used = [], []
        for _ in range(n):
            kept, n_fresh = run._correction, run.fresh_corrections
            err = _reused_force_error(run, kept)[0] if kept is not None else None
            run.step(1)
            if run.fresh_corrections > n_fresh:
                fresh.append(run.iteration - 1)
            elif kept is not None:
                used.append(err)
        return np.diff(fresh), np.asarray(used)

    gaps, used = window(64)
    assert gaps.min() >= every and gaps.max() <= most and gaps.mean() > every + 2, gaps
    assert used.max() < 2 * tol, used    # the estimate kept the real error near the tolerance
    # a tolerance of 0 is the interval alone
    monkeypatch.setattr(tsne_mod, "CORRECTION_TOLERANCE", 0.0)
    gaps, used = window(20)
    assert set(gaps) == {every}


def test_a_kept_correction_is_sampled_only_where_its_error_can_be_asked():
    # r = 0.1: the interval is already CORRECTION_MAX_EVERY, so no estimate
    # is ever asked and the kept correction has no sample; r = 1 has one
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    assert tsne_mod.correction_interval(0.1) == tsne_mod.CORRECTION_MAX_EVERY
    for r, m in ((0.1, 0), (1.0, tsne_mod.CORRECTION_SAMPLE)):
        run, _, _ = _clusters_run("fft", n=2000, r=r)
        run.step(40)
        kept = run._correction
        assert kept is not None and kept.targets.size == m
        assert (kept.sample is None) == (m == 0)
        if m:
            assert np.unique(kept.targets).size == m
            assert np.all(run._labels[kept.targets] >= 0)
        # never asked without a sample, and it would say "fresh"
        e = tsne_mod.reuse_error(run._Y, run._plain(run._Y)[0], kept, run._codes, run._u,
                                 run._lab_idx, r)
        assert e == np.inf if m == 0 else 0.0 <= e < 1.0


def test_a_stale_checks_sample_is_the_next_corrections_own(monkeypatch):
    # the check that finds a kept correction stale computed the exact correction on the
    # sample at this Y: the fresh correction that follows takes it instead of a second pass
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    run, _, _ = _clusters_run("fft", n=2000, r=1.0)
    run.step(20)
    calls = []
    real = tsne_mod._sample

    def counted(*args):
        calls.append([a.copy() if isinstance(a, np.ndarray) else a for a in args])
        return real(*args)

    monkeypatch.setattr(tsne_mod, "_sample", counted)
    taken = 0
    for _ in range(60):
        before, n_fresh, kept = len(calls), run.fresh_corrections, run._correction
        run.step(1)
        if run.fresh_corrections == n_fresh:
            continue
        if kept is None or run.iteration - 1 - kept.iteration < tsne_mod.correction_interval(1.0):
            continue
        # a check ran (one pass over the sample) and the fresh correction took its result
        assert len(calls) - before == 1
        Y, targets, codes, u, lab, r = calls[-1]
        new = run._correction
        assert np.array_equal(targets, new.targets)
        assert np.array_equal(new.sample, real(Y, targets, codes, u, lab, r))
        taken += 1
    assert taken >= 3


@pytest.mark.parametrize("method", ["fft", "bh"])
def test_a_correction_with_nothing_to_correct_does_not_stop_the_layout(method):
    # a person's first group is one class: no labeled pair of two classes, so no correction
    # (r = 1, the tab's default, used to raise ZeroDivisionError at the first check, age 4);
    # and two classes whose u are all still 0 (before supervision_start) give an estimate of
    # 0, which keeps the correction to CORRECTION_MAX_EVERY
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    X, y = _blobs(2000, d=10, k=6, seed=7)
    one = np.full(2000, -1)
    one[:21] = y[0]
    run = SemiSupervisedTSNE(perplexity=20, repulsion_emphasis=1.0, method=method,
                             random_state=0).prepare(X, labels=one)
    run.step(30)
    assert run.fresh_corrections == 0 and run._correction is None
    assert np.all(np.isfinite(run.positions))
    two = np.where(np.random.default_rng(7).random(2000) < 0.5, y, -1)
    run = SemiSupervisedTSNE(perplexity=20, repulsion_emphasis=1.0, method=method,
                             supervision_start=40, random_state=0).prepare(X, labels=two)
    run.step(30)
    assert run.fresh_corrections == 2     # at iterations 0 and 16: the estimate said 0
    assert np.all(np.isfinite(run.positions))
    run.step(40)                          # u ramps from iteration 40: corrections again
    assert run.fresh_corrections > 2 + 40 // tsne_mod.CORRECTION_MAX_EVERY


def test_a_kept_correction_is_extrapolated_from_the_two_last_fresh_ones():
    # the slope per iteration between two fresh corrections on the same sample, and the
    # correction as step uses it at an age: constant, or plus age times the slope
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    run, _, _ = _clusters_run("fft", n=2000, r=1.0)
    run.step(60)
    first = run._correction
    while run._correction is first:
        run.step(1)
    new = run._correction
    dt = new.iteration - first.iteration
    assert dt >= tsne_mod.CORRECTION_EVERY and np.array_equal(new.targets, first.targets)
    np.testing.assert_allclose(new.slope, (new.rep_c - first.rep_c) / dt, rtol=1e-12, atol=1e-300)
    assert new.Z_slope == pytest.approx((new.Z_c - first.Z_c) / dt, rel=1e-12)
    np.testing.assert_allclose(new.sample_slope, (new.sample - first.sample) / dt, rtol=1e-12,
                               atol=1e-300)
    rep = np.random.default_rng(0).normal(size=new.rep_c.shape)
    for extrapolate in (True, False):
        new.extrapolate = extrapolate
        got, Z = new.value(rep.copy(), 3.0, 5)
        ahead = 5 * extrapolate
        np.testing.assert_allclose(got, rep + new.rep_c + ahead * new.slope, rtol=1e-12)
        assert Z == pytest.approx(3.0 + new.Z_c + ahead * new.Z_slope, rel=1e-12)
    # a label in between changes the sample's targets: no slope across it
    labels = run.labels
    labels[np.flatnonzero(labels < 0)[:5]] = 0
    run.set_labels(labels)
    kept = run._correction
    while run._correction is kept:
        run.step(1)
    assert run._correction.slope is None and not run._correction.extrapolate
    # r = 0.1 keeps no sample (nothing would weigh the extrapolation): never extrapolated
    run.set_params(repulsion_emphasis=0.1)
    run.step(40)
    assert run._correction.slope is None


def test_step_extrapolates_the_correction_where_that_is_closer_and_refreshes_it_less(monkeypatch):
    # early exaggeration moves the layout the same way for tens of iterations: the
    # extrapolated correction is closer to a fresh one, so the check finds it stale later;
    # the real error of the correction step used stays near the tolerance either way
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    tol = tsne_mod.CORRECTION_TOLERANCE
    fresh, used, chose = {}, {}, {}
    for on in (False, True):
        monkeypatch.setattr(tsne_mod, "CORRECTION_EXTRAPOLATE", on)
        run, _, _ = _clusters_run("fft", n=2000, r=1.0)
        run.step(60)
        n0, errs, picks = run.fresh_corrections, [], []
        for _ in range(140):
            kept = run._correction
            if kept is not None and run.iteration > kept.iteration:
                rep, Z, rep_c, Z_c = run._repulsion_parts(run._Y)
                lab = run._codes >= 0
                F = ((rep + rep_c) / (Z + Z_c))[lab]
                got, Zk = kept.value(rep.copy(), Z, run.iteration - kept.iteration)
                errs.append(np.linalg.norm((got / Zk)[lab] - F) / np.linalg.norm(F))
                picks.append(kept.slope is not None and kept.extrapolate)
            before = run.fresh_corrections
            run.step(1)
            if run.fresh_corrections > before:
                errs.pop() if errs else None   # step did not use that one
        fresh[on], used[on], chose[on] = run.fresh_corrections - n0, np.array(errs), np.mean(picks)
    assert chose[False] == 0 and chose[True] > 0.5
    assert fresh[True] < 0.85 * fresh[False], fresh
    for on in (False, True):
        assert np.median(used[on]) < tol and np.quantile(used[on], 0.9) < 2 * tol, used[on]


@pytest.mark.parametrize("method,r", [("fft", 1.0), ("bh", 1.0), ("fft", 0.1), ("bh", 0.1)])
def test_reusing_the_correction_keeps_the_layout(method, r, monkeypatch):
    # CORRECTION_EVERY = 1 (fresh every iteration) against the default (every 4 at r = 1,
    # every 16 at r = 0.1): the same classes, the same neighbourhoods, the same objective within 1%
    fresh, y, labels = _clusters_run(method, every=1, monkeypatch=monkeypatch, r=r)
    fresh.step(300)
    monkeypatch.undo()
    reused, _, _ = _clusters_run(method, r=r)
    reused.step(300)
    unl = labels < 0
    for run in (fresh, reused):
        assert knn_accuracy(run.positions, y, k=4, mask=unl) > 0.97
    assert reused.objective() == pytest.approx(fresh.objective(), rel=0.01)


@pytest.mark.parametrize("method", ["exact", "fft", "bh"])
def test_a_run_in_z_order_is_the_same_run_in_the_callers_order(method):
    """From LOCALITY_MIN_POINTS points on a run keeps its points in the Z-order of
    their start (``reorder``): positions, labels, u, gradient, objective and P
    come back in the caller's order, and the layout is the one of a run in the
    caller's order."""
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    n = 6000 if method == "fft" else 400
    X, y = _blobs(n, d=6, k=4, seed=3)
    rng = np.random.default_rng(3)
    labels = np.where(rng.random(n) < 0.5, y, -1)
    est = SemiSupervisedTSNE(perplexity=10, label_importance=0.5, repulsion_emphasis=0.5,
                             point_learning_rate_epochs=10, method=method, random_state=0)
    P, _ = perplexity_affinities(X, 10.0)
    Y0 = est._initial_positions(X, n, np.random.default_rng(0))[0]
    runs = [tsne_mod.TSNERun(P, Y0, method, est._check_params(n), labels=labels, reorder=r)
            for r in (False, True)]
    plain, ordered = runs
    assert plain._perm is None and ordered._perm is not None
    assert not np.array_equal(ordered._perm, np.arange(n))  # the order did change
    later = labels.copy()
    later[:20] = (later[:20] + 1) % 4
    for run in runs:
        run.step(15)
        run.set_labels(later)   # the labels of given points, in the caller's order
        run.step(15)
    np.testing.assert_array_equal(ordered.labels, later)
    np.testing.assert_array_equal(ordered.point_learning_rates(), plain.point_learning_rates())
    # the same run up to the order of floating-point sums, which 30 iterations amplify to
    # ~1e-4 of the layout's size (fresh-clone CI, Python 3.10 with the newest dependencies)
    scale = np.abs(plain.positions).max()
    np.testing.assert_allclose(ordered.positions, plain.positions, rtol=0, atol=1e-2 * scale)
    assert np.abs(ordered.positions - plain.positions).mean() < 1e-4 * scale
    Y = rng.normal(scale=2.0, size=(n, 2))
    np.testing.assert_allclose(ordered.gradient(Y), plain.gradient(Y), rtol=1e-7, atol=1e-12)
    assert ordered.objective(Y) == pytest.approx(plain.objective(Y), rel=1e-9)
    assert (ordered.P != P).nnz == 0 and ordered.P.has_sorted_indices


def test_prepare_orders_points_by_their_start_only_when_it_says_where_they_are(monkeypatch):
    # a PCA or given start is in Z-order from LOCALITY_MIN_POINTS on; a random one keeps the caller's
    from tensorboard_al_plugin.tsne import tsne as tsne_mod
    X, _ = _blobs(300, seed=4)
    est = SemiSupervisedTSNE(perplexity=10, random_state=0)
    assert est.prepare(X)._perm is None  # below the threshold
    monkeypatch.setattr(tsne_mod, "LOCALITY_MIN_POINTS", 100)
    assert est.prepare(X)._perm is not None
    assert SemiSupervisedTSNE(perplexity=10, initialization=np.ones((300, 2)) * np.arange(300)[:, None],
                              random_state=0).prepare(X)._perm is not None
    run = SemiSupervisedTSNE(perplexity=10, initialization="random", random_state=0).prepare(X)
    assert run._perm is None


def _hub_affinities(n=2000, k=10, hub_lists=400, seed=0):
    """P of random 10-neighbour lists, with point 0 in hub_lists other points' lists:
    its sum of p_ij ~20 times the median, as a hub of high-dimensional kNN graphs is."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.repeat(np.arange(n), k), rng.choice(np.arange(1, n), hub_lists,
                                                                  replace=False)])
    cols = np.concatenate([rng.integers(0, n, size=n * k), np.zeros(hub_lists, dtype=np.int64)])
    keep = rows != cols
    W = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
    W = W + W.T
    return W / W.sum(), rng.normal(scale=1e-4, size=(n, 2))


@pytest.mark.parametrize("bound", [None, 5.0, 0.5])
def test_a_step_moves_no_point_further_than_max_step_norm(bound):
    # a hub overshoots its neighbours by ~20 times their distance while the layout is small;
    # without a bound it jumps several units in one iteration (the test of the bound can fail)
    P, init = _hub_affinities()
    run = SemiSupervisedTSNE(perplexity=5, random_state=0, method="fft", initialization=init,
                             max_step_norm=bound).prepare(affinities=P)
    longest = 0.0
    for _ in range(40):
        run.step(1)
        # each point's move before the centring (which moves all points alike)
        step = np.linalg.norm(run._update, axis=1)
        longest = max(longest, float(step.max()))
        assert np.all(np.isfinite(run.positions))
    if bound is None:
        assert longest > 5.0
    else:
        assert longest <= bound * (1 + 1e-12)
        assert longest > 0.5 * bound


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_max_step_norm_is_checked(bad):
    X, _ = _blobs()
    with pytest.raises(ValueError, match="max_step_norm"):
        SemiSupervisedTSNE(perplexity=8, max_step_norm=bad).prepare(X)


def test_kernel_spectra_cache_is_bounded_in_bytes_and_keeps_the_newest(monkeypatch):
    # a growing layout asks for a new grid size every few iterations: the cache must not keep them all
    monkeypatch.setattr(repulsion, "_kernel_cache", type(repulsion._kernel_cache)())
    monkeypatch.setattr(repulsion, "KERNEL_CACHE_BYTES", 1.5 * 2 ** 20)
    sizes = [128, 160, 192, 256, 320, 384]
    for M in sizes:
        got = repulsion._kernel_spectra(M, 0.3, 1)
        assert got.shape == (3, M, M // 2 + 1)
        cached = repulsion._kernel_cache
        assert list(cached)[-1] == (M, 0.3)   # the newest is kept, even above the budget
        assert len(cached) == 1 or sum(v.nbytes for v in cached.values()) <= 1.5 * 2 ** 20
    assert len(repulsion._kernel_cache) < len(sizes)
    # a hit moves its entry to the end, so the two grids in use (repulsion's, correction's) stay
    small = repulsion._kernel_spectra(128, 0.3, 1)
    assert repulsion._kernel_spectra(128, 0.3, 1) is small
    assert list(repulsion._kernel_cache)[-1] == (128, 0.3)


@pytest.mark.parametrize("M", [64, 90, 250])
def test_kernel_spectra_are_the_kernels_transforms(M, monkeypatch):
    # the quadrant's cosine and sine transforms against the full grid's rfft2: the kernel t
    # itself, the force kernels (odd, stored as i times their transforms) with their value at
    # offset M / 2 dropped (the convolution never reads it for M >= 2 n_nodes)
    import scipy.fft
    monkeypatch.setattr(repulsion, "_kernel_cache", type(repulsion._kernel_cache)())
    delta = 0.37
    off = np.arange(M, dtype=np.float64)
    off = np.where(off < M // 2 + 1, off, off - M) * delta
    dx, dy = off[:, None], off[None, :]
    t = 1.0 / (1.0 + dx * dx + dy * dy)
    fx, fy = dx * t * t, dy * t * t
    fx[M // 2, :] = 0.0
    fy[:, M // 2] = 0.0
    got = repulsion._kernel_spectra(M, delta, 1)
    assert got.shape == (3, M, M // 2 + 1) and got.dtype == np.float32
    for k, kernel, factor in ((0, fx, -1j), (1, fy, -1j), (2, t, 1.0)):
        want = scipy.fft.rfft2(kernel)
        np.testing.assert_allclose(factor * got[k], want, rtol=0, atol=2e-6 * np.abs(want).max())
    with pytest.raises(ValueError, match="even"):
        repulsion._kernel_spectra(M + 1, delta, 1)


def test_fft_repulsion_reuses_a_larger_cached_grid_with_the_same_sums(monkeypatch):
    # any even M >= 2 n_nodes gives the same convolution: a grid that shrinks a little (or
    # grows into a cached size) takes the cached spectra of up to SPECTRA_REUSE times its own
    import scipy.fft
    monkeypatch.setattr(repulsion, "_kernel_cache", type(repulsion._kernel_cache)())
    rng = np.random.default_rng(8)
    n = 4000
    y = rng.integers(0, 3, size=n)
    Y = rng.normal(scale=20.0, size=(3, 2))[y] + rng.normal(scale=4.0, size=(n, 2))
    codes = np.where(rng.random(n) < 0.5, y, -1).astype(np.int32)
    u = np.where(codes >= 0, 1.0, 0.0)
    kw = dict(codes=codes, u=u, repulsion_emphasis=1.0, on_grid=True, parts=True)
    own = repulsion.fft_repulsion_2d(Y, **kw)
    lo, h, n_boxes, n_nodes = repulsion._geometry(Y, 4, 50, 1.2)
    need = repulsion._fft_size(n_nodes)
    assert set(repulsion._kernel_cache) >= {(need, h / 4)}
    larger = 2 * scipy.fft.next_fast_len(need // 2 + 1, real=True)
    assert need < larger <= repulsion.SPECTRA_REUSE * need
    repulsion._kernel_cache.clear()
    repulsion._kernel_spectra(larger, h / 4, 1)
    reused = repulsion.fft_repulsion_2d(Y, **kw)
    # the whole grid's M was the cached one: no entry of the smallest size was made
    assert (need, h / 4) not in repulsion._kernel_cache
    # the same sums up to float32 rounding (the correction is a difference of potentials)
    for a, b in zip(own, reused):
        assert np.linalg.norm(np.subtract(b, a)) <= 1e-4 * np.linalg.norm(a)
    # a cached size beyond the reuse bound is not taken
    repulsion._kernel_cache.clear()
    far = 2 * scipy.fft.next_fast_len(int(repulsion.SPECTRA_REUSE * need) // 2 + 1, real=True)
    repulsion._kernel_spectra(far, h / 4, 1)
    repulsion.fft_repulsion_2d(Y)
    assert (need, h / 4) in repulsion._kernel_cache


@pytest.mark.parametrize("top", [9, 10 ** 9])
def test_class_counts_number_the_used_labels_in_order(top):
    # small class ids are counted in O(N), any others through np.unique: the same numbering
    from tensorboard_al_plugin.tsne import supervision
    rng = np.random.default_rng(4)
    ids = np.sort(rng.choice(top + 1, size=min(top + 1, 7), replace=False))
    labels = np.where(rng.random(500) < 0.6, rng.choice(ids, size=500), -1).astype(np.int64)
    codes, counts, n_labeled = supervision.class_counts(labels)
    uniq, inv = np.unique(labels[labels >= 0], return_inverse=True)
    assert codes.dtype == np.int32 and n_labeled == (labels >= 0).sum()
    np.testing.assert_array_equal(codes[labels >= 0], inv)
    assert np.all(codes[labels < 0] == -1)
    np.testing.assert_array_equal(counts, np.bincount(inv))
    assert supervision.class_counts(np.full(5, -1))[2] == 0
