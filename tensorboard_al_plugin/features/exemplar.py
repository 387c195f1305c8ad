"""The rotation Exemplar-CNN of Luus et al., section 2: features learnt without labels.

On top of a CNN's pooled output (width D) sits a fully-connected ReLU layer
of the same width D, then a softmax over surrogate classes: every image is
its own class (its index in the stream), shown each time under a new random
rotation, so the network learns what stays the same when an image turns.
The features are the ReLU layer's output. Three ways to train it (the
paper's Table 1 columns):

- Transfer-Frozen (``exemplar="frozen"``, TF): a pretrained CNN frozen, only
  the top layers learn.
- Transfer (``exemplar="full"``, TR): the pretrained CNN learns as well (at a
  tenth of the learning rate, so the ImageNet features are refined, not lost).
- RN (spec ``"rn"``): a small CNN from random initialisation
  (:func:`small_cnn`), trained the same way.

Surrogate classes: a softmax over N classes needs a D x N output layer, which
for 100,000 images and D = 2048 would be 200 M weights. Up to ``max_classes``
(4,096) images every image is a class, as in the paper; above that a fixed,
seeded random subset of ``max_classes`` images are the classes (as Dosovitskiy
et al. trained on 8,000-16,000 exemplars sampled from a larger unlabeled set)
and only they are trained on, while every image still gets features. An
epoch is one pass over the stream in which each surrogate class is shown
once, rotated afresh; training stops early once the epoch's mean loss has
not improved by ``min_delta`` (relative) for ``patience`` epochs.

Batches stream: ``fit`` takes a callable returning a fresh iterator and
holds at most a shuffle buffer of images at once. Seeded: weights, rotations
and the sampled classes follow ``seed``; on CPU two fits with one seed give
the same features as far as TensorFlow's threaded reductions allow.
"""
from __future__ import annotations

import math

import numpy as np

from .base import FeatureError, FeatureExtractor
from .cnn import import_keras, inference, rebatch

__all__ = ["ExemplarCNN", "RandomInitExemplar", "small_cnn", "MAX_SURROGATE_CLASSES"]

MAX_SURROGATE_CLASSES = 4096
# images of the largest size kept in the shuffle buffer are capped to about this many bytes
SHUFFLE_BUFFER_BYTES = 256 * 2 ** 20


class ExemplarCNN(FeatureExtractor):
    """A rotation Exemplar-CNN on top of ``base`` (a :class:`CNNFeatures`); see the module docstring.

    trainable : False = Transfer-Frozen (the base's weights and batch statistics stay as
        they are), True = Transfer (the base learns too, at ``learning_rate / 10``).
    epochs : most passes over the data (default 10); fewer when the loss stops improving.
    max_rotation : the largest rotation in degrees; each showing of an image turns it by an
        angle drawn uniformly from [-max_rotation, max_rotation] (default 30). On upright
        images (digits) a full circle (180) teaches the network to confuse 6 and 9: 4-NN
        accuracy of RN features on digits after 30 epochs was 0.57 at 180 degrees, 0.89-0.90
        at 10, 20 and 45. Use 180 for images with no "up" (cells, aerial views).
    max_classes : most surrogate classes (default 4,096; see the module docstring).
    learning_rate : Adam's step for the top layers (default 1e-3).
    patience, min_delta : early stopping (2 epochs without a relative improvement of 1%).
    """

    needs_fit = True

    def __init__(self, base, *, trainable=False, epochs=10, batch_size=64, seed=0, progress=False,
                 max_rotation=30.0, max_classes=MAX_SURROGATE_CLASSES, learning_rate=1e-3, patience=2,
                 min_delta=0.01, name=None):
        self.base = base
        self.trainable = bool(trainable)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.progress = bool(progress)
        self.max_rotation = float(max_rotation)
        self.max_classes = int(max_classes)
        self.learning_rate = float(learning_rate)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.name = name or ("Transfer" if self.trainable else "Transfer-Frozen")
        if base is not None:
            self.input_shape = base.input_shape
            self.needs_colour = base.needs_colour
        self.features_model_ = None
        self.loss_history_ = []
        self.n_images_ = None
        self.n_classes_ = None
        self.stopped_early_ = False

    # -- the networks -------------------------------------------------------------------------

    def _base_model(self, keras, image_shape):
        """The network from images in [0, 1] to pooled features (the RN subclass builds its own)."""
        return self.base.model_

    def _build(self, keras, image_shape, n_classes):
        """(one training step (images, classes) -> loss, the features model, the feature width)."""
        import tensorflow as tf
        base = self._base_model(keras, image_shape)
        base.trainable = self.trainable
        width = int(base.output_shape[-1])
        inputs = keras.Input(image_shape)
        rotate = keras.layers.RandomRotation(self.max_rotation / 360.0, fill_mode="constant",
                                             seed=self.seed, name="random_rotation")
        top = keras.layers.Dense(width, activation="relu", name="exemplar_features",
                                 kernel_initializer=keras.initializers.HeNormal(seed=self.seed))
        classes = keras.layers.Dense(n_classes, name="surrogate_classes",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 1))
        train_model = keras.Model(inputs, classes(top(base(rotate(inputs)))), name="exemplar_training")
        features = keras.Model(inputs, top(base(inputs)), name="exemplar_features")
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        top_vars = top.trainable_variables + classes.trainable_variables
        base_vars = list(base.trainable_variables)  # empty when frozen
        # Transfer: the pretrained layers learn at a tenth of the top layers' step, so that the
        # ImageNet features are refined rather than overwritten; RN's CNN learns at the full step
        base_rate = self.learning_rate / 10 if self.base is not None else self.learning_rate
        opt_top = keras.optimizers.Adam(self.learning_rate)
        opt_top.build(top_vars)
        opt_base = keras.optimizers.Adam(base_rate) if base_vars else None
        if opt_base is not None:
            opt_base.build(base_vars)

        # a frozen base (trainable False) keeps its batch-normalisation statistics as pretrained;
        # one trace for every batch length
        @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(image_shape), tf.float32),
                                      tf.TensorSpec((None,), tf.int64)])
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, train_model(x, training=True))
            grads = tape.gradient(loss, top_vars + base_vars)
            opt_top.apply_gradients(zip(grads[:len(top_vars)], top_vars))
            if opt_base is not None:
                opt_base.apply_gradients(zip(grads[len(top_vars):], base_vars))
            return loss

        return step, features, width

    # -- training -----------------------------------------------------------------------------

    def fit(self, batches):
        super().fit(batches)
        keras = import_keras()  # every random draw below is seeded by itself: no global seed is set
        n, shape = self._count(batches)
        rng = np.random.default_rng(self.seed)
        if n > self.max_classes:
            chosen = np.sort(rng.choice(n, self.max_classes, replace=False))
        else:
            chosen = np.arange(n)
        class_of = np.full(n, -1, np.int64)
        class_of[chosen] = np.arange(len(chosen))
        step, self.features_model_, self.width_ = self._build(keras, shape, len(chosen))
        self._predict = inference(self.features_model_)
        self.n_images_, self.n_classes_ = n, len(chosen)
        steps = math.ceil(len(chosen) / self.batch_size)
        buffer_images = max(self.batch_size,
                            min(16 * self.batch_size, SHUFFLE_BUFFER_BYTES // (4 * int(np.prod(shape)))))
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.epochs * steps, desc=f"Exemplar-CNN ({self.name})", unit="step")
        best, stale, self.loss_history_ = math.inf, 0, []
        try:
            for epoch in range(self.epochs):
                losses = []
                for x, y in self._epoch_batches(batches, shape, class_of, buffer_images, rng):
                    losses.append(float(step(x, y)))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=f"{epoch + 1}/{self.epochs}", loss=f"{np.mean(losses):.3f}")
                loss = float(np.mean(losses))
                self.loss_history_.append(loss)
                if loss < best * (1 - self.min_delta):
                    best, stale = loss, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        self.stopped_early_ = epoch + 1 < self.epochs
                        break
        finally:
            if bar is not None:
                bar.close()
        return self

    def _count(self, batches):
        """(number of images, (H, W, C) they are trained at) from one pass, checking every batch."""
        n, shape = 0, None
        fixed = self.input_shape if self.input_shape[0] is not None else None
        for b in rebatch(batches(), self.batch_size, fixed, None):
            shape = shape or b.shape[1:]
            n += len(b)
        if n == 0:
            raise FeatureError("Exemplar-CNN: no images to train on (the batches were empty)")
        if n < 2:
            raise FeatureError("Exemplar-CNN: needs at least 2 images (each is its own class), got 1")
        return n, (shape[0], shape[1], self._channels(shape[2]))

    def _channels(self, batch_channels):
        return self.input_shape[2]

    def _epoch_batches(self, batches, shape, class_of, buffer_images, rng):
        """(images, surrogate classes) training batches of one epoch: the surrogate images of the stream,
        shuffled within a buffer of ``buffer_images``."""
        buf_x, buf_y, n_buf, start = [], [], 0, 0

        def drain(final):
            nonlocal buf_x, buf_y, n_buf
            x, y = np.concatenate(buf_x), np.concatenate(buf_y)
            order = rng.permutation(len(x))
            x, y = x[order], y[order]
            cut = len(x) if final else len(x) - len(x) % self.batch_size
            for s in range(0, cut, self.batch_size):
                yield x[s:s + self.batch_size], y[s:s + self.batch_size]
            buf_x, buf_y, n_buf = [x[cut:]], [y[cut:]], len(x) - cut

        for b in rebatch(batches(), self.batch_size, shape, shape[2]):
            cls = class_of[start:start + len(b)]
            start += len(b)
            keep = cls >= 0
            if keep.any():
                buf_x.append(b[keep])
                buf_y.append(cls[keep])
                n_buf += int(keep.sum())
            if n_buf >= buffer_images:
                yield from drain(False)
        if n_buf:
            yield from drain(True)

    # -- features -----------------------------------------------------------------------------

    def transform(self, batches):
        if self.features_model_ is None:
            raise FeatureError("Exemplar-CNN: call fit(batches) before transform (it learns from the images)")
        shape = self.features_model_.input_shape[1:]
        out = [self._predict(b) for b in rebatch(batches, self.batch_size, shape, shape[2])]
        if not out:
            raise FeatureError("transform: no images (the batches were empty)")
        return np.concatenate(out)

    def describe(self):
        base = self.base.describe() if self.base is not None else "a small CNN from random initialisation"
        trained = (f"trained {len(self.loss_history_)} epochs on {self.n_classes_} surrogate classes"
                   if self.features_model_ is not None else "not trained yet")
        width = f", {self.width_}-d" if self.features_model_ is not None else ""
        return f"rotation Exemplar-CNN ({self.name}) on {base}, {trained}{width}"


class RandomInitExemplar(ExemplarCNN):
    """The paper's RN column: :func:`small_cnn` from random initialisation, trained as a rotation
    Exemplar-CNN. Any image size (fixed by the first batch) and 1 or 3 channels."""

    input_shape = (None, None, 3)
    needs_colour = False

    def __init__(self, **kw):
        super().__init__(None, trainable=True, name="RN", **kw)

    def _channels(self, batch_channels):
        return batch_channels

    def _base_model(self, keras, image_shape):
        return small_cnn(keras, image_shape, seed=self.seed)


def small_cnn(keras, image_shape, *, seed=0):
    """A small CNN from random initialisation, sized by the image: blocks of 3x3 convolution,
    batch normalisation, ReLU and 2x2 max pooling halve the image until it is at most 4 pixels
    across (at most 5 halvings: 8x8 digits get 1, 28x28 get 3, 224x224 get 5), widths 64, 128,
    256, 256, 256; then one more convolution block and global average pooling. Input: images in
    [0, 1] of ``image_shape`` (H, W, C). Output width: 128 (8x8) to 256."""
    widths = (64, 128, 256, 256, 256, 256)
    h, w, _ = image_shape
    n_pool, side = 0, min(h, w)
    while side > 4 and n_pool < 5:
        side //= 2
        n_pool += 1
    inputs = keras.Input(image_shape)
    x = inputs
    for i in range(n_pool + 1):
        x = keras.layers.Conv2D(widths[i], 3, padding="same", use_bias=False,
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + 10 + i))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        if i < n_pool:
            x = keras.layers.MaxPooling2D(2)(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="rn_small_cnn")
