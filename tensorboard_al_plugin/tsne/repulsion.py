"""Repulsive forces of t-SNE with supervision weights b_ij.

All functions return the *unnormalised* pieces

    rep_i = sum_j b_ij t_ij^2 (y_i - y_j)      (N, d)
    Z     = sum_{i != j} b_ij t_ij             scalar

with t_ij = 1 / (1 + |y_i - y_j|^2); the repulsive gradient is 4 rep_i / Z.

* ``exact_repulsion``: all pairs, b_ij included exactly. O(N^2); the reference
  for tests and the fastest choice for a couple of thousand points.
* ``fft_repulsion_2d``: b = 1, FFT-accelerated interpolation on a regular grid
  (the FIt-SNE scheme, Linderman et al. 2019), convolving the force kernels
  (y_i - y_j) t^2 and t directly: one forward and three inverse transforms.
* ``bh_repulsion``: b = 1, Barnes-Hut quadtree/octree, 2D and 3D, walked once
  per group of 32 targets adjacent in Z-order (Barnes 1990) with a
  conservative opening test and a vectorised sum over the accepted nodes.
* ``supervision_correction``: the b_ij - 1 = u_i u_j r part on labeled pairs of
  different labels only. Exact pair sums when there are few such pairs, else a
  Barnes-Hut tree over the labeled points whose nodes keep per-class masses;
  targets are grouped by class, so that whole subtrees of the group's own
  class are skipped. Unlabeled points are never visited.

The trees are built serially by insertion (structure only), then the masses
are swept up from the leaves; walks and sums are numba-parallel.

The annotation emulation's focus kernel (``active/neighbourhood.py``) has a
Barnes-Hut tree of its own: its cells start at the layout's lower corner
(here: centred on the bounding box), it lists each cell's points (here: per-
class masses only), and it stops splitting at a width, not a depth. Sharing
one builder would change either its neighbourhoods or the order of the sums
here; that module's docstring says more.
"""
import collections
import math

import numba
import numpy as np
import scipy.fft

# ---------------------------------------------------------------- exact


@numba.njit(parallel=True, cache=True)
def _exact(Y, codes, u, r):
    n, d = Y.shape
    rep = np.zeros((n, d))
    zrow = np.zeros(n)
    for i in numba.prange(n):
        ci = codes[i]
        ui = u[i] * r if ci >= 0 else 0.0
        z = 0.0
        for j in range(n):
            if j == i:
                continue
            d2 = 0.0
            for k in range(d):
                diff = Y[i, k] - Y[j, k]
                d2 += diff * diff
            t = 1.0 / (1.0 + d2)
            b = 1.0
            cj = codes[j]
            if ui != 0.0 and cj >= 0 and cj != ci:
                b += ui * u[j]
            z += b * t
            bt2 = b * t * t
            for k in range(d):
                rep[i, k] += bt2 * (Y[i, k] - Y[j, k])
        zrow[i] = z
    return rep, zrow.sum()


def exact_repulsion(Y, codes, u, r):
    """All-pairs rep and Z with b_ij = 1 + u_i u_j r on labeled different-label pairs.

    Y (N, d) float64; codes (N,) int32 class codes (-1 unlabeled); u (N,) float64.
    """
    return _exact(Y, codes, u, float(r))


# ---------------------------------------------------------------- Barnes-Hut

_MAX_DEPTH = 48


@numba.njit(inline="always")
def _orthant(Y, p, centre, node):
    """Index of the child of ``node`` whose cell holds point ``p`` (bit k: above the centre on axis k)."""
    ch = 0
    for k in range(Y.shape[1]):
        if Y[p, k] >= centre[node, k]:
            ch |= 1 << k
    return ch


@numba.njit(inline="always")
def _add_child(node, ch, nn, children, parent, half, centre):
    """Make node ``nn`` the child ``ch`` of ``node``: half its size, centred in that orthant."""
    children[node, ch] = nn
    parent[nn] = node
    half[nn] = 0.5 * half[node]
    for k in range(centre.shape[1]):
        off = half[nn] if (ch >> k) & 1 else -half[nn]
        centre[nn, k] = centre[node, k] + off


@numba.njit(cache=True)
def _build_structure(Y, cap):
    """Insert points one by one into a 2^d-ary tree (structure only).

    Returns (n_nodes, children, half, internal, parent, leaf_of); n_nodes is
    -1 when ``cap`` nodes were not enough. A node's parent has a smaller
    index, so a reverse sweep over the nodes is a bottom-up order.
    """
    n, d = Y.shape
    nchild = 1 << d
    children = np.full((cap, nchild), -1, dtype=np.int32)
    centre = np.empty((cap, d))
    half = np.empty(cap)
    internal = np.zeros(cap, dtype=np.bool_)
    parent = np.empty(cap, dtype=np.int64)
    leaf_point = np.full(cap, -1, dtype=np.int64)
    leaf_count = np.zeros(cap, dtype=np.int64)
    leaf_of = np.empty(n, dtype=np.int64)
    lo = np.empty(d)
    hi = np.empty(d)
    for k in range(d):
        lo[k] = Y[0, k]
        hi[k] = Y[0, k]
    for i in range(n):
        for k in range(d):
            lo[k] = min(lo[k], Y[i, k])
            hi[k] = max(hi[k], Y[i, k])
    h = 0.0
    for k in range(d):
        centre[0, k] = 0.5 * (lo[k] + hi[k])
        h = max(h, 0.5 * (hi[k] - lo[k]))
    half[0] = h * (1.0 + 1e-9) + 1e-12
    parent[0] = -1
    n_nodes = 1
    for p in range(n):
        node = 0
        depth = 0
        while True:
            if not internal[node]:
                q = leaf_point[node]
                if q < 0:
                    leaf_point[node] = p
                    leaf_count[node] = 1
                    leaf_of[p] = node
                    break
                same = True
                for k in range(d):
                    if Y[q, k] != Y[p, k]:
                        same = False
                if same or depth >= _MAX_DEPTH:
                    # duplicates (or a pathological pile-up) share one leaf
                    leaf_count[node] += 1
                    leaf_of[p] = node
                    break
                # split: the leaf's content moves down into one child
                if n_nodes >= cap:
                    return -1, children, half, internal, parent, leaf_of
                ch = _orthant(Y, q, centre, node)
                nn = n_nodes
                n_nodes += 1
                _add_child(node, ch, nn, children, parent, half, centre)
                leaf_point[nn] = q
                leaf_count[nn] = leaf_count[node]
                if leaf_count[node] == 1:
                    leaf_of[q] = nn
                else:
                    # rare: a pile of duplicates moves down together
                    for r in range(p):
                        if leaf_of[r] == node:
                            leaf_of[r] = nn
                internal[node] = True
                leaf_point[node] = -1
            ch = _orthant(Y, p, centre, node)
            if children[node, ch] == -1:
                if n_nodes >= cap:
                    return -1, children, half, internal, parent, leaf_of
                _add_child(node, ch, n_nodes, children, parent, half, centre)
                n_nodes += 1
            node = children[node, ch]
            depth += 1
    return n_nodes, children[:n_nodes], half[:n_nodes], internal[:n_nodes], \
        parent[:n_nodes], leaf_of


@numba.njit(cache=True)
def _node_masses(Y, w, cls, n_classes, parent, leaf_of, n_nodes):
    """Per node and class: the mass and the mass-weighted coordinate sum,
    accumulated at the leaves and then swept up (children follow parents)."""
    n, d = Y.shape
    cmass = np.zeros((n_nodes, n_classes))
    cwsum = np.zeros((n_nodes, n_classes, d))
    for p in range(n):
        node = leaf_of[p]
        c = cls[p]
        cmass[node, c] += w[p]
        for k in range(d):
            cwsum[node, c, k] += w[p] * Y[p, k]
    for node in range(n_nodes - 1, 0, -1):
        up = parent[node]
        for c in range(n_classes):
            cmass[up, c] += cmass[node, c]
            for k in range(d):
                cwsum[up, c, k] += cwsum[node, c, k]
    mass = np.zeros(n_nodes)
    wsum = np.zeros((n_nodes, d))
    for node in range(n_nodes):
        for c in range(n_classes):
            mass[node] += cmass[node, c]
            for k in range(d):
                wsum[node, k] += cwsum[node, c, k]
    return mass, wsum, cmass, cwsum


def _tree(Y, w, cls, n_classes):
    """(children, half, internal, mass, wsum, cmass, cwsum) of the tree over Y
    with point weights w and classes cls in 0..n_classes-1."""
    cap = 2 * Y.shape[0] + 64
    while True:
        out = _build_structure(Y, cap)
        if out[0] >= 0:
            break
        cap *= 2
    n_nodes, children, half, internal, parent, leaf_of = out
    mass, wsum, cmass, cwsum = _node_masses(Y, w, cls, n_classes, parent, leaf_of, n_nodes)
    return children, half, internal, mass, wsum, cmass, cwsum


# targets per group in the grouped traversal
_GROUP = 32
# interaction-list entries kept before they are flushed into the sums
_LIST = 4096


@numba.njit(parallel=True, fastmath=True, cache=True)
def _traverse_groups(T, starts, gcls, children, internal, side2, mass, wsum, cmass, cwsum,
                     theta):
    """Barnes-Hut with grouped targets (Barnes 1990).

    Targets T are sorted so that each group starts[g]..starts[g+1]-1 is
    spatially compact and of one class gcls[g] (-1: every class counts). The
    tree is walked once per group: a node is accepted when its side is below
    theta times the distance from its centre of mass to the group's bounding
    box (so below theta times its distance to every target of the group: at
    least as accurate as the per-target criterion), and the accepted nodes'
    masses and centres of mass (of the classes other than the group's) go
    into a list that is then summed for every target of the group in a
    branch-free, vectorisable loop. Nodes holding only the group's class are
    skipped whole. Returns rep (N, d) and z (N,) (self pairs included)."""
    n, d = T.shape
    nchild = children.shape[1]
    rep = np.zeros((n, d))
    z = np.zeros(n)
    theta2 = theta * theta
    n_groups = starts.shape[0] - 1
    for g in numba.prange(n_groups):
        a = starts[g]
        b = starts[g + 1]
        c = gcls[g]
        stack = np.empty(64 * nchild + 16, dtype=np.int64)
        lm = np.empty(_LIST)
        lc = np.empty((d, _LIST))
        lo = np.empty(d)
        hi = np.empty(d)
        com = np.empty(d)
        for k in range(d):
            lo[k] = T[a, k]
            hi[k] = T[a, k]
        for i in range(a + 1, b):
            for k in range(d):
                lo[k] = min(lo[k], T[i, k])
                hi[k] = max(hi[k], T[i, k])
        stack[0] = 0
        top = 1
        nl = 0
        while top > 0 or nl > 0:
            if top > 0 and nl < _LIST:
                top -= 1
                node = stack[top]
                if c >= 0:
                    m = mass[node] - cmass[node, c]
                else:
                    m = mass[node]
                # relative cut: a class-free node's difference is rounding
                if m <= 1e-9 * mass[node]:
                    continue
                dd = 0.0
                for k in range(d):
                    if c >= 0:
                        com[k] = (wsum[node, k] - cwsum[node, c, k]) / m
                    else:
                        com[k] = wsum[node, k] / m
                    gap = max(lo[k] - com[k], com[k] - hi[k], 0.0)
                    dd += gap * gap
                if internal[node] and side2[node] > theta2 * dd:
                    for ch in range(nchild):
                        nxt = children[node, ch]
                        if nxt >= 0:
                            stack[top] = nxt
                            top += 1
                else:
                    lm[nl] = m
                    for k in range(d):
                        lc[k, nl] = com[k]
                    nl += 1
                continue
            # list full or walk finished: add the list to every target
            for i in range(a, b):
                if d == 2:
                    t0 = T[i, 0]
                    t1 = T[i, 1]
                    zi = 0.0
                    r0 = 0.0
                    r1 = 0.0
                    for e in range(nl):
                        d0 = t0 - lc[0, e]
                        d1 = t1 - lc[1, e]
                        q = 1.0 / (1.0 + d0 * d0 + d1 * d1)
                        mq = lm[e] * q
                        zi += mq
                        mq2 = mq * q
                        r0 += mq2 * d0
                        r1 += mq2 * d1
                    z[i] += zi
                    rep[i, 0] += r0
                    rep[i, 1] += r1
                else:
                    t0 = T[i, 0]
                    t1 = T[i, 1]
                    t2 = T[i, 2]
                    zi = 0.0
                    r0 = 0.0
                    r1 = 0.0
                    r2 = 0.0
                    for e in range(nl):
                        d0 = t0 - lc[0, e]
                        d1 = t1 - lc[1, e]
                        d2 = t2 - lc[2, e]
                        q = 1.0 / (1.0 + d0 * d0 + d1 * d1 + d2 * d2)
                        mq = lm[e] * q
                        zi += mq
                        mq2 = mq * q
                        r0 += mq2 * d0
                        r1 += mq2 * d1
                        r2 += mq2 * d2
                    z[i] += zi
                    rep[i, 0] += r0
                    rep[i, 1] += r1
                    rep[i, 2] += r2
            nl = 0
    return rep, z


def _group_starts(cls_sorted, size=_GROUP):
    """Group boundaries: runs of at most ``size`` consecutive targets of one class."""
    n = cls_sorted.shape[0]
    cuts = np.flatnonzero(np.diff(cls_sorted)) + 1
    bounds = np.concatenate(([0], cuts, [n]))
    starts = [np.arange(bounds[k], bounds[k + 1], size) for k in range(len(bounds) - 1)]
    starts = np.concatenate(starts + [np.array([n])]).astype(np.int64)
    gcls = cls_sorted[starts[:-1]].astype(np.int64)
    return starts, gcls


@numba.njit(parallel=True, cache=True)
def _morton_codes(Y, lo, scale, bits):
    n, d = Y.shape
    code = np.zeros(n, dtype=np.uint64)
    for i in numba.prange(n):
        c = np.uint64(0)
        for k in range(d):
            q = np.uint64(min(max((Y[i, k] - lo[k]) * scale, 0.0), 2.0 ** bits - 1))
            for bb in range(bits):
                c |= ((q >> np.uint64(bb)) & np.uint64(1)) << np.uint64(bb * d + k)
        code[i] = c
    return code


def _morton_order(Y, bits=16):
    """Permutation putting Y in Z-order, so that consecutive targets walk the
    same part of the tree and nodes are laid out near each other in memory."""
    lo = Y.min(axis=0)
    span = max(float(np.ptp(Y, axis=0).max()), 1e-12)
    bits = min(bits, 64 // Y.shape[1])
    code = _morton_codes(Y, lo, (2 ** bits - 1) / span, bits)
    return np.argsort(code, kind="stable")


def bh_repulsion(Y, theta=0.5):
    """Barnes-Hut rep (N, d) and Z for b = 1. Y (N, d) float64, d in {2, 3}.

    Targets are walked in groups of _GROUP consecutive points in Z-order
    (``_traverse_groups``): one walk per group instead of one per point, and
    a vectorised sum over the accepted nodes."""
    n = Y.shape[0]
    order = _morton_order(Y)
    Ys = np.ascontiguousarray(Y[order])
    children, half, internal, mass, wsum, cmass, cwsum = _tree(
        Ys, np.ones(n), np.zeros(n, dtype=np.int32), 1)
    starts, gcls = _group_starts(np.full(n, -1, dtype=np.int64))
    rep_s, z = _traverse_groups(Ys, starts, gcls, children, internal, (2.0 * half) ** 2,
                                mass, wsum, cmass, cwsum, float(theta))
    rep = np.empty_like(rep_s)
    rep[order] = rep_s
    # every point sees itself once at distance 0 (t = 1, no force)
    return rep, float(z.sum() - n)


# ---------------------------------------------------------------- FFT (2D)


@numba.njit(cache=True)
def _lagrange(s, p, out):
    # weights of the p equispaced nodes 0..p-1 at local coordinate s
    for a in range(p):
        v = 1.0
        for b in range(p):
            if b != a:
                v *= (s - b) / (a - b)
        out[a] = v


@numba.njit(parallel=True, cache=True)
def _interp_weights(Y, lo, h, n_boxes, p):
    """Per point: the first grid node of its box on each axis (N, 2) and the
    Lagrange weights of the box's p nodes on each axis (N, 2, p)."""
    n, d = Y.shape
    first = np.empty((n, d), dtype=np.int64)
    wts = np.empty((n, d, p))
    delta = h / p
    for i in numba.prange(n):
        for k in range(d):
            bx = min(int((Y[i, k] - lo) / h), n_boxes - 1)
            first[i, k] = bx * p
            _lagrange((Y[i, k] - lo) / delta - bx * p - 0.5, p, wts[i, k])
    return first, wts


# Private float64 copies of the grids that ``_spread`` may allocate, in bytes:
# with many threads and per-class grids at a million points they would
# otherwise take gigabytes; fewer copies only means less parallel spreading.
_SPREAD_BYTES = 256 * 2 ** 20


@numba.njit(parallel=True, cache=True)
def _spread(first, wts, grid, charges, n_grids, n_nodes, n_parts):
    """Charges times interpolation weights summed on n_grids (n_nodes, n_nodes)
    grids: point i puts charges[i] on grid grid[i] (none where grid[i] < 0:
    a class's strays). Points are split into n_parts private grids (one per
    thread) that are added at the end. Returns float32
    (n_grids, n_nodes, n_nodes)."""
    n = first.shape[0]
    p = wts.shape[2]
    parts = np.zeros((n_parts, n_grids, n_nodes, n_nodes))
    per = (n + n_parts - 1) // n_parts
    for t in numba.prange(n_parts):
        W = parts[t]
        for i in range(t * per, min(n, (t + 1) * per)):
            g = grid[i]
            if g < 0:
                continue
            fx = first[i, 0]
            fy = first[i, 1]
            q = charges[i]
            for a in range(p):
                wa = wts[i, 0, a] * q
                for b in range(p):
                    W[g, fx + a, fy + b] += wa * wts[i, 1, b]
    out = np.empty((n_grids, n_nodes, n_nodes), dtype=np.float32)
    for x in numba.prange(n_nodes):
        for g in range(n_grids):
            for y in range(n_nodes):
                acc = 0.0
                for t in range(n_parts):
                    acc += parts[t, g, x, y]
                out[g, x, y] = acc
    return out


def _spread_grids(first, wts, grid, charges, n_grids, n_nodes):
    """``_spread`` with as many private copies of the grids as threads, within _SPREAD_BYTES."""
    n_parts = max(1, min(numba.get_num_threads(),
                         _SPREAD_BYTES // (8 * n_grids * n_nodes * n_nodes)))
    return _spread(first, wts, grid, charges, n_grids, n_nodes, n_parts)


def _forward(W, M, workers):
    """The transform of grids W (..., n_nodes, n_nodes) zero-padded to M x M: rfft along
    the last axis, then fft along the one before. Only n_nodes of the M rows are non-zero
    on the way in, so the two axes are transformed separately to skip the zero rows."""
    what = scipy.fft.rfft(W, n=M, axis=-1, workers=workers)
    return scipy.fft.fft(what, n=M, axis=-2, workers=workers)


@numba.njit(parallel=True, cache=True)
def _gather(first, wts, grid, V):
    """Interpolate potentials at every point: the m = V.shape[1] potentials of
    grid grid[i] (N, m; zeros where grid[i] < 0). V (n_grids, m, n_nodes, n_nodes)."""
    n = first.shape[0]
    p = wts.shape[2]
    m = V.shape[1]
    out = np.zeros((n, m))
    for i in numba.prange(n):
        g = grid[i]
        if g < 0:
            continue
        fx = first[i, 0]
        fy = first[i, 1]
        for a in range(p):
            wa = wts[i, 0, a]
            for b in range(p):
                wab = wa * wts[i, 1, b]
                for c in range(m):
                    out[i, c] += wab * V[g, c, fx + a, fy + b]
    return out


# (M, delta) -> spectra of the three kernels, most recently used last; the
# grid spacing is fixed once the layout is wider than min_num_intervals boxes,
# so an entry is reused across iterations until the grid has to grow, and a
# grid that shrinks or grows a little reuses a larger entry (``_fft_plan``).
# Bounded in bytes, not entries: while a 10^6-point layout grows to ~900
# units, M changes every few iterations and one entry reaches 216 MB (M =
# 6,000; 430 MB as complex spectra); nine kept complex entries held 3.6 GB
# and the layout process peaked at 8.4 GB. The entries in use (the
# repulsion's grid and the correction's) are the most recent and stay; the
# oldest go first, and the newest is always kept.
_kernel_cache = collections.OrderedDict()
KERNEL_CACHE_BYTES = 640 * 2 ** 20
# A grid of n_nodes a side is convolved on an M x M padded one, any even M >=
# 2 n_nodes giving the same sums (the kernels are read at offsets below
# n_nodes only). Spectra cached for an M up to SPECTRA_REUSE times the
# smallest are used rather than computing new ones: the 10^6 layout's grid
# shrinks back and forth by a few percent while it settles (at 2 threads,
# 0.07-0.2 s a new entry for M ~2,200, against ~0.15 s for a transform pass
# at that size, 5-10 % more for the larger M).
SPECTRA_REUSE = 1.1


def _fft_size(n_nodes):
    """The smallest even M >= 2 n_nodes whose prime factors are 2, 3 and 5."""
    return 2 * scipy.fft.next_fast_len(int(n_nodes), real=True)


def _fft_plan(n_nodes, delta, workers):
    """(M, spectra) for a grid of n_nodes a side, node spacing delta: a cached
    M of at most SPECTRA_REUSE times the smallest (``_fft_size``), else the smallest."""
    need = _fft_size(n_nodes)
    near = [m for (m, d) in _kernel_cache if d == delta and need <= m <= SPECTRA_REUSE * need]
    M = min(near) if near else need
    return M, _kernel_spectra(M, delta, workers)


def _kernel_spectra(M, delta, workers):
    """The transforms of the three kernels (y_i - y_j) t^2 (two components) and
    t sampled at node offsets on the periodic M x M grid (M even): float32 (3,
    M, M // 2 + 1), the layout of ``_forward``'s output (rfft along the last
    axis, fft along the one before). The kernels are even (t) or odd (the
    force components) along each axis, so their transforms are real (t) or
    imaginary: stored is the transform of t, and i times those of the force
    kernels (``_potentials`` multiplies back). They are the cosine and sine
    transforms (type I) of one quadrant, an eighth of the full grid's
    kernels and of its transforms' work; the odd kernels are 0 at offset M / 2
    (never read when M >= 2 n_nodes) so that they are odd on the periodic grid."""
    key = (M, delta)
    hit = _kernel_cache.get(key)
    if hit is not None:
        _kernel_cache.move_to_end(key)
        return hit
    if M % 2:
        raise ValueError(f"the padded grid's side must be even, got {M}")
    H = M // 2
    off = (np.arange(H + 1, dtype=np.float64) * delta).astype(np.float32)
    dx = off[:, None]
    dy = off[None, :]
    # float32 and one kernel at a time: the float64 stack of three kernels and
    # its temporaries peaked at 1.75 GB for M = 6,000
    t = 1.0 / (1.0 + dx * dx + dy * dy)
    spectra = np.empty((3, M, H + 1), dtype=np.float32)
    # even along both axes: the transform's rows j and M - j are equal
    c = scipy.fft.dct(scipy.fft.dct(t, type=1, axis=0, workers=workers), type=1, axis=1,
                      workers=workers)
    spectra[2, :H + 1] = c
    spectra[2, H + 1:] = c[H - 1:0:-1]
    tt = t * t
    del t, c
    # odd along the rows: a sine transform of offsets 1..H-1, the transform
    # -i s_j with s_{M-j} = -s_j, 0 at rows 0 and H
    a = scipy.fft.dct(scipy.fft.dst(dx[1:H] * tt[1:H], type=1, axis=0, workers=workers),
                      type=1, axis=1, workers=workers)
    spectra[0, 0] = 0.0
    spectra[0, H] = 0.0
    spectra[0, 1:H] = a
    spectra[0, H + 1:] = -a[::-1]
    del a
    # odd along the columns (the rfft's half: columns 0..H)
    b = scipy.fft.dst(scipy.fft.dct(dy[:, 1:H] * tt[:, 1:H], type=1, axis=0, workers=workers),
                      type=1, axis=1, workers=workers)
    spectra[1, :, 0] = 0.0
    spectra[1, :, H] = 0.0
    spectra[1, :H + 1, 1:H] = b
    spectra[1, H + 1:, 1:H] = b[H - 1:0:-1]
    del b, tt
    _kernel_cache[key] = spectra
    while len(_kernel_cache) > 1 and \
            sum(v.nbytes for v in _kernel_cache.values()) > KERNEL_CACHE_BYTES:
        _kernel_cache.popitem(last=False)
    return spectra


def _potentials(khat, what, M, n_nodes, workers, out=None):
    """The kernels khat (k, M, M // 2 + 1; ``_kernel_spectra``'s, the force
    kernels first: khat[:2] or all three) convolved with one transformed grid:
    float32 (k, n_nodes, n_nodes), into ``out`` when given. One kernel at a
    time: at M = 6,000 (a 10^6-point layout ~900 units wide) each product is
    144 MB, and all three at once (with their transforms) held over a GB more
    at the peak."""
    V = np.empty((khat.shape[0], n_nodes, n_nodes), dtype=np.float32) if out is None else out
    for k in range(khat.shape[0]):
        v = scipy.fft.ifft(what * khat[k], axis=0, workers=workers)[:n_nodes]
        if k < 2:
            # the force kernels' transforms are -i times the stored ones
            v *= np.complex64(-1j)
        V[k] = scipy.fft.irfft(v, n=M, axis=1, workers=workers)[:, :n_nodes]
    return V


def _geometry(Y, p, min_num_intervals, interval_size):
    """(lo, h, n_boxes, n_nodes): the bounding square of Y cut into boxes of
    ``interval_size``, or smaller so that there are ``min_num_intervals``."""
    lo = float(Y.min())
    span = max(float(Y.max()) - lo, 1e-9)
    if span >= min_num_intervals * interval_size:
        h = float(interval_size)
        n_boxes = int(math.floor(span / h)) + 1
    else:
        n_boxes = int(min_num_intervals)
        h = span / n_boxes * (1.0 + 1e-9)
    return lo, h, n_boxes, n_boxes * p


# The FFT path's supervision correction goes on grids (``_grid_correction``)
# when their transforms cost less than the class-aware tree
# (``supervision_correction``: cost ~ the labeled points, several times more
# while classes are still mixed, as in early exaggeration), that is when
#     n_nodes^2 + sum over classes of n_nodes_c^2 (+ strays' pairs / STRAY_PAIRS_PER_NODE2)
#         <= FFT_CLASS_COST * labeled points (u > 0)
# with n_nodes the correction's grid over the labeled points and n_nodes_c
# each class's grid (``_correction_grids``: the whole one, or one over the
# class's boxes when that is cheaper, its strays left out). 18 is the measured crossover on a
# converged Fashion-MNIST 70,000 layout (10 classes, half labeled, one
# thread, CPU time: the tree 1.8 us per labeled point, a grid 0.097 us per
# node^2 for its forward and two inverse transforms). The rule holds at 10^6
# (500,000 labeled, 20 classes, 2 threads): 0.21 s on grids against 1.1 s on
# the tree at iteration 80 (cost 1.4e6 node^2), 2.3 s against 1.15 s at
# iteration 300 (3.1e7). The rule bounds the memory too: a class's
# transform and potentials take ~24 bytes per node^2, so at most ~430 bytes
# per labeled point (the classes of one grid size are transformed together).
FFT_CLASS_COST = 18
# fewest boxes a side of the correction's own grid and of a class's grid
CORRECTION_MIN_INTERVALS = 8
# A class's grid need not hold every point of the class: the few far from
# the rest (strays) are summed exactly, a stray over its whole class and
# every other point over its class's strays (``_class_windows``). A stray
# costs 2 x its class's size pairs, counted as node^2 of transforms at
# STRAY_PAIRS_PER_NODE2 pairs each. A stray reads the labeled points' grid,
# whose error on the stray's own class near it is no longer cancelled by
# the class's grid, so strays are for points far from their class: a
# window may leave at most STRAY_SHARE of its class out, and at most
# STRAY_NEAR_SHARE within STRAY_MARGIN boxes of its edge.
# Measured (2 threads, r = 1, half labeled): on 10^6 points in 20 clusters,
# where 99.9% of a class's labeled points lie in one or two boxes but a few
# far away spread it over half the layout, a fresh correction at iteration
# 190 takes 0.62 s instead of 1.87 s (the tree, which the cost rule chose
# there: 1.46 s, 18% off where the grid is 0.02% off), at iteration 400
# 1.1 s instead of 3.6 s (the tree: 0.8 s, 12% off), with 128 and 64
# strays, 16, 64 or 256 pairs a node^2 alike. On Fashion-MNIST 70,000
# (classes that overlap) at iteration 700 the cost alone left 963 strays
# out at 16 pairs a node^2 (2,340 at 64), mostly in other classes' regions
# near strays of their own: their error against the exact correction was
# 44% at the 95th percentile (9% on a grid over all their class); the two
# shares leave 17 (5%), and none at iteration 400.
STRAY_PAIRS_PER_NODE2 = 16
STRAY_MARGIN = 2
STRAY_NEAR_SHARE = 1e-3
STRAY_SHARE = 5e-3


@numba.njit(cache=True)
def _class_boxes(first, take, cls, n_classes, p):
    """Per class (n_classes, 2, 2): the lowest and the highest box index on
    each axis of its points first[take] (their boxes' first nodes; classes
    ``cls``, one per entry of ``take``)."""
    out = np.empty((n_classes, 2, 2), dtype=np.int64)
    out[:, :, 0] = 2 ** 62
    out[:, :, 1] = -1
    for a in range(take.shape[0]):
        i = take[a]
        c = cls[a]
        for k in range(2):
            b = first[i, k] // p
            if b < out[c, k, 0]:
                out[c, k, 0] = b
            if b > out[c, k, 1]:
                out[c, k, 1] = b
    return out


def _window_sides(n_boxes):
    """The sides a class's grid may have, in boxes: the whole grid's, halved
    (rounded up) as long as at least CORRECTION_MIN_INTERVALS remain, so that
    the classes share a few sizes and the kernels' spectra of all of them
    together take at most 4/3 of the whole grid's (``_kernel_spectra``'s cache)."""
    sides = [int(n_boxes)]
    while True:
        half = -(-sides[-1] // 2)
        if half < CORRECTION_MIN_INTERVALS or half >= sides[-1]:
            return np.asarray(sides, dtype=np.int64)
        sides.append(half)


@numba.njit(cache=True)
def _class_windows(bx, cls, n_classes, sides, p, pairs_per_node2, margin, near_share, share):
    """Each class's grid, a square window of the correction grid's lattice
    (``sides[0]`` boxes a side) over the class's boxes ``bx`` (L, 2) (its
    points', classes ``cls``), and the points it leaves out (strays, summed
    exactly: ``_stray_sums``). For each side of ``sides`` the window is placed
    where it holds the most of the class's points on each axis; the side
    chosen costs least: (side p)^2 node^2 for the transforms plus
    2 x strays x class size pairs / ``pairs_per_node2``, among the windows
    that leave at most ``share`` of the class's points out, and at most
    ``near_share`` of them within ``margin`` boxes of their edge (STRAY_SHARE,
    STRAY_NEAR_SHARE, STRAY_MARGIN). The whole grid (sides[0]) leaves none
    out.

    Returns (origin (n_classes, 2), side (n_classes,), stray (L,) bool,
    cost: node^2 of the classes' transforms plus the strays' pairs)."""
    n_boxes = sides[0]
    n = bx.shape[0]
    n_sides = sides.shape[0]
    cum = np.zeros((n_classes, 2, n_boxes + 1), dtype=np.int64)
    size = np.zeros(n_classes, dtype=np.int64)
    for a in range(n):
        c = cls[a]
        size[c] += 1
        cum[c, 0, bx[a, 0] + 1] += 1
        cum[c, 1, bx[a, 1] + 1] += 1
    for c in range(n_classes):
        for k in range(2):
            for b in range(n_boxes):
                cum[c, k, b + 1] += cum[c, k, b]
    org = np.zeros((n_classes, n_sides, 2), dtype=np.int64)
    for c in range(n_classes):
        for t in range(1, n_sides):
            s = sides[t]
            for k in range(2):
                best = -1
                for o in range(n_boxes - s + 1):
                    v = cum[c, k, o + s] - cum[c, k, o]
                    if v > best:
                        best = v
                        org[c, t, k] = o
    inside = np.zeros((n_classes, n_sides), dtype=np.int64)
    near = np.zeros((n_classes, n_sides), dtype=np.int64)
    for a in range(n):
        c = cls[a]
        inside[c, 0] += 1
        for t in range(1, n_sides):
            s = sides[t]
            x = bx[a, 0] - org[c, t, 0]
            y = bx[a, 1] - org[c, t, 1]
            if 0 <= x < s and 0 <= y < s:
                inside[c, t] += 1
            elif -margin <= x < s + margin and -margin <= y < s + margin:
                near[c, t] += 1
    origin = np.zeros((n_classes, 2), dtype=np.int64)
    side = np.empty(n_classes, dtype=np.int64)
    total = 0.0
    for c in range(n_classes):
        best = np.inf
        for t in range(n_sides):
            if near[c, t] > near_share * size[c] or size[c] - inside[c, t] > share * size[c]:
                continue
            cost = float(sides[t] * p) ** 2 + 2.0 * (size[c] - inside[c, t]) * size[c] / pairs_per_node2
            if cost < best:
                best = cost
                side[c] = sides[t]
                origin[c, 0] = org[c, t, 0]
                origin[c, 1] = org[c, t, 1]
        total += best
    stray = np.zeros(n, dtype=np.bool_)
    for a in range(n):
        c = cls[a]
        for k in range(2):
            if bx[a, k] < origin[c, k] or bx[a, k] >= origin[c, k] + side[c]:
                stray[a] = True
    return origin, side, stray, total


@numba.njit(parallel=True, cache=True)
def _weighted_power(khat_t, what, last_once):
    """sum over grids, rows and columns of khat_t |what|^2 (float64), the
    columns but the first (and the last when ``last_once``) twice. what
    (k, M, H) complex64, khat_t (M, H) real."""
    k, rows, cols = what.shape
    acc = np.zeros(rows)
    for x in numba.prange(rows):
        s = 0.0
        for y in range(cols):
            w = 1.0 if y == 0 or (last_once and y == cols - 1) else 2.0
            pw = 0.0
            for g in range(k):
                re = np.float64(what[g, x, y].real)
                im = np.float64(what[g, x, y].imag)
                pw += re * re + im * im
            s += w * np.float64(khat_t[x, y]) * pw
        acc[x] = s
    return acc.sum()


def _self_energy(khat_t, what, M):
    """<W, K_t * W> on the padded M x M grid from W's transform (rfft along
    the last axis, then fft along the one before; summed over any leading
    axis), by Parseval: no inverse transform. The rfft halves' inner columns
    count twice."""
    if what.ndim == 2:
        what = what[None]
    return _weighted_power(khat_t, what, M % 2 == 0) / (M * M)


def _correction_grids(Y, first, wts, active, cls, n_classes, h, n_boxes, p, interval_size):
    """The correction's grids for the labeled points Y[active] (classes
    ``cls`` 0..n_classes-1; ``first``, ``wts``: every point's on the plain
    repulsion's grid of n_boxes of h a side).

    Where the plain repulsion's boxes are of ``interval_size`` (a layout over
    min_num_intervals of them wide) the correction's grid is on its lattice:
    the labeled points' boxes, or the whole grid when they span half of it or
    more (its kernels' spectra are then the plain repulsion's, cached), and
    their weights as they are. A smaller layout's grid has finer boxes than
    the correction needs: the labeled points get a grid of their own, boxes
    of ``interval_size`` and at least CORRECTION_MIN_INTERVALS a side.

    Each class gets a grid over its boxes (``_class_windows``: a window of
    the lattice holding most of them; the few it leaves out, strays, are
    summed exactly) unless that costs more than every class on the whole
    grid (node^2 of transforms and strays' pairs, plus one per labeled point
    for the second spread and gather).

    Returns (order, cost, grid): the cost in node^2 of the transforms (and
    strays' pairs), and grid = (first_L, wts_L, h, n_boxes, grids, strays)
    for ``_grid_correction``: the labeled points' first nodes and weights on
    the correction's grid in ``order`` (by the size of their class's grid,
    then class, strays first; storage order within), its box size and boxes
    a side, the classes' grids (origin, side) and the strays (None: none;
    else (stray (L,) bool, the labeled points' positions (L, 2)), in
    ``order``)."""
    take = active
    own = h < interval_size
    if own:
        YL = Y[active]
        lo, h, n_boxes, _ = _geometry(YL, p, CORRECTION_MIN_INTERVALS, interval_size)
        first, wts = _interp_weights(YL, lo, h, n_boxes, p)
        take = np.arange(active.size)
    boxes = _class_boxes(first, take, cls, n_classes, p)
    b_lo = boxes[:, :, 0].min(axis=0)
    span = int((boxes[:, :, 1].max(axis=0) - b_lo).max()) + 1
    if 2 * span >= n_boxes:
        b_lo[:] = 0
    else:
        n_boxes = span
    first_L = first[take] - b_lo * p
    origin, side, stray, class_cost = _class_windows(first_L // p, cls, n_classes,
                                                     _window_sides(n_boxes), p,
                                                     STRAY_PAIRS_PER_NODE2, STRAY_MARGIN,
                                                     STRAY_NEAR_SHARE, STRAY_SHARE)
    n_nodes = n_boxes * p
    cost = n_nodes ** 2 + int(class_cost)
    if cost + take.size >= n_classes * n_nodes ** 2:
        # classes spread over most of the grid, or a grid so small that a
        # second spread and gather of every labeled point cost more than the
        # transforms saved: every class on the whole grid, in storage order
        grids = (np.zeros((n_classes, 2), dtype=np.int64), np.full(n_classes, n_boxes))
        order = np.arange(take.size)
        cost = n_classes * n_nodes ** 2
        return order, cost, (first_L, wts if own else wts[take], h, n_boxes, grids, None)
    # by grid size, then class, strays first (a stable radix sort); storage order (Z-order at
    # scale) within
    rank = np.searchsorted(np.unique(side), side)
    key = (rank[cls] * n_classes + cls) * 2 + ~stray
    order = np.argsort(key.astype(np.int16 if key.max() < 2 ** 15 else np.int64), kind="stable")
    first_o, wts_o, YL = _labeled_rows(first_L, wts, Y, order, take, active)
    strays = (stray[order], YL) if stray.any() else None
    return order, cost, (first_o, wts_o, h, n_boxes, (origin, side), strays)


@numba.njit(parallel=True, cache=True)
def _labeled_rows(first_L, wts, Y, order, take, active):
    """first_L[order], wts[take[order]] and Y[active[order]] in one parallel
    pass (numpy's fancy indexing, one thread, took ~40 ms at 500,000 labeled
    points)."""
    n = order.shape[0]
    p = wts.shape[2]
    f = np.empty((n, 2), dtype=first_L.dtype)
    w = np.empty((n, 2, p))
    YL = np.empty((n, 2))
    for k in numba.prange(n):
        o = order[k]
        t = take[o]
        a = active[o]
        for x in range(2):
            f[k, x] = first_L[o, x]
            YL[k, x] = Y[a, x]
            for q in range(p):
                w[k, x, q] = wts[t, x, q]
    return f, w, YL


@numba.njit(parallel=True, fastmath=True, cache=True)
def _stray_sums(YL, uL, targets, lo, hi):
    """For each of ``targets``: sum over j in lo..hi-1 of u_j t_ij^2 (y_i - y_j)
    (m, d) and of u_j t_ij (m,), points YL (L, d) (``_pair_sums``)."""
    m = targets.shape[0]
    rep = np.zeros((m, YL.shape[1]))
    z = np.zeros(m)
    for k in numba.prange(m):
        z[k] = _pair_sums(YL, targets[k], lo[k], hi[k], uL, rep[k])
    return rep, z


def _own_strays(stray, cls, n_classes, YL, uL):
    """The part of each class's own potential that its grid leaves out, exactly:
    for a stray (outside its class's grid), the sum over its whole class; for
    a point on it, the sum over its class's strays. Points in ``_correction_grids``'s
    order (a class contiguous, strays first). Returns (the points summed
    (m,), their sums (m, 2) and (m,))."""
    n = cls.size
    k = np.bincount(cls[stray], minlength=n_classes)
    targets = np.flatnonzero(k[cls] > 0)
    start = np.zeros(n_classes, dtype=np.int64)
    end = np.zeros(n_classes, dtype=np.int64)
    cut = np.concatenate(([0], np.flatnonzero(np.diff(cls)) + 1))
    start[cls[cut]] = cut
    end[cls[cut]] = np.append(cut[1:], n)
    c = cls[targets]
    lo = start[c]
    hi = np.where(stray[targets], end[c], lo + k[c])
    rep, z = _stray_sums(YL, uL, targets, lo, hi)
    return targets, rep, z


def _grid_correction(first, wts, h, n_boxes, grids, strays, cls, uL, r, p, workers):
    """The supervision's correction for the labeled points (u > 0): point i
    of class c gets r u_i times sum over labeled j of other classes of u_j
    t_ij^2 (y_i - y_j), and Z's share is r sum over such pairs of u_i u_j t_ij.

    On the grids of ``_correction_grids`` (its ``grid``: the first
    arguments); classes ``cls`` 0..C-1 and charges uL in its order.

    The labeled points' charges are transformed once on the whole grid (or
    summed from the classes' transforms when all are on it). A class whose
    grid is the whole one reads, on the transform of (all labeled minus its
    class), the other classes' potential directly. A class on a smaller grid
    of its own over its boxes, on the same lattice (so that its nodes'
    charges and the kernel between them are the whole grid's), reads the
    labeled points' potential on the whole grid minus its own class's on its
    grid: the same difference, without a transform of the whole grid per
    class. Classes of one size share their spread, transforms and gather.
    The strays of a class (``strays``: outside its grid) are on no class
    grid: a stray reads the labeled points' potential minus its whole
    class's, summed exactly, and a point on the grid adds its class's strays'
    share, summed exactly (``_own_strays``). Z's share is the labeled points'
    self-energy minus the classes' (Parseval), and minus the strays' pairs
    with their class. Returns rep_c (n_labeled, 2) and Z_c, in the points'
    order."""
    origin, side = grids
    n = cls.size
    delta = h / p
    n_nodes = n_boxes * p
    M, khat = _fft_plan(n_nodes, delta, workers)
    others = np.empty((n, 2))
    sizes = side[cls]
    # points of classes on smaller grids come first
    part = int(np.searchsorted(sizes, n_boxes))
    labeled = None
    energy = 0.0
    if part > 0:
        # the labeled points' transform, and their potential read at those points
        W = _spread_grids(first, wts, np.zeros(n, dtype=np.int64), uL, 1, n_nodes)
        labeled = _forward(W[0], M, workers)
        energy = _self_energy(khat[2], labeled, M)
        V = _potentials(khat[:2], labeled, M, n_nodes, workers)
        others[:part] = _gather(first[:part], wts[:part], np.zeros(part, dtype=np.int64), V[None])
        del V
    for s in np.unique(side):
        lo, hi = np.searchsorted(sizes, [s, s + 1])
        members = np.flatnonzero(side == s)
        slot = np.full(side.size, -1, dtype=np.int64)
        slot[members] = np.arange(members.size)
        n_nodes_s = int(s) * p
        n_grids = members.size
        c = cls[lo:hi]
        f = first[lo:hi] - origin[c] * p
        g = slot[c]
        if strays is not None:
            # strays are on no grid: their class's share comes from _own_strays
            g[strays[0][lo:hi]] = -1
        W = _spread_grids(f, wts[lo:hi], g, uL[lo:hi], n_grids, n_nodes_s)
        whole = s == n_boxes
        # the whole grid's transforms are combined with the labeled points': the same M
        M_s, khat_s = (M, khat) if whole else _fft_plan(n_nodes_s, delta, workers)
        what = _forward(W, M_s, workers)
        if labeled is None:
            # every class on the whole grid: the labeled points' transform is their sum
            labeled = what.sum(axis=0)
            energy = _self_energy(khat[2], labeled, M)
        energy -= _self_energy(khat_s[2], what, M_s)
        V = np.empty((n_grids, 2, n_nodes_s, n_nodes_s), dtype=np.float32)
        for k in range(members.size):
            # the whole grid: other classes' charges = all labeled minus this class
            _potentials(khat_s[:2], labeled - what[k] if whole else what[k], M_s, n_nodes_s,
                        workers, out=V[k])
        own = _gather(f, wts[lo:hi], g, V)
        if whole:
            others[lo:hi] = own
        else:
            others[lo:hi] -= own
    if strays is not None:
        at, rep_s, z_s = _own_strays(strays[0], cls, side.size, strays[1], uL)
        others[at] -= rep_s
        energy -= float(np.dot(uL[at], z_s))
    return others * (r * uL)[:, None], r * energy


def fft_repulsion_2d(Y, n_interpolation_points=4, min_num_intervals=50,
                     interval_size=1.2, workers=None, codes=None, u=None,
                     repulsion_emphasis=0.0, on_grid=None, correction_theta=None, parts=False,
                     correction_if=None):
    """FFT-interpolated rep (N, 2) and Z. Y (N, 2) float64.

    The embedding's bounding square is cut into boxes of ``interval_size``
    (or smaller, so that there are at least ``min_num_intervals`` per axis);
    the kernels (y_i - y_j) t^2 (two components) and t are interpolated with
    ``n_interpolation_points`` Lagrange nodes per box and axis, and the
    node-to-node sums are one FFT convolution each (the FIt-SNE scheme of
    Linderman et al. 2019, with the forces' kernels convolved directly: one
    forward transform of the point density and three inverse ones, and no
    cancellation between large terms). The force kernels are less smooth than
    FIt-SNE's t^2, so the default is 4 nodes per box of 1.2 units (3.3 nodes
    per unit; 3 per unit with 3 nodes gave twice the error): about 2% L2
    error on the repulsive forces of a converged 70,000-point layout, less
    than FIt-SNE's defaults (2.5%) at half the transforms. The kernels'
    spectra are cached: the box size stays fixed while the layout grows.

    With ``codes`` (N,) int32 (-1 unlabeled), ``u`` (N,) and
    ``repulsion_emphasis`` r > 0, b_ij = 1 + r u_i u_j on labeled pairs of
    different labels is included, as ``exact_repulsion`` does: as the
    labeled points' potential minus each class's own on a grid over its
    boxes (``_grid_correction``; its error is the grid's,
    relative to the correction, as the main sums' is to them) when
    ``on_grid`` is True (None: when the cost rule of FFT_CLASS_COST says it
    is cheaper), else the class-aware tree
    (``supervision_correction``, opening angle ``correction_theta``, default
    CORRECTION_THETA).

    ``parts`` True returns (rep, Z, rep_c, Z_c): the plain repulsion (b = 1)
    and the supervision's share apart (zeros and 0.0 without supervision), so
    that a caller can reuse a correction between iterations (``tsne``);
    ``correction_if`` (with ``parts``), a function of the plain (rep, Z),
    says whether to compute the correction on the same grid (False: rep_c is
    None and Z_c 0.0).
    """
    n = Y.shape[0]
    p = int(n_interpolation_points)
    if workers is None:
        workers = numba.get_num_threads()
    r = float(repulsion_emphasis)
    lo, h, n_boxes, n_nodes = _geometry(Y, p, min_num_intervals, interval_size)
    first, wts = _interp_weights(Y, lo, h, n_boxes, p)
    W = _spread_grids(first, wts, np.zeros(n, dtype=np.int64), np.ones(n), 1, n_nodes)
    M, khat = _fft_plan(n_nodes, h / p, workers)
    # Single precision halves the FFT time; the interpolation error (~1e-3)
    # dominates its rounding. Only n_nodes of the M rows are non-zero on the
    # way in (``_forward``) and only n_nodes are needed on the way out
    # (``_potentials``), so the two axes are transformed separately.
    what = _forward(W[0], M, workers)
    V = _potentials(khat, what, M, n_nodes, workers)[None]
    phi = _gather(first, wts, np.zeros(n, dtype=np.int64), V)
    rep = np.ascontiguousarray(phi[:, 0:2])
    # every point sees itself once at distance 0 (t = 1, no force)
    Z = float(phi[:, 2].sum() - n)
    rep_c = np.zeros_like(rep)
    Z_c = 0.0
    if parts and correction_if is not None and not correction_if(rep, Z):
        return rep, Z, None, 0.0
    if codes is not None and r > 0.0:
        active = np.flatnonzero((codes >= 0) & (u > 0))
        present = np.flatnonzero(np.bincount(codes[active], minlength=1))
        if present.size >= 2:
            slot = np.zeros(int(present.max()) + 1, dtype=np.int64)
            slot[present] = np.arange(present.size)
            cls = slot[codes[active]]
            order, cost, grid = _correction_grids(Y, first, wts, active, cls, present.size,
                                                  h, n_boxes, p, interval_size)
            if on_grid is None:
                on_grid = cost <= FFT_CLASS_COST * active.size
            if on_grid:
                at = active[order]
                rep_c[at], Z_c = _grid_correction(*grid, cls[order], u[at], r, p, workers)
            else:
                theta = CORRECTION_THETA if correction_theta is None else correction_theta
                rep_c, Z_c, _ = supervision_correction(Y, codes, u, r, theta)
    if parts:
        return rep, Z, rep_c, Z_c
    return rep + rep_c, Z + Z_c


# ---------------------------------------------------------------- supervision


@numba.njit(inline="always")
def _pair_sums(YL, i, lo, hi, uL, ri):
    """sum over j in lo..hi-1 of u_j t_ij (returned) and of u_j t_ij^2 (y_i - y_j)
    (into ri), with scalar accumulators for d = 2 and 3 so that the loop vectorises."""
    d = YL.shape[1]
    za = 0.0
    if d == 2:
        y0 = YL[i, 0]
        y1 = YL[i, 1]
        r0 = 0.0
        r1 = 0.0
        for j in range(lo, hi):
            d0 = y0 - YL[j, 0]
            d1 = y1 - YL[j, 1]
            t = 1.0 / (1.0 + d0 * d0 + d1 * d1)
            w = uL[j] * t
            za += w
            wt = w * t
            r0 += wt * d0
            r1 += wt * d1
        ri[0] = r0
        ri[1] = r1
    elif d == 3:
        y0 = YL[i, 0]
        y1 = YL[i, 1]
        y2 = YL[i, 2]
        r0 = 0.0
        r1 = 0.0
        r2 = 0.0
        for j in range(lo, hi):
            d0 = y0 - YL[j, 0]
            d1 = y1 - YL[j, 1]
            d2 = y2 - YL[j, 2]
            t = 1.0 / (1.0 + d0 * d0 + d1 * d1 + d2 * d2)
            w = uL[j] * t
            za += w
            wt = w * t
            r0 += wt * d0
            r1 += wt * d1
            r2 += wt * d2
        ri[0] = r0
        ri[1] = r1
        ri[2] = r2
    else:
        for k in range(d):
            ri[k] = 0.0
        for j in range(lo, hi):
            dd = 0.0
            for k in range(d):
                diff = YL[i, k] - YL[j, k]
                dd += diff * diff
            t = 1.0 / (1.0 + dd)
            w = uL[j] * t
            za += w
            for k in range(d):
                ri[k] += w * t * (YL[i, k] - YL[j, k])
    return za


@numba.njit(parallel=True, fastmath=True, cache=True)
def _exact_correction(YL, first, last, uL):
    """sum over j of another class of u_j t_ij^2 (y_i - y_j) (n, d) and of u_j
    t_ij (n,), for points YL sorted by class: point i's class is the run
    first[i]..last[i] - 1. The sum over all points minus the sum over that run,
    both without a branch (so both loops vectorise); the self pair is in both."""
    n, d = YL.shape
    rep = np.zeros((n, d))
    z = np.zeros(n)
    for i in numba.prange(n):
        everyone = np.empty(d)
        own = np.empty(d)
        z[i] = _pair_sums(YL, i, 0, n, uL, everyone) - _pair_sums(YL, i, first[i], last[i], uL, own)
        for k in range(d):
            rep[i, k] = everyone[k] - own[k]
    return rep, z


# Below this many labeled pairs the correction is summed exactly.
EXACT_CORRECTION_MAX_PAIRS = 8_000_000


# The correction is a small fraction of the repulsion (r u_i u_j on some
# pairs), so its tree is opened less eagerly than the main one. The grouped
# walk's criterion is conservative (distance to the group's bounding box): at
# theta 1.0 its error (about 7% of the correction on a 70,000-point layout
# with half the points labeled, well below 1% of the total repulsive force;
# test_fast_gradient_within_tolerance_of_exact) equals the per-point walk's
# at 0.8.
CORRECTION_THETA = 1.0


def supervision_correction(Y, codes, u, r, theta=CORRECTION_THETA,
                           exact_max_pairs=EXACT_CORRECTION_MAX_PAIRS):
    """The repulsion added by b_ij - 1 = u_i u_j r on labeled different-label pairs.

    Returns (rep_c (N, d), Z_c, exact: bool). Only points with codes >= 0 and
    u > 0 are visited; below ``exact_max_pairs`` labeled pairs the sums are
    exact, above a class-aware Barnes-Hut tree with opening angle ``theta``.
    """
    n, d = Y.shape
    rep_c = np.zeros((n, d))
    if r == 0.0:
        return rep_c, 0.0, True
    active = np.flatnonzero((codes >= 0) & (u > 0))
    if active.size < 2:
        return rep_c, 0.0, True
    YL = np.ascontiguousarray(Y[active])
    cls = np.ascontiguousarray(codes[active]).astype(np.int32)
    uL = u[active]
    if active.size ** 2 <= exact_max_pairs:
        by_class = np.argsort(cls, kind="stable")
        cs = cls[by_class]
        first = np.searchsorted(cs, cs, "left")
        last = np.searchsorted(cs, cs, "right")
        rep_s, z_s = _exact_correction(np.ascontiguousarray(YL[by_class]), first, last,
                                       np.ascontiguousarray(uL[by_class]))
        rep = np.empty_like(rep_s)
        z = np.empty_like(z_s)
        rep[by_class] = rep_s
        z[by_class] = z_s
        exact = True
    else:
        n_classes = int(cls.max()) + 1
        order = _morton_order(YL)
        Ys = np.ascontiguousarray(YL[order])
        cs = np.ascontiguousarray(cls[order])
        children, half, internal, mass, wsum, cmass, cwsum = _tree(
            Ys, np.ascontiguousarray(uL[order]), cs, n_classes)
        # targets grouped by class (each group one class), Z-order inside
        by_class = np.argsort(cs, kind="stable")
        T = np.ascontiguousarray(Ys[by_class])
        starts, gcls = _group_starts(cs[by_class])
        rep_t, z_t = _traverse_groups(T, starts, gcls, children, internal, (2.0 * half) ** 2,
                                      mass, wsum, cmass, cwsum, float(theta))
        rep = np.empty_like(rep_t)
        z = np.empty_like(z_t)
        rep[order[by_class]] = rep_t
        z[order[by_class]] = z_t
        exact = False
    scale = r * uL
    rep_c[active] = rep * scale[:, None]
    return rep_c, float((z * scale).sum()), exact
