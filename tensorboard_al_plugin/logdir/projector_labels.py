"""Show a stock-Projector embedding's labels in the stock Projector, without touching the user's files.

The stock Projector reads one ``projector_config.pbtxt`` per run and refuses
any asset path that resolves outside that config's directory (symlinks
included).  So the user's config cannot name our ``labels.tsv`` unless it is
rewritten (which this plugin never does), and a config of ours cannot name
the user's tensor, which lies outside our folder.

What we do instead: the embedding's folder of this plugin,
``<run>/plugins/active_labeling/_projector/<embedding>/``, becomes a run of
its own (an event file that holds only the file-version record) with its own
``projector_config.pbtxt``::

    _projector/<embedding>/
        events.out.tfevents.*       makes TensorBoard list the folder as a run
        projector_config.pbtxt      one entry, "<embedding> (labels)"
        tensor<ext>                 hard link to the user's tensor file
        sprite<ext>                 hard link to the user's sprite image
        published.json              what each link or copy was made from
        labels/labels.tsv           written by the label store

The links cost no space and always show the user's current bytes.  Where a
link is impossible (object stores, another device) the file is copied, and
copied again when the original's size or modification time changes.  A
checkpoint-backed tensor is named by variable and ``model_checkpoint_path``
(the Projector does not confine that one), so it is never copied.

The Projector then lists the run ``<run>/plugins/active_labeling/_projector/
<embedding>``, whose embedding is the user's tensor and sprite with our label
column: colour by ``label``, search it, or see who labelled a point
(``author``).  This plugin's own discovery skips these folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from typing import Optional

from . import fs
from .source import PLUGIN_NAME, EmbeddingSource

logger = logging.getLogger(__name__)

RECORD = "published.json"
CONFIG_NAME = "projector_config.pbtxt"


def publish_labels(source: EmbeddingSource, labels_tsv: str) -> Optional[str]:
    """Make ``labels_tsv`` visible in the stock Projector for ``source``.

    Returns the Projector run name (relative to the logdir) for
    Projector-format embeddings, the source's own run for this plugin's own
    format (whose run config gets a "<name> (labels)" entry), and None when
    nothing could be published.  Raises OSError or ValueError on a failed
    write; callers log it, labelling never depends on it.
    """
    if source.format == "active_labeling":
        from .embeddings import publish_labels_entry

        return source.run if publish_labels_entry(source, labels_tsv) else None
    if source.format != "projector" or not source.label_dir or not source.projector_assets:
        return None
    assets = source.projector_assets
    run_dir = fs.dirname(source.label_dir.rstrip("/\\"))
    if fs.dirname(labels_tsv.rstrip("/\\")) != source.label_dir.rstrip("/\\"):
        raise ValueError("labels.tsv %s is not in the store folder %s" % (labels_tsv, source.label_dir))
    record = _read_record(run_dir)
    entry = {"tensor_name": "%s (labels)" % source.name,
             "metadata_path": "labels/" + os.path.basename(labels_tsv)}
    if "tensor" in assets:
        entry["tensor_path"] = _provide(assets["tensor"], run_dir, "tensor", record)
        if assets.get("tensor_shape"):
            entry["tensor_shape"] = list(assets["tensor_shape"])
        checkpoint = None
    else:
        # The variable name is how the Projector finds the tensor in the checkpoint.
        entry["tensor_name"] = assets["variable"]
        checkpoint = assets["checkpoint"]
        if not fs.is_remote(checkpoint):
            checkpoint = os.path.abspath(checkpoint)  # the Projector opens it relative to its cwd
    if assets.get("sprite"):
        entry["sprite"] = (_provide(assets["sprite"], run_dir, "sprite", record), list(assets["sprite_dims"]))
    _write_record(run_dir, record)
    _write_config(run_dir, entry, checkpoint)
    from .embeddings import _ensure_run_is_visible

    _ensure_run_is_visible(run_dir)  # last: the run appears with its config in place
    return publication_run(source)


def publication_run(source: EmbeddingSource) -> str:
    """The TensorBoard run name under which the Projector lists ``source``'s labels."""
    folder = os.path.basename(fs.dirname(source.label_dir.rstrip("/\\")))
    inner = "plugins/%s/_projector/%s" % (PLUGIN_NAME, folder)
    return inner if source.run in (".", "") else "%s/%s" % (source.run, inner)


# -- internals ---------------------------------------------------------------------


def _read_record(run_dir: str) -> dict:
    path = fs.join(run_dir, RECORD)
    try:
        if fs.exists(path):
            data = json.loads(fs.read_text(path, run_dir, fs.MAX_CONFIG_BYTES))
            if isinstance(data, dict):
                return data
    except (OSError, ValueError):  # ValueError: SourceError too (a FIFO, a link out, too large)
        pass
    return {}


def _write_if_changed(path: str, data: bytes) -> None:
    """Rewrite only when the bytes differ: a republish leaves unchanged files (and their times) alone.

    The old file is read only when it is a regular file in its own folder; a
    symlink or a FIFO there is replaced (the rename replaces the link itself,
    never its target).
    """
    try:
        if fs.exists(path) and fs.read_bytes(path, fs.dirname(path), len(data)) == data:
            return
    except fs.SourceError:
        pass
    fs.write_bytes(path, data)


def _write_record(run_dir: str, record: dict) -> None:
    _write_if_changed(fs.join(run_dir, RECORD), json.dumps(record, indent=1, sort_keys=True).encode("utf-8"))


def _provide(src: str, run_dir: str, stem: str, record: dict) -> str:
    """Put ``src`` into ``run_dir`` as ``stem<ext>`` (hard link, else copy); returns the file name."""
    ext = os.path.splitext(src.rstrip("/"))[1].lower()
    if not ext or len(ext) > 8 or not ext[1:].isalnum():
        ext = ""
    name = stem + ext
    dst = fs.join(run_dir, name)
    sig = fs.signature(src)
    if sig is None:
        raise OSError("%s is not readable" % src)
    old = record.get(name)
    local = not fs.is_remote(src) and not fs.is_remote(dst)
    if local and os.path.exists(dst):
        try:
            if os.path.samefile(src, dst):
                record[name] = {"from": src, "how": "link", "signature": list(sig)}
                return name
        except OSError:
            pass
    if (old and old.get("how") == "copy" and old.get("from") == src
            and old.get("signature") == list(sig) and fs.exists(dst)):
        return name
    how = "copy"
    if local:
        os.makedirs(run_dir, exist_ok=True)
        tmp = fs.temp_path(dst)  # new per call, as in fs.write_atomic: two publishes never share it
        try:
            try:
                os.link(src, tmp)
                how = "link"
            except OSError:  # another device, or a filesystem without hard links
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            # Left after an error, and after a rename that did nothing: rename() leaves both
            # names when they are links to one file (another call linked dst meanwhile).
            with contextlib.suppress(OSError):
                os.remove(tmp)
    else:
        # src was resolved inside the log directory by the reader that found it.
        fs.write_bytes(dst, fs.read_bytes(src, fs.dirname(src), fs.MAX_TENSOR_BYTES))
    record[name] = {"from": src, "how": how, "signature": list(sig)}
    return name


def _write_config(run_dir: str, entry: dict, checkpoint: Optional[str]) -> None:
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = ProjectorConfig()
    if checkpoint:
        config.model_checkpoint_path = checkpoint
    e = config.embeddings.add()
    e.tensor_name = entry["tensor_name"]
    if "tensor_path" in entry:
        e.tensor_path = entry["tensor_path"]
    if entry.get("tensor_shape"):
        e.tensor_shape.extend(entry["tensor_shape"])
    e.metadata_path = entry["metadata_path"]
    if "sprite" in entry:
        e.sprite.image_path = entry["sprite"][0]
        e.sprite.single_image_dim.extend(entry["sprite"][1])
    _write_if_changed(fs.join(run_dir, CONFIG_NAME),
                      ("# Written by tensorboard-al so the Projector shows the labels; rewritten as needed.\n"
                       + text_format.MessageToString(config)).encode("utf-8"))
