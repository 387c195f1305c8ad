"""`tensorboard-al embed` with the TensorFlow feature choices: the RN Exemplar-CNN trained from random
init, the user's own Keras model (a chosen layer), and a pretrained CNN whose weights are missing."""
import os

import numpy as np
import pytest
from PIL import Image

from tensorboard_al_plugin.logdir.catalog import scan_logdir
from tests.test_embed_cli import PLUGIN, only
from tests.test_writer_cli import cli

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-embed") / "shapes"
    rng = np.random.default_rng(11)
    for k, colour in enumerate([(220, 40, 40), (40, 200, 60)]):
        os.makedirs(root / ("c%d" % k))
        for i in range(6):
            a = np.clip(np.array(colour) + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(str(root / ("c%d" % k) / ("%d.png" % i)))
    return str(root)


def test_rn_exemplar_cnn_trained_from_random_init_embeds_a_folder(folder, tmp_path):
    r = cli("embed", folder, "--logdir", str(tmp_path), "--features", "rn", "--epochs", "1", "--batch-size", "8",
            "--quiet")
    assert r.returncode == 0, r.stderr
    s = only(tmp_path)
    x = s.load_tensor()
    assert s.rows == 12 and x.shape[1] >= 64 and np.isfinite(x).all()
    assert s.load_metadata()[1][0][:2] == ["c0/0.png", "c0/1.png"]


def test_own_keras_model_gives_the_chosen_layer_at_its_input_size(folder, tmp_path):
    import tensorflow as tf

    inputs = tf.keras.Input((12, 12, 3))
    x = tf.keras.layers.Conv2D(5, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))
    path = str(tmp_path / "mine.keras")
    model.save(path)
    logdir = tmp_path / "logs"
    r = cli("embed", folder, "--logdir", str(logdir), "--features", "model:" + path, "--layer", "pool", "--quiet")
    assert r.returncode == 0, r.stderr
    s = only(logdir)
    assert (s.rows, s.dims) == (12, 5)
    r = cli("embed", folder, "--logdir", str(logdir), "--name", "other", "--features", "model:" + path,
            "--size", "20", "--quiet")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("tensorboard-al: error: --size 20: model:")


def test_pretrained_cnn_without_its_weights_is_one_line_and_writes_nothing(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    r = cli("embed", folder, "--logdir", str(tmp_path / "logs"), "--features", "cnn:resnet50", "--quiet")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorboard-al: error: ") and "weights" in lines[0], lines
    assert not (tmp_path / "logs").exists() or scan_logdir(str(tmp_path / "logs")) == []
    assert not (tmp_path / "logs" / PLUGIN).exists()
