"""This plugin's own embedding format and the public writer API.

Layout of one embedding, ``<logdir>/<run>/plugins/active_labeling/<name>/``::

    manifest.json    {"format": "tensorboard-al/1", "name", "rows", "dims",
                      "tensor": "tensor.bin", "metadata": "metadata.tsv" | null,
                      "metadata_columns": [...],
                      "sprite": {"thumb_width", "thumb_height", "per_row", "per_page",
                                 "pages": ["sprite_0.png", ...]} | null}
    tensor.bin       rows x dims float32, little-endian, row-major
    metadata.tsv     header row when there is more than one column (Projector rule)
    sprite_K.png     atlas pages of at most 8192 x 8192 px
    labels/          the label store (see docs/LABEL_STORE.md)

The manifest is written last, so a reader never sees a half-written
embedding.  ``write_embedding`` also adds an entry to the run's
``projector_config.pbtxt`` so the stock Projector opens the same data.
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import fs
from .source import (
    PLUGIN_NAME,
    EmbeddingSource,
    SourceError,
    SpriteLayout,
    guarded,
    image_size,
    label_dir_for,
    parse_metadata_tsv,
)

FORMAT = "tensorboard-al/1"
MANIFEST = "manifest.json"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


# --- reading -----------------------------------------------------------------------


def read_manifest(manifest_path: str, logdir: str) -> EmbeddingSource:
    emb_dir = fs.dirname(manifest_path)
    run_dir = fs.dirname(fs.dirname(fs.dirname(emb_dir)))  # <run>/plugins/active_labeling/<name>
    run = fs.relpath(run_dir, logdir)
    name = os.path.basename(emb_dir.rstrip("/"))
    where = fs.relpath(manifest_path, logdir)
    source = EmbeddingSource(run, name, "active_labeling", label_dir=label_dir_for(run_dir, name, False))
    try:
        manifest = json.loads(fs.read_text(manifest_path, logdir, fs.MAX_CONFIG_BYTES, "manifest"))
        if not isinstance(manifest, dict):
            raise SourceError("%s is not a valid manifest: not a JSON object" % where)
        if manifest.get("format") != FORMAT:
            raise SourceError("%s has format %r, expected %r" % (where, manifest.get("format"), FORMAT))
        rows, dims = int(manifest["rows"]), int(manifest["dims"])
        if rows < 0 or dims < 1:
            raise SourceError("%s is not a valid manifest: %d rows x %d dims" % (where, rows, dims))
        tensor_path = fs.join(emb_dir, _child(manifest.get("tensor", "tensor.bin")))
    except SourceError as e:
        return source.fail(str(e))
    except (ValueError, KeyError, TypeError, OverflowError) as e:
        return source.fail("%s is not a valid manifest: %s" % (where, e))
    source.rows, source.dims = rows, dims
    expected = rows * dims * 4
    tensor_label = fs.relpath(tensor_path, logdir)
    if not os.path.lexists(tensor_path) if not fs.is_remote(tensor_path) else not fs.exists(tensor_path):
        return source.fail("%s: tensor file %s is missing" % (where, tensor_label))
    try:
        if expected > fs.MAX_TENSOR_BYTES:
            raise SourceError("%s: %d x %d float32 is more than the limit of %d MiB for a tensor"
                              % (where, rows, dims, fs.MAX_TENSOR_BYTES >> 20))
        size = fs.check_file(tensor_path, logdir, fs.MAX_TENSOR_BYTES, "tensor file")
    except SourceError as e:
        return source.fail(str(e))
    if size >= 0 and size != expected:
        return source.fail("%s has %d bytes, but %d x %d float32 needs %d"
                           % (tensor_label, size, rows, dims, expected))

    def load_tensor() -> np.ndarray:
        data = fs.read_bytes(tensor_path, logdir, expected, "tensor file")
        if len(data) != expected:
            raise SourceError("%s has %d bytes, but %d x %d float32 needs %d"
                              % (tensor_label, len(data), rows, dims, expected))
        return np.frombuffer(data, dtype="<f4").reshape(rows, dims)

    source.load_tensor = guarded("tensor file %s" % tensor_label, load_tensor)

    if manifest.get("metadata"):
        try:
            meta_path = fs.join(emb_dir, _child(manifest["metadata"]))
            columns = manifest.get("metadata_columns") or []
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise SourceError("%s: metadata_columns is not a list of names" % where)
            label = fs.relpath(meta_path, logdir)
            if not fs.exists(meta_path):
                raise SourceError("metadata file %s is missing" % label)

            def load_metadata():
                data = fs.read_bytes(meta_path, logdir, fs.MAX_METADATA_BYTES, "metadata file")
                cols, values = parse_metadata_tsv(data, label, rows, header=len(columns) > 1)
                return (columns if len(columns) == 1 else cols), values

            source.metadata_columns = load_metadata()[0]
            source.load_metadata = guarded("metadata file %s" % label, load_metadata)
        except SourceError as e:
            source.problems.append("metadata ignored: %s" % e)

    sprite = manifest.get("sprite")
    if sprite:
        try:
            pages = [fs.join(emb_dir, _child(p)) for p in sprite["pages"]]
            layout = SpriteLayout.for_count(rows, int(sprite["thumb_width"]), int(sprite["thumb_height"]))
            if layout.pages != len(pages) or layout.per_row != int(sprite["per_row"]):
                raise SourceError("%s: sprite pages do not match %d thumbnails" % (where, rows))
            missing = [p for p in pages if not fs.exists(p)]
            if missing:
                raise SourceError("sprite page %s is missing" % fs.relpath(missing[0], logdir))
            for page, size in zip(pages, layout.page_sizes):
                # From the header: a page that is not the size the layout says could be anything (a bomb).
                found = image_size(page, logdir, "sprite page")
                if found != tuple(size):
                    raise SourceError("sprite page %s is %dx%d px, expected %dx%d"
                                      % ((fs.display(page, logdir),) + tuple(found) + tuple(size)))
            source.sprite = layout
            source.load_sprite_page = guarded("sprite of %s" % where, lambda k: fs.read_bytes(
                pages[k], logdir, fs.MAX_IMAGE_BYTES, "sprite page"))
        except SourceError as e:
            source.problems.append("sprite ignored: %s" % e)
        except (KeyError, TypeError, ValueError) as e:
            source.problems.append("sprite ignored: %s has an invalid sprite entry (%s)" % (where, e))
    return source


def _child(name: str) -> str:
    """Manifest entries are plain file names inside the embedding's folder."""
    if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
        raise SourceError("manifest entry %r is not a plain file name" % (name,))
    return name


# --- writing -----------------------------------------------------------------------

ImagesLike = Union[np.ndarray, Sequence[str], None]


def write_embedding(
    logdir: str,
    features: Any,
    *,
    name: str = "embedding",
    run: str = ".",
    images: ImagesLike = None,
    metadata: Any = None,
    labels: Optional[Sequence[Any]] = None,
    thumbnail_size: Optional[int] = None,
    author: Optional[str] = None,
    progress: bool = False,
) -> str:
    """Write an embedding (features, thumbnails, metadata, labels) into a log directory.

    Args:
      logdir: the log directory TensorBoard is pointed at (local or remote path).
      features: (N, D) array-like of floats, N >= 2, D >= 1; stored as float32.
      name: embedding name, letters, digits, ``.``, ``_`` and ``-``.
      run: run directory relative to ``logdir`` ("." = the logdir itself).
      images: optional thumbnails, one per row: an (N, H, W) or (N, H, W, C)
        array (C in 1, 3, 4; uint8, or floats in [0, 1]), or N image file paths.
      metadata: optional columns: a dict of name -> N values, or a pandas-like
        table (``.columns`` and ``table[col]``).  Values become strings and may
        not hold tabs or newlines.
      labels: optional initial labels, N entries, None / "" / -1 = unlabeled.
        Written to the label store as one action (author ``author``).
      thumbnail_size: thumbnail side in px; default: the image size, upscaled
        by an integer factor to at least 32 px (small digits stay readable),
        and images from files fitted into 64 px.
      progress: show a tqdm progress bar while building the sprite.

    Returns:
      The embedding's directory.
    """
    x = _checked_features(features)
    _check_name_and_run(name, run)
    n, d = x.shape
    columns = _metadata_columns(metadata, n)
    thumbs = _thumbnails(images, n, thumbnail_size) if images is not None else None

    run_dir = logdir if run in (".", "") else fs.join(logdir, run)
    emb_dir = fs.join(run_dir, "plugins", PLUGIN_NAME, name)
    fs.makedirs(emb_dir)
    manifest = _write_embedding_files(emb_dir, name, x, columns, thumbs, progress)
    # The label store (and its labels.tsv) before the config that names it: the
    # stock Projector reads a run's config once and re-reads it only when the
    # list of runs changes, so a "(labels)" entry added at the first label
    # would stay invisible there until TensorBoard restarts.
    _create_label_store(label_dir_for(run_dir, name, False), n, columns, labels, author)
    _add_projector_entry(run_dir, name, n, d, manifest)
    _ensure_run_is_visible(run_dir)
    return emb_dir


#: Prefix of the hidden folder an atomic write builds an embedding in (beside the finished ones).
PARTIAL_PREFIX = ".partial-"


def write_embedding_atomically(
    logdir: str,
    features: Any,
    *,
    name: str,
    run: str = ".",
    thumbnails: Optional[np.ndarray] = None,
    metadata: Any = None,
    extra_files: Optional[Mapping[str, bytes]] = None,
    author: Optional[str] = None,
    progress: bool = False,
) -> str:
    """Write a new embedding so that it appears whole or not at all (local log directories).

    Like :func:`write_embedding`, for writers that stream: ``thumbnails`` is
    an (N, h, w, C) uint8 array (C in 1, 3, 4) that is read one sprite page at
    a time, so an ``np.memmap`` on disk never comes into memory whole.  The
    files are written into a hidden folder
    ``<run>/plugins/active_labeling/.partial-<name>.tmp-.../<name>/`` (which a
    scan does not list), renamed into place once complete, and the
    projector config entry is written last.  On any error, or an interrupt,
    the hidden folder is removed and nothing else was touched.
    ``extra_files``: name -> bytes written into the embedding's folder as
    well (plain file names, e.g. a list of skipped inputs).

    Raises FileExistsError when the embedding already exists (it may hold
    labels: it is never replaced).  Returns the embedding's directory.
    """
    import shutil

    check_new_embedding(logdir, name, run)
    x = _checked_features(features)
    n, d = x.shape
    columns = _metadata_columns(metadata, n)
    if thumbnails is not None:
        shape = getattr(thumbnails, "shape", ())
        if (len(shape) != 4 or shape[0] != n or shape[3] not in (1, 3, 4)
                or getattr(thumbnails, "dtype", None) != np.uint8):
            raise ValueError("thumbnails must be (N, h, w, C) uint8 with N = %d rows and C in 1, 3, 4; got %s %s"
                             % (n, getattr(thumbnails, "dtype", type(thumbnails).__name__), shape))
    files = dict(extra_files or {})
    for fname in files:
        _child(fname)
    run_dir = logdir if run in (".", "") else fs.join(logdir, run)
    plugin_dir = fs.join(run_dir, "plugins", PLUGIN_NAME)
    emb_dir = fs.join(plugin_dir, name)
    os.makedirs(plugin_dir, exist_ok=True)
    fs.check_dir(plugin_dir, logdir, "plugin folder")
    partial = fs.temp_path(fs.join(plugin_dir, PARTIAL_PREFIX + name))
    os.mkdir(partial)
    try:
        tmp_dir = fs.join(partial, name)
        os.mkdir(tmp_dir)
        for fname, data in files.items():
            fs.write_atomic(fs.join(tmp_dir, fname), data)
        manifest = _write_embedding_files(tmp_dir, name, x, columns, thumbnails, progress)
        _create_label_store(fs.join(tmp_dir, "labels"), n, columns, None, author)
        if os.path.lexists(emb_dir):  # written meanwhile by someone else: theirs stays
            raise FileExistsError("embedding %r appeared in %s while this one was written; not replacing it"
                                  % (name, emb_dir))
        os.rename(tmp_dir, emb_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _add_projector_entry(run_dir, name, n, d, manifest)
    _ensure_run_is_visible(run_dir)
    return emb_dir


def check_new_embedding(logdir: str, name: str, run: str = ".") -> None:
    """What :func:`write_embedding_atomically` checks before it writes, for callers with long work to do first.

    ValueError for a remote log directory, a bad name or run, or a run whose
    projector_config.pbtxt does not parse (the entry could not be added);
    FileExistsError when the embedding exists already.
    """
    if fs.is_remote(logdir):
        raise ValueError("%s: an atomic write needs a local log directory (write locally, then copy the "
                         "run folder to the object store)" % logdir)
    _check_name_and_run(name, run)
    run_dir = logdir if run in (".", "") else fs.join(logdir, run)
    emb_dir = fs.join(run_dir, "plugins", PLUGIN_NAME, name)
    if os.path.lexists(emb_dir):
        raise FileExistsError("embedding %r already exists in %s; choose another name or remove that folder"
                              % (name, emb_dir))
    _run_projector_config(run_dir)  # a config that would refuse the entry refuses the write now, not after it


def _checked_features(features) -> np.ndarray:
    """``features`` as a finite (N >= 2, D >= 1) little-endian float32 array, or ValueError naming the problem."""
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError("features must be a 2-D array (rows x dims), got shape %s" % (x.shape,))
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError("features must have at least 2 rows and 1 column, got shape %s" % (x.shape,))
    try:
        x = np.ascontiguousarray(x, dtype="<f4")  # no copy of features that are float32 already
    except (TypeError, ValueError):
        raise ValueError("features must be numeric, got dtype %s" % x.dtype)
    if not np.all(np.isfinite(x)):
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise ValueError("features row %d holds NaN or infinity" % bad)
    return x


def _check_name_and_run(name, run) -> None:
    if not name or not set(name) <= _NAME_CHARS or name in (".", ".."):
        raise ValueError("name %r must be letters, digits, '.', '_' or '-'" % name)
    if run not in (".", "") and (run.startswith("/") or ".." in run.replace("\\", "/").split("/")):
        raise ValueError("run %r must be a relative path inside the logdir" % run)


def _write_embedding_files(emb_dir, name, x, columns, thumbs, progress) -> dict:
    """Tensor, metadata, sprite pages, then the manifest (last) into ``emb_dir``; returns the manifest."""
    n, d = x.shape
    # Locally the array's own buffer is written (no second copy of N x D floats in memory).
    fs.write_bytes(fs.join(emb_dir, "tensor.bin"), x.tobytes() if fs.is_remote(emb_dir) else x.data.cast("B"))
    manifest = {"format": FORMAT, "name": name, "rows": n, "dims": d, "tensor": "tensor.bin",
                "metadata": None, "metadata_columns": [], "sprite": None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if columns:
        names = list(columns)
        lines = ["\t".join(names)] if len(names) > 1 else []
        lines += ["\t".join(columns[c][i] for c in names) for i in range(n)]
        fs.write_bytes(fs.join(emb_dir, "metadata.tsv"), ("\n".join(lines) + "\n").encode("utf-8"))
        manifest["metadata"] = "metadata.tsv"
        manifest["metadata_columns"] = names
    if thumbs is not None:
        layout = SpriteLayout.for_count(n, thumbs.shape[2], thumbs.shape[1])
        pages = _write_sprite_pages(emb_dir, thumbs, layout, progress)
        manifest["sprite"] = {"thumb_width": layout.thumb_width, "thumb_height": layout.thumb_height,
                              "per_row": layout.per_row, "per_page": layout.per_page, "pages": pages}
    fs.write_bytes(fs.join(emb_dir, MANIFEST), json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest


def _create_label_store(label_dir, n, columns, labels, author) -> None:
    from .labels import LabelStore

    store = LabelStore(label_dir, n, default_author=author or "write_embedding",
                       metadata=(lambda: (list(columns), list(columns.values()))) if columns else None)
    if labels is not None:
        _write_initial_labels(store, labels, author)


def _metadata_columns(metadata, n) -> dict:
    if metadata is None:
        return {}
    if hasattr(metadata, "columns") and not isinstance(metadata, Mapping):
        table = {str(c): metadata[c] for c in list(metadata.columns)}
    elif isinstance(metadata, Mapping):
        table = {str(k): v for k, v in metadata.items()}
    else:
        raise ValueError("metadata must be a dict of columns or a table with .columns, got %s"
                         % type(metadata).__name__)
    out = {}
    for column, values in table.items():
        if not column or any(ch in column for ch in "\t\r\n"):
            raise ValueError("metadata column name %r must be non-empty without tabs or newlines" % column)
        values = list(values.tolist() if hasattr(values, "tolist") else values)
        if len(values) != n:
            raise ValueError("metadata column %r has %d values, features have %d rows" % (column, len(values), n))
        strings = []
        for i, v in enumerate(values):
            s = "" if v is None else str(v)
            if any(ch in s for ch in "\t\r\n"):
                raise ValueError("metadata column %r row %d holds a tab or newline: %r" % (column, i, s))
            strings.append(s)
        out[column] = strings
    return out


def _thumbnails(images, n, thumbnail_size) -> np.ndarray:
    """(N, h, w, C) uint8 thumbnails, C in (1, 3, 4)."""
    from PIL import Image

    if isinstance(images, np.ndarray) and images.dtype.kind in "uifb":
        arr = images
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[3] not in (1, 3, 4):
            raise ValueError("images must be (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got shape %s"
                             % (images.shape,))
        if arr.shape[0] != n:
            raise ValueError("images has %d entries, features have %d rows" % (arr.shape[0], n))
        if arr.dtype.kind == "f":
            arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255)
        arr = arr.astype(np.uint8, copy=False)  # a uint8 np.memmap stays on disk
        h, w = arr.shape[1:3]
        side = thumbnail_size or (max(h, w) * max(1, int(np.ceil(32 / max(h, w)))))
        if (h, w) == (side, side):
            return arr
        if side % h == 0 and side % w == 0 and h == w:
            k = side // h  # integer upscale: crisp pixels, as digits need
            return arr.repeat(k, axis=1).repeat(k, axis=2)
        out = np.empty((n, side, side, arr.shape[3]), np.uint8)
        for i in range(n):
            img = Image.fromarray(arr[i, ..., 0] if arr.shape[3] == 1 else arr[i])
            img = img.resize((side, side), Image.LANCZOS)
            out[i] = np.asarray(img).reshape(side, side, arr.shape[3])
        return out
    paths = list(images)
    if len(paths) != n:
        raise ValueError("images has %d entries, features have %d rows" % (len(paths), n))
    side = thumbnail_size or 64
    out = np.zeros((n, side, side, 4), np.uint8)
    for i, p in enumerate(paths):
        try:
            with fs.gfile(str(p)).GFile(str(p), "rb") as f:
                img = Image.open(io.BytesIO(f.read())).convert("RGBA")
        except Exception as e:
            raise ValueError("image %d (%s) cannot be read: %s" % (i, p, e))
        img.thumbnail((side, side), Image.LANCZOS)
        x0, y0 = (side - img.width) // 2, (side - img.height) // 2
        out[i, y0:y0 + img.height, x0:x0 + img.width] = np.asarray(img)
    return out


def _write_sprite_pages(emb_dir, thumbs, layout: SpriteLayout, progress) -> list:
    from PIL import Image

    n, h, w, c = thumbs.shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    names = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="sprite", unit="img")
    for page, (pw, ph) in enumerate(layout.page_sizes):
        start = page * layout.per_page
        count = min(layout.per_page, n - start)
        canvas = np.zeros((ph, pw, c), np.uint8)
        rows_full = count // layout.per_row
        if rows_full:
            block = thumbs[start:start + rows_full * layout.per_row]
            block = block.reshape(rows_full, layout.per_row, h, w, c).transpose(0, 2, 1, 3, 4)
            canvas[: rows_full * h, : layout.per_row * w] = block.reshape(rows_full * h, layout.per_row * w, c)
        for k in range(rows_full * layout.per_row, count):
            y, x = (k // layout.per_row) * h, (k % layout.per_row) * w
            canvas[y:y + h, x:x + w] = thumbs[start + k]
        buf = io.BytesIO()
        Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode).save(buf, format="PNG", optimize=False)
        fname = "sprite_%d.png" % page
        fs.write_bytes(fs.join(emb_dir, fname), buf.getvalue())
        names.append(fname)
        if bar:
            bar.update(count)
    if bar:
        bar.close()
    return names


def _run_projector_config(run_dir):
    """(path, parsed ProjectorConfig) of the run's projector_config.pbtxt (empty when there is none).

    ValueError when the file exists but does not parse: it is the user's, never overwritten.
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    path = fs.join(run_dir, "projector_config.pbtxt")
    config = ProjectorConfig()
    if fs.exists(path):
        try:
            text_format.Parse(fs.read_text(path, run_dir, fs.MAX_CONFIG_BYTES), config)
        except Exception as e:
            raise ValueError("%s exists but is not a valid projector config (%s); not overwriting it"
                             % (path, str(e).splitlines()[0]))
    return path, config


def _add_projector_entry(run_dir, name, n, d, manifest) -> None:
    """Add or replace this embedding's entry in the run's projector_config.pbtxt."""
    from google.protobuf import text_format

    path, config = _run_projector_config(run_dir)
    rel = "plugins/%s/%s/" % (PLUGIN_NAME, name)
    kept = [e for e in config.embeddings if e.tensor_name != name]
    del config.embeddings[:]
    config.embeddings.extend(kept)
    entry = config.embeddings.add()
    entry.tensor_name = name
    entry.tensor_path = rel + "tensor.bin"
    entry.tensor_shape.extend([n, d])
    if manifest["metadata"]:
        entry.metadata_path = rel + manifest["metadata"]
    sprite = manifest["sprite"]
    if sprite and len(sprite["pages"]) == 1:
        # The Projector takes one sprite image; larger atlases are ours only.
        entry.sprite.image_path = rel + sprite["pages"][0]
        entry.sprite.single_image_dim.extend([sprite["thumb_width"], sprite["thumb_height"]])
    from .labels import PROJECTOR_TSV

    _add_labels_entry(config, entry, rel + "labels/" + PROJECTOR_TSV)
    fs.write_bytes(path, text_format.MessageToString(config).encode("utf-8"))


def _add_labels_entry(config, base, metadata_path) -> None:
    """Put a "<name> (labels)" copy of ``base`` showing ``metadata_path`` into ``config`` (replacing an old one)."""
    name = "%s (labels)" % base.tensor_name
    kept = [e for e in config.embeddings if e.tensor_name != name]
    del config.embeddings[:]
    config.embeddings.extend(kept)
    entry = config.embeddings.add()
    entry.CopyFrom(base)
    entry.tensor_name = name
    entry.metadata_path = metadata_path


def publish_labels_entry(source: EmbeddingSource, labels_tsv: str) -> bool:
    """Add a "<name> (labels)" entry to the run's projector config, so the stock Projector shows the labels.

    Only for this plugin's own embeddings, whose run config the writer made;
    a user's own projector_config.pbtxt is never rewritten.  Returns whether
    an entry exists afterwards.
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    if source.format != "active_labeling" or not source.label_dir:
        return False
    emb_dir = fs.dirname(source.label_dir.rstrip("/"))
    run_dir = fs.dirname(fs.dirname(fs.dirname(emb_dir)))
    path = fs.join(run_dir, "projector_config.pbtxt")
    if not fs.exists(path):
        return False
    config = ProjectorConfig()
    text_format.Parse(fs.read_text(path, run_dir, fs.MAX_CONFIG_BYTES), config)
    entry_name = "%s (labels)" % source.name
    base = next((e for e in config.embeddings if e.tensor_name == source.name), None)
    if base is None:
        return False
    if any(e.tensor_name == entry_name for e in config.embeddings):
        return True
    # Only logdirs written before the writer added this entry itself get here;
    # the Projector shows it after TensorBoard restarts (it caches each run's config).
    _add_labels_entry(config, base, fs.relpath(labels_tsv, run_dir))
    fs.write_bytes(path, text_format.MessageToString(config).encode("utf-8"))
    return True


def _ensure_run_is_visible(run_dir) -> None:
    """TensorBoard lists a directory as a run only when it holds an event file."""
    try:
        if any(f.startswith("events.out.tfevents") for f in fs.listdir(run_dir)):
            return
    except Exception:
        pass
    import socket

    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    now = time.time()
    event = event_pb2.Event(wall_time=now, file_version="brain.Event:2")
    name = "events.out.tfevents.%010d.%s.%d.active_labeling" % (int(now), socket.gethostname(), os.getpid())
    buf = io.BytesIO()
    RecordWriter(buf).write(event.SerializeToString())
    fs.write_bytes(fs.join(run_dir, name), buf.getvalue())


def _write_initial_labels(store, labels, author) -> None:
    values = list(labels)
    n = store.n_rows
    if len(values) != n:
        raise ValueError("labels has %d entries, features have %d rows" % (len(values), n))
    groups: dict = {}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, (int, np.integer)) and v < 0) or v == "":
            continue
        groups.setdefault(str(v), []).append(i)
    for label, rows in groups.items():
        store.assign(rows, label, author=author or "write_embedding")
