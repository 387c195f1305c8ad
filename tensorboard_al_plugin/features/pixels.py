"""Features from the pixels themselves: flattened (``pixels``) or their leading principal components (``pca``).

These are the paper's "Pix" and "Pre" columns of Table 1. PCA is fitted in
one streaming pass, no pass holding more than a chunk of images:

- up to :data:`COVARIANCE_MAX_DIMS` pixel values per image (64 x 64 colour),
  from the covariance matrix: the pass sums the rows and their outer
  products (float64), then one symmetric eigendecomposition gives the axes.
  70,000 images of 28 x 28: 4 s, where ``IncrementalPCA`` took about 190 s
  (its SVD per chunk is what embed's default spent its time in);
- above that (the D x D matrix would not fit), with scikit-learn's
  ``IncrementalPCA``: each ``partial_fit`` sees a chunk of at least
  ``n_components`` rows.

(The package's one batch PCA, ``tsne.pca.principal_components``, needs every
row at once; the streaming fit is what this extractor adds.)
"""
from __future__ import annotations

import itertools

import numpy as np

from .base import FeatureError, FeatureExtractor, check_batch

__all__ = ["PixelFeatures", "PCAFeatures", "DEFAULT_PCA_COMPONENTS"]

DEFAULT_PCA_COMPONENTS = 50
#: Images with at most this many pixel values are fitted from their covariance (a D x D float64 matrix).
COVARIANCE_MAX_DIMS = 64 * 64 * 3
#: the most bytes of one chunk of flattened images that PCAFeatures gathers for a partial_fit
CHUNK_BYTES = 64 * 2 ** 20


class PixelFeatures(FeatureExtractor):
    """Each image flattened: H * W * C features in [0, 1]. All images must have one size."""

    input_shape = (None, None, 3)
    needs_fit = False

    def __init__(self):
        self.shape_ = None

    def transform(self, batches):
        self._batch_shape = self.shape_
        out = []
        for i, b in enumerate(batches):
            b = check_batch(b, i, self._batch_shape)
            self._batch_shape = b.shape[1:]
            out.append(b.reshape(len(b), -1))
        if not out:
            raise FeatureError("transform: no images (the batches were empty)")
        self.shape_ = self._batch_shape
        return np.concatenate(out)

    def describe(self):
        if self.shape_ is None:
            return "pixels, flattened"
        h, w, c = self.shape_
        return f"pixels {h}x{w}x{c}, flattened, {h * w * c}-d"


class PCAFeatures(FeatureExtractor):
    """The first ``n_components`` principal components of the flattened pixels, fitted on the stream.

    n_components : int >= 1 (default 50). Fewer are kept when the images have
        fewer pixels or there are fewer images than that (``n_components_``
        says how many). Components are centred projections, not whitened.
    chunk_rows : most rows gathered before each ``IncrementalPCA.partial_fit``
        (default 1,000). A chunk costs rows * H * W * C * 4 bytes and two are
        held at once, so for large images it is cut to fit ``CHUNK_BYTES``
        (64 MiB; 222 rows of 224 x 224 colour pixels), but never below
        n_components rows, which partial_fit needs. ``chunk_rows_`` is the
        size used.
    """

    input_shape = (None, None, 3)
    needs_fit = True

    def __init__(self, n_components=DEFAULT_PCA_COMPONENTS, *, chunk_rows=1000):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise FeatureError(f"pca: n_components must be a whole number >= 1, got {n_components!r}")
        self.n_components = int(n_components)
        self.chunk_rows = max(int(chunk_rows), self.n_components)
        self.pca_ = None
        self.shape_ = None
        self.n_components_ = None
        self.chunk_rows_ = None

    def fit(self, batches):
        super().fit(batches)
        stream = iter(batches())
        first = next(stream, None)
        if first is None:
            raise FeatureError("pca: no images to fit on (the batches were empty)")
        stream = itertools.chain([first], stream)  # one pass: the first batch decides how
        if int(np.prod(np.shape(first)[1:])) <= COVARIANCE_MAX_DIMS:
            return self._fit_covariance(stream)
        return self._fit_incremental(stream)

    def _fit_covariance(self, stream):
        n, total, outer, shape = 0, None, None, None
        for i, b in enumerate(stream):
            b = check_batch(b, i, shape)
            shape = b.shape[1:]
            x = b.reshape(len(b), -1)
            if total is None:
                total = np.zeros(x.shape[1], np.float64)
                outer = np.zeros((x.shape[1], x.shape[1]), np.float64)
            x = x.astype(np.float64)  # once per batch, for the sums and the outer products
            total += x.sum(axis=0)
            outer += x.T @ x
            n += len(x)
        if n == 0:
            raise FeatureError("pca: no images to fit on (the batches were empty)")
        if n < 2:
            raise FeatureError(f"pca: needs at least 2 images to fit, got {n}")
        mean = total / n
        cov = (outer - n * np.outer(mean, mean)) / (n - 1)
        values, vectors = np.linalg.eigh(cov)
        k = min(self.n_components, len(mean), n)
        order = np.argsort(values)[::-1][:k]
        axes = vectors[:, order].T
        # the sign scikit-learn's PCA gives: the largest loading of each axis positive
        axes *= np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])[:, None]
        self.pca_ = _Projection(mean.astype(np.float32), axes.astype(np.float32), "covariance")
        self.shape_, self.n_components_, self.chunk_rows_ = shape, k, None
        self._batch_shape = shape
        return self

    def _fit_incremental(self, stream):
        from sklearn.decomposition import IncrementalPCA
        pending, held, n_seen, shape = [], None, 0, None
        pca = None

        def fit_chunk(chunk):
            nonlocal pca
            if pca is None:
                k = min(self.n_components, chunk.shape[1], len(chunk))
                pca = IncrementalPCA(n_components=k)
            pca.partial_fit(chunk)

        rows = self.chunk_rows
        for i, b in enumerate(stream):
            b = check_batch(b, i, shape)
            if shape is None:
                shape = b.shape[1:]
                rows = max(self.n_components, min(self.chunk_rows, CHUNK_BYTES // (4 * int(np.prod(shape)))))
            pending.append(b.reshape(len(b), -1))
            n_seen += len(b)
            if sum(len(p) for p in pending) >= rows:
                # hold one chunk back, so that a short last chunk (fewer rows
                # than components, which partial_fit refuses) joins it
                if held is not None:
                    fit_chunk(held)
                held, pending = np.concatenate(pending), []
        rest = [held] if held is not None else []
        rest += pending
        if not rest:
            raise FeatureError("pca: no images to fit on (the batches were empty)")
        last = np.concatenate(rest)
        if len(last) < 2:
            raise FeatureError(f"pca: needs at least 2 images to fit, got {n_seen}")
        fit_chunk(last)
        self.pca_, self.shape_, self.n_components_, self.chunk_rows_ = pca, shape, int(pca.n_components_), rows
        self._batch_shape = shape
        return self

    def _transform_batch(self, batch):
        if self.pca_ is None:
            raise FeatureError("pca: call fit(batches) before transform (PCA learns its axes from the images)")
        return self.pca_.transform(batch.reshape(len(batch), -1)).astype(np.float32)

    def describe(self):
        if self.pca_ is None:
            return f"pixels, first {self.n_components} principal components (not fitted yet)"
        h, w, c = self.shape_
        how = self.pca_.method if isinstance(self.pca_, _Projection) else "incremental PCA"
        return f"pixels {h}x{w}x{c}, first {self.n_components_} principal components ({how}), " \
               f"{self.n_components_}-d"


class _Projection:
    """Centred projection on fitted axes (the covariance fit's ``pca_``), transform() as scikit-learn's."""

    def __init__(self, mean, components, method):
        self.mean_, self.components_, self.method = mean, components, method
        self.n_components_ = len(components)

    def transform(self, X):
        return (np.asarray(X, np.float32) - self.mean_) @ self.components_.T
