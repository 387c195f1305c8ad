"""features with TensorFlow: pretrained-CNN weights from a local file, model:PATH, the rotation Exemplar-CNN.

Every network here is tiny and built in the test (a MobileNetV2 with random weights stands in
for an ImageNet file: this machine has no internet and nothing may be downloaded), so the file
runs in seconds.
"""
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tensorboard_al_plugin.features import FeatureError, extract_features, make_extractor  # noqa: E402
from tensorboard_al_plugin.features.exemplar import small_cnn  # noqa: E402


def images(n=24, h=16, w=16, c=1, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def stream(x, size=10):
    def batches():
        for s in range(0, len(x), size):
            yield x[s:s + size]
    return batches


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory):
    """A tiny classifier (16x16 grey -> conv -> global average pool -> 3 classes) saved as .keras."""
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=1))(inp)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inp, out)
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    """A MobileNetV2 (no top) weights file with random weights, in the legacy HDF5 layout of the
    files Keras caches (one group per layer), so it stands in for the real ImageNet file."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    net = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3),
                                         pooling="avg")
    path = str(tmp_path_factory.mktemp("weights") / "mobilenetv2_notop.h5")
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, net)
    return path, net


def no_download(*a, **k):
    raise AssertionError("tried to download")


def test_a_pretrained_cnn_loads_its_weights_from_a_local_file_and_gives_pooled_features(mobilenet_weights,
                                                                                       monkeypatch):
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_download)
    path, net = mobilenet_weights
    ex = make_extractor("cnn:mobilenetv2", weights=path, batch_size=4)
    assert ex.input_shape == (224, 224, 3) and ex.needs_colour and not ex.needs_fit
    assert ex.describe() == "MobileNetV2 (ImageNet, mobilenetv2_notop.h5), global average pool, 1280-d"
    x = images(5, 224, 224, 3)
    f = ex.transform(stream(x, 3)())
    ref = net(keras.applications.mobilenet_v2.preprocess_input(x * 255.0), training=False)
    assert f.shape == (5, 1280) and f.dtype == np.float32
    np.testing.assert_allclose(f, np.asarray(ref), rtol=1e-4, atol=1e-5)
    # grey images are given 3 channels
    grey = extract_features((x[:2, ..., :1] * 255).astype(np.uint8), "cnn:mobilenetv2", weights=path)
    assert grey.shape == (2, 1280)


def test_a_pretrained_cnn_finds_its_weights_in_keras_cache(mobilenet_weights, tmp_path, monkeypatch):
    os.makedirs(tmp_path / "models")
    os.link(mobilenet_weights[0],
            tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert make_extractor("cnn:mobilenetv2").describe().startswith("MobileNetV2 (ImageNet, mobilenet_v2_weights")


def test_weights_that_do_not_fit_the_cnn_or_are_missing_are_one_line(mobilenet_weights, tmp_path):
    with pytest.raises(FeatureError, match=r"weights file .*mobilenetv2_notop.h5 does not fit EfficientNetB0"):
        make_extractor("cnn:efficientnetb0", weights=mobilenet_weights[0])
    with pytest.raises(FeatureError, match=r"weights file .*nothere.h5 not found .*vgg16_weights_tf_dim_ordering"):
        make_extractor("cnn:vgg16", weights=str(tmp_path / "nothere.h5"))


def test_building_a_cnn_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", no_download)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_download)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in ("resnet50", "vgg16", "efficientnetb0", "mobilenetv2", "densenet121"):
        with pytest.raises(FeatureError, match="which this machine does not have"):
            make_extractor(f"cnn:{name}")


def test_model_path_takes_the_last_pooling_layer_by_default(tiny_keras):
    path, model = tiny_keras
    ex = make_extractor("model:" + path)
    assert ex.input_shape == (16, 16, 1) and not ex.needs_colour
    assert ex.describe() == "tiny.keras layer 'pool', 8-d"
    x = images(7)
    ref = keras.Model(model.inputs, model.get_layer("pool").output)(x)
    np.testing.assert_allclose(ex.transform(stream(x, 3)()), np.asarray(ref), rtol=1e-5, atol=1e-6)
    # colour batches become grey for a grey model (ITU-R 601 luma)
    rgb = np.repeat(x, 3, axis=-1)
    np.testing.assert_allclose(ex.transform([rgb]), np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_features_of_batches_of_any_length_trace_the_network_once(tiny_keras):
    ex = make_extractor("model:" + tiny_keras[0], batch_size=4)
    ex.transform([images(3), images(5), images(2)])  # regrouped into 4, 4, 2
    ex.transform([images(1)])
    assert ex._predict.traced.experimental_get_tracing_count() == 1


def test_model_path_pools_a_chosen_feature_map_layer(tiny_keras):
    path, model = tiny_keras
    ex = make_extractor("model:" + path, layer="conv")
    assert ex.describe() == "tiny.keras layer 'conv', global average pool, 8-d"
    x = images(4)
    conv = np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(x))
    np.testing.assert_allclose(ex.transform([x]), conv.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_model_path_errors_name_the_file_and_what_is_wrong(tiny_keras, tmp_path):
    path, _ = tiny_keras
    with pytest.raises(FeatureError, match=r"has no layer 'fc7'; its layers: input_layer.*, conv, pool, head"):
        make_extractor("model:" + path, layer="fc7")
    with pytest.raises(FeatureError, match=r"model .*missing.keras not found"):
        make_extractor("model:" + str(tmp_path / "missing.keras"))
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(FeatureError, match=r"model .*junk.keras could not be loaded as a Keras model"):
        make_extractor("model:" + str(junk))
    tab = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4, name="d1"), keras.layers.Dense(2)])
    tab.save(tmp_path / "tabular.keras")
    with pytest.raises(FeatureError, match=r"takes input of shape \(None, 10\); model:PATH needs images"):
        make_extractor("model:" + str(tmp_path / "tabular.keras"))
    with pytest.raises(FeatureError, match=r"batch 0: expected 16x16 images .*got 8x8"):
        make_extractor("model:" + path).transform([images(2, 8, 8)])


def test_model_path_reads_a_savedmodel_directory_and_picks_an_output(tiny_keras, tmp_path):
    _, model = tiny_keras
    two = keras.Model(model.inputs, {"pool": model.get_layer("pool").output, "head": model.output})
    two.export(str(tmp_path / "sm"), verbose=False)
    x = images(5)
    ex = make_extractor("model:" + str(tmp_path / "sm"), layer="pool")
    assert ex.describe() == "SavedModel sm output 'pool', 8-d"
    np.testing.assert_allclose(ex.transform([x]), np.asarray(two(x)["pool"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(FeatureError, match=r"has no output 'fc'; its serving_default outputs: head, pool"):
        make_extractor("model:" + str(tmp_path / "sm"), layer="fc")


def test_small_cnn_halves_tiny_and_large_images_to_at_most_4_pixels():
    def halvings(shape):
        return sum(type(lay).__name__ == "MaxPooling2D" for lay in small_cnn(keras, shape).layers)
    assert halvings((8, 8, 1)) == 1 and halvings((28, 28, 1)) == 3 and halvings((224, 224, 3)) == 5
    assert small_cnn(keras, (8, 8, 1)).output_shape == (None, 128)
    assert small_cnn(keras, (28, 28, 3)).output_shape == (None, 256)


def bars(n=32, seed=0):
    """16x16 grey images: a horizontal or a vertical bar at a random place, with noise."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.random((n, 16, 16, 1)).astype(np.float32)
    for i in range(n):
        p = rng.integers(2, 14)
        if i % 2:
            x[i, p - 1:p + 1, 2:14] = 1
        else:
            x[i, 2:14, p - 1:p + 1] = 1
    return x


def test_rn_exemplar_trains_from_random_init_with_a_falling_loss_and_a_progress_bar(capsys):
    x = bars()
    ex = make_extractor("rn", epochs=6, batch_size=8, progress=True)
    assert ex.needs_fit and not ex.needs_colour and ex.input_shape == (None, None, 3)
    ex.fit(stream(x, 10))
    f = ex.transform(stream(x, 10)())
    assert f.shape == (32, 256) and f.dtype == np.float32 and (f >= 0).all()  # the ReLU layer's output
    assert ex.loss_history_[-1] < ex.loss_history_[0]
    assert ex.n_classes_ == 32 and ex.n_images_ == 32
    assert ex.describe().startswith("rotation Exemplar-CNN (RN) on a small CNN from random initialisation, trained")
    err = capsys.readouterr().err
    assert "Exemplar-CNN (RN)" in err and "loss=" in err


def test_exemplar_training_is_seeded():
    x = bars(24)
    a = make_extractor("rn", epochs=2, batch_size=8, seed=3).fit(stream(x)).transform(stream(x)())
    b = make_extractor("rn", epochs=2, batch_size=8, seed=3).fit(stream(x)).transform(stream(x)())
    c = make_extractor("rn", epochs=2, batch_size=8, seed=4).fit(stream(x)).transform(stream(x)())
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(a, c, rtol=1e-2, atol=1e-3)


def test_exemplar_stops_early_when_the_loss_stops_improving():
    from tensorboard_al_plugin.features.exemplar import RandomInitExemplar
    ex = RandomInitExemplar(epochs=10, batch_size=8, patience=1, min_delta=0.99)  # no epoch improves by 99%
    ex.fit(stream(bars(16)))
    assert len(ex.loss_history_) == 2 and ex.stopped_early_


def test_above_max_classes_a_seeded_subset_are_the_surrogate_classes_and_every_image_gets_features():
    from tensorboard_al_plugin.features.exemplar import RandomInitExemplar
    ex = RandomInitExemplar(epochs=1, batch_size=4, max_classes=8)
    f = ex.fit(stream(bars(20))).transform(stream(bars(20))())
    assert ex.n_classes_ == 8 and ex.n_images_ == 20 and f.shape == (20, 256)


def test_transfer_frozen_keeps_the_cnn_and_transfer_trains_it(tiny_keras):
    path, model = tiny_keras
    conv = model.get_layer("conv").get_weights()[0]
    x = bars(16)
    frozen = make_extractor("model:" + path, exemplar="frozen", epochs=2, batch_size=8).fit(stream(x))
    assert frozen.describe().startswith("rotation Exemplar-CNN (Transfer-Frozen) on tiny.keras layer 'pool', 8-d")
    np.testing.assert_array_equal(frozen.base.model_.get_layer("conv").get_weights()[0], conv)
    full = make_extractor("model:" + path, exemplar="full", epochs=2, batch_size=8).fit(stream(x))
    assert not np.array_equal(full.base.model_.get_layer("conv").get_weights()[0], conv)
    f = full.transform(stream(x)())
    assert f.shape == (16, 8) and full.describe().startswith("rotation Exemplar-CNN (Transfer) on")


def test_exemplar_errors_are_one_line():
    ex = make_extractor("rn", epochs=1)
    with pytest.raises(FeatureError, match=r"call fit\(batches\) before transform"):
        ex.transform([bars(2)])
    with pytest.raises(FeatureError, match="needs at least 2 images"):
        ex.fit(lambda: iter([bars(1)]))
    with pytest.raises(FeatureError, match=r"batch 1: expected 16x16 images .*got 8x8"):
        ex.fit(lambda: iter([bars(4), images(4, 8, 8)]))
    with pytest.raises(FeatureError, match="fit: expected a callable"):
        ex.fit([bars(4)])
