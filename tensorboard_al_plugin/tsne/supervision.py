"""Supervision terms of Luus et al. (arXiv:1901.00675, section 3).

Labels enter the t-SNE gradient in two places:

* attraction priors a_ij on the input affinities: with both i and j labeled,
  a_ij = 1/N + u_i u_j f / N_s for the same label and 1/N - u_i u_j f / N_o
  for different labels (else 1/N), symmetrised and clipped at a floor; the
  attraction uses p'_ij = a_ij p_ij / sum_kl a_kl p_kl. Unlike the paper, the
  same-label term's N / N_s (in units of 1/N) is capped at
  CLASS_SIZE_FACTOR_CAP, so that few labels in a large map do not collapse.
* repulsion weights b_ij = 1 + u_i u_j r for two labeled points of different
  labels (else 1); the repulsion uses q'_ij = b_ij t_ij / sum_kl b_kl t_kl.

u_i is the point learning rate: 0 until point i is labeled (and before the
supervision start epoch s), then a linear ramp to 1 over K epochs.

Everything here is O(N) or O(nnz(P)). The weights are written out
(``_weighted_affinities``) once per change of labels, with u_i for the points
whose ramp has ended and 0 for the others; while some u_i ramp, the
attraction adds a_ij - 1 over the labeled pairs with such a point only
(``tsne._attraction_prior`` with ``prior_table``); the logarithms of the
objective's layout-free part are summed over the pairs of points with
u > 0 (``_pair_entropy``) when an objective is asked for.

Pairs of two settled points (u = 1) have weights that depend on their
classes only, so they also go by class pair (``ClassPairSums``): the
objective's share of them, the weights' total, and, on a change of labels,
the pairs to rewrite (those of two classes) and to write (those of the
points settled since).
"""
import numba
import numpy as np

# a_ij is clipped here (in units of 1/N) so that a large label importance
# cannot make an attraction weight zero or negative.
ATTRACTION_FLOOR = 1e-3
# The class-size factor N / N_s of the same-label prior is capped here (K):
# a_ij = 1 + u_i u_j f min(N / N_s, K). Uncapped, it grows with N / N_s: the
# first few groups labeled in a large map (N_s = 21 of N = 70,000: 3,333) pull
# together with thousands of times the attraction of their unlabeled
# neighbours and collapse into one clump that hides their thumbnails. With
# K = 2.5 and the default f = 0.1 the same-label attraction is at most 1.25
# times the unlabeled one, which keeps labeled thumbnails about as far apart
# as in the unsupervised layout (benchmarks/label_legibility.py measures it;
# README "Layout parameters" has the numbers). inf gives the paper's formula.
CLASS_SIZE_FACTOR_CAP = 2.5
# Defaults of f and r (the engine's, the live sessions' and the tab's, whose
# form repeats them in frontend/src/state.ts), chosen with
# benchmarks/label_legibility.py: with the cap above, labeled thumbnails stay
# 0.83 to 0.86 times as far apart as in unsupervised t-SNE (uncapped f = r = 0.1:
# 0.17 to 0.47 times), and the unlabeled points' 4-NN accuracy from the labeled
# ones is the unsupervised layout's within 0.005 (uncapped: up to 0.024 lower;
# r = 1 and r = 0.1 tie within noise).
DEFAULT_LABEL_IMPORTANCE = 0.1
DEFAULT_REPULSION_EMPHASIS = 1.0


def point_learning_rates(labels, labeled_since, iteration, supervision_start, epochs):
    """u_i at ``iteration`` (float64 (N,)).

    labels : (N,) int, -1 = unlabeled.
    labeled_since : (N,) int, iteration at which i got its current label.
    supervision_start : int, epoch s before which labels have no effect.
    epochs : int, K; the ramp from 0 to 1 takes K iterations (K = 0: at once).
    """
    labeled = labels >= 0
    u = np.zeros(labels.shape[0])
    if iteration < supervision_start:
        return u
    if epochs <= 0:
        u[labeled] = 1.0
        return u
    begin = np.maximum(labeled_since, supervision_start)
    u[labeled] = np.clip((iteration - begin[labeled]) / float(epochs), 0.0, 1.0)
    return u


def class_counts(labels):
    """(codes, counts, n_labeled): labels remapped to 0..C-1 (-1 stays) and the
    number of labeled points per class."""
    labeled = labels >= 0
    if not labeled.any():
        return np.full(labels.shape[0], -1, dtype=np.int32), np.zeros(0, dtype=np.int64), 0
    given = labels[labeled]
    top = int(given.max())
    if top < 4 * labels.shape[0] + 1024:
        # class ids are small: count them and number the used ones in order, in O(N) (np.unique
        # sorts: 80 ms for 500,000 labels, on every change of labels in a 10^6-point session)
        per_id = np.bincount(given, minlength=top + 1)
        used = per_id > 0
        number = np.cumsum(used) - 1
        codes = np.full(labels.shape[0], -1, dtype=np.int32)
        codes[labeled] = number[given]
        return codes, per_id[used].astype(np.int64), int(given.shape[0])
    uniq, inv = np.unique(given, return_inverse=True)
    codes = np.full(labels.shape[0], -1, dtype=np.int32)
    codes[labeled] = inv
    return codes, np.bincount(inv, minlength=uniq.shape[0]), int(given.shape[0])


def prior_table(counts, n_labeled, n, label_importance, cap=None):
    """G (C * C,) float64, row-major: a_ij * N = max(1 + u_i u_j G[c_i, c_j],
    ATTRACTION_FLOOR) for two labeled points of classes c_i, c_j (1 when either
    is unlabeled: u = 0 there).

    Same class: G = f min(N / N_s, cap). Different classes: G = -f N / N_o, with
    N_o (the labeled points of the other classes) differing between the two
    classes, so the mean of 1 / N_o over both keeps a_ij symmetric. A table of
    the classes' factors leaves the per-pair work to one look-up, with no
    division or branch."""
    cap = CLASS_SIZE_FACTOR_CAP if cap is None else cap
    counts = np.asarray(counts, dtype=np.float64)
    f = float(label_importance)
    c = counts.shape[0]
    if c == 0:
        return np.zeros(0)
    with np.errstate(divide="ignore"):
        # N_o = 0 only when one class holds every label: then no pair of
        # different classes exists and that row of the table is never read
        inv_other = np.where(n_labeled - counts > 0, 1.0 / (n_labeled - counts), 0.0)
    G = -f * n * 0.5 * (inv_other[:, None] + inv_other[None, :])
    G[np.diag_indices(c)] = f * np.minimum(n / counts, cap)
    return np.ascontiguousarray(G.ravel())


@numba.njit(inline="always")
def prior_factor(uu, g, floor):
    """a_ij * N for a pair with u_i u_j = uu and table entry g = G[c_i, c_j]
    (``prior_table``): the one place the kernels evaluate the prior."""
    return max(1.0 + uu * g, floor)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _weighted_affinities(indptr, indices, p, codes, u, table, floor, rows, pw):
    """Writes a_ij p_ij * N into ``pw`` (nnz,) on the entries of ``rows``
    (``prior_table``: a_ij * N = max(1 + u_i u_j G[c_i, c_j], floor); p_ij
    where u_i u_j = 0) and returns (sum of p, sum of pw) over those rows."""
    m = rows.shape[0]
    c = int(np.sqrt(table.shape[0]) + 0.5)
    sp_ = np.zeros(m)
    sw = np.zeros(m)
    for r in numba.prange(m):
        i = rows[r]
        ci = codes[i]
        ui = u[i] if ci >= 0 else 0.0
        s0 = 0.0
        s1 = 0.0
        if ui == 0.0:
            for e in range(indptr[i], indptr[i + 1]):
                pw[e] = p[e]
                s0 += p[e]
            s1 = s0
        else:
            g = ci * c
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                v = p[e] * prior_factor(ui * u[j], table[g + max(codes[j], 0)], floor)
                pw[e] = v
                s0 += p[e]
                s1 += v
        sp_[r] = s0
        sw[r] = s1
    return sp_.sum(), sw.sum()


def weighted_affinities(P, codes, u, table, rows=None, out=None):
    """(pw, sum of pw, sum of p), pw = a_ij p_ij * N aligned with P.data (nnz,):
    the attraction's unnormalised weights; p'_ij is pw divided by its sum over
    all of P. ``table`` from ``prior_table``; u is 0 for unlabeled points.
    ``rows``: write only these rows (int array) into ``out`` and sum over
    them (default: every row, into a new array)."""
    if codes.shape[0] != P.shape[0]:
        raise ValueError("labels: length does not match the number of points")
    if rows is None:
        rows = np.arange(P.shape[0], dtype=np.int64)
    pw = np.empty(P.data.shape[0]) if out is None else out
    s_p, s_pw = _weighted_affinities(P.indptr, P.indices, P.data, codes, u, table,
                                     ATTRACTION_FLOOR, rows, pw)
    return pw, s_pw, s_p


@numba.njit(parallel=True, fastmath=True, cache=True)
def _pair_entropy(rows, ptr, cols, pv, codes, u, table, floor, r):
    """(sum (pw log pw - p log p), sum pw log b) over the entries between two
    points with u > 0 (the only ones whose weight pw = a_ij p_ij * N differs
    from p) of a list of rows (row rows[k]'s entries ptr[k]:ptr[k + 1] of
    cols and their p_ij in pv: P itself with rows 0..N-1, or
    ``tsne._labeled_pairs``), with b_ij = 1 + u_i u_j r on pairs of
    different labels: with sum p log p over all of P (a constant), the parts
    of the objective that do not depend on the layout, evaluated only when
    the objective is asked for (rows with u_i = 0 are skipped)."""
    m = rows.shape[0]
    c = int(np.sqrt(table.shape[0]) + 0.5)
    ent = np.zeros(m)
    lb = np.zeros(m)
    for k in numba.prange(m):
        i = rows[k]
        ui = u[i]
        if ui == 0.0:
            continue
        ci = codes[i]
        g = ci * c
        s = 0.0
        t = 0.0
        for e in range(ptr[k], ptr[k + 1]):
            j = cols[e]
            uu = ui * u[j]
            if uu == 0.0:
                continue
            cj = codes[j]
            pe = pv[e]
            v = pe * prior_factor(uu, table[g + cj], floor)
            if v > 0.0:
                s += v * np.log(v)
            if pe > 0.0:
                s -= pe * np.log(pe)
            if r != 0.0 and cj != ci:
                t += v * np.log1p(uu * r)
        ent[k] = s
        lb[k] = t
    return ent.sum(), lb.sum()


def weight_entropy(P, codes, u, table, repulsion_emphasis, pairs=None):
    """(sum (pw log pw - p log p), sum pw log b_ij) over the entries between two
    points with u > 0, pw = a_ij p_ij * N (``table`` from ``prior_table``; u is
    0 for unlabeled points): those of P (CSR), or of ``pairs`` (a
    ``tsne._labeled_pairs`` list) when given."""
    if pairs is None:
        lists = (np.arange(P.shape[0], dtype=np.int32), P.indptr, P.indices, P.data)
    else:
        lists = pairs[:4]
    return _pair_entropy(*lists, codes, u, table, ATTRACTION_FLOOR, float(repulsion_emphasis))


# ``ClassPairSums`` keeps a (C, C) table per chunk of rows while it sums: above
# this many classes the settled pairs' entropy is summed pair by pair and a change
# of labels writes every settled row's weights (``TSNERun._write_settled``) instead.
CLASS_PAIR_MAX_CLASSES = 256


@numba.njit(parallel=True, cache=True)
def _class_pair_sums(indptr, indices, p, codes, on, new, rows, n_classes, n_chunks):
    """Sums of p and of p log p (p > 0) over P's entries (i, j), i in ``rows``,
    by the classes (codes[i], codes[j]): the entries with on[j] of a row with
    new[i], the entries with new[j] of the others. (C * C,) each."""
    cc = n_classes * n_classes
    sp_ = np.zeros((n_chunks, cc))
    sl = np.zeros((n_chunks, cc))
    m = rows.shape[0]
    for t in numba.prange(n_chunks):
        for k in range(t * m // n_chunks, (t + 1) * m // n_chunks):
            i = rows[k]
            g = codes[i] * n_classes
            every = new[i]
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                if (on[j] if every else new[j]) and p[e] > 0.0:
                    sp_[t, g + codes[j]] += p[e]
                    sl[t, g + codes[j]] += p[e] * np.log(p[e])
    return sp_.sum(axis=0), sl.sum(axis=0)


@numba.njit(parallel=True, cache=True)
def _with_neighbours(indptr, indices, added, before):
    """The rows of ``added`` (int array) and those of their neighbours with
    before[j] (bool (N,)), sorted."""
    near = np.zeros(before.shape[0], dtype=np.bool_)
    for k in numba.prange(added.shape[0]):
        i = added[k]
        near[i] = True
        for e in range(indptr[i], indptr[i + 1]):
            if before[indices[e]]:
                near[indices[e]] = True   # threads may write the same True: no order needed
    return np.flatnonzero(near)


@numba.njit(parallel=True, cache=True)
def _write_pairs(indptr, indices, p, codes, on, new, rows, table, floor, pw):
    """Writes pw = a_ij p_ij * N with u_i = u_j = 1 (``prior_table``) on P's
    entries (i, j), i in ``rows``: those with on[j] of a row with new[i], those
    with new[j] of the others (``_class_pair_sums``'s entries)."""
    c = int(np.sqrt(table.shape[0]) + 0.5)
    for k in numba.prange(rows.shape[0]):
        i = rows[k]
        g = codes[i] * c
        every = new[i]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if on[j] if every else new[j]:
                pw[e] = p[e] * prior_factor(1.0, table[g + codes[j]], floor)


@numba.njit(parallel=True, cache=True)
def _mixed_entries(indptr, indices, codes, on, new, rows):
    """Of ``_write_pairs``'s entries, those between two classes: (their
    positions in P's data (m,) int64, their rows (m,) int32)."""
    m = rows.shape[0]
    counts = np.zeros(m, dtype=np.int64)
    for k in numba.prange(m):
        i = rows[k]
        every = new[i]
        ci = codes[i]
        c = 0   # in a register, not one store per entry
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if (on[j] if every else new[j]) and codes[j] != ci:
                c += 1
        counts[k] = c
    start = np.zeros(m + 1, dtype=np.int64)
    start[1:] = np.cumsum(counts)
    pos = np.empty(start[m], dtype=np.int64)
    row = np.empty(start[m], dtype=np.int32)
    for k in numba.prange(m):
        if counts[k] == 0:   # most rows where the classes lie apart: not read twice
            continue
        i = rows[k]
        every = new[i]
        at = start[k]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if (on[j] if every else new[j]) and codes[j] != codes[i]:
                pos[at] = e
                row[at] = i
                at += 1
    return pos, row


@numba.njit(parallel=True, cache=True)
def _rewrite_entries(pos, row, indices, p, codes, table, floor, pw):
    """pw = a_ij p_ij * N with u_i = u_j = 1 at the entries ``pos`` (rows ``row``)."""
    c = int(np.sqrt(table.shape[0]) + 0.5)
    for k in numba.prange(pos.shape[0]):
        e = pos[k]
        pw[e] = p[e] * prior_factor(1.0, table[codes[row[k]] * c + codes[indices[e]]], floor)


class ClassPairSums:
    """The labeled pairs of two settled points (u = 1) summed by class pair:
    the objective's layout-free part over them, and the attraction weights'
    sum, kept up to date as points settle.

    With u_i = u_j = 1 a pair's weight pw = a p depends on its classes only,
    a = max(1 + G[c_i, c_j], floor) (``prior_table``), so its share of
    (sum (pw log pw - p log p), sum pw log b) is, by class pair,
    (a - 1) sum p log p + a log a sum p, and a log(1 + r) sum p for two
    classes; and of sum pw - sum p, (a - 1) sum p. Those sums of p and
    p log p by class pair stay the same when the table changes (every new
    label changes N_o), so a labeling session pays for the pairs of the
    points that settled since the last update (a group's, a few hundred
    entries) instead of a pass over every labeled pair (~0.2 s at 10^6
    points, half labeled, on every change of labels).

    ``update(P, codes, ids, on)``: the sums over the pairs of ``on`` (bool
    (N,)), whose points must all have u = 1, classes ``codes`` 0..C-1
    standing for label ids ``ids`` (C,) sorted. The set may only grow between
    calls: a point that leaves it, or changes class while in it, needs
    ``reset()`` (the engine calls it on any relabeling or change of
    parameters); a smaller set is summed afresh."""

    def __init__(self):
        self.reset()

    def reset(self):
        self._on = None
        self._ids = None
        self._sp = None
        self._sl = None

    def update(self, P, codes, ids, on):
        k = ids.shape[0]
        n_chunks = 4 * numba.get_num_threads()
        if self._on is not None and not (self._on & ~on).any():
            # the same classes' sums in the current numbering (classes only ever join)
            at = np.searchsorted(ids, self._ids)
            sp_ = np.zeros((k, k))
            sl = np.zeros((k, k))
            sp_[np.ix_(at, at)] = self._sp
            sl[np.ix_(at, at)] = self._sl
            added = np.flatnonzero(on & ~self._on)
            if added.size:
                new = np.zeros(on.shape[0], dtype=np.bool_)
                new[added] = True
                rows = _with_neighbours(P.indptr, P.indices, added, self._on)
                dp, dl = _class_pair_sums(P.indptr, P.indices, P.data, codes, on, new, rows, k,
                                          n_chunks)
                sp_ += dp.reshape(k, k)
                sl += dl.reshape(k, k)
        else:
            rows = np.flatnonzero(on)
            dp, dl = _class_pair_sums(P.indptr, P.indices, P.data, codes, on, on, rows, k,
                                      n_chunks)
            sp_, sl = dp.reshape(k, k), dl.reshape(k, k)
        self._on, self._ids, self._sp, self._sl = on, ids, sp_, sl
        return self

    def covers(self, on):
        """Whether the last update's pairs are those of ``on`` (bool (N,))."""
        return self._on is not None and np.array_equal(self._on, on)

    def _factors(self, table, uu):
        k = self._ids.shape[0]
        return np.maximum(1.0 + uu * table.reshape(k, k), ATTRACTION_FLOOR)

    def entropy(self, table, repulsion_emphasis, uu=1.0):
        """(sum (pw log pw - p log p), sum pw log b) over the pairs of the last update,
        all at u_i u_j = ``uu``."""
        a = self._factors(table, uu)
        ent = float(((a - 1.0) * self._sl + a * np.log(a) * self._sp).sum())
        other = ~np.eye(a.shape[0], dtype=bool)
        logb = float((a * self._sp)[other].sum() * np.log1p(uu * repulsion_emphasis))
        return ent, logb

    def weight_excess(self, table):
        """sum (pw - p) over the pairs of the last update."""
        return float(((self._factors(table, 1.0) - 1.0) * self._sp).sum())
