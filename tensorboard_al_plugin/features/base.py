"""What every feature extractor shares: the error it raises, the batch checks, the common interface.

A batch is float32 ``(b, H, W, C)`` in [0, 1] with C = 1 or 3 (see
:class:`FeatureExtractor`). Batches are checked at the door here, so that a
wrong shape becomes one line naming the batch, never a surprise inside
scikit-learn or Keras.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

__all__ = ["FeatureError", "FeatureExtractor", "check_batch"]


class FeatureError(ValueError):
    """A feature extractor cannot be made or run; the message is one line meant for the user."""


def check_batch(batch, index, shape=None):
    """``batch`` as float32 (b, H, W, C), checked; ``index`` names it in errors.

    ``shape``: the (H, W, C) every batch must have (from the first batch or
    the model), or None to accept any. A (b, H, W) batch is taken as C = 1.
    """
    a = np.asarray(batch)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise FeatureError(f"batch {index}: expected images (b, H, W, C), got an array of shape {a.shape}")
    if a.shape[-1] not in (1, 3):
        raise FeatureError(f"batch {index}: expected 1 or 3 channels, got {a.shape[-1]} (shape {a.shape})")
    if shape is not None and tuple(a.shape[1:]) != tuple(shape):
        raise FeatureError(f"batch {index}: expected images of shape {tuple(shape)} (H, W, C), "
                           f"got {tuple(a.shape[1:])}; resize every image to one common size first")
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


class FeatureExtractor:
    """Images in, features out, in batches so that no pass holds all images at once.

    Attributes
    ----------
    input_shape : (H, W, C). H, W: the size the extractor wants, or None for
        any size (the caller then resizes every image to one common size).
        C: 3, the channels of a colour image. Every extractor accepts
        colour batches; a caller with a mix of grey and colour images
        converts the grey ones to 3 channels.
    needs_colour : True when grey images must be given as 3 channels (the
        CNNs); False when the extractor takes 1-channel batches as well
        (pixels, PCA, the RN Exemplar-CNN), so that a caller whose images are
        all grey may keep them grey (features a third the size).
    needs_fit : whether :meth:`fit` must see the data before :meth:`transform`
        (PCA and the Exemplar-CNN learn from it; pixels and a pretrained CNN
        do not, and their ``fit`` only checks nothing is amiss).
    """

    input_shape: tuple = (None, None, 3)
    needs_fit: bool = False
    needs_colour: bool = False

    def fit(self, batches: Callable[[], Iterable[np.ndarray]]) -> "FeatureExtractor":
        """Learn from the data. ``batches()`` returns a fresh iterator each call (several
        passes may be made); each batch float32 (b, H, W, C) in [0, 1]. Returns self."""
        if not callable(batches):
            raise FeatureError("fit: expected a callable that returns a fresh iterator of batches "
                               "(e.g. lambda: iter(list_of_batches)), got "
                               f"{type(batches).__name__}")
        return self

    def transform(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """(N, D) float32 features of the images of all ``batches``, in order."""
        out = [self._transform_batch(check_batch(b, i, self._batch_shape)) for i, b in enumerate(batches)]
        if not out:
            raise FeatureError("transform: no images (the batches were empty)")
        return np.concatenate(out).astype(np.float32, copy=False)

    def describe(self) -> str:
        """One line saying what the features are, e.g. "ResNet50 (ImageNet), global average pool, 2048-d"."""
        raise NotImplementedError

    # the shape checked against each batch; None until known
    _batch_shape = None

    def _transform_batch(self, batch):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}: {self.describe()}>"
