"""Log directories for the tests: real Projector logs (TSV and TensorFlow checkpoint) and broken ones.

Each broken case lives in its own run, so a test can check both its error and
that the other embeddings of the same logdir keep working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image

ROWS, DIMS = 12, 4


def _tsv(path, array):
    with open(path, "w") as f:
        for row in array:
            f.write("\t".join("%g" % v for v in row) + "\n")


def _sprite(path, n, w, h, per_row=None):
    per_row = per_row or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / per_row))
    img = np.zeros((rows * h, per_row * w, 3), np.uint8)
    for i in range(n):
        y, x = (i // per_row) * h, (i % per_row) * w
        img[y:y + h, x:x + w] = (i * 20 % 255, 100, 200)
    Image.fromarray(img).save(path)


def _config(logdir, run, embeddings, use_tensorboard_api=True):
    """Write a projector config with TensorBoard's own visualize_embeddings."""
    from tensorboard.plugins import projector

    run_dir = os.path.join(logdir, run) if run != "." else logdir
    os.makedirs(run_dir, exist_ok=True)
    config = projector.ProjectorConfig()
    for e in embeddings:
        emb = config.embeddings.add()
        for k, v in e.items():
            if k == "sprite":
                emb.sprite.image_path = v[0]
                emb.sprite.single_image_dim.extend(v[1])
            else:
                setattr(emb, k, v)
    projector.visualize_embeddings(run_dir, config)
    return run_dir


def write_projector_tsv_log(logdir):
    """A good TSV embedding at the logdir root: metadata with a header, and a sprite."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, DIMS)).astype(np.float32)
    os.makedirs(logdir, exist_ok=True)
    _tsv(os.path.join(logdir, "vectors.tsv"), x)
    with open(os.path.join(logdir, "meta.tsv"), "w") as f:
        f.write("name\tkind\n")
        for i in range(ROWS):
            f.write("item%d\t%s\n" % (i, "even" if i % 2 == 0 else "odd"))
    _sprite(os.path.join(logdir, "sprite.png"), ROWS, 10, 10)
    _config(logdir, ".", [dict(tensor_name="vectors", tensor_path="vectors.tsv", metadata_path="meta.tsv",
                               sprite=("sprite.png", [10, 10]))])
    # A second run: single-column metadata (no header row, the Projector's rule).
    run_dir = os.path.join(logdir, "single")
    os.makedirs(run_dir)
    _tsv(os.path.join(run_dir, "t.tsv"), x[:5])
    with open(os.path.join(run_dir, "labels.tsv"), "w") as f:
        f.write("".join("c%d\n" % i for i in range(5)))
    _config(logdir, "single", [dict(tensor_name="single", tensor_path="t.tsv", metadata_path="labels.tsv")])
    return x


def write_checkpoint_log(logdir, python=sys.executable):
    """A TensorFlow checkpoint with a 2-D variable, as the TensorBoard projector tutorial writes it.

    Runs in a subprocess so the test process never imports TensorFlow.
    """
    run_dir = os.path.join(logdir, "ckpt")
    os.makedirs(run_dir, exist_ok=True)
    script = textwrap.dedent("""
        import os, sys
        import numpy as np
        import tensorflow as tf
        from tensorboard.plugins import projector
        run_dir = sys.argv[1]
        weights = tf.Variable(np.arange(%d * %d, dtype=np.float32).reshape(%d, %d))
        ckpt = tf.train.Checkpoint(embedding=weights)
        ckpt.save(os.path.join(run_dir, "embedding.ckpt"))
        config = projector.ProjectorConfig()
        emb = config.embeddings.add()
        emb.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
        projector.visualize_embeddings(run_dir, config)
    """ % (ROWS, DIMS, ROWS, DIMS))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([python, "-c", script, run_dir], check=True, env=env, capture_output=True)
    return "embedding/.ATTRIBUTES/VARIABLE_VALUE"


def write_broken_logs(logdir):
    """One run per kind of bad input; returns {run: substring the error must contain}."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(ROWS, DIMS)).astype(np.float32)
    expect = {}

    run = os.path.join(logdir, "bad_pbtxt")
    os.makedirs(run)
    with open(os.path.join(run, "projector_config.pbtxt"), "w") as f:
        f.write("embeddings {\n  tensor_name: \"x\"\n  tensor_path: \n")  # unterminated
    expect["bad_pbtxt"] = "not a valid projector config"

    run = _config(logdir, "bad_rows", [dict(tensor_name="bad_rows", tensor_path="t.tsv", metadata_path="m.tsv")])
    _tsv(os.path.join(run, "t.tsv"), x)
    with open(os.path.join(run, "m.tsv"), "w") as f:
        f.write("a\tb\n" + "".join("%d\t%d\n" % (i, i) for i in range(ROWS - 2)))
    expect["bad_rows"] = "has 10 rows but the tensor has 12 rows"

    run = _config(logdir, "ragged", [dict(tensor_name="ragged", tensor_path="t.tsv")])
    _tsv(os.path.join(run, "t.tsv"), x)
    with open(os.path.join(run, "t.tsv"), "a") as f:
        f.write("1\t2\t3\n")
    expect["ragged"] = "line 13 has 3 values, expected 4"

    run = _config(logdir, "nonnumeric", [dict(tensor_name="nonnumeric", tensor_path="t.tsv")])
    _tsv(os.path.join(run, "t.tsv"), x)
    with open(os.path.join(run, "t.tsv"), "a") as f:
        f.write("1\t2\tabc\t4\n")
    expect["nonnumeric"] = "line 13 column 3: 'abc' is not a number"

    run = _config(logdir, "sprite_missing", [dict(tensor_name="sprite_missing", tensor_path="t.tsv",
                                                   sprite=("nothere.png", [8, 8]))])
    _tsv(os.path.join(run, "t.tsv"), x)
    expect["sprite_missing"] = "sprite image nothere.png does not exist"

    run = _config(logdir, "sprite_untiled", [dict(tensor_name="sprite_untiled", tensor_path="t.tsv",
                                                   sprite=("s.png", [8, 8]))])
    _tsv(os.path.join(run, "t.tsv"), x)
    Image.new("RGB", (30, 30)).save(os.path.join(run, "s.png"))
    expect["sprite_untiled"] = "not a whole grid of 8x8 thumbnails"

    run = _config(logdir, "sprite_small", [dict(tensor_name="sprite_small", tensor_path="t.tsv",
                                                 sprite=("s.png", [8, 8]))])
    _tsv(os.path.join(run, "t.tsv"), x)
    Image.new("RGB", (24, 24)).save(os.path.join(run, "s.png"))
    expect["sprite_small"] = "holds 9 thumbnails of 8x8 px but the tensor has 12 rows"

    outside = os.path.join(os.path.dirname(os.path.abspath(logdir)), "outside.tsv")
    _tsv(outside, x)
    _config(logdir, "escape", [dict(tensor_name="escape", tensor_path="../../outside.tsv")])
    expect["escape"] = "resolves outside the log directory"
    return expect
