"""Repulsive forces of t-SNE with supervision weights b_ij.

All functions return the *unnormalised* pieces

    rep_i = sum_j b_ij t_ij^2 (y_i - y_j)      (N, d)
    Z     = sum_{i != j} b_ij t_ij             scalar

with t_ij = 1 / (1 + |y_i - y_j|^2); the repulsive gradient is 4 rep_i / Z.

* ``exact_repulsion``: all pairs, b_ij included exactly. O(N^2); the reference
  for tests and the fastest choice for a couple of thousand points.
* ``fft_repulsion_2d``: b = 1, FFT-accelerated polynomial interpolation on a
  regular grid (the FIt-SNE scheme, Linderman et al. 2019).
* ``bh_repulsion``: b = 1, Barnes-Hut quadtree/octree, 2D and 3D.
* ``supervision_correction``: the b_ij - 1 = u_i u_j r part on labeled pairs of
  different labels only. Exact pair sums when there are few such pairs, else a
  Barnes-Hut tree over the labeled points whose nodes keep per-class masses, so
  that whole subtrees of the target's own class are skipped. Unlabeled points
  are never visited.
"""
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
# rows per parallel work item
_CHUNK = 256


@numba.njit(cache=True)
def _build_tree(Y, w, cls, n_classes, cap):
    """Insert points one by one into a 2^d-ary tree.

    Every node keeps the total mass, the mass-weighted coordinate sum, and the
    same two per class (so the mass of "every class but c" is a subtraction).
    Returns (n_nodes, children, half, internal, cmass, cwsum); n_nodes is -1
    (and the arrays empty) when ``cap`` nodes were not enough.
    """
    n, d = Y.shape
    nchild = 1 << d
    children = np.full((cap, nchild), -1, dtype=np.int32)
    centre = np.zeros((cap, d))
    half = np.zeros(cap)
    internal = np.zeros(cap, dtype=np.bool_)
    count = np.zeros(cap, dtype=np.int64)
    leaf_point = np.full(cap, -1, dtype=np.int64)
    cmass = np.zeros((cap, n_classes))
    cwsum = np.zeros((cap, n_classes, d))
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
    n_nodes = 1
    for p in range(n):
        node = 0
        depth = 0
        c = cls[p]
        while True:
            if not internal[node]:
                if count[node] == 0:
                    leaf_point[node] = p
                    count[node] = 1
                    cmass[node, c] += w[p]
                    for k in range(d):
                        cwsum[node, c, k] += w[p] * Y[p, k]
                    break
                q = leaf_point[node]
                same = True
                for k in range(d):
                    if Y[q, k] != Y[p, k]:
                        same = False
                if same or depth >= _MAX_DEPTH:
                    # duplicates (or a pathological pile-up) share one leaf
                    count[node] += 1
                    cmass[node, c] += w[p]
                    for k in range(d):
                        cwsum[node, c, k] += w[p] * Y[p, k]
                    break
                # split: push the leaf's content down into one child
                if n_nodes >= cap:
                    return -1, children[:0], half[:0], internal[:0], cmass[:0], cwsum[:0]
                ch = 0
                for k in range(d):
                    if Y[q, k] >= centre[node, k]:
                        ch |= 1 << k
                nn = n_nodes
                n_nodes += 1
                children[node, ch] = nn
                half[nn] = 0.5 * half[node]
                for k in range(d):
                    off = half[nn] if (ch >> k) & 1 else -half[nn]
                    centre[nn, k] = centre[node, k] + off
                count[nn] = count[node]
                leaf_point[nn] = q
                for cc in range(n_classes):
                    cmass[nn, cc] = cmass[node, cc]
                    for k in range(d):
                        cwsum[nn, cc, k] = cwsum[node, cc, k]
                internal[node] = True
                leaf_point[node] = -1
            # internal node: account for p here and descend
            count[node] += 1
            cmass[node, c] += w[p]
            for k in range(d):
                cwsum[node, c, k] += w[p] * Y[p, k]
            ch = 0
            for k in range(d):
                if Y[p, k] >= centre[node, k]:
                    ch |= 1 << k
            if children[node, ch] == -1:
                if n_nodes >= cap:
                    return -1, children[:0], half[:0], internal[:0], cmass[:0], cwsum[:0]
                nn = n_nodes
                n_nodes += 1
                children[node, ch] = nn
                half[nn] = 0.5 * half[node]
                for k in range(d):
                    off = half[nn] if (ch >> k) & 1 else -half[nn]
                    centre[nn, k] = centre[node, k] + off
            node = children[node, ch]
            depth += 1
    return n_nodes, children[:n_nodes], half[:n_nodes], internal[:n_nodes], \
        cmass[:n_nodes], cwsum[:n_nodes]


@numba.njit(parallel=True, cache=True)
def _traverse(T, tcls, children, half, internal, mass, wsum, cmass, cwsum, theta):
    """For each target row of T, sum over tree masses m of the classes != tcls
    (all classes when tcls = -1): rep += m t^2 (y - com), z += m t."""
    n, d = T.shape
    nchild = children.shape[1]
    rep = np.zeros((n, d))
    z = np.zeros(n)
    theta2 = theta * theta
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
      # per-chunk scratch: allocating per point inside prange costs more
      # than the traversal of a small tree
      stack = np.empty(_MAX_DEPTH * nchild + 16, dtype=np.int64)
      com = np.empty(d)
      ri = np.empty(d)
      for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
        stack[0] = 0
        top = 1
        c = tcls[i]
        zi = 0.0
        for k in range(d):
            ri[k] = 0.0
        while top > 0:
            top -= 1
            node = stack[top]
            # Totals are sums over classes, so for a node holding class c only
            # the subtraction is exactly 0 and the whole subtree is skipped.
            if c >= 0:
                m = mass[node] - cmass[node, c]
            else:
                m = mass[node]
            if m <= 0.0:
                continue
            for k in range(d):
                if c >= 0:
                    com[k] = (wsum[node, k] - cwsum[node, c, k]) / m
                else:
                    com[k] = wsum[node, k] / m
            d2 = 0.0
            for k in range(d):
                diff = T[i, k] - com[k]
                d2 += diff * diff
            side = 2.0 * half[node]
            if internal[node] and side * side > theta2 * d2:
                for ch in range(nchild):
                    nxt = children[node, ch]
                    if nxt >= 0:
                        stack[top] = nxt
                        top += 1
            else:
                t = 1.0 / (1.0 + d2)
                zi += m * t
                mt2 = m * t * t
                for k in range(d):
                    ri[k] += mt2 * (T[i, k] - com[k])
        z[i] = zi
        for k in range(d):
            rep[i, k] = ri[k]
    return rep, z


def _tree(Y, w, cls, n_classes):
    cap = 4 * Y.shape[0] + 64
    while True:
        out = _build_tree(Y, w, cls, n_classes, cap)
        if out[0] >= 0:
            children, half, internal, cmass, cwsum = out[1:]
            return children, half, internal, cmass.sum(axis=1), cwsum.sum(axis=1), cmass, cwsum
        cap *= 2


@numba.njit(parallel=True, cache=True)
def _traverse_plain(T, children, internal, node_info, theta):
    """_traverse for one class of unit masses; node_info rows are
    [mass, side^2, centre of mass...], packed so one cache line serves a node."""
    n, d = T.shape
    nchild = children.shape[1]
    rep = np.zeros((n, d))
    z = np.zeros(n)
    theta2 = theta * theta
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
      stack = np.empty(_MAX_DEPTH * nchild + 16, dtype=np.int64)
      ri = np.empty(d)
      for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
        stack[0] = 0
        top = 1
        zi = 0.0
        for k in range(d):
            ri[k] = 0.0
        while top > 0:
            top -= 1
            node = stack[top]
            d2 = 0.0
            for k in range(d):
                diff = T[i, k] - node_info[node, 2 + k]
                d2 += diff * diff
            if internal[node] and node_info[node, 1] > theta2 * d2:
                for ch in range(nchild):
                    nxt = children[node, ch]
                    if nxt >= 0:
                        stack[top] = nxt
                        top += 1
            else:
                m = node_info[node, 0]
                t = 1.0 / (1.0 + d2)
                zi += m * t
                mt2 = m * t * t
                for k in range(d):
                    ri[k] += mt2 * (T[i, k] - node_info[node, 2 + k])
        z[i] = zi
        for k in range(d):
            rep[i, k] = ri[k]
    return rep, z


def _morton_order(Y, bits=10):
    """Permutation putting Y in Z-order, so that consecutive targets walk the
    same part of the tree and nodes are laid out near each other in memory."""
    n, d = Y.shape
    lo = Y.min(axis=0)
    span = max(float(np.ptp(Y, axis=0).max()), 1e-12)
    q = ((Y - lo) * ((2 ** bits - 1) / span)).astype(np.uint64)
    code = np.zeros(n, dtype=np.uint64)
    for b in range(bits):
        for k in range(d):
            code |= ((q[:, k] >> np.uint64(b)) & np.uint64(1)) << np.uint64(b * d + k)
    return np.argsort(code, kind="stable")


def bh_repulsion(Y, theta=0.5):
    """Barnes-Hut rep (N, d) and Z for b = 1. Y (N, d) float64, d in {2, 3}."""
    n = Y.shape[0]
    order = _morton_order(Y)
    Ys = np.ascontiguousarray(Y[order])
    children, half, internal, mass, wsum, _, _ = _tree(
        Ys, np.ones(n), np.zeros(n, dtype=np.int32), 1)
    node_info = np.column_stack([mass, (2.0 * half) ** 2, wsum / mass[:, None]])
    rep_s, z = _traverse_plain(Ys, children, internal, node_info, float(theta))
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


@numba.njit(cache=True)
def _spread(Y, charges, lo, h, n_boxes, p):
    n = Y.shape[0]
    m = charges.shape[1]
    n_nodes = n_boxes * p
    W = np.zeros((m, n_nodes, n_nodes))
    lx = np.empty(p)
    ly = np.empty(p)
    delta = h / p
    for i in range(n):
        bx = min(int((Y[i, 0] - lo) / h), n_boxes - 1)
        by = min(int((Y[i, 1] - lo) / h), n_boxes - 1)
        _lagrange((Y[i, 0] - lo) / delta - bx * p - 0.5, p, lx)
        _lagrange((Y[i, 1] - lo) / delta - by * p - 0.5, p, ly)
        for a in range(p):
            for b in range(p):
                wab = lx[a] * ly[b]
                for c in range(m):
                    W[c, bx * p + a, by * p + b] += wab * charges[i, c]
    return W


@numba.njit(parallel=True, cache=True)
def _gather(Y, V, lo, h, n_boxes, p):
    n = Y.shape[0]
    m = V.shape[0]
    out = np.zeros((n, m))
    delta = h / p
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
      lx = np.empty(p)
      ly = np.empty(p)
      for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
        bx = min(int((Y[i, 0] - lo) / h), n_boxes - 1)
        by = min(int((Y[i, 1] - lo) / h), n_boxes - 1)
        _lagrange((Y[i, 0] - lo) / delta - bx * p - 0.5, p, lx)
        _lagrange((Y[i, 1] - lo) / delta - by * p - 0.5, p, ly)
        for a in range(p):
            for b in range(p):
                wab = lx[a] * ly[b]
                for c in range(m):
                    out[i, c] += wab * V[c, bx * p + a, by * p + b]
    return out


def fft_repulsion_2d(Y, n_interpolation_points=3, min_num_intervals=50,
                     interval_size=1.0, workers=1):
    """FFT-interpolated rep (N, 2) and Z for b = 1. Y (N, 2) float64.

    The embedding's bounding square is cut into boxes of at most
    ``interval_size`` (at least ``min_num_intervals`` per axis); the kernel
    t^2 is interpolated with ``n_interpolation_points`` Lagrange nodes per box
    and axis. Charges 1, y, |y|^2 give sum_j t^2, sum_j t^2 y_j and
    sum_j t^2 |y_j|^2, from which rep and sum_j t (= sum_j t^2 (1 + d^2)) follow.
    """
    n = Y.shape[0]
    p = int(n_interpolation_points)
    lo = float(Y.min())
    hi = float(Y.max())
    span = max(hi - lo, 1e-9)
    n_boxes = max(int(min_num_intervals), int(math.ceil(span / interval_size)))
    h = span / n_boxes * (1.0 + 1e-9)
    n_nodes = n_boxes * p
    sq = (Y * Y).sum(axis=1)
    charges = np.column_stack([np.ones(n), Y[:, 0], Y[:, 1], sq])
    W = _spread(Y, charges, lo, h, n_boxes, p)
    M = scipy.fft.next_fast_len(2 * n_nodes, real=True)
    delta = h / p
    off = np.arange(M, dtype=np.float64)
    off = np.where(off < M // 2 + 1, off, off - M) * delta
    kernel = (1.0 / (1.0 + off[:, None] ** 2 + off[None, :] ** 2) ** 2).astype(np.float32)
    khat = scipy.fft.rfft2(kernel, workers=workers)
    # Single precision halves the FFT time; the interpolation error (~1e-3)
    # dominates its rounding. Only n_nodes of the M rows are non-zero on the
    # way in and only n_nodes are needed on the way out, so the two axes are
    # transformed separately to skip the zero / unused rows.
    W32 = W.astype(np.float32)
    what = scipy.fft.rfft(W32, n=M, axis=2, workers=workers)
    what = scipy.fft.fft(what, n=M, axis=1, workers=workers)
    what *= khat[None]
    V = scipy.fft.ifft(what, axis=1, workers=workers)[:, :n_nodes]
    V = scipy.fft.irfft(V, n=M, axis=2, workers=workers)[:, :, :n_nodes]
    V = np.ascontiguousarray(V, dtype=np.float64)
    phi = _gather(Y, V, lo, h, n_boxes, p)
    rep = Y * phi[:, 0:1] - phi[:, 1:3]
    z = ((1.0 + sq) * phi[:, 0] - 2.0 * (Y[:, 0] * phi[:, 1] + Y[:, 1] * phi[:, 2])
         + phi[:, 3]).sum() - n
    return rep, float(z)


# ---------------------------------------------------------------- supervision


@numba.njit(parallel=True, cache=True)
def _exact_correction(YL, cls, uL):
    n, d = YL.shape
    rep = np.zeros((n, d))
    z = np.zeros(n)
    for i in numba.prange(n):
        zi = 0.0
        for j in range(n):
            if cls[j] == cls[i]:
                continue
            d2 = 0.0
            for k in range(d):
                diff = YL[i, k] - YL[j, k]
                d2 += diff * diff
            t = 1.0 / (1.0 + d2)
            w = uL[j] * t
            zi += w
            wt = w * t
            for k in range(d):
                rep[i, k] += wt * (YL[i, k] - YL[j, k])
        z[i] = zi
    return rep, z


# Below this many labeled pairs the correction is summed exactly.
EXACT_CORRECTION_MAX_PAIRS = 8_000_000


# The correction is a small fraction of the repulsion (r u_i u_j on some
# pairs), so its tree is opened less eagerly than the main one: at theta 0.8
# it costs about half as much as at 0.5, and its error stays below 1% of the
# total repulsive force (test_fast_gradient_within_tolerance_of_exact).
CORRECTION_THETA = 0.8


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
        rep, z = _exact_correction(YL, cls, uL)
        exact = True
    else:
        n_classes = int(cls.max()) + 1
        order = _morton_order(YL)
        Ys = np.ascontiguousarray(YL[order])
        cs = np.ascontiguousarray(cls[order])
        tree = _tree(Ys, np.ascontiguousarray(uL[order]), cs, n_classes)
        rep_s, z_s = _traverse(Ys, cs, *tree, float(theta))
        rep = np.empty_like(rep_s)
        z = np.empty_like(z_s)
        rep[order] = rep_s
        z[order] = z_s
        exact = False
    scale = r * uL
    rep_c[active] = rep * scale[:, None]
    return rep_c, float((z * scale).sum()), exact
