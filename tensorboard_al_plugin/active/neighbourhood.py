"""Barnes-Hut neighbourhoods and kNN groups over a 2D/3D layout.

The annotator's focus kernel of Luus et al. (arXiv:1901.00675, Algorithm 1) is
the *Barnes-Hut neighbourhood*: build the space-partitioning tree over the
current layout (quadtree in 2D, octree in 3D, one point per leaf) and walk it
from point i as Barnes-Hut-SNE does: a cell is *resolved* when
``cell_width / distance(y_i, cell_centre_of_mass) >= theta_k`` and summarised
(seen as one blob) otherwise. N_theta(i) holds the points whose own leaf cell
is reached through resolved cells and is itself resolved. Leaf cells are small
in dense regions and large in sparse ones, so the kernel reaches about
1/theta_k leaf widths: far in sparse regions, near in dense clusters; distant
clusters collapse into summaries and do not count.

The t-SNE engine's repulsion (``tsne/repulsion.py``) builds a tree of the same
kind (2^d children, one point per leaf) with the same opening criterion
(cell side / distance to the centre of mass against theta), but not the same
tree, and the two are kept apart on purpose:

- the cells differ: here the root cube starts at the layout's lower corner,
  there it is centred on the bounding box, so along every axis but the
  longest the two cut the layout at different places;
- each needs what the other lacks: here a cell's points are one slice of a
  permutation (a top-down partition), because a resolved leaf must list its
  points; there a node holds per-class masses, summed bottom-up in the order
  the nodes were inserted, and no point lists;
- here the split stops at a cell 1e-10 of the root wide, there at 48 levels
  or at identical points; the walks differ too (here one point at a time,
  there groups of 32 targets with a conservative test).

Sharing one builder would move points between neighbourhoods (and so the
emulated annotator's actions and the published labeling-benchmark numbers),
or change the order of the engine's force sums; either is a change of
results, to be made with a benchmark re-run, not in passing.

Why a real tree instead of a cKDTree radius query: a radius ball has one fixed
scale, whereas the Barnes-Hut kernel adapts to local density (cell sizes shrink
in dense clusters), which is the property the paper relies on. The tree is built
and walked in numba; O(n log n) to build, and per point the walk costs about
O(log n / theta_k^d).

Shapes: layout ``(n, d)`` with d in {2, 3}; class arrays ``(n,)`` int.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["BarnesHutTree", "focus_counts", "bh_neighbourhood", "best_knn_group", "KnnGroup"]


@numba.njit(cache=True)
def _build(Y, leaf_size_cap):
    n, d = Y.shape
    nchild_max = 1 << d
    cap = leaf_size_cap
    lo = np.empty((cap, d))
    width = np.empty(cap)
    start = np.empty(cap, np.int64)
    count = np.empty(cap, np.int64)
    first_child = np.full(cap, -1, np.int64)
    n_children = np.zeros(cap, np.int64)
    com = np.empty((cap, d))
    perm = np.arange(n)

    mins = np.empty(d)
    maxs = np.empty(d)
    for k in range(d):
        mins[k] = Y[:, k].min()
        maxs[k] = Y[:, k].max()
    w = 0.0
    for k in range(d):
        w = max(w, maxs[k] - mins[k])
    w = w * (1.0 + 1e-9) + 1e-12
    for k in range(d):
        lo[0, k] = mins[k]
    width[0] = w
    start[0] = 0
    count[0] = n
    n_nodes = 1

    stack = np.empty(cap, np.int64)
    sp = 0
    stack[sp] = 0
    sp += 1
    codes = np.empty(n, np.int64)
    tmp = np.empty(n, np.int64)
    while sp > 0:
        sp -= 1
        node = stack[sp]
        s, c = start[node], count[node]
        for k in range(d):
            acc = 0.0
            for t in range(s, s + c):
                acc += Y[perm[t], k]
            com[node, k] = acc / c
        # Leaves hold one point; coincident points stop the split at a tiny width.
        if c <= 1 or width[node] < 1e-10 * width[0]:
            continue
        half = width[node] * 0.5
        bucket = np.zeros(nchild_max + 1, np.int64)
        for t in range(s, s + c):
            p = perm[t]
            code = 0
            for k in range(d):
                if Y[p, k] >= lo[node, k] + half:
                    code |= 1 << k
            codes[t] = code
            bucket[code + 1] += 1
        for b in range(nchild_max):
            bucket[b + 1] += bucket[b]
        offs = bucket.copy()
        for t in range(s, s + c):
            tmp[s + offs[codes[t]]] = perm[t]
            offs[codes[t]] += 1
        for t in range(s, s + c):
            perm[t] = tmp[t]
        if n_nodes + nchild_max >= cap:
            return lo, width, start, count, first_child, n_children, com, perm, -1
        first_child[node] = n_nodes
        for b in range(nchild_max):
            cnt = bucket[b + 1] - bucket[b]
            if cnt == 0:
                continue
            ch = n_nodes
            n_nodes += 1
            for k in range(d):
                lo[ch, k] = lo[node, k] + (half if (b >> k) & 1 else 0.0)
            width[ch] = half
            start[ch] = s + bucket[b]
            count[ch] = cnt
            n_children[node] += 1
            stack[sp] = ch
            sp += 1
    return lo, width, start, count, first_child, n_children, com, perm, n_nodes


@numba.njit(cache=True)
def _walk(Y, i, theta, width, start, count, first_child, n_children, com, perm, out):
    """Write the Barnes-Hut neighbourhood of point i into out; return its size."""
    d = Y.shape[1]
    m = 0
    stack = np.empty(64 * (1 << d) + 8, np.int64)
    sp = 0
    stack[sp] = 0
    sp += 1
    while sp > 0:
        sp -= 1
        node = stack[sp]
        dist2 = 0.0
        for k in range(d):
            diff = Y[i, k] - com[node, k]
            dist2 += diff * diff
        if width[node] * width[node] < theta * theta * dist2:
            continue  # summarised: seen as one blob, not as points
        if n_children[node] == 0:
            for t in range(start[node], start[node] + count[node]):
                p = perm[t]
                if p != i:
                    out[m] = p
                    m += 1
        else:
            fc = first_child[node]
            for ch in range(fc, fc + n_children[node]):
                stack[sp] = ch
                sp += 1
    return m


@numba.njit(cache=True)
def _focus_sums(Y, theta, cls, weight, candidate, width, start, count, first_child, n_children, com, perm):
    """Per candidate i: the sum of ``weight[j]`` over j of i's class in its neighbourhood (-1 elsewhere)."""
    n = Y.shape[0]
    sums = np.full(n, -1.0)
    out = np.empty(n, np.int64)
    for i in range(n):
        if not candidate[i]:
            continue
        m = _walk(Y, i, theta, width, start, count, first_child, n_children, com, perm, out)
        c = 0.0
        for t in range(m):
            j = out[t]
            if cls[j] == cls[i]:
                c += weight[j]
        sums[i] = c
    return sums


class BarnesHutTree:
    """Quadtree (2D) or octree (3D) over a layout, one point per leaf.

    Attributes ``width_``, ``com_`` (centre of mass), ``start_``/``count_`` (slice
    of ``perm_`` holding the cell's points), ``first_child_``/``n_children_``.
    """

    def __init__(self, layout):
        Y = np.ascontiguousarray(layout, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[1] not in (2, 3):
            raise ValueError(f"layout must have shape (n, 2) or (n, 3), got {Y.shape}.")
        if len(Y) == 0:
            raise ValueError("layout is empty.")
        if not np.all(np.isfinite(Y)):
            raise ValueError("layout contains NaN or infinite positions.")
        self.layout_ = Y
        cap = 4 * len(Y) * (1 << Y.shape[1]) + 16
        while True:
            res = _build(Y, cap)
            if res[-1] >= 0:
                break
            cap *= 2
        (self.lo_, self.width_, self.start_, self.count_, self.first_child_, self.n_children_,
         self.com_, self.perm_, self.n_nodes_) = res

    def _arrays(self):
        return (self.width_, self.start_, self.count_, self.first_child_, self.n_children_, self.com_, self.perm_)

    def neighbourhood(self, i, theta_k=0.5):
        """Rows in the Barnes-Hut neighbourhood of row i (excluding i), sorted."""
        out = np.empty(len(self.layout_), np.int64)
        m = _walk(self.layout_, int(i), float(theta_k), *self._arrays(), out)
        return np.sort(out[:m])

    def focus_counts(self, classes, unlabeled, theta_k=0.5, candidates=None):
        """Per row i: how many unlabeled rows of i's class lie in its neighbourhood (-1 where not a candidate)."""
        n = len(self.layout_)
        cls = np.ascontiguousarray(classes, dtype=np.int64)
        unl = np.ascontiguousarray(unlabeled, dtype=np.bool_)
        cand = unl if candidates is None else np.ascontiguousarray(candidates, dtype=np.bool_)
        if cls.shape != (n,) or unl.shape != (n,) or cand.shape != (n,):
            raise ValueError(f"classes, unlabeled and candidates must have shape ({n},).")
        # Sums of ones are exact in float64 far beyond any row count.
        return _focus_sums(self.layout_, float(theta_k), cls, unl.astype(np.float64), cand,
                           *self._arrays()).astype(np.int64)

    def focus_sums(self, classes, weights, theta_k=0.5, candidates=None):
        """Per candidate row i: the sum of ``weights`` (n,) over the rows of i's class in its
        neighbourhood (i excluded); -1 where not a candidate (default: every row)."""
        n = len(self.layout_)
        cls = np.ascontiguousarray(classes, dtype=np.int64)
        w = np.ascontiguousarray(weights, dtype=np.float64)
        cand = np.ones(n, np.bool_) if candidates is None else np.ascontiguousarray(candidates, dtype=np.bool_)
        if cls.shape != (n,) or w.shape != (n,) or cand.shape != (n,):
            raise ValueError(f"classes, weights and candidates must have shape ({n},).")
        return _focus_sums(self.layout_, float(theta_k), cls, w, cand, *self._arrays())


def bh_neighbourhood(layout, i, theta_k=0.5):
    """Rows in the Barnes-Hut neighbourhood N_theta(i) of row i of ``layout`` (see module docstring)."""
    return BarnesHutTree(layout).neighbourhood(i, theta_k)


def focus_counts(layout, classes, unlabeled, theta_k=0.5, candidates=None):
    """Algorithm 1's focus score: unlabeled same-class rows in each row's Barnes-Hut neighbourhood.

    ``candidates`` (bool, default = ``unlabeled``) limits which rows are scored;
    others get -1.
    """
    return BarnesHutTree(layout).focus_counts(classes, unlabeled, theta_k, candidates)


class KnnGroup:
    """Outcome of Algorithm 1's kNN walk around one focus row.

    ``k``: slider value (neighbours besides the focus); ``rows``: rows that get the
    label (focus + kept neighbours); ``deselected``: rows removed by hand;
    ``actions``: 1 (select focus) + 1 if k > 0 (set slider) + len(deselected);
    ``gained``: previously unlabeled rows in ``rows``.
    """

    __slots__ = ("focus", "k", "rows", "deselected", "actions", "gained")

    def __init__(self, focus, k, rows, deselected, actions, gained):
        self.focus, self.k, self.rows, self.deselected = focus, k, rows, deselected
        self.actions, self.gained = actions, gained

    @property
    def efficiency(self):
        return self.gained / self.actions

    def __repr__(self):
        return (f"KnnGroup(focus={self.focus}, k={self.k}, actions={self.actions}, gained={self.gained}, "
                f"deselected={len(self.deselected)})")


def best_knn_group(layout, focus, classes, unlabeled, *, k_max=100, gain_cap=None):
    """Walk the exact kNN of ``focus`` in ascending layout distance; keep the best labels/actions.

    For each slider value k = 0..k_max the annotator selects the focus (1
    action), sets the slider (1 action, only if k > 0) and deselects every
    neighbour whose class differs from the focus's (1 action each). Neighbours of
    the focus's class are labeled; those already labeled gain nothing. The k with
    the highest gained/actions wins; ties go to the larger k (more labels for the
    same efficiency).

    ``gain_cap`` (None = Algorithm 1): labels beyond this many count no more in
    gained/actions, so a clean small group beats a bigger one that costs
    deselections; among groups equally good by that measure the one with more
    labels wins, then the larger k.
    """
    Y = np.asarray(layout, dtype=np.float64)
    classes = np.asarray(classes)
    unlabeled = np.asarray(unlabeled, dtype=bool)
    focus = int(focus)
    d2 = np.sum((Y - Y[focus]) ** 2, axis=1)
    d2[focus] = -1.0  # the focus itself comes first
    k_max = int(min(k_max, len(Y) - 1))
    order = np.argsort(d2, kind="stable")[:k_max + 1]
    assert order[0] == focus
    same = classes[order] == classes[focus]
    gained = np.cumsum(same & unlabeled[order])
    deselect = np.cumsum(~same)
    ks = np.arange(k_max + 1)
    actions = 1 + (ks > 0) + deselect
    eff = gained / actions
    if gain_cap is not None:
        eff = np.minimum(gained, gain_cap) / actions + 1e-9 * gained
    # Larger k wins ties: take the last index of the maximum (with a float tolerance).
    best = int(np.flatnonzero(eff >= eff.max() - 1e-12)[-1])
    sel = order[:best + 1]
    keep = same[:best + 1]
    return KnnGroup(focus, best, sel[keep], sel[~keep], int(actions[best]), int(gained[best]))
