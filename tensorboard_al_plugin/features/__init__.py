"""Features from images: arrays in, arrays out (the paper's section 2).

Luus et al. ("Active Learning with TensorBoard Projector", section 2 and
Table 1) compare, for labeling in a t-SNE, features made of the pixels, of
their principal components, of an ImageNet-pretrained CNN (global average
pooling output), and of a rotation Exemplar-CNN trained on top of that CNN
with every image its own surrogate class (the CNN frozen: Transfer-Frozen;
trainable: Transfer) or from random initialisation (RN).

    >>> from tensorboard_al_plugin.features import make_extractor, extract_features
    >>> X = extract_features(images, "pca:50")               # (N, H, W[, C]) -> (N, 50)
    >>> ex = make_extractor("cnn:resnet50", exemplar="frozen", epochs=10, progress=True)
    >>> ex.fit(lambda: iter_batches())                        # fresh iterator per pass
    >>> X = ex.transform(iter_batches())

Nothing here reads files other than model weights, and nothing downloads:
pretrained weights come from Keras' cache (``~/.keras/models``, or
``$KERAS_HOME/models``) or from ``weights=FILE``; when they are missing the
error says which file to fetch. TensorFlow is imported only by the CNN paths.
"""
from __future__ import annotations

import numpy as np

from .base import FeatureError, FeatureExtractor
from .pixels import DEFAULT_PCA_COMPONENTS, PCAFeatures, PixelFeatures

__all__ = ["make_extractor", "extract_features", "image_batches", "FeatureExtractor", "FeatureError", "SPECS",
           "EXEMPLAR_MODES"]

#: The spec forms :func:`make_extractor` takes (for help texts).
SPECS = ("pixels", "pca", "pca:N", "cnn", "cnn:NAME", "model:PATH", "rn")
#: exemplar=: None (no training), "frozen" (Transfer-Frozen), "full" (Transfer).
EXEMPLAR_MODES = (None, "frozen", "full")


def make_extractor(spec: str, *, exemplar: str | None = None, epochs: int = 10, weights: str | None = None,
                   layer: str | None = None, batch_size: int = 64, seed: int = 0, progress: bool = False,
                   max_rotation: float = 30.0) -> FeatureExtractor:
    """A feature extractor for ``spec``.

    spec : "pixels" | "pca" | "pca:N" (N components, default 50) | "cnn" (ResNet50) |
        "cnn:resnet50" | "cnn:vgg16" | "cnn:efficientnetb0" | ... (see ``features.cnn.CNN_MODELS``)
        | "model:PATH" (a ``.keras``/``.h5`` file or a SavedModel directory; ``layer`` picks a
        layer by name, default the last pooling/flatten layer) | "rn" or "exemplar-random"
        (a small CNN trained from random initialisation as a rotation Exemplar-CNN, the
        paper's RN column).
    exemplar : None | "frozen" | "full": train a rotation Exemplar-CNN on top of the CNN
        (spec "cnn..." or "model:..."), the CNN frozen (Transfer-Frozen) or trainable (Transfer).
    epochs : most passes of Exemplar-CNN training (it stops earlier when the loss stops improving).
    weights : a local weights file for "cnn..." (instead of Keras' cache).
    layer : the layer of "model:PATH" whose output are the features.
    batch_size : images per training step (the caller's batches are regrouped to it).
    seed : seeds the training (weights, rotations, the sampled surrogate classes).
    progress : show a tqdm bar with the loss while training.
    max_rotation : the Exemplar-CNN's largest random rotation in degrees (default 30; 180 for
        images with no "up", see ``features.exemplar.ExemplarCNN``).

    Raises FeatureError (a ValueError) with one line saying what is wrong and, for
    missing weights, how to get them.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise FeatureError(f"feature spec: expected a string such as 'pixels', 'pca:50', 'cnn:resnet50', "
                           f"'model:PATH' or 'rn', got {spec!r}")
    if exemplar not in EXEMPLAR_MODES:
        raise FeatureError(f"exemplar: expected None, 'frozen' or 'full', got {exemplar!r}")
    _check_whole("epochs", epochs, 1)
    _check_whole("batch_size", batch_size, 1)
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("pixels", "pca") and exemplar is not None:
        raise FeatureError(f"exemplar={exemplar!r} trains on top of a CNN: use spec 'cnn...', "
                           f"'model:PATH' or 'rn', not {spec!r}")
    if kind != "cnn" and weights is not None:
        raise FeatureError(f"weights= is for 'cnn...' specs (a pretrained model's weights file), not {spec!r}")
    if kind != "model" and layer is not None:
        raise FeatureError(f"layer= picks a layer of 'model:PATH', not of {spec!r}")
    if kind == "pixels" and not arg:
        return PixelFeatures()
    if kind == "pca":
        n = DEFAULT_PCA_COMPONENTS
        if arg:
            try:
                n = int(arg)
            except ValueError:
                raise FeatureError(f"feature spec {spec!r}: the number of components after 'pca:' must be "
                                   f"a whole number, e.g. 'pca:50'") from None
        return PCAFeatures(n)
    if (isinstance(max_rotation, bool) or not isinstance(max_rotation, (int, float))
            or not 0 <= max_rotation <= 180):
        raise FeatureError(f"max_rotation: expected degrees in [0, 180], got {max_rotation!r}")
    train = dict(epochs=epochs, batch_size=batch_size, seed=seed, progress=progress, max_rotation=max_rotation)
    if kind in ("cnn", "model"):
        from .cnn import make_cnn_extractor
        return make_cnn_extractor(kind, arg, spec=spec, exemplar=exemplar, weights=weights, layer=layer, **train)
    if kind in ("rn", "exemplar-random") and not arg:
        if exemplar == "frozen":
            raise FeatureError("exemplar='frozen' would train nothing but the top layer of a random CNN; "
                               "spec 'rn' trains the whole small CNN (leave exemplar unset or 'full')")
        from .exemplar import RandomInitExemplar
        return RandomInitExemplar(**train)
    raise FeatureError(f"unknown feature spec {spec!r}; choose from {', '.join(SPECS)}")


def _check_whole(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise FeatureError(f"{name}: expected a whole number >= {low}, got {value!r}")


def extract_features(images: np.ndarray, spec: str = "pixels", **kw) -> np.ndarray:
    """Convenience for notebooks: (N, H, W[, C]) uint8 or float images -> (N, D) float32.

    uint8 images are scaled to [0, 1]; float images must already be in [0, 1]; channels and
    size are made what the extractor takes (see :func:`image_batches`). ``kw`` go to
    :func:`make_extractor`; fitting (PCA, Exemplar-CNN) uses these same images.
    """
    extractor = make_extractor(spec, **kw)
    batches = image_batches(images, extractor, kw.get("batch_size", 64))
    if extractor.needs_fit:
        extractor.fit(batches)
    return extractor.transform(batches())


def image_batches(images: np.ndarray, extractor: FeatureExtractor, batch_size: int = 64):
    """A callable returning a fresh iterator of batches of ``images`` as ``extractor`` takes them:
    float32 in [0, 1] (uint8 scaled by 1/255), grey made colour when it ``needs_colour``, resized
    (bilinear) to its ``input_shape`` when that fixes a size, an alpha channel dropped.
    ``images``: (N, H, W[, C]) uint8 or float in [0, 1]. For ``fit(batches)`` and
    ``transform(batches())`` on an array that is in memory already."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or len(images) == 0:
        raise FeatureError(f"images: expected (N, H, W) or (N, H, W, C) with N >= 1 and C 1, 3 or 4, "
                           f"got shape {images.shape}")
    if images.shape[-1] == 4:
        images = images[..., :3]  # alpha dropped

    def batches():
        for start in range(0, len(images), batch_size):
            yield _as_input(images[start:start + batch_size], extractor.input_shape, extractor.needs_colour)
    return batches


def _as_input(batch, input_shape, needs_colour):
    """A batch of images as float32 in [0, 1], with the channels and size ``input_shape`` asks for."""
    if batch.dtype == np.uint8:
        batch = batch.astype(np.float32) / 255.0
    else:
        batch = batch.astype(np.float32, copy=False)
        if batch.size and (batch.min() < 0 or batch.max() > 1):
            raise FeatureError(f"images: float images must be in [0, 1] (got values in "
                               f"[{batch.min():g}, {batch.max():g}]); pass uint8 for 0..255")
    h, w, _ = input_shape
    if needs_colour and batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
    if h is not None and batch.shape[1:3] != (h, w):
        from PIL import Image
        batch = np.stack([np.stack([np.asarray(Image.fromarray(img[..., k]).resize((w, h), Image.BILINEAR))
                                    for k in range(img.shape[-1])], axis=-1) for img in batch])
    return batch
