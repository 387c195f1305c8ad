"""Features from a convolutional network: a pretrained Keras application (``cnn[:name]``)
or the user's own model (``model:PATH``).

``cnn:NAME`` builds a ``keras.applications`` model without its classifier,
with global average pooling, and loads its ImageNet weights from a local
file: Keras' cache (``$KERAS_HOME/models``, default ``~/.keras/models``) or
``weights=FILE``. The model is always built with ``weights=None`` and the
file loaded afterwards, so Keras never tries to download: a machine without
the file gets a :class:`FeatureError` naming it and saying how to get it,
before TensorFlow is even imported.

``model:PATH`` loads a ``.keras``/``.h5`` file (any layer by name) or a
SavedModel directory (an output of its serving signature by name) and takes
that layer's output; a feature map (b, h, w, c) is global-average pooled.

Either can carry a rotation Exemplar-CNN on top (``exemplar="frozen"`` or
``"full"``; see :mod:`.exemplar`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .base import FeatureError, FeatureExtractor, check_batch

__all__ = ["CNN_MODELS", "DEFAULT_CNN", "CNNFeatures", "make_cnn_extractor", "keras_cache_dir", "find_weights"]


@dataclass(frozen=True)
class CNNModel:
    """One ``keras.applications`` model: how to build it and which weights file it needs."""
    title: str            # for describe(), e.g. "ResNet50"
    builder: str          # keras.applications attribute
    preprocess: str       # keras.applications module whose preprocess_input it takes (0..255 RGB in)
    weights_file: str     # the no-top ImageNet weights file Keras caches under models/
    width: int            # features after global average pooling
    size: int = 224       # input height = width it was trained at


#: The pretrained CNNs ``cnn:NAME`` knows (NAME is the key; ``cnn`` alone is DEFAULT_CNN).
CNN_MODELS = {
    "resnet50": CNNModel("ResNet50", "ResNet50", "resnet50",
                         "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 2048),
    "vgg16": CNNModel("VGG16", "VGG16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 512),
    "efficientnetb0": CNNModel("EfficientNetB0", "EfficientNetB0", "efficientnet", "efficientnetb0_notop.h5", 1280),
    "mobilenetv2": CNNModel("MobileNetV2", "MobileNetV2", "mobilenet_v2",
                            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", 1280),
    "densenet121": CNNModel("DenseNet121", "DenseNet121", "densenet",
                            "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", 1024),
}
DEFAULT_CNN = "resnet50"


def keras_cache_dir():
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), "models")


def find_weights(name, weights=None):
    """The local ImageNet weights file of ``CNN_MODELS[name]``, or FeatureError saying how to get it."""
    m = CNN_MODELS[name]
    if weights is not None:
        if not os.path.isfile(weights):
            raise FeatureError(f"weights file {weights} not found (cnn:{name} needs {m.title}'s no-top "
                               f"ImageNet weights, e.g. {m.weights_file})")
        return weights
    path = os.path.join(keras_cache_dir(), m.weights_file)
    if not os.path.isfile(path):
        raise FeatureError(
            f"cnn:{name} needs {m.title}'s ImageNet weights {path}, which this machine does not have: on a "
            f"machine with internet run python -c \"import keras; keras.applications.{m.builder}"
            f"(include_top=False)\" (or download {m.weights_file} from Keras' keras-applications "
            f"storage) and copy the file into {keras_cache_dir()}, or pass --weights FILE "
            f"(weights=FILE); nothing is downloaded at run time")
    return path


def import_keras():
    """keras (TensorFlow backend), or FeatureError when TensorFlow is not installed."""
    try:
        import tensorflow  # noqa: F401  (the backend; keras 3 alone would pick another)
        import keras
    except ImportError:
        raise FeatureError("CNN features need TensorFlow: pip install 'tensorboard-al[tensorflow]' "
                           "(or pip install tensorflow-cpu)") from None
    return keras


def inference(model):
    """``model`` in inference mode as one function traced once for batches of any length: numpy
    (b, ...) -> numpy float32 (b, D). (Keras' predict_on_batch traces anew per batch length.)"""
    import tensorflow as tf
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def predict(batch):
        return np.asarray(fn(tf.constant(batch)), dtype=np.float32).reshape(len(batch), -1)
    predict.traced = fn
    return predict


def make_cnn_extractor(kind, arg, *, spec, exemplar, weights, layer, epochs, batch_size, seed, progress,
                       max_rotation):
    """``cnn[:NAME]`` or ``model:PATH`` (see :func:`features.make_extractor`)."""
    if kind == "cnn":
        name = (arg or DEFAULT_CNN).lower()
        if name not in CNN_MODELS:
            raise FeatureError(f"unknown CNN {arg!r} in {spec!r}; choose from {', '.join(CNN_MODELS)}")
        path = find_weights(name, weights)  # before importing TensorFlow: a missing file fails fast
        base = CNNFeatures.pretrained(name, path, batch_size=batch_size)
    else:
        if not arg:
            raise FeatureError("feature spec 'model:' needs a path: model:PATH (a .keras file or a SavedModel dir)")
        base = CNNFeatures.from_saved(arg, layer, batch_size=batch_size)
    if exemplar is None:
        return base
    from .exemplar import ExemplarCNN
    return ExemplarCNN(base, trainable=exemplar == "full", epochs=epochs, batch_size=batch_size, seed=seed,
                       progress=progress, max_rotation=max_rotation)


class CNNFeatures(FeatureExtractor):
    """A Keras network from float32 images (b, H, W, C) in [0, 1] to feature vectors (b, D).

    Made by :meth:`pretrained` or :meth:`from_saved`. ``model_`` is the whole
    mapping (preprocessing included), a ``keras.Model`` that an Exemplar-CNN
    can train on top of or through.
    """

    needs_fit = False

    def __init__(self, model, title, *, batch_size=64):
        self.model_ = model
        self.title = title
        self.batch_size = batch_size
        h, w, c = model.input_shape[1:]
        self.input_shape = (h, w, c)
        self.needs_colour = c == 3
        self._batch_shape = None  # rebatch checks sizes and channels
        self.width_ = int(model.output_shape[-1])
        self._predict = inference(model)

    @classmethod
    def pretrained(cls, name, weights_path, *, batch_size=64):
        keras = import_keras()
        m = CNN_MODELS[name]
        size = (m.size, m.size, 3)
        net = getattr(keras.applications, m.builder)(include_top=False, weights=None, input_shape=size,
                                                     pooling="avg")
        try:
            net.load_weights(weights_path)
        except Exception as e:  # h5py/keras raise many kinds; the user needs the file and the reason
            raise FeatureError(f"weights file {weights_path} does not fit {m.title} (no top): "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        preprocess = getattr(keras.applications, m.preprocess).preprocess_input
        inputs = keras.Input(size)
        x = keras.layers.Lambda(lambda t: preprocess(t * 255.0), name="imagenet_preprocess")(inputs)
        model = keras.Model(inputs, net(x), name=f"{name}_features")
        return cls(model, f"{m.title} (ImageNet, {os.path.basename(weights_path)}), global average pool",
                   batch_size=batch_size)

    @classmethod
    def from_saved(cls, path, layer=None, *, batch_size=64):
        if not os.path.exists(path):
            raise FeatureError(f"model {path} not found (model:PATH takes a .keras/.h5 file or a SavedModel dir)")
        keras = import_keras()
        if os.path.isdir(path):
            return cls._from_savedmodel(keras, path, layer, batch_size)
        try:
            net = keras.models.load_model(path, compile=False)
        except Exception as e:
            raise FeatureError(f"model {path} could not be loaded as a Keras model: "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        names = [lay.name for lay in net.layers]
        if layer is None:
            layer = _default_layer(net)
        elif layer not in names:
            raise FeatureError(f"model {path} has no layer {layer!r}; its layers: {', '.join(names)}")
        out = net.get_layer(layer).output
        if isinstance(out, (list, tuple)):
            raise FeatureError(f"layer {layer!r} of {path} has several outputs; pick a layer with one")
        x = _pooled(keras, out)
        if len(net.inputs) != 1:
            raise FeatureError(f"model {path} has {len(net.inputs)} inputs; model:PATH needs an image model "
                               f"with one input (b, H, W, C)")
        model = keras.Model(net.inputs, x, name="model_features")
        _check_image_input(model.input_shape, path)
        pooled = ", global average pool" if len(out.shape) == 4 else ""
        return cls(model, f"{os.path.basename(path)} layer {layer!r}{pooled}", batch_size=batch_size)

    @classmethod
    def _from_savedmodel(cls, keras, path, layer, batch_size):
        import tensorflow as tf
        try:
            loaded = tf.saved_model.load(path)
            fn = loaded.signatures["serving_default"]
        except Exception as e:
            raise FeatureError(f"{path} could not be loaded as a SavedModel with a serving_default signature: "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        inputs = list(fn.structured_input_signature[1].values())
        outputs = sorted(fn.structured_outputs)
        if len(inputs) != 1:
            raise FeatureError(f"SavedModel {path} takes {len(inputs)} inputs; model:PATH needs one image input")
        if layer is None:
            layer = outputs[0]
        elif layer not in outputs:
            raise FeatureError(f"SavedModel {path} has no output {layer!r}; its serving_default outputs: "
                               f"{', '.join(outputs)} (export the layer you want as an output)")
        shape = tuple(inputs[0].shape)
        _check_image_input(shape, path)
        smlayer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
        x_in = keras.Input(shape[1:])
        out = smlayer(x_in)
        out = out[layer] if isinstance(out, dict) else out
        model = keras.Model(x_in, _pooled(keras, out), name="savedmodel_features")
        return cls(model, f"SavedModel {os.path.basename(os.path.normpath(path))} output {layer!r}",
                   batch_size=batch_size)

    def _transform_batch(self, batch):
        return self._predict(batch)

    def transform(self, batches):
        return super().transform(rebatch(batches, self.batch_size, self.input_shape, self.input_shape[2]))

    def describe(self):
        return f"{self.title}, {self.width_}-d"


def _default_layer(net):
    """The last global-pooling or flatten layer, else the one before the last (the classifier's input)."""
    for lay in reversed(net.layers):
        kind = type(lay).__name__
        if kind == "Flatten" or (kind.startswith("Global") and "Pooling" in kind):
            return lay.name
    layers = [lay for lay in net.layers if type(lay).__name__ != "InputLayer"]
    return layers[-2].name if len(layers) >= 2 else layers[-1].name


def _pooled(keras, out):
    """A feature map (b, h, w, c) average-pooled to (b, c); (b, d) as it is; other ranks flattened."""
    rank = len(out.shape)
    if rank == 4:
        return keras.layers.GlobalAveragePooling2D()(out)
    if rank != 2:
        return keras.layers.Flatten()(out)
    return out


def _check_image_input(shape, path):
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise FeatureError(f"model {path} takes input of shape {tuple(shape)}; model:PATH needs images "
                           f"(b, H, W, C) with C 1 or 3")


def _convert_channels(batch, channels):
    """Grey to colour (repeated) or colour to grey (ITU-R 601 luma), as the model's input asks."""
    if channels == 3:
        return np.repeat(batch, 3, axis=-1)
    return (batch @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def rebatch(batches, size, shape, channels):
    """The caller's batches regrouped into batches of ``size`` images (the last may be smaller), with
    ``channels`` (1 or 3) the model takes, or as they come when None. Images must all have the size
    ``shape`` (H, W, C) gives, or when that is None or has no H, W, the size of the first batch."""
    pending, n = [], 0
    hw = None if shape is None or shape[0] is None else tuple(shape[:2])
    for i, b in enumerate(batches):
        b = check_batch(b, i)
        if hw is None:
            hw = b.shape[1:3]
        if b.shape[1:3] != hw:
            raise FeatureError(f"batch {i}: expected {hw[0]}x{hw[1]} images (the model's input or the first "
                               f"batch's size), got {b.shape[1]}x{b.shape[2]}; resize every image to one size")
        if channels is not None and b.shape[-1] != channels:
            b = _convert_channels(b, channels)
        pending.append(b)
        n += len(b)
        while n >= size:
            allb = np.concatenate(pending)
            yield allb[:size]
            pending, n = [allb[size:]], n - size
    if n:
        yield np.concatenate(pending)
