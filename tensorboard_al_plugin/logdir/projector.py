"""Reads the stock Embedding Projector's files.

A ``projector_config.pbtxt`` is looked for where the Projector looks: in a run
directory, in the run's ``plugins/org_tensorflow_tensorboard_projector/``
folder, and at the logdir root.  Tensors come from ``tensor_path`` (TSV, or raw
float32 with ``tensor_shape``) or from a TensorFlow checkpoint
(``tensor_name``; needs TensorFlow).  Asset paths resolve relative to the
config file and may not leave the log directory (symlinks followed), nor may
the checkpoint a run's ``checkpoint`` state file names, nor its ``.index``
and ``.data`` files.  Every file is read through :func:`fs.read_bytes`
(regular files only, a size limit per kind of file).  Nothing here ever
writes to the user's files.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np

from . import fs
from .source import (
    MAX_PAGE_PX,
    EmbeddingSource,
    SourceError,
    SpriteLayout,
    guarded,
    image_size,
    in_plugin_folder,
    label_dir_for,
    parse_metadata_tsv,
    parse_tensor_tsv,
    retile_sprite,
    sprite_problem,
)

CONFIG_NAME = "projector_config.pbtxt"
PROJECTOR_ASSETS = os.path.join("plugins", "org_tensorflow_tensorboard_projector")


def tensorflow_available() -> bool:
    from tensorboard.compat import tf

    # TensorBoard's stub stands in for TensorFlow when it is missing; the
    # stub has no train module.
    return hasattr(tf, "train") and hasattr(getattr(tf, "train"), "load_checkpoint")


def _run_dir_of_config(config_path: str) -> str:
    config_dir = fs.dirname(config_path)
    norm = config_dir.replace("\\", "/").rstrip("/")
    suffix = "/plugins/org_tensorflow_tensorboard_projector"
    if norm.endswith(suffix):
        return config_dir[: len(norm) - len(suffix)]
    return config_dir


def read_config(config_path: str, logdir: str) -> List[EmbeddingSource]:
    """Every embedding of one projector config; a broken config becomes one failed source."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    run_dir = _run_dir_of_config(config_path)
    run = fs.relpath(run_dir, logdir)
    where = fs.relpath(config_path, logdir)
    config = ProjectorConfig()
    try:
        text = fs.read_text(config_path, logdir, fs.MAX_CONFIG_BYTES)
    except SourceError as e:  # a FIFO, a device, a symlink out, too large
        return [EmbeddingSource(run, CONFIG_NAME, "projector").fail(str(e))]
    try:
        text_format.Parse(text, config)
    except Exception as e:  # ParseError, I/O errors
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return [EmbeddingSource(run, CONFIG_NAME, "projector").fail(
            "%s is not a valid projector config: %s" % (where, detail))]

    config_dir = fs.dirname(config_path)
    # Looking for a checkpoint imports TensorFlow: only when a tensor needs one.
    needs_checkpoint = not config.embeddings or any(
        not e.tensor_path for e in config.embeddings)
    checkpoint, checkpoint_problem = (_checkpoint_path(config, config_dir, run_dir, logdir) if needs_checkpoint
                                      else (None, None))
    sources: List[EmbeddingSource] = []
    if not config.embeddings:
        if checkpoint_problem:
            return [EmbeddingSource(run, "checkpoint", "projector").fail("%s: %s" % (where, checkpoint_problem))]
        if checkpoint is None:
            return [EmbeddingSource(run, CONFIG_NAME, "projector").fail(
                "%s lists no embeddings and no checkpoint was found next to it%s"
                % (where, "" if tensorflow_available() else
                   " (TensorFlow is not installed, so checkpoints cannot be read)"))]
        sources.extend(_checkpoint_variables(run, run_dir, checkpoint, where))
    for info in config.embeddings:
        if info.tensor_path and in_plugin_folder(info.tensor_path):
            # A tensor this plugin wrote itself, listed through its manifest instead.
            continue
        name = info.tensor_name or os.path.basename(info.tensor_path) or "embedding"
        if name.endswith(":0"):
            name = name[:-2]
        source = EmbeddingSource(run, name, "projector", label_dir=label_dir_for(run_dir, name, True))
        try:
            if info.tensor_path:
                _bind_tensor_file(source, info, config_dir, logdir, where)
            elif checkpoint_problem:
                raise SourceError("%s: %s" % (where, checkpoint_problem))
            else:
                _bind_checkpoint_tensor(source, checkpoint, where)
        except SourceError as e:
            source.fail(str(e))
            sources.append(source)
            continue
        if info.metadata_path:
            _bind_metadata(source, info.metadata_path, config_dir, logdir)
        if info.sprite.image_path:
            _bind_sprite(source, info, config_dir, logdir)
        sources.append(source)
    return sources


def _checkpoint_path(config, config_dir, run_dir, logdir) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint prefix for tensors without tensor_path, and why it is unusable (or None)."""
    if config.model_checkpoint_path:
        try:
            prefix = fs.resolve_asset(config.model_checkpoint_path, config_dir, logdir)
        except ValueError as e:
            return None, "model_checkpoint_path: %s" % e
    else:
        if not tensorflow_available():
            return None, None
        state = fs.join(run_dir, "checkpoint")
        if not (os.path.lexists(state) if not fs.is_remote(state) else fs.exists(state)):
            return None, None
        try:
            # TensorFlow would open a FIFO and wait, and follow a link out: check the state file first.
            fs.check_file(state, logdir, fs.MAX_CONFIG_BYTES, "checkpoint state file")
        except SourceError as e:
            return None, str(e)
        from tensorboard.compat import tf

        try:
            prefix = tf.train.latest_checkpoint(run_dir)
        except Exception as e:
            return None, "checkpoint state file %s is unusable: %s" % (fs.display(state, logdir),
                                                                      str(e).strip().splitlines()[0])
        if prefix is None:
            return None, None
    try:
        _check_checkpoint_files(prefix, logdir)
    except SourceError as e:
        return None, str(e)
    return prefix, None


def _check_checkpoint_files(prefix: str, logdir: str) -> None:
    """SourceError unless the checkpoint's prefix, .index and .data files are regular files inside the logdir."""
    fs.check_inside(prefix, logdir, "checkpoint")
    fs.check_file(prefix + ".index", logdir, fs.MAX_CHECKPOINT_INDEX_BYTES, "checkpoint index")
    folder, stem = fs.dirname(prefix), prefix.replace("\\", "/").rsplit("/", 1)[-1] + ".data-"
    try:
        names = [n for n in fs.listdir(folder) if n.startswith(stem)]
    except OSError as e:
        raise SourceError("checkpoint folder %s cannot be listed: %s" % (fs.display(folder, logdir), e))
    if not names:
        raise SourceError("checkpoint %s has no data file (%s*)" % (fs.display(prefix, logdir), stem))
    for name in sorted(names):
        fs.check_file(fs.join(folder, name), logdir, fs.MAX_CHECKPOINT_DATA_BYTES, "checkpoint data file")


def _bind_tensor_file(source, info, config_dir, logdir, where) -> None:
    try:
        path = fs.resolve_asset(info.tensor_path, config_dir, logdir)
    except ValueError as e:
        raise SourceError("%s: tensor_path %s" % (where, e))
    if not fs.exists(path):
        raise SourceError("%s: tensor file %s does not exist" % (where, info.tensor_path))
    shape = list(info.tensor_shape)
    label = fs.relpath(path, logdir)
    limit = fs.MAX_TEXT_TENSOR_BYTES
    if len(shape) == 2:  # binary: exactly rows x dims x 4 bytes (the exact size is checked below)
        limit = max(limit, min(shape[0] * shape[1] * 4, fs.MAX_TENSOR_BYTES))

    def load() -> np.ndarray:
        data = fs.read_bytes(path, logdir, limit, "tensor file")
        try:
            data.decode("utf-8")
            return parse_tensor_tsv(data, label)
        except UnicodeDecodeError:
            if len(shape) != 2:
                raise SourceError("%s is binary but the config gives no 2-D tensor_shape" % label)
            expected = shape[0] * shape[1] * 4
            if len(data) != expected:
                raise SourceError("%s has %d bytes, tensor_shape %s needs %d"
                                  % (label, len(data), shape, expected))
            return np.frombuffer(data, dtype="<f4").reshape(shape)

    tensor = load()  # read once at scan time: rows and dims must be known and valid
    source.rows, source.dims = int(tensor.shape[0]), int(tensor.shape[1])
    source.load_tensor = guarded("tensor file %s" % label, load)
    source.projector_assets = {"tensor": path, "tensor_shape": shape}


def _bind_checkpoint_tensor(source, checkpoint, where) -> None:
    if not tensorflow_available():
        raise SourceError("%s: tensor %s is in a TensorFlow checkpoint, which needs TensorFlow "
                          "(pip install tensorflow-cpu); TSV and .npy tensors work without it"
                          % (where, source.name))
    if checkpoint is None:
        raise SourceError("%s: tensor %s has no tensor_path and no checkpoint was found"
                          % (where, source.name))
    from tensorboard.compat import tf

    try:
        reader = tf.train.load_checkpoint(checkpoint)
        shapes = reader.get_variable_to_shape_map()
    except Exception as e:
        raise SourceError("%s: cannot read checkpoint %s: %s" % (where, checkpoint, str(e).splitlines()[0]))
    if source.name not in shapes:
        raise SourceError("%s: tensor %s is not in checkpoint %s" % (where, source.name, os.path.basename(checkpoint)))
    shape = shapes[source.name]
    if len(shape) != 2:
        raise SourceError("%s: tensor %s has shape %s; only 2-D tensors are embeddings"
                          % (where, source.name, list(shape)))
    source.rows, source.dims = int(shape[0]), int(shape[1])
    name = source.name

    def load() -> np.ndarray:
        return np.asarray(tf.train.load_checkpoint(checkpoint).get_tensor(name), dtype=np.float32)

    try:
        # Read once at scan time: the index alone says nothing of a truncated or damaged data file.
        load()
    except Exception as e:
        raise SourceError("%s: tensor %s cannot be read from checkpoint %s: %s"
                          % (where, name, os.path.basename(checkpoint), str(e).strip().splitlines()[0]))
    source.load_tensor = guarded("tensor %s of checkpoint %s" % (name, os.path.basename(checkpoint)), load)
    source.projector_assets = {"checkpoint": checkpoint, "variable": name}


def _checkpoint_variables(run, run_dir, checkpoint, where) -> List[EmbeddingSource]:
    """A config without embedding entries shows every 2-D variable of the checkpoint (as the Projector does)."""
    if not tensorflow_available():
        return [EmbeddingSource(run, "checkpoint", "projector").fail(
            "%s points to a TensorFlow checkpoint, which needs TensorFlow (pip install tensorflow-cpu)" % where)]
    from tensorboard.compat import tf

    try:
        shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    except Exception as e:
        return [EmbeddingSource(run, "checkpoint", "projector").fail(
            "%s: cannot read checkpoint %s: %s" % (where, checkpoint, str(e).splitlines()[0]))]
    out = []
    for name in sorted(shapes):
        if len(shapes[name]) == 2 and "/.OPTIMIZER_SLOT/" not in name:
            source = EmbeddingSource(run, name, "projector", label_dir=label_dir_for(run_dir, name, True))
            try:
                _bind_checkpoint_tensor(source, checkpoint, where)
            except SourceError as e:
                source.fail(str(e))
            out.append(source)
    return out


def _bind_metadata(source, metadata_path, config_dir, logdir) -> None:
    try:
        path = fs.resolve_asset(metadata_path, config_dir, logdir)
        if not fs.exists(path):
            raise SourceError("metadata file %s does not exist" % metadata_path)
        label = fs.relpath(path, logdir)
        columns, _ = parse_metadata_tsv(fs.read_bytes(path, logdir, fs.MAX_METADATA_BYTES, "metadata file"),
                                        label, source.rows)
    except (SourceError, ValueError) as e:
        source.problems.append("metadata ignored: %s" % e)
        return
    source.metadata_columns = columns

    def load():
        return parse_metadata_tsv(fs.read_bytes(path, logdir, fs.MAX_METADATA_BYTES, "metadata file"),
                                  label, source.rows)

    source.load_metadata = guarded("metadata file %s" % label, load)


def _bind_sprite(source, info, config_dir, logdir) -> None:
    try:
        path = fs.resolve_asset(info.sprite.image_path, config_dir, logdir)
        if not fs.exists(path):
            raise SourceError("sprite image %s does not exist" % info.sprite.image_path)
        dims = list(info.sprite.single_image_dim)
        if len(dims) != 2:
            raise SourceError("sprite single_image_dim must give width and height, got %s" % dims)
        label = fs.relpath(path, logdir)
        width, height = image_size(path, logdir)
        problem = sprite_problem(width, height, dims[0], dims[1], source.rows, label)
        if problem:
            raise SourceError(problem)
    except (SourceError, ValueError) as e:
        source.problems.append("sprite ignored: %s" % e)
        return
    per_row = width // dims[0]
    if source.projector_assets is not None:
        source.projector_assets.update(sprite=path, sprite_dims=dims)
    if width <= MAX_PAGE_PX and height <= MAX_PAGE_PX:
        layout = SpriteLayout(dims[0], dims[1], per_row, per_row * (height // dims[1]), [(width, height)])

        def page(k: int) -> bytes:
            return fs.read_bytes(path, logdir, fs.MAX_IMAGE_BYTES, "sprite")
    else:
        layout = SpriteLayout.for_count(source.rows, dims[0], dims[1])

        def page(k: int) -> bytes:
            return retile_sprite(path, logdir, per_row, layout, source.rows, k)

    source.sprite = layout
    source.load_sprite_page = guarded("sprite %s" % label, page)


def find_configs(logdir: str, dirs_with_files) -> List[str]:
    """Projector config files among ``(dir, files)`` pairs of a walk of the logdir."""
    found = []
    for directory, files in dirs_with_files:
        if CONFIG_NAME in files:
            found.append(fs.join(directory, CONFIG_NAME))
    return found
