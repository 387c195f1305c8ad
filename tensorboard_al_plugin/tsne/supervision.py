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

Everything here is O(N) or O(nnz(P)); it runs only when labels or u change
(``_weighted_affinities``, one pass without logarithms) or when the
objective is asked for (``_weight_entropy``).
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
    codes = np.full(labels.shape[0], -1, dtype=np.int64)
    labeled = labels >= 0
    if not labeled.any():
        return codes.astype(np.int32), np.zeros(0, dtype=np.int64), 0
    uniq, inv = np.unique(labels[labeled], return_inverse=True)
    codes[labeled] = inv
    counts = np.bincount(inv, minlength=uniq.shape[0])
    return codes.astype(np.int32), counts, int(labeled.sum())


@numba.njit(inline="always")
def _prior(ci, cj, uu, f, n, counts, n_labeled, floor, cap):
    """a_ij * N for two labeled points of classes ci, cj with u_i u_j = uu."""
    if ci == cj:
        return 1.0 + uu * f * min(n / counts[ci], cap)
    # N_o differs between the two classes; the mean keeps a symmetric.
    no_i = n_labeled - counts[ci]
    no_j = n_labeled - counts[cj]
    return max(1.0 - uu * f * n * 0.5 * (1.0 / no_i + 1.0 / no_j), floor)


@numba.njit(parallel=True, cache=True)
def _weighted_affinities(indptr, indices, p, codes, counts, n_labeled, u, f, n, floor, cap):
    """a_ij p_ij * N for every stored entry (nnz,) and its sum, in one pass.

    It runs on every iteration while the u_i ramp, so: no logarithms (log
    b_ij is needed by the objective only, ``_weight_entropy``) and no second
    pass to normalise (the caller divides the attraction by the sum)."""
    m = indptr.shape[0] - 1
    pw = np.empty(indices.shape[0])
    rows = np.zeros(m)
    for i in numba.prange(m):
        ci = codes[i]
        on = ci >= 0 and u[i] != 0.0
        s = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            v = p[e]
            if on:
                j = indices[e]
                cj = codes[j]
                if cj >= 0 and u[j] != 0.0:
                    v *= _prior(ci, cj, u[i] * u[j], f, n, counts, n_labeled, floor, cap)
            pw[e] = v
            s += v
        rows[i] = s
    return pw, rows.sum()


@numba.njit(parallel=True, cache=True)
def _weight_entropy(indptr, indices, pw, codes, u, r):
    """(sum pw log pw, sum pw log b) over the stored entries, b_ij = 1 + u_i u_j r
    on labeled pairs of different labels: the parts of the objective that do
    not depend on the layout, evaluated only when the objective is asked for."""
    m = indptr.shape[0] - 1
    ent = np.zeros(m)
    lb = np.zeros(m)
    for i in numba.prange(m):
        ci = codes[i]
        on = ci >= 0 and u[i] != 0.0 and r != 0.0
        s = 0.0
        t = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            v = pw[e]
            if v > 0.0:
                s += v * np.log(v)
            if on:
                cj = codes[indices[e]]
                if cj >= 0 and cj != ci:
                    t += v * np.log1p(u[i] * u[indices[e]] * r)
        ent[i] = s
        lb[i] = t
    return ent.sum(), lb.sum()


def weighted_affinities(P, codes, counts, n_labeled, u, label_importance):
    """(a_ij p_ij * N aligned with P.data (nnz,), its sum): the attraction's
    unnormalised weights; p'_ij is the first divided by the second."""
    n = P.shape[0]
    if codes.shape[0] != n:
        raise ValueError("labels: length does not match the number of points")
    return _weighted_affinities(P.indptr, P.indices, P.data, codes, counts.astype(np.float64),
                                float(n_labeled), u, float(label_importance), float(n),
                                ATTRACTION_FLOOR, float(CLASS_SIZE_FACTOR_CAP))


def weight_entropy(P, pw, codes, u, repulsion_emphasis):
    """(sum pw log pw, sum pw log b_ij) over P's stored entries, pw aligned with P.data."""
    return _weight_entropy(P.indptr, P.indices, pw, codes, u, float(repulsion_emphasis))
