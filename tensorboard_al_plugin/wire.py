"""What the tab is sent in binary, and how: compact positions, a row's feature-space neighbours.

The tab polls a live layout several times a second, so a frame's size is paid
on every poll: at 1M rows in 2D, float32 is 8 MB a frame, uint16 quantised
against the frame's bounding box is 4 MB, and decoding it straight into the
map's normalised coordinates is one pass in the browser.  The feature-space
k-nearest-neighbour order is answered here, next to the features, so the
browser never holds the (rows, dims) tensor (200 MB at 1M x 50 in float32).

Arrays in, arrays and strings out; no HTTP, no storage.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

#: ``format`` values of the positions routes: float32 as before, or uint16 against the bounding box.
POSITION_FORMATS = ("f32", "u16")
#: Largest quantised value of a finite coordinate; ``U16_NOT_FINITE`` marks NaN and infinities.
U16_MAX = 65534
U16_NOT_FINITE = 65535
#: Rows per block of the distance pass (bounds its float64 temporaries to a few MB).
_BLOCK_ROWS = 1 << 16


def encode_positions(positions, fmt: str = "f32") -> Tuple[bytes, List[Tuple[str, str]]]:
    """The body and extra headers of a positions answer in format ``fmt``.

    positions : (N, d) numbers.
    fmt : "f32": little-endian float32, only ``X-Format`` added (what every client
        read before formats existed).  "u16": little-endian uint16 per
        coordinate; ``X-Bounds`` gives ``lo,hi`` of each column (finite values
        only) as ``lo0,hi0,lo1,hi1,...``; a finite coordinate v is sent as
        round((v - lo) / (hi - lo) * 65534), so it decodes as
        lo + q * (hi - lo) / 65534 with an error of at most half a step
        ((hi - lo) / 131068); 65535 marks a coordinate that was not finite.
        A column of one value (hi == lo) is all 0.

    Headers always include ``X-Format``. ValueError for another ``fmt``.
    """
    if fmt not in POSITION_FORMATS:
        raise ValueError('format: expected one of %s, got "%s"' % (", ".join(POSITION_FORMATS), fmt))
    positions = np.asarray(positions)
    if fmt == "f32":
        return np.ascontiguousarray(positions, dtype="<f4").tobytes(), [("X-Format", "f32")]
    values = np.ascontiguousarray(positions, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError("positions: expected a 2D array (rows, dims), got shape %s" % (values.shape,))
    n, dims = values.shape
    # column by column on a contiguous copy: numpy is about 4x slower on a narrow (n, 2) array
    columns = np.ascontiguousarray(values.T)
    out = np.empty((n, dims), dtype="<u2")
    bounds = []
    for j in range(dims):
        column = columns[j]
        finite = np.isfinite(column)
        all_finite = bool(finite.all())
        kept = column if all_finite else column[finite]
        lo, hi = (float(kept.min()), float(kept.max())) if kept.size else (0.0, 0.0)
        # Bounds are sent as text: quantise against the numbers the client will read, not ours.
        lo, hi = float("%.9g" % lo), float("%.9g" % hi)
        q = column.astype(np.float64)  # float64: rounding to the nearest step stays exact
        if not all_finite:
            q[~finite] = lo
        q -= lo
        q *= U16_MAX / (hi - lo) if hi > lo else 0.0
        q += 0.5
        np.clip(q, 0, U16_MAX, out=q)
        quantised = q.astype("<u2")  # truncation of q + 0.5 >= 0: rounding to the nearest step
        if not all_finite:
            quantised[~finite] = U16_NOT_FINITE
        out[:, j] = quantised
        bounds.append("%.9g,%.9g" % (lo, hi))
    return out.tobytes(), [("X-Format", "u16"), ("X-Bounds", ",".join(bounds))]


def feature_neighbours(features, focus: int, k: int) -> np.ndarray:
    """The ``k`` rows nearest to row ``focus`` in ``features``, nearest first.

    features : (N, D) float32.  Distances are squared Euclidean in float32
    (differences and sums); ties keep row order; rows with a non-finite distance come last;
    ``focus`` itself is left out.  k is clipped to N - 1.  Returns uint32 (k,).
    The same order as the tab's own ``knnOrder`` (frontend/src/selection.ts)
    for layout-space groups.  IndexError for a focus outside 0..N-1.
    """
    features = np.asarray(features)
    n = features.shape[0]
    if not 0 <= focus < n:
        raise IndexError("row %d is not a row of this embedding (0..%d)" % (focus, n - 1))
    k = max(0, min(int(k), n - 1))
    centre = np.asarray(features[focus], dtype=np.float32)
    dist = np.empty(n, dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        block = np.asarray(features[start:start + _BLOCK_ROWS], dtype=np.float32) - centre
        dist[start:start + _BLOCK_ROWS] = np.einsum("ij,ij->i", block, block)
    dist[~np.isfinite(dist)] = np.inf
    dist[focus] = np.nan  # after every infinity: argsort puts NaN last
    if k == 0:
        return np.zeros(0, dtype=np.uint32)
    if k < n - 1:
        # Everything up to the k-th distance, ties included, then a stable sort of those few.
        kth = np.partition(dist, k - 1)[k - 1]
        candidates = np.flatnonzero(dist <= kth) if np.isfinite(kth) else np.arange(n)
    else:
        candidates = np.arange(n)
    order = candidates[np.argsort(dist[candidates], kind="stable")]
    return order[:k].astype(np.uint32)
