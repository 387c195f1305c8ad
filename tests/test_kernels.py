"""Every ``parallel=True`` numba kernel of the package, compiled and run on
small seeded inputs and compared with a plain numpy reference.

numba's parfor pass is where Python versions differ (its analysis reads the
bytecode; on Python 3.12+ ``_conditional_probabilities`` failed to compile
with "unexpected cycle in lookup()"), so each check compiles a fresh copy of
the kernel from its Python source, bypassing numba's on-disk cache, and
compares it and the package's own dispatcher with the reference.

The kernels are found by walking the package, so a new parallel kernel
without a check here fails ``test_every_parallel_kernel_has_a_check``.
"""
import numba
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

from tensorboard_al_plugin.tsne import affinity
from tensorboard_al_plugin.tsne import nearest_neighbors as nn
from tensorboard_al_plugin.tsne import repulsion, supervision
from tensorboard_al_plugin.tsne import tsne as tsne_mod
from tensorboard_al_plugin.tsne.affinity import _conditional_probabilities
from tensorboard_al_plugin.warmup import package_kernels


def _parallel_kernels():
    """{"module.name": dispatcher} for every numba dispatcher compiled with
    parallel=True that a module of the package defines (found as the
    warm-up finds them: nothing optional, like TensorFlow, gets pulled in)."""
    return {name: k for name, k in package_kernels().items() if k.targetoptions.get("parallel")}


def _fresh(kernel):
    """A new dispatcher for the kernel's Python function with the same
    options but no cache: calling it runs numba's whole pipeline (parfor
    pass included) on this Python, whatever is in __pycache__."""
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}
    return numba.njit(**options)(kernel.py_func)


def _both(kernel, *args, copy=()):
    """Results of the package's kernel and of a fresh compile of it, which
    must agree; ``copy`` names argument positions the kernel writes into
    (each variant gets its own copy). Returns the results and the arguments
    as the package's kernel left them."""
    outs = []
    for fn in (kernel, _fresh(kernel)):
        a = [np.array(x, copy=True) if i in copy else x for i, x in enumerate(args)]
        outs.append((fn(*a), a))
    (res, a1), (res2, a2) = outs
    for x, y in zip(_flat(res) + [a1[i] for i in copy], _flat(res2) + [a2[i] for i in copy]):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    assert kernel.signatures, "the kernel was not compiled"
    return res, a1


def _flat(res):
    if res is None:
        return []
    return list(res) if isinstance(res, tuple) else [res]


def _rng(seed):
    return np.random.default_rng(seed)


def _random_csr(rng, n, per_row, symmetric=False):
    """A random sparse pattern without self pairs: (indptr, indices);
    ``symmetric``: with (j, i) wherever (i, j), as P has."""
    counts = rng.integers(0, per_row + 1, size=n)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    indices = np.empty(indptr[-1], dtype=np.int32)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        indices[indptr[i]:indptr[i + 1]] = rng.choice(others, counts[i], replace=False)
    if symmetric:
        M = sp.csr_matrix((np.ones(indices.shape[0]), indices, indptr), shape=(n, n))
        M = (M + M.T).tocsr()
        M.sort_indices()
        return M.indptr.astype(np.int32), M.indices.astype(np.int32)
    return indptr, indices


def _pairs(Y):
    """diff[i, j] = y_i - y_j and t[i, j] = 1 / (1 + |y_i - y_j|^2)."""
    diff = Y[:, None, :] - Y[None, :, :]
    t = 1.0 / (1.0 + (diff ** 2).sum(-1))
    return diff, t


# ------------------------------------------------------------------ checks


def check_conditional_probabilities():
    rng = _rng(0)
    sq = np.sort(rng.gamma(2.0, 3.0, size=(40, 30)), axis=1)
    sq[3] = 0.0                     # all neighbours at distance 0
    sq[4, :5] = 0.0                 # duplicates of the point itself
    perplexity = 8.0
    out, _ = _both(_conditional_probabilities, sq, perplexity)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    for i in range(sq.shape[0]):
        d = sq[i] - sq[i].min()

        def entropy_gap(beta):
            p = np.exp(-beta * d)
            p /= p.sum()
            return -(p * np.log(np.maximum(p, 1e-300))).sum() - np.log(perplexity)

        if np.all(d == 0):
            ref = np.full(d.shape, 1.0 / d.size)
        else:
            beta = scipy.optimize.brentq(entropy_gap, 1e-12, 1e6, xtol=1e-14)
            ref = np.exp(-beta * d)
            ref /= ref.sum()
        np.testing.assert_allclose(out[i], ref, atol=1e-4)
        h = -(out[i] * np.log(np.maximum(out[i], 1e-300))).sum()
        if not np.all(d == 0):
            assert abs(h - np.log(perplexity)) < 1e-4


def check_attraction():
    rng = _rng(1)
    for d in (2, 3, 4):             # the kernel has a branch for 2, 3 and any other d
        n = 60
        Y = rng.normal(size=(n, d))
        indptr, indices = _random_csr(rng, n, 7)
        pw = rng.random(indices.shape[0])
        (attr, obj), _ = _both(tsne_mod._attraction, Y, indptr, indices, pw, True)
        (attr0, obj0), _ = _both(tsne_mod._attraction, Y, indptr, indices, pw, False)
        rows = np.repeat(np.arange(n), np.diff(indptr))
        diff = Y[rows] - Y[indices]
        dd = (diff ** 2).sum(1)
        ref = np.zeros((n, d))
        np.add.at(ref, rows, (pw / (1.0 + dd))[:, None] * diff)
        np.testing.assert_allclose(attr, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(attr0, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(obj, -(pw * np.log1p(dd)).sum(), rtol=1e-10)
        assert obj0 == 0.0


def check_attraction_prior():
    """The attraction over the weights written out with the settled points' u
    (0 for the ramping ones) plus ``_attraction_prior`` over the labeled pairs
    with a ramping point, against numpy with the weights a_ij p_ij: forces,
    objective term and the weights' sum. Every point ramping, as when all
    labels come at once, and a few, as when a person labels group by group."""
    c = _pair_weight_case()
    n = c["n"]
    p = _rng(20).random(c["indices"].shape[0])
    table = supervision.prior_table(c["counts"], c["n_labeled"], n, c["f"], cap=c["cap"])
    labeled = c["codes"] >= 0
    rows = np.repeat(np.arange(n), np.diff(c["indptr"]))
    for ramping in (labeled.copy(), labeled & (_rng(21).random(n) < 0.3)):
        assert ramping.any() and (np.array_equal(ramping, labeled) or (labeled & ~ramping).any())
        # settled points' u stays 1 (their ramp has ended); the ramping ones' is c["u"]
        u = np.where(labeled, np.where(ramping, c["u"], 1.0), 0.0)
        a_ref = _pair_weight_case(u=u)["ref_a"]
        ref_pw = a_ref * p
        pairs, _ = _both(tsne_mod._labeled_pairs, c["indptr"], c["indices"], p, c["codes"], ramping)
        on = labeled[rows] & labeled[c["indices"]] & (ramping[rows] | ramping[c["indices"]])
        np.testing.assert_array_equal(np.repeat(pairs[0], np.diff(pairs[1])), rows[on])
        np.testing.assert_array_equal(pairs[2], c["indices"][on])
        np.testing.assert_array_equal(pairs[3], p[on])
        np.testing.assert_array_equal(pairs[4], c["codes"][c["indices"][on]])
        # the rows: every ramping labeled point, and the settled ones with a pair to visit
        want = np.flatnonzero(labeled & (ramping | np.isin(np.arange(n), rows[on])))
        np.testing.assert_array_equal(pairs[0], want)
        pw, base, _ = supervision.weighted_affinities(
            sp.csr_matrix((p, c["indices"], c["indptr"]), shape=(n, n)), c["codes"],
            np.where(ramping, 0.0, u), table)
        np.testing.assert_allclose(pw[on], p[on], rtol=0)   # a_ij = 1 where a point ramps
        for d in (2, 3):
            Y = _rng(22 + d).normal(size=(n, d))
            attr, obj = tsne_mod._attraction(Y, c["indptr"], c["indices"], pw, True)
            (extra, s_extra), args = _both(tsne_mod._attraction_prior, Y, *pairs, c["codes"], u,
                                           table, c["floor"], attr, True, copy=(10,))
            np.testing.assert_allclose(base + extra, ref_pw.sum(), rtol=1e-12)
            diff = Y[rows] - Y[c["indices"]]
            dd = (diff ** 2).sum(1)
            ref = np.zeros((n, d))
            np.add.at(ref, rows, (ref_pw / (1.0 + dd))[:, None] * diff)
            np.testing.assert_allclose(args[10], ref, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(obj + s_extra, -(ref_pw * np.log1p(dd)).sum(), rtol=1e-10)


def check_attraction_scaled():
    """Every labeled point ramping alike (u_i u_j = uu on every pair) and a
    floor that cannot bind: the list scaled by the table (``_scale_by_table``)
    and ``_attraction_scaled`` give ``_attraction_prior``'s forces and sums."""
    c = _pair_weight_case()
    n = c["n"]
    p = _rng(27).random(c["indices"].shape[0])
    table = supervision.prior_table(c["counts"], c["n_labeled"], n, 0.05, cap=c["cap"])
    assert table.min() >= c["floor"] - 1.0 and (table < 0).any()
    labeled = c["codes"] >= 0
    pairs = tsne_mod._labeled_pairs(c["indptr"], c["indices"], p, c["codes"], labeled)
    gp = pairs[3].copy()
    _, args = _both(tsne_mod._scale_by_table, pairs[0], pairs[1], gp, pairs[4], c["codes"], table,
                    copy=(2,))
    rows = np.repeat(pairs[0], np.diff(pairs[1]))
    np.testing.assert_allclose(args[2], pairs[3] * table[c["codes"][rows] * len(c["counts"])
                                                         + pairs[4]], rtol=1e-15)
    gp = args[2]
    for d in (2, 3):
        Y = _rng(28 + d).normal(size=(n, d))
        u = np.where(labeled, 0.6, 0.0)
        start = _rng(30).normal(size=(n, d))
        want = start.copy()
        e1, o1 = tsne_mod._attraction_prior(Y, *pairs, c["codes"], u, table, c["floor"], want, True)
        (e2, o2), args = _both(tsne_mod._attraction_scaled, Y, pairs[0], pairs[1], pairs[2], gp,
                               0.36, start, True, copy=(6,))
        np.testing.assert_allclose(args[6], want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose((e2, o2), (e1, o1), rtol=1e-10)


def _pair_weight_case(u=None):
    """Labels, u (``u``: given instead), f, r and a sparse pattern, with the
    reference a_ij * N and log b_ij on every stored entry (written out with numpy)."""
    rng = _rng(2)
    n = 50
    indptr, indices = _random_csr(rng, n, 9, symmetric=True)
    labels = rng.integers(-1, 4, size=n)
    codes, counts, n_labeled = supervision.class_counts(labels)
    u_drawn = rng.random(n)
    u_drawn[::7] = 0.0
    u = u_drawn if u is None else u
    f, r, floor = 0.3, 0.7, supervision.ATTRACTION_FLOOR
    # a class-size cap that binds for the smaller classes only
    cap = float(np.median(n / counts))
    assert (n / counts < cap).any() and (n / counts > cap).any()
    rows = np.repeat(np.arange(n), np.diff(indptr))
    ci, cj = codes[rows], codes[indices]
    uu = u[rows] * u[indices]
    on = (ci >= 0) & (cj >= 0) & (uu > 0)
    same = on & (ci == cj)
    other = on & (ci != cj)
    ref_a = np.ones(indices.shape[0])
    ref_b = np.zeros(indices.shape[0])
    ref_a[same] = 1.0 + uu[same] * f * np.minimum(n / counts[ci[same]], cap)
    no_i = n_labeled - counts[ci[other]]
    no_j = n_labeled - counts[cj[other]]
    ref_a[other] = np.maximum(1.0 - uu[other] * f * n * 0.5 * (1.0 / no_i + 1.0 / no_j), floor)
    ref_b[other] = np.log1p(uu[other] * r)
    assert same.any() and other.any()
    return dict(indptr=indptr, indices=indices, codes=codes, counts=counts, n_labeled=n_labeled,
                u=u, f=f, r=r, floor=floor, cap=cap, n=n, ref_a=ref_a, ref_b=ref_b)


def check_weighted_affinities():
    c = _pair_weight_case()
    p = _rng(20).random(c["indices"].shape[0])
    table = supervision.prior_table(c["counts"], c["n_labeled"], c["n"], c["f"], cap=c["cap"])
    u = np.where(c["codes"] >= 0, c["u"], 0.0)
    n = c["n"]
    ref = c["ref_a"] * p
    every = np.arange(n, dtype=np.int64)
    (s_p, s_pw), args = _both(supervision._weighted_affinities, c["indptr"], c["indices"], p,
                              c["codes"], u, table, c["floor"], every, np.zeros_like(p), copy=(8,))
    np.testing.assert_allclose(args[8], ref, rtol=1e-12)
    np.testing.assert_allclose((s_p, s_pw), (p.sum(), ref.sum()), rtol=1e-12)
    # some rows only, into weights written before: the others are left as they were
    rows = np.flatnonzero(_rng(23).random(n) < 0.4).astype(np.int64)
    (s_p, s_pw), args = _both(supervision._weighted_affinities, c["indptr"], c["indices"], p,
                              c["codes"], u, table, c["floor"], rows, np.full_like(p, -1.0),
                              copy=(8,))
    at = np.isin(np.repeat(np.arange(n), np.diff(c["indptr"])), rows)
    np.testing.assert_allclose(args[8][at], ref[at], rtol=1e-12)
    assert np.all(args[8][~at] == -1.0)
    np.testing.assert_allclose((s_p, s_pw), (p[at].sum(), ref[at].sum()), rtol=1e-12)


def check_pair_entropy():
    c = _pair_weight_case()
    p = _rng(21).random(c["indices"].shape[0])
    p[::5] = 0.0                    # zero weights add nothing (0 log 0 = 0)
    table = supervision.prior_table(c["counts"], c["n_labeled"], c["n"], c["f"], cap=c["cap"])
    u = np.where(c["codes"] >= 0, c["u"], 0.0)
    every = np.arange(c["n"], dtype=np.int32)
    (d_ent, logb), _ = _both(supervision._pair_entropy, every, c["indptr"], c["indices"], p,
                             c["codes"], u, table, c["floor"], c["r"])
    pw = c["ref_a"] * p
    nz = pw > 0
    ent = (p[p > 0] * np.log(p[p > 0])).sum() + d_ent
    np.testing.assert_allclose(ent, (pw[nz] * np.log(pw[nz])).sum(), rtol=1e-12)
    np.testing.assert_allclose(logb, (pw * c["ref_b"]).sum(), rtol=1e-12)
    # the same sums over a list of pairs: those with a ramping point, plus the settled
    # points' pairs from P's rows with their u, give the whole
    ramping = (c["codes"] >= 0) & (_rng(24).random(c["n"]) < 0.3)
    pairs = tsne_mod._labeled_pairs(c["indptr"], c["indices"], p, c["codes"], ramping)
    (e1, b1), _ = _both(supervision._pair_entropy, *pairs[:4], c["codes"], u, table, c["floor"],
                        c["r"])
    e2, b2 = supervision._pair_entropy(every, c["indptr"], c["indices"], p, c["codes"],
                                       np.where(ramping, 0.0, u), table, c["floor"], c["r"])
    np.testing.assert_allclose((e1 + e2, b1 + b2), (d_ent, logb), rtol=1e-12)
    assert e1 != 0 and e2 != 0 and b1 != 0 and b2 != 0   # both parts have pairs


def check_class_pair_sums():
    """Sums of p and p log p by class pair over the pairs of a set of points,
    whole and as the increment of a set that grew (the added points' rows and
    their neighbours' rows in the old set), against numpy over P's entries."""
    rng = _rng(25)
    n, k = 60, 4
    indptr, indices = _random_csr(rng, n, 8, symmetric=True)
    M = sp.csr_matrix((rng.random(indices.shape[0]), indices, indptr), shape=(n, n))
    M = (M + M.T).tocsr()
    M.sort_indices()
    M.data[::6] = 0.0               # a zero weight adds nothing (0 log 0 = 0)
    codes = rng.integers(-1, k, size=n).astype(np.int32)
    labeled = codes >= 0
    before = labeled & (rng.random(n) < 0.5)
    after = before | (labeled & (rng.random(n) < 0.4))
    assert (after & ~before).any() and before.any()

    def ref(on):
        rows = np.repeat(np.arange(n), np.diff(M.indptr))
        at = on[rows] & on[M.indices] & (M.data > 0)
        key = codes[rows[at]] * k + codes[M.indices[at]]
        p = M.data[at]
        return (np.bincount(key, p, minlength=k * k), np.bincount(key, p * np.log(p), minlength=k * k))

    whole = np.flatnonzero(after)
    (s_p, s_l), _ = _both(supervision._class_pair_sums, M.indptr, M.indices, M.data, codes,
                          after, after, whole, k, 3)
    r_p, r_l = ref(after)
    np.testing.assert_allclose(s_p, r_p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s_l, r_l, rtol=1e-12, atol=1e-15)
    added = np.flatnonzero(after & ~before)
    rows, _ = _both(supervision._with_neighbours, M.indptr, M.indices, added, before)
    near = set(added) | {j for i in added for j in M.indices[M.indptr[i]:M.indptr[i + 1]]
                         if before[j]}
    assert list(rows) == sorted(near)
    new = np.zeros(n, dtype=bool)
    new[added] = True
    (d_p, d_l), _ = _both(supervision._class_pair_sums, M.indptr, M.indices, M.data, codes,
                          after, new, rows, k, 2)
    b_p, b_l = ref(before)
    np.testing.assert_allclose(b_p + d_p, r_p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b_l + d_l, r_l, rtol=1e-12, atol=1e-15)

    # the weights of those pairs at u = 1 written, their pairs of two classes listed and
    # rewritten with another table
    counts = np.bincount(codes[labeled], minlength=k)
    table = supervision.prior_table(counts, labeled.sum(), n, 0.4, cap=2.0)
    floor = supervision.ATTRACTION_FLOOR
    rows_all = np.repeat(np.arange(n), np.diff(M.indptr))
    ci, cj = codes[rows_all], codes[M.indices]

    def ref_pw(on, tab):
        both = on[rows_all] & on[M.indices]
        a = np.where(both, np.maximum(1.0 + tab[np.maximum(ci, 0) * k + np.maximum(cj, 0)], floor),
                     1.0)
        return M.data * a, both & (ci != cj)

    pw0 = np.full(M.data.shape, -1.0)
    _, args = _both(supervision._write_pairs, M.indptr, M.indices, M.data, codes, after, after,
                    whole, table, floor, pw0, copy=(9,))
    pw1 = args[9]
    want, mixed = ref_pw(after, table)
    touched = after[rows_all] & after[M.indices]
    np.testing.assert_allclose(pw1[touched], want[touched], rtol=1e-14)
    assert np.all(pw1[~touched] == -1.0)
    (pos, row), _ = _both(supervision._mixed_entries, M.indptr, M.indices, codes, after, after,
                          whole)
    assert sorted(pos) == list(np.flatnonzero(mixed)) and np.array_equal(row, rows_all[pos])
    # the increment: the earlier set's weights, then the added points' pairs
    pw2 = np.where(before[rows_all] & before[M.indices], ref_pw(before, table)[0], M.data)
    supervision._write_pairs(M.indptr, M.indices, M.data, codes, after, new, rows, table, floor,
                             pw2)
    np.testing.assert_allclose(pw2, np.where(touched, want, M.data), rtol=1e-14)
    (pos_d, _), _ = _both(supervision._mixed_entries, M.indptr, M.indices, codes, after, new, rows)
    _, mixed_before = ref_pw(before, table)
    assert sorted(pos_d) == list(np.flatnonzero(mixed & ~mixed_before))
    other = supervision.prior_table(counts + 3, labeled.sum() + 9, n, 0.4, cap=2.0)
    _, args = _both(supervision._rewrite_entries, pos, row, M.indices, M.data, codes, other,
                    floor, pw1, copy=(7,))
    pw3 = args[7]
    np.testing.assert_allclose(pw3[pos], ref_pw(after, other)[0][pos], rtol=1e-14)
    rest = np.setdiff1d(np.arange(pw1.size), pos)
    assert np.array_equal(pw3[rest], pw1[rest])


def check_sources():
    rng = _rng(26)
    for d in (2, 3):
        Y = rng.normal(size=(40, d))
        codes = rng.integers(-1, 3, size=40).astype(np.int32)
        u = rng.random(40)
        lab = np.flatnonzero(codes >= 0)
        (YL, cl, ul), _ = _both(tsne_mod._sources, Y, codes, u, lab)
        assert YL.flags.c_contiguous and YL.shape == (d, lab.size)
        np.testing.assert_array_equal(YL, Y[lab].T)
        np.testing.assert_array_equal(cl, codes[lab])
        np.testing.assert_array_equal(ul, u[lab])


def check_kept_correction():
    # a kept correction's slope and the correction step adds at an age (tsne._Kept)
    rng = _rng(27)
    for d in (2, 3):
        new, old, rep = (rng.normal(size=(50, d)) for _ in range(3))
        slope, _ = _both(tsne_mod._slope, new, old, 0.25)
        np.testing.assert_allclose(slope, (new - old) * 0.25, rtol=1e-14)
        _, (into, _) = _both(tsne_mod._add_into, rep, new, copy=(0,))
        np.testing.assert_allclose(into, rep + new, rtol=1e-14)
        _, (ahead, _, _, _) = _both(tsne_mod._add_ahead, rep, new, slope, 3.0, copy=(0,))
        np.testing.assert_allclose(ahead, rep + new + 3.0 * slope, rtol=1e-14)


def _exact_reference(Y, codes, u, r):
    diff, t = _pairs(Y)
    np.fill_diagonal(t, 0.0)
    labeled = codes >= 0
    b = 1.0 + r * np.outer(u, u) * (labeled[:, None] & labeled[None, :]
                                    & (codes[:, None] != codes[None, :]))
    rep = ((b * t * t)[:, :, None] * diff).sum(1)
    return rep, (b * t).sum()


def check_exact():
    rng = _rng(3)
    for d in (2, 3):
        Y = rng.normal(size=(70, d)) * 3
        codes = rng.integers(-1, 3, size=70).astype(np.int32)
        u = rng.random(70)
        (rep, z), _ = _both(repulsion._exact, Y, codes, u, 0.8)
        ref_rep, ref_z = _exact_reference(Y, codes, u, 0.8)
        np.testing.assert_allclose(rep, ref_rep, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(z, ref_z, rtol=1e-12)


def check_exact_correction():
    rng = _rng(4)
    for d in (2, 3, 4):             # scalar loops for 2 and 3, a general one for any d
        Y = rng.normal(size=(45, d))
        cls = np.sort(rng.integers(0, 4, size=45)).astype(np.int32)
        uL = rng.random(45)
        first = np.searchsorted(cls, cls, "left")
        last = np.searchsorted(cls, cls, "right")
        (rep, z), _ = _both(repulsion._exact_correction, Y, first, last, uL)
        diff, t = _pairs(Y)
        w = uL[None, :] * t * (cls[:, None] != cls[None, :])
        np.testing.assert_allclose(rep, ((w * t)[:, :, None] * diff).sum(1), rtol=1e-10,
                                   atol=1e-13)
        np.testing.assert_allclose(z, w.sum(1), rtol=1e-12)


def check_sample_correction():
    """The correction on a few target points from the labeled points of other
    classes, against the dense numpy sum of r u_i u_j t_ij^2 (y_i - y_j)."""
    rng = _rng(40)
    for d in (2, 3):                # a scalar loop for 2, a general one otherwise
        Y = rng.normal(size=(60, d)) * 2
        codes = rng.integers(-1, 4, size=60).astype(np.int32)
        u = rng.random(60)
        u[::9] = 0.0
        lab = np.flatnonzero(codes >= 0)
        targets = lab[::5]
        out, _ = _both(tsne_mod._sample_correction, Y[targets], codes[targets], u[targets],
                       np.ascontiguousarray(Y[lab].T), codes[lab], u[lab], 0.7)
        diff, t = _pairs(Y)
        w = 0.7 * u[:, None] * u[None, :] * t * t * (codes[:, None] != codes[None, :])
        w *= (codes[:, None] >= 0) & (codes[None, :] >= 0)
        ref = (w[:, :, None] * diff).sum(1)[targets]
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(tsne_mod._sample(Y, targets, codes, u, lab, 0.7), ref,
                                   rtol=1e-10, atol=1e-13)


def check_stray_sums():
    """Per target, the sums over a range of points (a class's, or its strays'):
    u_j t_ij^2 (y_i - y_j) and u_j t_ij, against the dense numpy sums."""
    rng = _rng(41)
    for d in (2, 3, 4):             # scalar loops for 2 and 3, a general one for any d
        Y = rng.normal(size=(50, d)) * 2
        uL = rng.random(50)
        targets = rng.choice(50, 20, replace=False)
        lo = rng.integers(0, 30, size=20)
        hi = lo + rng.integers(0, 21, size=20)
        (rep, z), _ = _both(repulsion._stray_sums, Y, uL, targets, lo, hi)
        diff, t = _pairs(Y)
        for k, i in enumerate(targets):
            j = slice(lo[k], hi[k])
            w = uL[j] * t[i, j]
            np.testing.assert_allclose(rep[k], ((w * t[i, j])[:, None] * diff[i, j]).sum(0),
                                       rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(z[k], w.sum(), rtol=1e-12, atol=1e-13)


def check_class_windows():
    """Each class's window (origin, side) and strays, against a numpy search
    of every side's window (the most points of the class on each axis, the
    lowest such origin) and the cost of each side."""
    rng = _rng(42)
    n_boxes, p, ppn, margin, near_share, share = 40, 4, 16.0, 2, 0.01, 0.02
    cls = rng.integers(0, 3, size=600)
    centre = np.array([[5, 5], [30, 8], [20, 30]])
    bx = np.clip(centre[cls] + rng.integers(-3, 4, size=(600, 2)), 0, n_boxes - 1)
    bx[:6] = rng.integers(0, n_boxes, size=(6, 2))      # a few anywhere
    sides = repulsion._window_sides(n_boxes)
    (origin, side, stray, cost), _ = _both(repulsion._class_windows, bx, cls, 3, sides, p, ppn,
                                           margin, near_share, share)
    total = 0.0
    for c in range(3):
        b = bx[cls == c]
        best = None
        for s in sides:
            o = [int(np.argmax([np.sum((b[:, k] >= o) & (b[:, k] < o + s))
                                for o in range(n_boxes - s + 1)])) for k in range(2)]
            out = int(np.sum(np.any((b < o) | (b >= np.add(o, s)), axis=1)))
            near = out - int(np.sum(np.any((b < np.subtract(o, margin))
                                           | (b >= np.add(o, s + margin)), axis=1)))
            if near > near_share * b.shape[0] or out > share * b.shape[0]:
                continue
            cst = float(s * p) ** 2 + 2.0 * out * b.shape[0] / ppn
            if best is None or cst < best[0]:
                best = (cst, s, o)
        total += best[0]
        assert side[c] == best[1] and list(origin[c]) == best[2]
        mine = cls == c
        np.testing.assert_array_equal(stray[mine], np.any((bx[mine] < origin[c])
                                                          | (bx[mine] >= origin[c] + side[c]), axis=1))
    assert cost == pytest.approx(total)
    assert stray.any() and (side < n_boxes).all()


def check_traverse_groups():
    """Through its two callers: with theta = 0 every internal node is
    opened, so the tree sums equal the all-pairs sums; at theta = 0.5 they
    stay close."""
    rng = _rng(5)
    for d in (2, 3):
        Y = rng.normal(size=(300, d)) * 4
        Y[10] = Y[11]               # a duplicate shares a leaf
        n = Y.shape[0]
        ref_rep, ref_z = _exact_reference(Y, np.full(n, -1, dtype=np.int32), np.zeros(n), 0.0)
        rep, z = repulsion.bh_repulsion(Y, theta=0.0)
        np.testing.assert_allclose(rep, ref_rep, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(z, ref_z, rtol=1e-10)
        rep, z = repulsion.bh_repulsion(Y, theta=0.5)
        assert np.linalg.norm(rep - ref_rep) < 0.02 * np.linalg.norm(ref_rep)
        assert abs(z - ref_z) < 0.02 * ref_z
        # class-aware: a tree of the labeled points, per-class masses
        codes = rng.integers(-1, 3, size=n).astype(np.int32)
        u = rng.random(n)
        exact_rep, exact_z, exact = repulsion.supervision_correction(Y, codes, u, 0.9, exact_max_pairs=10 ** 9)
        assert exact
        tree_rep, tree_z, exact = repulsion.supervision_correction(Y, codes, u, 0.9, theta=0.0,
                                                                    exact_max_pairs=0)
        assert not exact
        np.testing.assert_allclose(tree_rep, exact_rep, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(tree_z, exact_z, rtol=1e-10)
    # and the kernel itself, fresh and cached, on one tree
    Ys = np.ascontiguousarray(Y)
    children, half, internal, mass, wsum, cmass, cwsum = repulsion._tree(
        Ys, np.ones(n), np.zeros(n, dtype=np.int32), 1)
    starts, gcls = repulsion._group_starts(np.full(n, -1, dtype=np.int64))
    (rep, z), _ = _both(repulsion._traverse_groups, Ys, starts, gcls, children, internal,
                        (2.0 * half) ** 2, mass, wsum, cmass, cwsum, 0.0)
    np.testing.assert_allclose(rep, ref_rep, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(z.sum() - n, ref_z, rtol=1e-10)


def check_morton_codes():
    rng = _rng(6)
    for d, bits in ((2, 16), (3, 10)):
        Y = rng.random((40, d))
        lo = Y.min(axis=0)
        scale = (2 ** bits - 1) / np.ptp(Y, axis=0).max()
        code, _ = _both(repulsion._morton_codes, Y, lo, scale, bits)
        q = np.clip((Y - lo) * scale, 0, 2 ** bits - 1).astype(np.uint64)
        ref = np.zeros(40, dtype=np.uint64)
        for b in range(bits):
            for k in range(d):
                ref |= ((q[:, k] >> np.uint64(b)) & np.uint64(1)) << np.uint64(b * d + k)
        np.testing.assert_array_equal(code, ref)


def _lagrange_reference(s, p):
    nodes = np.arange(p)
    return np.array([np.prod([(s - b) / (a - b) for b in nodes if b != a]) for a in nodes])


def check_interp_weights():
    rng = _rng(7)
    Y = rng.random((30, 2)) * 10 - 5
    lo, n_boxes, p = float(Y.min()), 6, 3
    h = (float(Y.max()) - lo) / n_boxes * (1 + 1e-9)
    (first, wts), _ = _both(repulsion._interp_weights, Y, lo, h, n_boxes, p)
    delta = h / p
    for i in range(30):
        for k in range(2):
            bx = min(int((Y[i, k] - lo) / h), n_boxes - 1)
            assert first[i, k] == bx * p
            np.testing.assert_allclose(wts[i, k], _lagrange_reference((Y[i, k] - lo) / delta - bx * p - 0.5, p),
                                       rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(wts.sum(axis=2), 1.0, rtol=1e-12)


def _grid_inputs(seed, n=50, p=3, n_nodes=12):
    rng = _rng(seed)
    first = rng.integers(0, n_nodes - p + 1, size=(n, 2)).astype(np.int64)
    wts = rng.normal(size=(n, 2, p))
    return rng, first, wts


def check_spread():
    rng, first, wts = _grid_inputs(8)
    n = first.shape[0]
    charges = rng.random(n)
    grid = rng.integers(-1, 3, size=n)      # -1: on no grid (a stray)
    p, n_nodes = wts.shape[2], 12
    ref = np.zeros((3, n_nodes, n_nodes))
    for i in range(n):
        if grid[i] >= 0:
            w = np.outer(wts[i, 0], wts[i, 1])
            ref[grid[i], first[i, 0]:first[i, 0] + p, first[i, 1]:first[i, 1] + p] += charges[i] * w
    for parts in (1, 3):
        W, _ = _both(repulsion._spread, first, wts, grid, charges, 3, n_nodes, parts)
        assert W.dtype == np.float32
        np.testing.assert_allclose(W, ref, rtol=1e-5, atol=1e-5)


def check_gather():
    rng, first, wts = _grid_inputs(9)
    n, p = first.shape[0], wts.shape[2]
    grid = rng.integers(-1, 3, size=n)
    V = rng.normal(size=(3, 3, 12, 12)).astype(np.float32)
    out, _ = _both(repulsion._gather, first, wts, grid, V)

    def at(i, g, c):
        return np.einsum("a,b,ab->", wts[i, 0], wts[i, 1],
                         V[g, c, first[i, 0]:first[i, 0] + p, first[i, 1]:first[i, 1] + p])
    ref = np.array([[at(i, grid[i], c) if grid[i] >= 0 else 0.0 for c in range(3)]
                    for i in range(n)])
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def check_weighted_power():
    """Parseval's sum on rfft halves, against numpy: the middle columns twice."""
    rng = _rng(43)
    for M in (8, 9):
        H = M // 2 + 1
        what = (rng.normal(size=(3, M, H)) + 1j * rng.normal(size=(3, M, H))).astype(np.complex64)
        # t's transform, real (``_kernel_spectra``)
        khat = rng.normal(size=(M, H)).astype(np.float32)
        got, _ = _both(repulsion._weighted_power, khat, what, M % 2 == 0)
        wgt = np.full(H, 2.0)
        wgt[0] = 1.0
        if M % 2 == 0:
            wgt[-1] = 1.0
        power = (np.abs(what.astype(np.complex128)) ** 2).sum(0)
        np.testing.assert_allclose(got, (khat * power * wgt).sum(), rtol=1e-10)


def check_labeled_rows():
    rng = _rng(44)
    n, L, p = 50, 20, 4
    first = rng.integers(0, 40, size=(n, 2))
    wts = rng.normal(size=(n, 2, p))
    Y = rng.normal(size=(n, 2))
    active = np.sort(rng.choice(n, L, replace=False))
    for take in (active, np.arange(L)):     # the plain repulsion's grid, or the labeled points' own
        first_L = first[take] - 3
        order = rng.permutation(L)
        (f, w, YL), _ = _both(repulsion._labeled_rows, first_L, wts, Y, order, take, active)
        np.testing.assert_array_equal(f, first_L[order])
        np.testing.assert_array_equal(w, wts[take[order]])
        np.testing.assert_array_equal(YL, Y[active[order]])


def check_init_heaps():
    cand_v = np.zeros((5, 4), dtype=np.float32)
    cand_i = np.zeros((5, 4), dtype=np.int64)
    _, (v, i) = _both(nn._init_heaps, cand_v, cand_i, copy=(0, 1))
    assert np.all(np.isinf(v)) and np.all(i == -1)


def _knn_inputs(seed, n=80, dim=6):
    X = _rng(seed).normal(size=(n, dim))
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return X, D2


def check_select_block():
    X, D2 = _knn_inputs(10)
    X32 = X.astype(np.float32)
    sq = (X32 * X32).sum(1)
    start, rows, col0, cols, m = 20, 10, 5, 70, 6
    G = (-2.0 * X32[start:start + rows]) @ X32[col0:col0 + cols].T
    cand_v = np.full((rows, m), np.inf, dtype=np.float32)
    cand_i = np.full((rows, m), -1, dtype=np.int64)
    _, args = _both(nn._select_block, G, sq[col0:col0 + cols], start, col0, cand_v, cand_i, copy=(4, 5))
    v, idx = args[4], args[5]
    for r in range(rows):
        row = start + r
        cols_r = [c for c in range(col0, col0 + cols) if c != row]
        want = sorted(cols_r, key=lambda c: D2[row, c])[:m]
        assert sorted(idx[r]) == sorted(want)     # the m nearest columns, the row itself skipped
        assert v[r, 0] == v[r].max()              # still a max-heap


def check_refine():
    X, D2 = _knn_inputs(11)
    n, k, m, start, R = X.shape[0], 4, 7, 30, 12
    rng = _rng(11)
    cand_i = np.array([rng.choice(np.delete(np.arange(n), start + r), m, replace=False)
                       for r in range(R)], dtype=np.int64)
    cand_i[0, -1] = -1              # an empty heap slot
    cand_v = np.array([[D2[start + r, j] if j >= 0 else np.inf for j in cand_i[r]]
                       for r in range(R)], dtype=np.float32)
    out_i = np.full((n, k), -7, dtype=np.int32)
    out_d = np.zeros((n, k))
    redo = np.zeros(R, dtype=np.bool_)
    _, args = _both(nn._refine, X, start, cand_v, cand_i, k, np.zeros(R), True, out_i, out_d, redo,
                    copy=(7, 8, 9))
    out_i, out_d, redo = args[7], args[8], args[9]
    assert not redo.any()
    for r in range(R):
        row = start + r
        valid = cand_i[r][cand_i[r] >= 0]
        want = valid[np.argsort(D2[row, valid], kind="stable")[:k]]
        np.testing.assert_array_equal(out_i[row], want)
        np.testing.assert_allclose(out_d[row], np.sqrt(D2[row, want]), rtol=1e-12)
    assert np.all(out_i[:start] == -7)         # other rows untouched
    # not complete and a float32 error bound wider than any gap: every row is
    # re-searched, except row 0, whose empty slot (inf) is a proof
    redo2 = np.zeros(R, dtype=np.bool_)
    nn._refine(X, start, cand_v, cand_i, k, np.full(R, 1e9), False, out_i.copy(), out_d.copy(), redo2)
    assert not redo2[0] and redo2[1:].all()


def check_brute_rows():
    X, D2 = _knn_inputs(12)
    n, k = X.shape[0], 5
    rows = np.array([0, 17, 79], dtype=np.int64)
    out_i = np.zeros((n, k), dtype=np.int32)
    out_d = np.zeros((n, k))
    _, args = _both(nn._brute_rows, X, rows, k, out_i, out_d, copy=(3, 4))
    out_i, out_d = args[3], args[4]
    for row in rows:
        d = D2[row].copy()
        d[row] = np.inf
        want = np.argsort(d, kind="stable")[:k]
        np.testing.assert_array_equal(out_i[row], want)
        np.testing.assert_allclose(out_d[row], np.sqrt(d[want]), rtol=1e-12)
    # the public function agrees with brute force
    ind, dist, _ = nn.nearest_neighbors(X, k)
    D = np.sqrt(D2 + np.diag(np.full(n, np.inf)))
    np.testing.assert_allclose(dist, np.sort(D, axis=1)[:, :k], rtol=1e-12)


def check_rerank():
    X, D2 = _knn_inputs(14)
    n, k = X.shape[0], 4
    rng = _rng(15)
    cand = np.stack([rng.choice(n, 7, replace=False) for _ in range(n)]).astype(np.int64)
    cand[0, :] = -1                      # no candidates: the row is to be redone
    cand[1, :5] = -1
    cand[2, 0] = 2                       # the row itself is skipped
    out_i = np.zeros((n, k), dtype=np.int32)
    out_d = np.zeros((n, k))
    redo = np.zeros(n, dtype=np.bool_)
    _, args = _both(nn._rerank, X, cand, k, out_i, out_d, redo, copy=(3, 4, 5))
    out_i, out_d, redo = args[3], args[4], args[5]
    for i in range(n):
        valid = [j for j in cand[i] if j >= 0 and j != i]
        assert redo[i] == (len(valid) < k)
        if redo[i]:
            continue
        want = sorted(valid, key=lambda j: (D2[i, j], list(cand[i]).index(j)))[:k]
        np.testing.assert_array_equal(out_i[i], want)
        np.testing.assert_allclose(out_d[i], np.sqrt(D2[i, want]), rtol=1e-12)


def _symmetric_inputs(seed, n=30, k=5):
    rng = _rng(seed)
    ind = np.stack([rng.choice(n, k, replace=False) for _ in range(n)]).astype(np.int32)
    cond = rng.random((n, k))
    cond[:, -1] = 0.0                    # an underflowed kernel: dropped
    indptr = affinity._in_degrees(ind, n)
    cols = np.empty(indptr[-1], dtype=np.int32)
    vals = np.empty(indptr[-1])
    affinity._scatter_transpose(ind, cond, indptr, cols, vals)
    dense = np.zeros((n, n))
    for i in range(n):
        for t in range(k):
            dense[i, ind[i, t]] += cond[i, t]
    dense = dense + dense.T
    np.fill_diagonal(dense, 0.0)         # a row listed as its own neighbour adds nothing
    return n, indptr, cols, vals, dense


def check_merge_rows():
    n, indptr, cols, vals, dense = _symmetric_inputs(16)
    nnz = np.zeros(n, dtype=np.int64)
    _, args = _both(affinity._merge_rows, indptr, cols, vals, nnz, copy=(1, 2, 3))
    cols, vals, nnz = args[1], args[2], args[3]
    for i in range(n):
        lo = indptr[i]
        c = cols[lo:lo + nnz[i]]
        assert np.all(np.diff(c) > 0)
        np.testing.assert_array_equal(c, np.flatnonzero(dense[i]))
        np.testing.assert_allclose(vals[lo:lo + nnz[i]], dense[i, c], rtol=1e-12)


def check_compact():
    n, indptr, cols, vals, dense = _symmetric_inputs(17)
    nnz = np.zeros(n, dtype=np.int64)
    affinity._merge_rows(indptr, cols, vals, nnz)
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nnz, out=new_indptr[1:])
    out_cols = np.zeros(new_indptr[-1], dtype=np.int32)
    out_vals = np.zeros(new_indptr[-1])
    _, args = _both(affinity._compact, indptr, cols, vals, new_indptr, out_cols, out_vals, 0.5,
                    copy=(4, 5))
    got = np.zeros((n, n))
    for i in range(n):
        lo, hi = new_indptr[i], new_indptr[i + 1]
        got[i, args[4][lo:hi]] = args[5][lo:hi]
    np.testing.assert_allclose(got, 0.5 * dense, rtol=1e-12)


def check_p_log_p():
    rng = _rng(45)
    p = rng.random(1000)
    p[::7] = 0.0                    # entries of P stored as 0: no term
    got, _ = _both(tsne_mod._p_log_p, p)
    q = p[p > 0]
    np.testing.assert_allclose(got, np.dot(q, np.log(q)), rtol=1e-12)


def check_parallel_copy():
    a = _rng(46).random(1001)
    got, _ = _both(tsne_mod._parallel_copy, a)
    np.testing.assert_array_equal(got, a)
    assert got.dtype == a.dtype and not np.shares_memory(got, a)


def check_descend():
    """One move in place against numpy's: gains, momentum, the bounded step, the centring."""
    rng = _rng(47)
    for d in (2, 3):
        n = 501
        Y = rng.normal(size=(n, d))
        update = rng.normal(size=(n, d))
        gains = rng.uniform(0.005, 3.0, size=(n, d))
        grad = rng.normal(size=(n, d)) * np.where(rng.random((n, 1)) < 0.1, 50.0, 1.0)
        for max_step in (0.0, 4.0):
            _, (Y1, u1, g1, *_) = _both(tsne_mod._descend, Y, update, gains, grad, 0.6, 0.9,
                                         max_step, copy=(0, 1, 2))
            g = np.where(grad * update < 0.0, gains + 0.2, gains * 0.8)
            np.maximum(g, 0.01, out=g)
            u = 0.6 * update - 0.9 * g * grad
            if max_step > 0:
                norm = np.linalg.norm(u, axis=1)
                assert (norm > max_step).sum() > 10     # the bound is exercised
                u[norm > max_step] *= (max_step / norm[norm > max_step])[:, None]
            want = Y + u
            want -= want.mean(axis=0)
            np.testing.assert_allclose(g1, g, rtol=1e-12)
            np.testing.assert_allclose(u1, u, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(Y1, want, rtol=1e-10, atol=1e-12)


def check_permuted_csr():
    """P[perm][:, perm] (each row's entries in their old order), against
    scipy's indexing; the inverse permutation, and the input's index dtypes kept."""
    rng = _rng(31)
    n = 60
    P = sp.random(n, n, density=0.2, format="csr", random_state=31, dtype=np.float64)
    P.indices = P.indices.astype(np.int32)
    perm = rng.permutation(n).astype(np.int64)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n)
    (ptr, ind, dat), _ = _both(tsne_mod._permuted_csr, P.indptr, P.indices, P.data, perm, inv)
    ref = P[perm].tocsr()  # rows moved, entries in their old order: then the columns renamed
    np.testing.assert_array_equal(ptr, ref.indptr)
    np.testing.assert_array_equal(ind, inv[ref.indices])
    np.testing.assert_array_equal(dat, ref.data)
    assert ptr.dtype == P.indptr.dtype and ind.dtype == P.indices.dtype
    Q, inv2 = tsne_mod._permute(P, perm)
    np.testing.assert_array_equal(inv2, inv)
    np.testing.assert_array_equal(Q.toarray(), P.toarray()[np.ix_(perm, perm)])
    np.testing.assert_array_equal(tsne_mod._permute(Q, inv)[0].toarray(), P.toarray())


CHECKS = {
    "tensorboard_al_plugin.tsne.tsne._permuted_csr": check_permuted_csr,
    "tensorboard_al_plugin.tsne.tsne._p_log_p": check_p_log_p,
    "tensorboard_al_plugin.tsne.tsne._parallel_copy": check_parallel_copy,
    "tensorboard_al_plugin.tsne.tsne._descend": check_descend,
    "tensorboard_al_plugin.tsne.affinity._conditional_probabilities": check_conditional_probabilities,
    "tensorboard_al_plugin.tsne.tsne._attraction": check_attraction,
    "tensorboard_al_plugin.tsne.tsne._attraction_prior": check_attraction_prior,
    "tensorboard_al_plugin.tsne.tsne._sample_correction": check_sample_correction,
    "tensorboard_al_plugin.tsne.tsne._labeled_pairs": check_attraction_prior,
    "tensorboard_al_plugin.tsne.tsne._attraction_scaled": check_attraction_scaled,
    "tensorboard_al_plugin.tsne.tsne._scale_by_table": check_attraction_scaled,
    "tensorboard_al_plugin.tsne.supervision._weighted_affinities": check_weighted_affinities,
    "tensorboard_al_plugin.tsne.supervision._pair_entropy": check_pair_entropy,
    "tensorboard_al_plugin.tsne.supervision._class_pair_sums": check_class_pair_sums,
    "tensorboard_al_plugin.tsne.supervision._with_neighbours": check_class_pair_sums,
    "tensorboard_al_plugin.tsne.supervision._write_pairs": check_class_pair_sums,
    "tensorboard_al_plugin.tsne.supervision._mixed_entries": check_class_pair_sums,
    "tensorboard_al_plugin.tsne.supervision._rewrite_entries": check_class_pair_sums,
    "tensorboard_al_plugin.tsne.tsne._sources": check_sources,
    "tensorboard_al_plugin.tsne.tsne._slope": check_kept_correction,
    "tensorboard_al_plugin.tsne.tsne._add_into": check_kept_correction,
    "tensorboard_al_plugin.tsne.tsne._add_ahead": check_kept_correction,
    "tensorboard_al_plugin.tsne.repulsion._exact": check_exact,
    "tensorboard_al_plugin.tsne.repulsion._exact_correction": check_exact_correction,
    "tensorboard_al_plugin.tsne.repulsion._stray_sums": check_stray_sums,
    "tensorboard_al_plugin.tsne.repulsion._traverse_groups": check_traverse_groups,
    "tensorboard_al_plugin.tsne.repulsion._morton_codes": check_morton_codes,
    "tensorboard_al_plugin.tsne.repulsion._interp_weights": check_interp_weights,
    "tensorboard_al_plugin.tsne.repulsion._spread": check_spread,
    "tensorboard_al_plugin.tsne.repulsion._gather": check_gather,
    "tensorboard_al_plugin.tsne.repulsion._weighted_power": check_weighted_power,
    "tensorboard_al_plugin.tsne.repulsion._labeled_rows": check_labeled_rows,
    "tensorboard_al_plugin.tsne.nearest_neighbors._brute_rows": check_brute_rows,
    "tensorboard_al_plugin.tsne.nearest_neighbors._rerank": check_rerank,
    "tensorboard_al_plugin.tsne.affinity._merge_rows": check_merge_rows,
    "tensorboard_al_plugin.tsne.affinity._compact": check_compact,
}

# serial kernels (each thread of the exact neighbour search runs them on its
# own blocks), checked the same way
SERIAL_CHECKS = {
    "tensorboard_al_plugin.tsne.nearest_neighbors._init_heaps": check_init_heaps,
    "tensorboard_al_plugin.tsne.nearest_neighbors._select_block": check_select_block,
    "tensorboard_al_plugin.tsne.nearest_neighbors._refine": check_refine,
    "tensorboard_al_plugin.tsne.repulsion._class_windows": check_class_windows,
}


def test_every_parallel_kernel_has_a_check():
    found = set(_parallel_kernels())
    assert found, "no parallel numba kernel found: the package walk is broken"
    missing = sorted(found - set(CHECKS))
    assert not missing, f"parallel numba kernels without a check in {__file__}: {missing}"
    gone = sorted(set(CHECKS) - found)
    assert not gone, f"checks for kernels that are no longer parallel numba kernels: {gone}"


@pytest.mark.parametrize("name", sorted(CHECKS) + sorted(SERIAL_CHECKS))
def test_kernel_compiles_and_matches_numpy(name):
    {**CHECKS, **SERIAL_CHECKS}[name]()


def test_tsne_prepare_and_step_run():
    """The report of issue 10: prepare() compiled the affinity kernel and failed on 3.12+."""
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
    X = _rng(13).normal(size=(120, 8))
    run = SemiSupervisedTSNE(n_components=2, perplexity=20).prepare(X)
    run.step(5)
    assert np.all(np.isfinite(run.positions))
