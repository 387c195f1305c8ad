"""Semi-supervised t-SNE (Luus et al., arXiv:1901.00675, section 3).

Two levels of API, as in openTSNE:

    Y = SemiSupervisedTSNE(label_importance=0.1).fit(X, labels)

    run = SemiSupervisedTSNE(...).prepare(X, labels=labels)   # affinities, init
    run.step(10)                  # again and again; labels and params may change
    run.set_labels(new_labels); run.set_params(repulsion_emphasis=0.2)
    run.positions                 # (N, d) float32 copy

The cost minimised is KL(P' || Q') with p'_ij = a_ij p_ij / sum a p and
q'_ij = b_ij t_ij / sum b t (see ``supervision``), so ``objective`` and
``gradient`` are an exact pair: ``gradient`` is d objective / dY, without
exaggeration or momentum. With label_importance = repulsion_emphasis = 0 this
is plain t-SNE.
"""
import math
import numbers

import numba
import numpy as np

from . import repulsion, supervision
from .affinity import check_affinities, perplexity_affinities, phase_listener
from .params import ESTIMATOR_PARAMS, LIVE_PARAMS, check_live_param, check_params
from .pca import principal_components

# Up to this many points "auto" uses the exact all-pairs repulsion: there it
# costs no more than the approximations, and it is exact.
EXACT_MAX_POINTS = 1000
# Below this many points a 2D "fast" run uses Barnes-Hut: the FFT grid size
# follows the layout's extent (boxes of one unit), not N, so for small N the
# FFTs cost more than the tree (measured: digits, 1797 points, 5 vs 21 ms CPU).
FFT_MIN_POINTS = 5000

# step() refreshes last_objective at most this often (iterations)
OBJECTIVE_EVERY = 25

# step() recomputes the supervision's share of the repulsion (the b_ij - 1
# correction on labeled pairs of different labels) every few iterations
# (``correction_interval``) and reuses it in between; the plain repulsion and
# the attraction are computed on every iteration, and ``gradient`` /
# ``objective`` always compute everything. The correction is a small, slowly
# changing part of the force (a few % of the repulsion at r = 0.1, about
# 20-30% at r = 1), yet it costs as much as the whole plain repulsion in 2D
# (a tree over the labeled points, or one grid per class). The reused
# correction's error grows with r times its age: on the labeled points'
# repulsive force, Fashion-MNIST 70,000, 2D, half labeled, along a whole run
# (benchmarks/correction_reuse.py), 0.7-1.6% at r = 1 and age 3 (2.9% at the
# end of early exaggeration, where the layout moves fastest), 0.1-1.1% at
# r = 0.1 and age 15 (1.9%), 0.9-8% at r = 1 and age 15 (14%): about the FFT
# interpolation's own error (2%) while r * age <= 3. So a correction is kept
# for at least CORRECTION_EVERY iterations at r >= 1 and 1 + 3 / r below, at
# most CORRECTION_MAX_EVERY (beyond age 15 the error grows faster than the
# age). Where the layout stops moving the reused correction
# equals the fresh one, so the optimum is unchanged (multiple time stepping,
# as for slow forces in molecular dynamics).
#
# Past that interval the correction is kept while an estimate of its error
# stays under CORRECTION_TOLERANCE, up to CORRECTION_MAX_EVERY: once the layout
# settles, a correction of age 15 is as good at r = 1 as one of age 3 was
# early (about 1% from iteration 400 on), and a fixed interval would pay for
# the fast phases all run long. The estimate (``reuse_error``) is the exact
# correction on CORRECTION_SAMPLE labeled points, summed over every labeled
# point (~3 ms at 70,000 points against ~40 ms for a fresh correction), now
# against at the kept correction's iteration, relative to their whole
# repulsive force: it sees both the layout's motion and the u_i that ramped
# since. Measured against the error on every labeled point
# (correction_reuse.md): 0.5-1.4 times it along a whole 70,000-point run
# (ages 3-15, r = 0.1 and 1). It is asked at the end of the interval and then
# where the last estimate, extrapolated linearly in age, reaches the tolerance.
#
# Where a sample is kept (r > 0.2) the correction is also extrapolated in age
# from the two last fresh ones (``_Kept.slope``): while the layout moves the
# same way for tens of iterations (early exaggeration and its end) the
# correction changes almost linearly, and the extrapolated one is 0.52-0.82
# times as far off as the constant one (70,000 points, r = 1, ages 3 and 7,
# iterations 40-250: correction_reuse.md). Where the layout has settled the
# change between two fresh corrections is mostly the FFT's noise, and
# extrapolating it makes the error 1.3-2.3 times larger (iterations 400 and
# 700). So the check weighs both on the same sample and step
# goes on with the better one; a fresh correction extrapolates only where
# its predecessor's last check found that the better. CORRECTION_EXTRAPOLATE
# False: never (benchmarks compare both).
CORRECTION_EVERY = 4
CORRECTION_MAX_EVERY = 16
CORRECTION_TOLERANCE = 0.015
CORRECTION_SAMPLE = 64
CORRECTION_EXTRAPOLATE = True


def correction_interval(r):
    """Iterations between fresh supervision corrections in ``step`` at
    repulsion emphasis r: CORRECTION_EVERY at r >= 1, 1 + (CORRECTION_EVERY -
    1) / r below (the same r times age), at most CORRECTION_MAX_EVERY."""
    every = CORRECTION_EVERY
    if r <= 0 or every <= 1:
        return max(int(every), 1)
    k = 1 + int((every - 1) / r + 1e-9)
    return int(min(max(k, every), max(CORRECTION_MAX_EVERY, every)))


@numba.njit(parallel=True, fastmath=True, cache=True)
def _sample_correction(YT, ct, ut, YLt, cl, ul, r):
    """The supervision's repulsion correction (unnormalised: the b_ij - 1 =
    r u_i u_j share of sum_j t_ij^2 (y_i - y_j)) on the points at YT (m, d)
    with classes ``ct`` and u ``ut``, summed exactly over the labeled points
    of other classes at YLt (d, L: one contiguous row per coordinate, so
    that the loop over them vectorises; at 10^6 points it halved the time),
    classes ``cl``, u ``ul``: (m, d). ``reuse_error`` compares it between
    two iterations."""
    m, d = YT.shape
    out = np.zeros((m, d))
    for t in numba.prange(m):
        ci = ct[t]
        if d == 2:
            y0 = YT[t, 0]
            y1 = YT[t, 1]
            a0 = 0.0
            a1 = 0.0
            for q in range(YLt.shape[1]):
                d0 = y0 - YLt[0, q]
                d1 = y1 - YLt[1, q]
                q1 = 1.0 + d0 * d0 + d1 * d1
                w = ul[q] / (q1 * q1)
                w = w if cl[q] != ci else 0.0
                a0 += w * d0
                a1 += w * d1
            out[t, 0] = a0
            out[t, 1] = a1
        else:
            for q in range(YLt.shape[1]):
                if cl[q] == ci:
                    continue
                dd = 0.0
                for k in range(d):
                    diff = YT[t, k] - YLt[k, q]
                    dd += diff * diff
                w = ul[q] / ((1.0 + dd) * (1.0 + dd))
                for k in range(d):
                    out[t, k] += w * (YT[t, k] - YLt[k, q])
        for k in range(d):
            out[t, k] *= r * ut[t]
    return out


@numba.njit(parallel=True, cache=True)
def _sources(Y, codes, u, lab):
    """Y[lab].T (d, L) contiguous, codes[lab] and u[lab] in one parallel pass
    (numpy's fancy indexing and transposed copy, one thread: ~10 ms at
    500,000 labeled points, on every estimate)."""
    m = lab.shape[0]
    d = Y.shape[1]
    YL = np.empty((d, m))
    cl = np.empty(m, dtype=codes.dtype)
    ul = np.empty(m)
    for q in numba.prange(m):
        i = lab[q]
        for k in range(d):
            YL[k, q] = Y[i, k]
        cl[q] = codes[i]
        ul[q] = u[i]
    return YL, cl, ul


def _sample(Y, targets, codes, u, lab, r):
    """``_sample_correction`` on the points ``targets`` from the labeled points ``lab``."""
    return _sample_correction(Y[targets], codes[targets], u[targets],
                              *_sources(Y, codes, u, lab), float(r))


def reuse_error(Y, rep, kept, codes, u, lab, r, out=None, age=None):
    """Estimated relative error of the labeled points' repulsive force when
    the kept correction ``kept`` (``_Kept``) stands in for a fresh one at Y,
    given the plain repulsion ``rep`` there: on a fixed sample of
    CORRECTION_SAMPLE labeled points, the exact correction now
    (``_sample_correction`` over every labeled point ``lab``, with u as it
    is now) less the one at the kept correction's iteration, against the
    sample's plain repulsion plus the correction now (both over the same Z).
    See CORRECTION_TOLERANCE for how well it predicts
    (``benchmarks/correction_reuse.py`` measures it beside the error).
    ``out``: a list that gets the exact correction now on the sample (a
    fresh correction at this Y takes it as its own sample). ``age``: the
    kept correction's; with it, the error of the correction as step uses it
    at that age (extrapolated where ``kept.extrapolate``), and the list
    ``out`` also gets the pair (constant's error, extrapolated one's) where
    the kept correction has a slope."""
    if kept.targets.size == 0:
        return np.inf
    now = _sample(Y, kept.targets, codes, u, lab, r)
    if out is not None:
        out.append(now)
    size = float(np.sqrt(((rep[kept.targets] + now) ** 2).sum()))
    if size == 0.0:
        return np.inf
    constant = float(np.sqrt(((now - kept.sample) ** 2).sum())) / size
    if age is None or kept.sample_slope is None:
        return constant
    ahead = kept.sample + age * kept.sample_slope
    extrapolated = float(np.sqrt(((now - ahead) ** 2).sum())) / size
    if out is not None:
        out.append((constant, extrapolated))
    return extrapolated if kept.extrapolate else constant


class _Kept:
    """A supervision correction kept by ``step`` (``TSNERun._repulsion``):
    rep_c, Z_c and the iteration it was computed at; the exact correction
    on a sample of labeled points (``targets``, ``sample``) for
    ``reuse_error``, and the age at which that is next asked (``next_check``;
    first at the end of ``correction_interval(r)``). ``sample`` False: no
    targets and no sample (step's choice where the interval is already
    CORRECTION_MAX_EVERY, so that no estimate is ever asked; a sample costs
    ~38 ms a fresh correction at 10^6), and ``reuse_error`` says infinity.

    ``before``: the kept correction this one replaces; where both have a
    sample on the same targets (no label came between them) this one has
    the slope per iteration from it (``slope`` (N, d), ``Z_slope``,
    ``sample_slope``), and ``extrapolate`` (whether step adds age times the
    slope) is ``before``'s verdict: its last check found the extrapolated
    correction closer to the exact one than the constant (or it had no
    check). ``value(age)`` is the correction as step uses it."""

    __slots__ = ("rep_c", "Z_c", "iteration", "targets", "sample", "next_check",
                 "slope", "Z_slope", "sample_slope", "extrapolate")

    def __init__(self, rep_c, Z_c, iteration, Y, codes, u, lab, r, sample=True, known=None,
                 before=None):
        self.rep_c, self.Z_c, self.iteration = rep_c, Z_c, iteration
        self.next_check = None   # at the end of correction_interval(r)
        self.slope = self.Z_slope = self.sample_slope = None
        self.extrapolate = False
        # linspace's picks are distinct: at most lab.size of them, at least 1 apart
        m = min(CORRECTION_SAMPLE, lab.size) if sample else 0
        self.targets = lab[np.linspace(0, lab.size - 1, m).astype(np.int64)]
        # known: (targets, their exact correction) at this Y, u and labels (the check that
        # found the last kept correction stale computed it: ~24 ms at 10^6 points)
        if m and known is not None and np.array_equal(known[0], self.targets):
            self.sample = known[1]
        else:
            self.sample = _sample(Y, self.targets, codes, u, lab, r) if m else None
        if (m and CORRECTION_EXTRAPOLATE and before is not None and before.sample is not None
                and before.iteration < iteration and before.rep_c.shape == rep_c.shape
                and np.array_equal(before.targets, self.targets)):
            dt = float(iteration - before.iteration)
            self.slope = _slope(rep_c, before.rep_c, 1.0 / dt)
            self.Z_slope = (Z_c - before.Z_c) / dt
            self.sample_slope = (self.sample - before.sample) / dt
            # a predecessor without a slope had nothing to weigh: try it
            self.extrapolate = before.extrapolate or before.slope is None

    def value(self, rep, Z, age):
        """rep + the correction at ``age`` (in place: ``rep`` is step's fresh plain
        repulsion), and Z + its Z_c."""
        if self.extrapolate and self.slope is not None:
            _add_ahead(rep, self.rep_c, self.slope, float(age))
            return rep, Z + self.Z_c + age * self.Z_slope
        _add_into(rep, self.rep_c)
        return rep, Z + self.Z_c


@numba.njit(parallel=True, cache=True)
def _slope(new, old, scale):
    """(new - old) * scale in one parallel pass (N, d)."""
    n, d = new.shape
    out = np.empty((n, d))
    for i in numba.prange(n):
        for k in range(d):
            out[i, k] = (new[i, k] - old[i, k]) * scale
    return out


@numba.njit(parallel=True, cache=True)
def _add_into(rep, rep_c):
    """rep += rep_c in place, in one parallel pass (N, d)."""
    n, d = rep.shape
    for i in numba.prange(n):
        for k in range(d):
            rep[i, k] += rep_c[i, k]


@numba.njit(parallel=True, cache=True)
def _add_ahead(rep, rep_c, slope, age):
    """rep += rep_c + age * slope in place, in one parallel pass (N, d)."""
    n, d = rep.shape
    for i in numba.prange(n):
        for k in range(d):
            rep[i, k] += rep_c[i, k] + age * slope[i, k]


# From this many points a run stores them in the Z-order of their starting
# positions (PCA or given), so that a point's neighbours in P, which t-SNE
# keeps near it, are mostly near it in memory too: the attraction's reads of
# y_j, the labeled pairs' and the FFT grid's then hit the cache instead of
# memory. The public API (positions, labels, gradient, objective, P) keeps
# the caller's order. Measured (1,000,000 x 50, 20 clusters, 2 threads):
# attraction 314 -> 132 ms, the labeled pairs' pass 130 -> 70 ms.
LOCALITY_MIN_POINTS = 100_000

# Old private names, kept for code that imported them: params.py declares the parameters.
_LIVE_PARAMS = LIVE_PARAMS
_check_live_param = check_live_param


@numba.njit(parallel=True, fastmath=True, cache=True)
def _attraction(Y, indptr, indices, pw, with_objective):
    """sum_j p'_ij t_ij (y_i - y_j) (N, d) and sum_ij p'_ij log t_ij (0 unless
    ``with_objective``: the logarithms cost three times as much as the forces).

    Per-row sums are kept in registers (one loop per dimension count) so the
    loop over a row's neighbours vectorises."""
    n, d = Y.shape
    attr = np.empty((n, d))
    acc = np.zeros(n)
    for i in numba.prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if d == 2:
            y0 = Y[i, 0]
            y1 = Y[i, 1]
            a0 = 0.0
            a1 = 0.0
            for e in range(lo, hi):
                j = indices[e]
                d0 = y0 - Y[j, 0]
                d1 = y1 - Y[j, 1]
                w = pw[e] / (1.0 + d0 * d0 + d1 * d1)
                a0 += w * d0
                a1 += w * d1
            attr[i, 0] = a0
            attr[i, 1] = a1
        elif d == 3:
            y0 = Y[i, 0]
            y1 = Y[i, 1]
            y2 = Y[i, 2]
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            for e in range(lo, hi):
                j = indices[e]
                d0 = y0 - Y[j, 0]
                d1 = y1 - Y[j, 1]
                d2 = y2 - Y[j, 2]
                w = pw[e] / (1.0 + d0 * d0 + d1 * d1 + d2 * d2)
                a0 += w * d0
                a1 += w * d1
                a2 += w * d2
            attr[i, 0] = a0
            attr[i, 1] = a1
            attr[i, 2] = a2
        else:
            for k in range(d):
                attr[i, k] = 0.0
            for e in range(lo, hi):
                j = indices[e]
                dd = 0.0
                for k in range(d):
                    diff = Y[i, k] - Y[j, k]
                    dd += diff * diff
                w = pw[e] / (1.0 + dd)
                for k in range(d):
                    attr[i, k] += w * (Y[i, k] - Y[j, k])
        if with_objective:
            s = 0.0
            for e in range(lo, hi):
                j = indices[e]
                dd = 0.0
                for k in range(d):
                    diff = Y[i, k] - Y[j, k]
                    dd += diff * diff
                s -= pw[e] * np.log1p(dd)
            acc[i] = s
    return attr, acc.sum()



@numba.njit(parallel=True, cache=True)
def _labeled_pairs(indptr, indices, p, codes, ramping):
    """P's stored entries between two labeled points of which at least one is
    ``ramping`` (N,) bool, row by row: (rows (m,) int32, the ramping labeled
    points and their labeled neighbours; ptr (m + 1,) int64; cols (k,) int32;
    pv (k,) p_ij; cc (k,) int32, the columns' class codes, read in order
    instead of looked up).

    The entries whose weight a_ij is still to change (``_attraction_prior``);
    every other entry's is written out (``TSNERun._write_weights``). Built
    once per change of labels from the ramping rows and their neighbours'
    rows only (P's pattern is symmetric: ``affinity.check_affinities``), so
    a few groups ramping cost a few hundred rows, not every labeled one."""
    n = indptr.shape[0] - 1
    near = np.zeros(n, dtype=np.bool_)
    ramp = np.flatnonzero(ramping & (codes >= 0))
    for r in numba.prange(ramp.shape[0]):
        i = ramp[r]
        near[i] = True
        for e in range(indptr[i], indptr[i + 1]):
            if codes[indices[e]] >= 0:
                near[indices[e]] = True   # threads may write the same True: no order needed
    rows = np.flatnonzero(near).astype(np.int32)
    m = rows.shape[0]
    counts = np.zeros(m, dtype=np.int64)
    for r in numba.prange(m):
        i = rows[r]
        all_cols = ramping[i]
        c = 0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if codes[j] >= 0 and (all_cols or ramping[j]):
                c += 1
        counts[r] = c
    ptr = np.zeros(m + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(counts)
    k = ptr[m]
    cols = np.empty(k, dtype=np.int32)
    pv = np.empty(k)
    cc = np.empty(k, dtype=np.int32)
    for r in numba.prange(m):
        i = rows[r]
        all_cols = ramping[i]
        at = ptr[r]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if codes[j] >= 0 and (all_cols or ramping[j]):
                cols[at] = j
                pv[at] = p[e]
                cc[at] = codes[j]
                at += 1
    return rows, ptr, cols, pv, cc


@numba.njit(parallel=True, fastmath=True, cache=True)
def _attraction_prior(Y, rows, ptr, cols, pv, cc, codes, u, table, floor, attr, with_objective):
    """Adds sum_j (a_ij - 1) p_ij t_ij (y_i - y_j) to ``attr`` (N, d) in place,
    over the labeled pairs of ``_labeled_pairs``, with a_ij * N = max(1 + u_i
    u_j G[c_i, c_j], floor) (``supervision.prior_table``; u = 0 unlabeled).
    Returns sum (a_ij - 1) p_ij and, with ``with_objective``,
    -sum (a_ij - 1) p_ij log(1 + |y_i - y_j|^2): the attraction pass over the
    written-out weights (p_ij on these pairs) plus this one give the
    supervised attraction while u ramps, without writing the weights out on
    every iteration."""
    d = Y.shape[1]
    m = rows.shape[0]
    c = int(np.sqrt(table.shape[0]) + 0.5)
    extra = np.zeros(m)
    obj = np.zeros(m)
    for r in numba.prange(m):
        i = rows[r]
        ui = u[i]
        if ui == 0.0:
            continue
        g = codes[i] * c
        sw = 0.0
        so = 0.0
        lo = ptr[r]
        hi = ptr[r + 1]
        if d == 2:
            y0 = Y[i, 0]
            y1 = Y[i, 1]
            a0 = 0.0
            a1 = 0.0
            for e in range(lo, hi):
                j = cols[e]
                v = pv[e] * (supervision.prior_factor(ui * u[j], table[g + cc[e]], floor) - 1.0)
                d0 = y0 - Y[j, 0]
                d1 = y1 - Y[j, 1]
                dd = d0 * d0 + d1 * d1
                w = v / (1.0 + dd)
                a0 += w * d0
                a1 += w * d1
                sw += v
                if with_objective:
                    so -= v * np.log1p(dd)
            attr[i, 0] += a0
            attr[i, 1] += a1
        else:
            for e in range(lo, hi):
                j = cols[e]
                v = pv[e] * (supervision.prior_factor(ui * u[j], table[g + cc[e]], floor) - 1.0)
                dd = 0.0
                for k in range(d):
                    diff = Y[i, k] - Y[j, k]
                    dd += diff * diff
                w = v / (1.0 + dd)
                for k in range(d):
                    attr[i, k] += w * (Y[i, k] - Y[j, k])
                sw += v
                if with_objective:
                    so -= v * np.log1p(dd)
        extra[r] = sw
        obj[r] = so
    return extra.sum(), obj.sum()


@numba.njit(parallel=True, cache=True)
def _scale_by_table(rows, ptr, pv, cc, codes, table):
    """pv *= G[c_i, c_j] in place over a ``_labeled_pairs`` list (``prior_table``)."""
    c = int(np.sqrt(table.shape[0]) + 0.5)
    for r in numba.prange(rows.shape[0]):
        g = codes[rows[r]] * c
        for e in range(ptr[r], ptr[r + 1]):
            pv[e] *= table[g + cc[e]]


@numba.njit(parallel=True, fastmath=True, cache=True)
def _attraction_scaled(Y, rows, ptr, cols, gp, uu, attr, with_objective):
    """``_attraction_prior`` where every pair of the list has u_i u_j = uu and
    the floor cannot bind (``TSNERun._uniform_ramp``): a_ij - 1 = uu G[c_i, c_j]
    with G p_ij written in the list (``gp``), so no u or table is looked up.
    Adds to ``attr`` in place; returns sum (a_ij - 1) p_ij and, with
    ``with_objective``, -sum (a_ij - 1) p_ij log(1 + |y_i - y_j|^2)."""
    d = Y.shape[1]
    m = rows.shape[0]
    extra = np.zeros(m)
    obj = np.zeros(m)
    for r in numba.prange(m):
        i = rows[r]
        sw = 0.0
        so = 0.0
        lo = ptr[r]
        hi = ptr[r + 1]
        if d == 2:
            y0 = Y[i, 0]
            y1 = Y[i, 1]
            a0 = 0.0
            a1 = 0.0
            for e in range(lo, hi):
                j = cols[e]
                d0 = y0 - Y[j, 0]
                d1 = y1 - Y[j, 1]
                dd = d0 * d0 + d1 * d1
                w = gp[e] / (1.0 + dd)
                a0 += w * d0
                a1 += w * d1
                sw += gp[e]
                if with_objective:
                    so -= gp[e] * np.log1p(dd)
            attr[i, 0] += uu * a0
            attr[i, 1] += uu * a1
        else:
            for e in range(lo, hi):
                j = cols[e]
                dd = 0.0
                for k in range(d):
                    diff = Y[i, k] - Y[j, k]
                    dd += diff * diff
                w = uu * gp[e] / (1.0 + dd)
                for k in range(d):
                    attr[i, k] += w * (Y[i, k] - Y[j, k])
                sw += gp[e]
                if with_objective:
                    so -= gp[e] * np.log1p(dd)
        extra[r] = uu * sw
        obj[r] = uu * so
    return extra.sum(), obj.sum()


@numba.njit(parallel=True, cache=True)
def _p_log_p(p):
    """sum of p log p over the entries p > 0: once per run, for the objective
    (numpy's mask, copy and logarithm held three copies of P's data and took
    1.4-3 s at 10^6 points, 2 threads)."""
    s = 0.0
    for e in numba.prange(p.shape[0]):
        v = p[e]
        if v > 0.0:
            s += v * np.log(v)
    return s


@numba.njit(parallel=True, cache=True)
def _parallel_copy(a):
    """A copy of the 1-D array a on every thread: the attraction weights'
    first writing copies P's data (~90 million entries at 10^6 points: 2 s
    on one thread, mostly the new pages' faults)."""
    out = np.empty_like(a)
    for e in numba.prange(a.shape[0]):
        out[e] = a[e]
    return out


# A point moves at most this far in one iteration, as in openTSNE (its
# max_step_norm, default 5) and FIt-SNE. Without a bound, a point in many
# neighbour lists (a hub: on 10^6 points in 20 Gaussian clusters of 50
# dimensions the sum of p_ij is up to 72 times the median) is pulled past its
# neighbours by as many times their distance while the layout is small:
# at 2 threads, within 3 iterations points jumped 3 units in a layout 0.01
# wide, ~40 of them (0.004 %) stayed 10-40 times farther out than the rest
# for hundreds of iterations, and the FFT's grid, which spans every point,
# was 20 times wider than 99.99 % of them needed (460 x 330 units at
# iteration 190 for a radius of 38): the first 250 iterations took 132-145 s
# instead of 82 s (alone on the machine), and the objective at iteration 300
# was 7.15 instead of 7.10.
DEFAULT_MAX_STEP_NORM = 5.0


@numba.njit(parallel=True, cache=True)
def _descend(Y, update, gains, grad, momentum, lr, max_step):
    """One iteration's move of every point, in place: delta-bar-delta gains as
    in standard t-SNE (+0.2 where the gradient turns against the last update,
    x0.8 elsewhere, at least 0.01), update = momentum update - lr gains grad,
    its length bounded by ``max_step`` (<= 0: no bound), Y += update, then Y
    centred. One parallel pass and a centring pass instead of numpy's dozen
    full-size temporaries (35-55 ms at 10^6 points in 2D)."""
    n, d = Y.shape
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for i in numba.prange(n):
        norm2 = 0.0
        for k in range(d):
            g = gains[i, k]
            if grad[i, k] * update[i, k] < 0.0:
                g += 0.2
            else:
                g *= 0.8
            if g < 0.01:
                g = 0.01
            gains[i, k] = g
            v = momentum * update[i, k] - lr * g * grad[i, k]
            update[i, k] = v
            norm2 += v * v
        if max_step > 0.0 and norm2 > max_step * max_step:
            scale = max_step / np.sqrt(norm2)
            for k in range(d):
                update[i, k] *= scale
        for k in range(d):
            Y[i, k] += update[i, k]
        s0 += Y[i, 0]
        if d > 1:
            s1 += Y[i, 1]
        if d > 2:
            s2 += Y[i, 2]
    m0 = s0 / n
    m1 = s1 / n
    m2 = s2 / n
    for i in numba.prange(n):
        Y[i, 0] -= m0
        if d > 1:
            Y[i, 1] -= m1
        if d > 2:
            Y[i, 2] -= m2


@numba.njit(parallel=True, cache=True)
def _permuted_csr(indptr, indices, data, perm, inv):
    """P[perm][:, perm] of a CSR matrix (indptr, indices, data): (indptr,
    indices, data) with the input's dtypes, each row's entries in the order
    they had (not sorted: sorting took as long again at 10^6 rows, 2.6 s
    instead of 1.4 s, for no faster attraction). perm[k] is the old index
    of new point k, inv its inverse."""
    n = perm.shape[0]
    counts = np.empty(n, dtype=np.int64)
    for k in numba.prange(n):
        i = perm[k]
        counts[k] = indptr[i + 1] - indptr[i]
    ptr = np.zeros(n + 1, dtype=indptr.dtype)
    ptr[1:] = np.cumsum(counts)
    ind = np.empty(indices.shape[0], dtype=indices.dtype)
    dat = np.empty(data.shape[0], dtype=data.dtype)
    for k in numba.prange(n):
        i = perm[k]
        lo = indptr[i]
        base = ptr[k]
        for t in range(counts[k]):
            ind[base + t] = inv[indices[lo + t]]
            dat[base + t] = data[lo + t]
    return ptr, ind, dat


def _permute(P, perm):
    """P (CSR) with rows and columns in the order ``perm`` (P[perm][:, perm]) and
    the inverse permutation; one parallel pass (scipy's fancy indexing takes
    9 s at 10^6 rows)."""
    import scipy.sparse as sp

    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0], dtype=perm.dtype)
    ptr, ind, dat = _permuted_csr(P.indptr, P.indices, P.data, perm, inv)
    Q = sp.csr_matrix((dat, ind, ptr), shape=P.shape, copy=False)
    Q.has_sorted_indices = False
    return Q, inv


def _check_nonneg(name, value, integer=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a value >= 0, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name}: expected a whole number of iterations, got {value!r}")
    return int(value) if integer else float(value)


def check_labels(labels, n):
    """labels as int64 (N,) with -1 for unlabeled; ValueError otherwise."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels: expected {n} labels (one per point, -1 = unlabeled), "
                         f"got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"labels: expected integers (-1 = unlabeled), got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < -1:
        raise ValueError("labels: expected integers >= -1 (-1 = unlabeled)")
    return arr


class SemiSupervisedTSNE:
    """Semi-supervised t-SNE with live labels.

    Parameters
    ----------
    n_components : 2 or 3
    perplexity : float, 0 < perplexity < N. Default 20 (the paper's).
    learning_rate : "auto" or float > 0. "auto" is max(N / (4 alpha), 50) with
        alpha the current exaggeration (lr * alpha ~ N, Belkina et al. 2019).
    theta : Barnes-Hut opening angle (cell side / distance), default 0.5.
    label_importance : f >= 0, default ``supervision.DEFAULT_LABEL_IMPORTANCE``
        (0.1); 0 with r = 0 is plain t-SNE.
    repulsion_emphasis : r >= 0, default ``supervision.DEFAULT_REPULSION_EMPHASIS``
        (1). Both were chosen with benchmarks/label_legibility.py.
    supervision_start : s, iteration before which labels have no effect. Default 0.
    point_learning_rate_epochs : K, iterations over which u_i ramps 0 -> 1 after
        a point is labeled (0: at once). Default 50.
    method : "auto" (exact up to EXACT_MAX_POINTS points, else fast),
        "exact", "fast" (FFT interpolation in 2D from FFT_MIN_POINTS points,
        else Barnes-Hut), "fft" (2D only) or "bh".
    random_state : int, numpy Generator or None (initialisation).
    n_iter : iterations run by ``fit``. Default 750.
    early_exaggeration : alpha before ``exaggeration_iter[0]``, default 4;
        linear to 1 at ``exaggeration_iter[1]``. Default window (100, 250).
    momentum : (start, end) momentum, linear over the same window. Default (0.5, 0.8).
    max_step_norm : a point moves at most this far in one iteration (None: no
        bound). Default ``DEFAULT_MAX_STEP_NORM`` (5, openTSNE's): points in
        many neighbour lists are otherwise flung far out while the layout is small.
    initialization : "pca" (default when X is given), "random" or an (N, d) array.
    n_neighbors : neighbours per point for P; default min(N - 1, 3 * perplexity).
    """

    def __init__(self, n_components=2, perplexity=20.0, learning_rate="auto", theta=0.5,
                 label_importance=supervision.DEFAULT_LABEL_IMPORTANCE,
                 repulsion_emphasis=supervision.DEFAULT_REPULSION_EMPHASIS, supervision_start=0,
                 point_learning_rate_epochs=50, method="auto", random_state=None,
                 n_iter=750, early_exaggeration=4.0, exaggeration_iter=(100, 250),
                 momentum=(0.5, 0.8), initialization="pca", n_neighbors=None,
                 max_step_norm=DEFAULT_MAX_STEP_NORM):
        self.n_components = n_components
        self.perplexity = perplexity
        self.learning_rate = learning_rate
        self.theta = theta
        self.label_importance = label_importance
        self.repulsion_emphasis = repulsion_emphasis
        self.supervision_start = supervision_start
        self.point_learning_rate_epochs = point_learning_rate_epochs
        self.method = method
        self.random_state = random_state
        self.n_iter = n_iter
        self.early_exaggeration = early_exaggeration
        self.exaggeration_iter = exaggeration_iter
        self.momentum = momentum
        self.initialization = initialization
        self.n_neighbors = n_neighbors
        self.max_step_norm = max_step_norm

    # ------------------------------------------------------------ checks
    def _check_params(self, n):
        """The live parameters, checked; ValueError at the first bad argument.
        ``n`` (points, None: not known yet) bounds the perplexity."""
        checked = check_params({k: getattr(self, k) for k in ESTIMATOR_PARAMS}, n_samples=n)
        live = {k: checked[k] for k in LIVE_PARAMS}
        ee = _check_nonneg("early_exaggeration", self.early_exaggeration)
        if ee < 1:
            raise ValueError(f"early_exaggeration: expected a value >= 1, got {ee!r}")
        e0, e1 = self.exaggeration_iter
        if not (0 <= e0 <= e1):
            raise ValueError("exaggeration_iter: expected (start, end) with 0 <= start <= end, "
                             f"got {self.exaggeration_iter!r}")
        m0, m1 = self.momentum
        if not (0 <= m0 < 1 and 0 <= m1 < 1):
            raise ValueError(f"momentum: expected (start, end) in [0, 1), got {self.momentum!r}")
        if self.max_step_norm is not None and not (
                isinstance(self.max_step_norm, numbers.Real) and not isinstance(self.max_step_norm, bool)
                and math.isfinite(self.max_step_norm) and self.max_step_norm > 0):
            raise ValueError("max_step_norm: expected a number > 0 or None, "
                             f"got {self.max_step_norm!r}")
        _check_nonneg("n_iter", self.n_iter, integer=True)
        return live

    def _check_X(self, X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X: expected a 2D array (n_samples, n_features), got {X.ndim}D")
        if X.shape[0] < 2 or X.shape[1] < 1:
            raise ValueError(f"X: expected at least 2 samples and 1 feature, got shape {X.shape}")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X: expected numbers, got dtype {X.dtype}")
        X = X.astype(np.float32, copy=False)
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            raise ValueError(f"X: expected finite values, found NaN or infinity in "
                             f"{int(bad.sum())} rows (first: row {int(np.flatnonzero(bad)[0])})")
        return X

    def _initial_positions(self, X, n, rng):
        """(Y (n, d) float64, whether Y says where points are: PCA or a given
        array, not random)."""
        d = self.n_components
        init = self.initialization
        if isinstance(init, np.ndarray) or (not isinstance(init, str) and init is not None):
            Y = np.array(init, dtype=np.float64)
            if Y.shape != (n, d) or not np.all(np.isfinite(Y)):
                raise ValueError(f"initialization: expected a finite ({n}, {d}) array, got "
                                 f"shape {Y.shape}")
            return Y, True
        if init not in ("pca", "random"):
            raise ValueError(f"initialization: expected 'pca', 'random' or an array, got {init!r}")
        if init == "pca" and X is not None and X.shape[1] >= d:
            Y = principal_components(X, d, solver="randomized" if X.shape[0] > 5000 else "auto",
                                     random_state=int(rng.integers(2**31))).astype(np.float64)
            std = Y[:, 0].std()
            if std > 0:
                # openTSNE's convention: tiny, so early exaggeration can act
                return Y / std * 1e-4, True
        return rng.normal(scale=1e-4, size=(n, d)), False

    # ------------------------------------------------------------ API
    def prepare(self, X=None, *, affinities=None, labels=None, progress=None, phase_progress=None):
        """Compute affinities and the initial layout; return a live ``TSNERun``.

        X : (N, D) array, or None when ``affinities`` is given.
        affinities : scipy.sparse (N, N) symmetric, non-negative, summing to 1.
        labels : (N,) int, -1 = unlabeled, or None.
        progress : callable(fraction in [0, 1]) called during preparation.
        phase_progress : callable(phase, fraction in [0, 1]) called as each
            phase advances, in this order: "neighbors" (after each block of
            rows), "affinities" (after each chunk of rows), "pca" (0 and 1,
            only for the PCA initialisation). For progress bars that name
            the phase; it changes no result. Default: the listener of
            ``affinity.set_phase_listener``, if any.
        """
        if X is None and affinities is None:
            raise ValueError("X: expected an array (or pass affinities=), got None")
        if phase_progress is None:
            phase_progress = phase_listener()  # the CLI's progress bars, when it installed them
        if X is not None:
            X = self._check_X(X)
        n = X.shape[0] if X is not None else affinities.shape[0]
        live = self._check_params(n)
        rng = np.random.default_rng(self.random_state)
        info = {}
        if affinities is not None:
            P = check_affinities(affinities, n)
            info["neighbors"] = "given"
        else:
            P, info = perplexity_affinities(X, self.perplexity, self.n_neighbors, progress,
                                            phase_progress)
        if labels is not None:
            labels = check_labels(labels, n)
        pca = (phase_progress is not None and X is not None and isinstance(self.initialization, str)
               and self.initialization == "pca")
        if pca:
            phase_progress("pca", 0.0)
        Y, placed = self._initial_positions(X, n, rng)
        if pca:
            phase_progress("pca", 1.0)
        method = self.method
        if method == "auto":
            method = "exact" if n <= EXACT_MAX_POINTS else "fast"
        if method == "fast":
            method = "fft" if self.n_components == 2 and n >= FFT_MIN_POINTS else "bh"
        info["repulsion"] = method
        if progress is not None:
            progress(1.0)
        # a random start says nothing of where points are: keep the caller's order
        return TSNERun(P, Y, method, live, labels=labels,
                       early_exaggeration=float(self.early_exaggeration),
                       exaggeration_iter=tuple(self.exaggeration_iter),
                       momentum=tuple(self.momentum), info=info,
                       reorder=None if placed else False, max_step_norm=self.max_step_norm)

    def fit(self, X, labels=None, n_iter=None, affinities=None):
        """Embed X (N, D); returns positions (N, n_components) float32.

        Sets ``embedding_``, ``kl_divergence_`` (the objective at the end) and
        ``run_`` (the live run, which can be stepped further).
        """
        run = self.prepare(X, affinities=affinities, labels=labels)
        run.step(self.n_iter if n_iter is None else n_iter)
        self.run_ = run
        self.embedding_ = run.positions
        self.kl_divergence_ = run.objective()
        return self.embedding_

    def fit_transform(self, X, labels=None):
        return self.fit(X, labels)


class TSNERun:
    """A live optimisation: step it, change labels and parameters between steps.

    Not thread-safe by itself; ``sessions`` serialises access.
    Attributes: ``iteration`` (int), ``n_points``, ``n_components``, ``method``
    ("exact", "fft" or "bh"), ``info`` (how P and the repulsion are computed),
    ``last_objective`` (the objective at the positions before iteration
    ``last_objective_iteration``: ``step`` evaluates it on the last iteration
    of a call, at most once every OBJECTIVE_EVERY iterations, because the
    logarithms cost several times the forces, with the supervision's
    correction as step reuses it; ``objective()`` is always exact and
    current).
    """

    def __init__(self, P, Y, method, params, labels=None, early_exaggeration=4.0,
                 exaggeration_iter=(100, 250), momentum=(0.5, 0.8), info=None, reorder=None,
                 max_step_norm=DEFAULT_MAX_STEP_NORM):
        """``reorder``: store the points in the Z-order of Y (None: from
        LOCALITY_MIN_POINTS points on); the API keeps the caller's order either way.
        ``max_step_norm``: the longest move of a point in one iteration (None: no bound)."""
        self.n_points, self.n_components = Y.shape
        if reorder is None:
            reorder = self.n_points >= LOCALITY_MIN_POINTS
        self._perm = self._inv = None  # internal index k is the caller's point _perm[k]
        if reorder:
            self._perm = repulsion._morton_order(np.asarray(Y, dtype=np.float64))
            P, self._inv = _permute(P, self._perm)
            Y = np.asarray(Y)[self._perm]
        self._P = P
        self.method = method
        self.params = dict(params)
        self.early_exaggeration = early_exaggeration
        self.exaggeration_iter = exaggeration_iter
        self.momentum_range = momentum
        self.max_step_norm = max_step_norm
        self.info = dict(info or {})
        self.iteration = 0
        self.last_objective = float("nan")
        self.last_objective_iteration = None
        self._Y = np.ascontiguousarray(Y, dtype=np.float64)
        self._update = np.zeros_like(self._Y)
        self._gains = np.ones_like(self._Y)
        n = self.n_points
        self._labels = np.full(n, -1, dtype=np.int64)
        self._labeled_since = np.zeros(n, dtype=np.int64)
        self._codes, self._counts, self._n_labeled = supervision.class_counts(self._labels)
        self._u = np.zeros(n)
        self._weights_key = None
        self._u_final = False     # u cannot change before the labels or parameters do
        self._ramp_end = 0        # first iteration from which u stays as it is
        self._pw, self._pw_sum = P.data, 1.0
        self._pw_spare = None       # pw's own array, made ready before it is needed (_reserve)
        self._pw_base_sum = 1.0     # pw's sum: pw_sum less the ramping pairs' a_ij - 1
        # u of the points whose ramp had ended at the last writing (None: pw is P.data); pw
        # differs from p on their rows only
        self._u_settled = None
        self._settled_entropy = None  # their pairs' share of the objective's constant
        self._class_pairs = supervision.ClassPairSums()   # its sums by class pair
        self._pw_written = None     # what _write_settled needs (None: write every settled row)
        self._table = np.zeros(0)
        self._pairs = None          # _labeled_pairs of the points still ramping (None: none)
        self._ramp_sums = None      # their sums by class pair, where all ramp alike
        self._p_entropy = None      # sum p log p over P
        self._p_sum = float(P.data.sum())
        self._correction = None   # the _Kept correction step() reuses
        self.fresh_corrections = 0  # how many step() has computed (benchmarks count them)
        self._changed()
        if labels is not None:
            self.set_labels(labels)

    # ------------------------------------------------------------ point order
    def _inward(self, a):
        """A per-point array in the caller's order, in the run's (``reorder``)."""
        return a if self._perm is None else a[self._perm]

    def _outward(self, a):
        """A per-point array in the run's order, in the caller's."""
        return a if self._inv is None else a[self._inv]

    @property
    def P(self):
        """The affinities (N, N) CSR in the caller's order (a copy when the run
        keeps its points in another order: ``reorder``)."""
        if self._perm is None:
            return self._P
        P = _permute(self._P, self._inv)[0]
        P.sort_indices()
        return P

    # ------------------------------------------------------------ schedules
    def exaggeration_at(self, iteration):
        """alpha: early_exaggeration until exaggeration_iter[0], linear to 1 at [1]."""
        e0, e1 = self.exaggeration_iter
        if iteration <= e0:
            return self.early_exaggeration
        if iteration >= e1:
            return 1.0
        return self.early_exaggeration + (1.0 - self.early_exaggeration) * (iteration - e0) / (e1 - e0)

    def momentum_at(self, iteration):
        """Momentum: start value until exaggeration_iter[0], linear to end value at [1]."""
        e0, e1 = self.exaggeration_iter
        m0, m1 = self.momentum_range
        if iteration <= e0:
            return m0
        if iteration >= e1:
            return m1
        return m0 + (m1 - m0) * (iteration - e0) / (e1 - e0)

    def learning_rate_at(self, iteration):
        lr = self.params["learning_rate"]
        if lr == "auto":
            return max(self.n_points / (4.0 * self.exaggeration_at(iteration)), 50.0)
        return float(lr)

    def point_learning_rates(self, iteration=None):
        """u_i (N,) float64 at ``iteration`` (default: the current one)."""
        it = self.iteration if iteration is None else iteration
        return self._outward(supervision.point_learning_rates(
            self._labels, self._labeled_since, it, self.params["supervision_start"],
            self.params["point_learning_rate_epochs"]))

    # ------------------------------------------------------------ live changes
    @property
    def labels(self):
        return self._outward(self._labels).copy()

    def set_labels(self, labels):
        """Replace the labels (N,) int, -1 = unlabeled. A point whose label
        changes restarts its u_i ramp at the current iteration."""
        new = self._inward(check_labels(labels, self.n_points))
        changed = new != self._labels
        # points only labeled (none relabeled or unlabeled) start at u = 0, where the kept
        # correction has nothing of theirs to lose: it stays until its interval ends
        keep = not (changed & (self._labels >= 0)).any()
        self._labeled_since[changed] = self.iteration
        if not keep:
            # a labeled point changed class or lost its label: its pairs' sums go
            self._class_pairs.reset()
            self._pw_written = None
        self._labels = new
        self._codes, self._counts, self._n_labeled = supervision.class_counts(new)
        self._changed(keep_correction=keep)

    def _changed(self, keep_correction=False):
        """Labels or parameters changed: weights, ramp end, objective and
        (unless ``keep_correction``) the reused correction are out of date."""
        self._weights_key = None
        self._pairs = None
        self._ramp_sums = None
        if not keep_correction:
            self._correction = None
        # u_i's ramp (supervision.point_learning_rates) on the labeled rows only, per iteration
        self._lab_idx = np.flatnonzero(self._labels >= 0)
        s = self.params["supervision_start"]
        self._lab_begin = np.maximum(self._labeled_since[self._lab_idx], s)
        k = self.params["point_learning_rate_epochs"]
        self._ramp_end = (int(self._lab_begin.max()) + max(int(k), 0)) if self._lab_idx.size else 0
        self._reserve()

    def _reserve(self):
        """pw's own array (a copy of P's values), made when labels or parameters change
        rather than at the iteration where the first labeled points settle and pw first
        differs from P: at 10^6 points that copy is 830 MB, and the first touch of fresh
        memory made it ~0.5 s of an iteration (the first ramp's end took 2.2 s against
        ~0.4 s, 2 threads). Here it falls in prepare() when labels come with it, or in the
        first set_labels; the memory is what the first settled label takes anyway."""
        if (self._pw is self._P.data and self._pw_spare is None and self._lab_idx.size
                and self.params["label_importance"] != 0.0):
            self._pw_spare = _parallel_copy(self._P.data)

    def _learning_rates(self, iteration):
        """``point_learning_rates(iteration)``, computed on the labeled rows only."""
        u = np.zeros(self.n_points)
        if self._lab_idx.size:
            u[self._lab_idx] = self._rates(iteration, slice(None))
        return u

    def _rates(self, iteration, at):
        """u at ``iteration`` of the labeled points ``self._lab_idx[at]``."""
        begin = self._lab_begin[at]
        if iteration < self.params["supervision_start"]:
            return np.zeros(begin.shape)
        epochs = self.params["point_learning_rate_epochs"]
        if epochs <= 0:
            return np.ones(begin.shape)
        return np.clip((iteration - begin) / float(epochs), 0.0, 1.0)

    def set_params(self, **params):
        """Change any of label_importance, repulsion_emphasis, supervision_start,
        point_learning_rate_epochs, learning_rate, theta without restarting."""
        checked = {k: check_live_param(k, v) for k, v in params.items()}
        self.params.update(checked)
        self._class_pairs.reset()
        self._pw_written = None
        self._changed()
        # the objective changed: refresh it at the next step (a change of labels waits for
        # the next OBJECTIVE_EVERY: in a labeling session it comes every few iterations, and
        # an objective costs several iterations' worth at 10^6 points)
        self.last_objective_iteration = None

    # ------------------------------------------------------------ numerics
    def _refresh_weights(self, iteration):
        """Bring the point learning rates u_i and the attraction weights up to date.

        After a change of labels or parameters the weights a_ij p_ij are
        written out once (``_write_weights``): with their final u for the
        points whose ramp has ended, and as p_ij for every pair with a point
        whose u_i still ramps. While some u_i ramp, the attraction adds
        a_ij - 1 over those pairs only (``_attraction_prior``, on a list of
        them built with the weights). When the last ramp ends the weights are
        written out again with all of u and the list goes. A person who
        labels group after group keeps a ramp going most of the time: the
        second pass then covers the newest groups' pairs, not every labeled
        pair (all of them only where every label came at once). The
        layout-free part of the objective (entropies) is computed only when an
        objective is asked for (``_objective_const``).
        """
        if self._weights_key is not None and self._u_final:
            return
        final = iteration >= self._ramp_end
        if self._weights_key is None:
            self._u = self._learning_rates(iteration)
            # the labeled points whose u can still change (the others are at 1 for good)
            self._u_moving = np.flatnonzero(self._u[self._lab_idx] < 1.0)
        else:
            # the same labels and parameters: only the points still ramping move (the newest
            # groups of a session, not every labeled point: a new u over all N cost ~4 ms an
            # iteration at 10^6). Updated in place: nothing keeps the old u
            rows = self._lab_idx[self._u_moving]
            u = self._rates(iteration, self._u_moving)
            if not final and np.array_equal(u, self._u[rows]):
                return
            self._u[rows] = u
        self._u_final = final
        self._kl_const = None
        if self._weights_key is None or final:
            self._write_weights(iteration)

    def _write_weights(self, iteration):
        """pw = a_ij p_ij (its sum in ``_pw_base_sum``) with u_i as it stays
        for the points whose ramp has ended and 0 for the others (a_ij = 1
        on their pairs), and ``_pairs``: the labeled pairs with a point
        still ramping, for ``_attraction_prior``. Only the rows of labeled
        points (now or at the last writing) are written: the others hold p."""
        f = self.params["label_importance"]
        # f = 0 gives a table of zeros (a_ij = 1), which the objective's entropy term reads
        self._table = supervision.prior_table(self._counts, self._n_labeled, self.n_points, f)
        self._pairs = None
        ramp_sums, self._ramp_sums = self._ramp_sums, None
        self._settled_entropy = None
        # a_ij = 1 (P itself, already normalised: check_affinities) where f = 0 or, until some
        # u_i > 0, everywhere: then the weights are written at the first iteration with one
        self._weights_key = True if f == 0.0 or self._u_final else None
        if f == 0.0 or not self._u.any():
            self._pw, self._pw_sum, self._u_settled = self._P.data, 1.0, None
            self._pw_written = None
            return
        self._weights_key = True
        ramping = np.zeros(self.n_points, dtype=np.bool_)
        k = max(int(self.params["point_learning_rate_epochs"]), 0)
        ramping[self._lab_idx] = iteration < self._lab_begin + k
        before = self._u_settled
        self._u_settled = np.where(ramping, 0.0, self._u)
        self._settled_sums_from(ramp_sums)
        if not self._write_settled(before):
            self._pw_written = None
            # this writing's settled rows, and the last one's, which go back to p where not
            # settled
            rows = self._u_settled > 0.0
            if before is not None:
                rows |= before > 0.0
            base = self._p_sum
            if rows.any():
                if self._pw is self._P.data:
                    # the copy _reserve made (it still holds p: nothing writes it before)
                    spare, self._pw_spare = self._pw_spare, None
                    self._pw = spare if spare is not None else _parallel_copy(self._P.data)
                _, s_pw, s_p = supervision.weighted_affinities(
                    self._P, self._codes, self._u_settled, self._table,
                    rows=np.flatnonzero(rows), out=self._pw)
                base = self._p_sum - s_p + s_pw
            self._pw_base_sum = self._pw_sum = base
            self._remember_written()
        if ramping.any():
            self._pairs = _labeled_pairs(self._P.indptr, self._P.indices, self._P.data,
                                         self._codes, ramping)
            self._uniform_ramp()

    def _uniform_ramp(self):
        """Where every labeled point ramps from the same iteration (the first labels, or
        labels all given at once) every pair of the list has u_i u_j = u^2, so a_ij - 1 =
        u^2 G[c_i, c_j] when the floor cannot bind (1 + G >= floor): the list's values
        become G p_ij (``_attraction_scaled``: no look-up of u or the table per pair;
        10^6 points, half labeled, 26 million pairs, 2 threads: 74 -> 43 ms an iteration
        of the ramp), and the ramping pairs' share of the objective comes from their sums
        by class pair (``_ramp_sums``, a ``supervision.ClassPairSums``: 190 ms -> 0.02 ms
        an objective)."""
        self._ramp_sums = None
        lab = self._lab_idx
        begin = self._lab_begin
        floor = supervision.ATTRACTION_FLOOR
        if (lab.size == 0 or begin.min() != begin.max() or (self._u_settled > 0.0).any()
                or self._counts.shape[0] > supervision.CLASS_PAIR_MAX_CLASSES
                or self._table.min() < floor - 1.0):
            return
        rows, ptr, cols, pv, cc = self._pairs
        on = np.zeros(self.n_points, dtype=np.bool_)
        on[lab] = True
        self._ramp_sums = supervision.ClassPairSums().update(self._P, self._codes,
                                                               self._class_ids(), on)
        _scale_by_table(rows, ptr, pv, cc, self._codes, self._table)
        self._pairs = (rows, ptr, cols, pv, None)

    def _settled_sums_from(self, ramp_sums):
        """Where the points that ramped alike have all settled (the end of the first labels'
        ramp, or of labels all given at once), the settled set is the one their sums by class
        pair were taken over, with the same labels and P (a change of either drops them,
        ``_changed``): they become the settled pairs' sums (``_class_pairs``) instead of a
        pass with a logarithm per labeled pair at the first objective after the ramp's end
        (Fashion-MNIST 70,000, half labeled, 2 threads: ~23 ms; ~0.28 s at 10^6 points)."""
        if ramp_sums is None:
            return
        on = self._u_settled > 0.0
        if ramp_sums.covers(on) and self._by_class_pair(self._u_settled, on):
            self._class_pairs = ramp_sums

    def _remember_written(self):
        """After a full writing of the settled rows: what ``_write_settled`` needs to
        bring pw up to date next time (the settled set, the classes' ids and table, and
        the settled pairs of two classes), where the settled pairs go by class pair."""
        on = self._u_settled > 0.0
        if self._pw is self._P.data or not on.any() or not self._by_class_pair(self._u_settled, on):
            return
        rows = np.flatnonzero(on)
        mixed = supervision._mixed_entries(self._P.indptr, self._P.indices, self._codes, on, on,
                                           rows)
        self._pw_written = (on, self._class_ids(), self._table, mixed)

    def _write_settled(self, before):
        """Brings pw up to date where the settled set only grew since the last writing and
        the same-class factors stayed (they change only for a class with over 1 / cap of
        all N points labeled): the pairs of two classes get the new table (every new
        label changes N_o; ~25% of the labeled pairs in Fashion-MNIST), the pairs of the
        points settled since are written, and pw's sum comes from the sums by class pair
        (``supervision.ClassPairSums``). On a session of groups at 10^6 points that is a
        group's rows instead of every labeled row (~0.13 s a change of labels, half
        labeled). False: nothing written (the caller writes every settled row)."""
        last = self._pw_written
        on = self._u_settled > 0.0
        if (last is None or before is None or self._pw is self._P.data
                or not self._by_class_pair(self._u_settled, on) or (last[0] & ~on).any()):
            return False
        ids = self._class_ids()
        k = ids.shape[0]
        at = np.searchsorted(ids, last[1])
        old = last[2].reshape(at.size, at.size)
        new_table = self._table.reshape(k, k)
        if not np.array_equal(np.diag(old), np.diag(new_table)[at]):
            return False
        P, floor = self._P, supervision.ATTRACTION_FLOOR
        pos, row = last[3]
        supervision._rewrite_entries(pos, row, P.indices, P.data, self._codes, self._table, floor,
                                     self._pw)
        added = np.flatnonzero(on & ~last[0])
        if added.size:
            new = np.zeros(self.n_points, dtype=np.bool_)
            new[added] = True
            rows = supervision._with_neighbours(P.indptr, P.indices, added, last[0])
            supervision._write_pairs(P.indptr, P.indices, P.data, self._codes, on, new, rows,
                                     self._table, floor, self._pw)
            more = supervision._mixed_entries(P.indptr, P.indices, self._codes, on, new, rows)
            pos, row = np.concatenate((pos, more[0])), np.concatenate((row, more[1]))
        self._class_pairs.update(P, self._codes, ids, on)
        self._pw_base_sum = self._pw_sum = self._p_sum + self._class_pairs.weight_excess(
            self._table)
        self._pw_written = (on, ids, self._table, (pos, row))
        return True

    def _label_entropy(self):
        """(sum (pw log pw - p log p), sum pw log b) over the pairs of points with u > 0
        (``supervision.weight_entropy``): while some u_i ramp, that of the settled points'
        pairs (once per writing of the weights) plus that of the ramping pairs' list."""
        r = self.params["repulsion_emphasis"]
        if self._pairs is None:
            return self._settled_share(self._u)
        if self._settled_entropy is None:
            self._settled_entropy = self._settled_share(self._u_settled)
        if self._ramp_sums is not None:
            u = self._u[self._lab_idx[0]]
            e, b = self._ramp_sums.entropy(self._table, r, uu=u * u)
        else:
            e, b = supervision.weight_entropy(self._P, self._codes, self._u, self._table, r,
                                              pairs=self._pairs)
        return self._settled_entropy[0] + e, self._settled_entropy[1] + b

    def _settled_share(self, u):
        """``_label_entropy``'s share of the pairs of points with u > 0 where all of
        those are at u = 1 (settled): from the sums by class pair
        (``supervision.ClassPairSums``), kept from one change of labels to the next."""
        r = self.params["repulsion_emphasis"]
        on = u > 0.0
        if not self._by_class_pair(u, on):
            self._class_pairs.reset()
            return supervision.weight_entropy(self._P, self._codes, u, self._table, r)
        self._class_pairs.update(self._P, self._codes, self._class_ids(), on)
        return self._class_pairs.entropy(self._table, r)

    def _by_class_pair(self, u, on):
        """Whether the pairs of ``on`` (u > 0) can be summed by class pair: all at u = 1,
        and not too many classes (supervision.CLASS_PAIR_MAX_CLASSES)."""
        return (self._counts.shape[0] <= supervision.CLASS_PAIR_MAX_CLASSES
                and bool(np.all(u[on] == 1.0)))

    def _class_ids(self):
        """The label id of each class code (C,), sorted (``supervision.class_counts``)."""
        lab = self._lab_idx
        ids = np.empty(self._counts.shape[0], dtype=np.int64)
        ids[self._codes[lab]] = self._labels[lab]
        return ids

    def _objective_const(self):
        """The parts of KL(P'||Q') that do not depend on Y: sum p' log p' - sum p' log b,
        from sum p log p over P (once per run) and the labeled pairs' share."""
        if self._kl_const is None:
            if self._p_entropy is None:
                self._p_entropy = _p_log_p(self._P.data)
            ent, logb = self._p_entropy, 0.0
            if self._u.any():
                d_ent, logb = self._label_entropy()
                ent += d_ent
            s = self._pw_sum
            self._kl_const = float((ent - logb) / s - np.log(s))
        return self._kl_const

    def _repulsion(self, Y, reuse=False):
        """rep (N, d) and Z with the supervision weights b_ij (see ``repulsion``).

        ``reuse`` (``step`` only): the supervision's correction is taken from
        an earlier iteration when it is less than ``correction_interval(r)``
        old, or less than CORRECTION_MAX_EVERY old while ``reuse_error``
        estimates its error under CORRECTION_TOLERANCE; a fresh one is kept
        for the next iterations."""
        r = self.params["repulsion_emphasis"]
        if self.method == "exact":
            return repulsion.exact_repulsion(Y, self._codes, self._u, r)
        # the correction is on labeled pairs of different classes: none with one class
        supervised = r > 0 and self._counts.shape[0] > 1
        kept = self._correction if reuse and supervised else None
        age = None if kept is None else self.iteration - kept.iteration
        if not supervised or (age is not None and age < correction_interval(r)):
            rep, Z = self._plain(Y)
            return (rep, Z) if kept is None else kept.value(rep, Z, age)
        stale = None
        now = []
        if age is not None and age < CORRECTION_MAX_EVERY:
            def stale(rep, Z):
                if kept.next_check is not None and age < kept.next_check:
                    return False
                e = reuse_error(Y, rep, kept, self._codes, self._u, self._lab_idx, r, out=now,
                                age=age)
                if len(now) > 1:
                    # both weighed on the same sample: go on with the better one (and the
                    # next fresh correction extrapolates only if that was the extrapolated)
                    constant, extrapolated = now[1]
                    kept.extrapolate = extrapolated < constant
                    e = min(constant, extrapolated)
                if e >= CORRECTION_TOLERANCE:
                    return True
                # the error grows about linearly with age past the FFT's own noise
                # (correction_reuse.md): the next check comes where the estimate, so
                # extrapolated, would reach the tolerance
                # (an estimate of 0: nothing on the sample moved, as while every u is still 0
                # before supervision_start: kept to CORRECTION_MAX_EVERY)
                kept.next_check = age + 1 if e * (age + 1) >= CORRECTION_TOLERANCE * age else \
                    CORRECTION_MAX_EVERY if e <= 0.0 else int(age * CORRECTION_TOLERANCE / e)
                return False
        rep, Z, rep_c, Zc = self._repulsion_parts(Y, correction_if=stale)
        if rep_c is None:
            return kept.value(rep, Z, age)
        if reuse:
            self._correction = _Kept(rep_c, Zc, self.iteration, Y, self._codes, self._u,
                                     self._lab_idx, r,
                                     sample=correction_interval(r) < CORRECTION_MAX_EVERY,
                                     known=(kept.targets, now[0]) if now else None,
                                     before=kept)
            self.fresh_corrections += 1
        return rep + rep_c, Z + Zc

    def _plain(self, Y):
        """The plain repulsion (b = 1) rep, Z by the method ``step`` uses."""
        if self.method == "fft":
            return repulsion.fft_repulsion_2d(Y)
        return repulsion.bh_repulsion(Y, self.params["theta"])

    def _repulsion_parts(self, Y, correction_if=None):
        """(rep, Z, rep_c, Z_c): the plain repulsion (b = 1) at Y and a fresh
        supervision correction apart, by the method ``step`` uses ("fft" or
        "bh"; benchmarks/correction_reuse.py measures a reused one against it).
        ``correction_if(rep, Z)`` False: no correction (rep_c None, Z_c 0.0)."""
        r = self.params["repulsion_emphasis"]
        theta = max(self.params["theta"], repulsion.CORRECTION_THETA)
        if self.method == "fft":
            return repulsion.fft_repulsion_2d(Y, codes=self._codes, u=self._u, repulsion_emphasis=r,
                                              correction_theta=theta, parts=True,
                                              correction_if=correction_if)
        rep, Z = repulsion.bh_repulsion(Y, self.params["theta"])
        if correction_if is not None and not correction_if(rep, Z):
            return rep, Z, None, 0.0
        rep_c, Zc, _ = repulsion.supervision_correction(Y, self._codes, self._u, r, theta)
        return rep, Z, rep_c, Zc

    def _evaluate(self, Y, exaggeration, with_objective=True, reuse=False):
        """(gradient (N, d), objective or nan) at Y for the current labels and u.

        ``reuse``: see ``_repulsion`` (step's objective then takes Z with the
        reused correction: a readout, off by the correction's reuse error in Z,
        ~1e-3 of log Z; ``objective()`` never reuses it)."""
        P = self._P
        attr, s_logt = _attraction(Y, P.indptr, P.indices, self._pw, with_objective)
        if self._pairs is not None:
            # some u_i ramp: pw holds 1 on their pairs, and their a_ij - 1 is added here
            if self._ramp_sums is not None:
                rows, ptr, cols, gp, _ = self._pairs
                u = self._u[self._lab_idx[0]]
                extra, s_extra = _attraction_scaled(Y, rows, ptr, cols, gp, u * u, attr,
                                                    with_objective)
            else:
                extra, s_extra = _attraction_prior(Y, *self._pairs, self._codes, self._u,
                                                   self._table, supervision.ATTRACTION_FLOOR,
                                                   attr, with_objective)
            self._pw_sum = self._pw_base_sum + extra
            s_logt += s_extra
        rep, Z = self._repulsion(Y, reuse)
        # p'_ij = pw / pw_sum: the normalisation is applied to the sums, not to the nnz weights
        grad = 4.0 * (exaggeration / self._pw_sum * attr - rep / Z)
        if with_objective:
            kl = self._objective_const() - s_logt / self._pw_sum + np.log(Z)
        else:
            kl = np.nan
        return grad, float(kl)

    def _at(self, Y):
        self._refresh_weights(self.iteration)
        if Y is None:
            return self._Y
        Y = np.asarray(Y, dtype=np.float64)
        if Y.shape != self._Y.shape:
            raise ValueError(f"Y: expected shape {self._Y.shape}, got {Y.shape}")
        return np.ascontiguousarray(self._inward(Y))

    def objective(self, Y=None):
        """KL(P' || Q') at Y (default: current positions), current labels and u."""
        return self._evaluate(self._at(Y), 1.0)[1]

    def gradient(self, Y=None):
        """d objective / dY (N, d) float64, no exaggeration, no momentum."""
        return self._outward(self._evaluate(self._at(Y), 1.0)[0])

    def step(self, n_iter=1):
        """Run ``n_iter`` gradient-descent iterations (gains, momentum, schedules)."""
        n_iter = _check_nonneg("n_iter", n_iter, integer=True)
        Y = self._Y
        for k in range(n_iter):
            it = self.iteration
            self._refresh_weights(it)
            alpha = self.exaggeration_at(it)
            last = k == n_iter - 1 and (
                self.last_objective_iteration is None
                or it - self.last_objective_iteration >= OBJECTIVE_EVERY)
            grad, kl = self._evaluate(Y, alpha, with_objective=last, reuse=True)
            if last:
                self.last_objective = kl
                self.last_objective_iteration = it
            _descend(Y, self._update, self._gains, grad, float(self.momentum_at(it)),
                     float(self.learning_rate_at(it)),
                     0.0 if self.max_step_norm is None else float(self.max_step_norm))
            self.iteration = it + 1
        return self

    @property
    def positions(self):
        """Current positions, (N, d) float32 copy."""
        return self._outward(self._Y).astype(np.float32)
