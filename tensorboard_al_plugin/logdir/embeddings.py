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
import itertools
import json
import os
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

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

ImagesLike = Union[np.ndarray, Sequence[str], Iterable[np.ndarray], None]


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
        array (C in 1, 3, 4; uint8, or floats in [0, 1]) -- an ``np.memmap``
        is read one sprite page at a time, never whole --, or an iterable of
        such arrays of a few rows each (batches, in row order, N rows in all;
        e.g. a generator that decodes images batch by batch), or N image file
        paths.  Never are all thumbnails in memory: each sprite page is made
        from its own rows, converted and scaled there.
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
    thumbs = _Thumbnails.of(images, n, thumbnail_size) if images is not None else None

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
    an (N, h, w, C) uint8 array (C in 1, 3, 4) drawn at its own size, read
    one sprite page at a time, so an ``np.memmap`` on disk never comes into
    memory whole.  The
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
        manifest = _write_embedding_files(tmp_dir, name, x, columns,
                                          None if thumbnails is None else _Thumbnails.of(thumbnails, n, None,
                                                                                         scale=False),
                                          progress)
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


#: Values checked for NaN and infinity at a time.
_FINITE_CHECK_VALUES = 1 << 22


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
    step = max(1, _FINITE_CHECK_VALUES // x.shape[1])  # in slices, not as one N x D mask (10^6 x 50: 50 MB)
    for start in range(0, len(x), step):
        finite = np.isfinite(x[start:start + step])
        if not finite.all():
            bad = start + int(np.argwhere(~finite)[0][0])
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
        layout = SpriteLayout.for_count(n, thumbs.width, thumbs.height)
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


class _Thumbnails:
    """The thumbnails of N rows, made on demand in row order: ``take(k)`` gives the next k rows
    as a (k, height, width, channels) uint8 array (channels in 1, 3, 4).

    From an array (or ``np.memmap``) each call converts and scales only its
    own slice; from an iterable of batches it keeps what is left of the last
    batch; from image files it reads only the files of the slice.  So the
    sprite writer holds one page at a time, never all thumbnails.
    """

    def __init__(self, n: int, height: int, width: int, channels: int, take: Callable[[int], np.ndarray]):
        self.n, self.height, self.width, self.channels = n, height, width, channels
        self._take = take
        self.taken = 0
        #: Called once all N rows are taken: ValueError when the source had more (batches only).
        self.check_end: Callable[[], None] = lambda: None

    def take(self, k: int) -> np.ndarray:
        out = self._take(k)
        self.taken += k
        return out

    @classmethod
    def of(cls, images, n: int, thumbnail_size: Optional[int], scale: bool = True) -> "_Thumbnails":
        """``images`` as :func:`write_embedding` takes them; ``scale``: else drawn at their own size."""
        if isinstance(images, np.ndarray):
            if images.dtype.kind not in "uifb":
                raise ValueError("images must be numeric, got dtype %s" % images.dtype)
            if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)):
                raise ValueError("images must be (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got shape %s"
                                 % (images.shape,))
            if images.shape[0] != n:
                raise ValueError("images has %d entries, features have %d rows" % (images.shape[0], n))
            return cls._of_batches(n, images.shape[1:3], 1 if images.ndim == 3 else images.shape[3],
                                   thumbnail_size, scale, lambda start, k: images[start:start + k])
        if isinstance(images, (str, bytes)):
            raise ValueError("images must be an array, batches of arrays or a list of image paths, got a string")
        items = iter(images)
        first = next(items, None)
        if isinstance(first, np.ndarray) and first.ndim in (3, 4):
            return cls._of_iterator(itertools.chain([first], items), first, n, thumbnail_size, scale)
        paths = ([] if first is None else [first]) + list(items)
        if len(paths) != n:
            raise ValueError("images has %d entries, features have %d rows" % (len(paths), n))
        side = thumbnail_size or 64
        return cls(n, side, side, 4, _reader(paths, side))

    @classmethod
    def _of_batches(cls, n, hw, channels, thumbnail_size, scale, rows_at) -> "_Thumbnails":
        """From ``rows_at(start, k)``: rows start..start+k-1 as they were given (any numeric dtype)."""
        h, w = hw
        if scale:
            side = thumbnail_size or (max(h, w) * max(1, int(np.ceil(32 / max(h, w)))))
            h, w = side, side
        thumbs = None

        def take(k):
            return _scaled(_uint8(rows_at(thumbs.taken, k)), (h, w))

        thumbs = cls(n, h, w, channels, take)
        return thumbs

    @classmethod
    def _of_iterator(cls, batches: Iterator[np.ndarray], first: np.ndarray, n, thumbnail_size, scale):
        if first.ndim == 4 and first.shape[3] not in (1, 3, 4):
            raise ValueError("image batches must be (k, H, W) or (k, H, W, C) with C in 1, 3, 4; got shape %s"
                             % (first.shape,))
        queue = _BatchQueue(batches, first.shape[1:], n)
        thumbs = cls._of_batches(n, first.shape[1:3], 1 if first.ndim == 3 else first.shape[3], thumbnail_size,
                                 scale, queue.rows)
        thumbs.check_end = queue.check_end
        return thumbs


class _BatchQueue:
    """Consecutive rows from an iterator of (k, ...) arrays, k free per batch; N rows in all."""

    def __init__(self, batches: Iterator[np.ndarray], shape, n: int):
        self.batches, self.shape, self.n = batches, tuple(shape), n
        self.left: Optional[np.ndarray] = None
        self.seen = 0

    def rows(self, _start: int, k: int) -> np.ndarray:
        """The next ``k`` rows (rows are taken in order: ``_start`` is where they begin)."""
        parts, got = [], 0
        while got < k:
            if self.left is None or not len(self.left):
                self.left = self._next()
            part = self.left[:k - got]
            self.left = self.left[len(part):]
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _next(self) -> np.ndarray:
        batch = next(self.batches, None)
        if batch is None:
            raise ValueError("the image batches hold %d images, features have %d rows" % (self.seen, self.n))
        batch = np.asarray(batch)
        if batch.shape[1:] != self.shape:
            raise ValueError("image batch after row %d has shape %s; the first had (k,) + %s"
                             % (self.seen, batch.shape, self.shape))
        self.seen += len(batch)
        if self.seen > self.n:
            raise ValueError("the image batches hold more than the %d rows of features" % self.n)
        return batch

    def check_end(self) -> None:
        """ValueError when rows are left over after the N taken."""
        if (self.left is not None and len(self.left)) or next(self.batches, None) is not None:
            raise ValueError("the image batches hold more than the %d rows of features" % self.n)


def _uint8(arr: np.ndarray) -> np.ndarray:
    """(k, H, W[, C]) images as (k, H, W, C) uint8: floats in [0, 1] scaled to 0..255, only this slice."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.dtype.kind == "f":
        arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255)
    return arr.astype(np.uint8, copy=False)


def _scaled(arr: np.ndarray, size) -> np.ndarray:
    """(k, h, w, C) uint8 at ``size`` (height, width): an integer upscale repeats pixels (digits stay
    crisp), any other size is resampled (Lanczos)."""
    from PIL import Image

    k, h, w, c = arr.shape
    side_h, side_w = size
    if (h, w) == (side_h, side_w):
        return arr
    if h == w and side_h == side_w and side_h % h == 0:
        f = side_h // h
        return arr.repeat(f, axis=1).repeat(f, axis=2)
    out = np.empty((k, side_h, side_w, c), np.uint8)
    for i in range(k):
        img = Image.fromarray(arr[i, ..., 0] if c == 1 else arr[i])
        out[i] = np.asarray(img.resize((side_w, side_h), Image.LANCZOS)).reshape(side_h, side_w, c)
    return out


def _reader(paths, side) -> Callable[[int], np.ndarray]:
    """``take(k)`` of image files: the next k files read and fitted into ``side`` px (RGBA, centred)."""
    from PIL import Image

    position = [0]

    def take(k):
        start = position[0]
        out = np.zeros((k, side, side, 4), np.uint8)
        for j, p in enumerate(paths[start:start + k]):
            try:
                with fs.gfile(str(p)).GFile(str(p), "rb") as f:
                    img = Image.open(io.BytesIO(f.read())).convert("RGBA")
            except Exception as e:
                raise ValueError("image %d (%s) cannot be read: %s" % (start + j, p, e))
            img.thumbnail((side, side), Image.LANCZOS)
            x0, y0 = (side - img.width) // 2, (side - img.height) // 2
            out[j, y0:y0 + img.height, x0:x0 + img.width] = np.asarray(img)
        position[0] += k
        return out

    return take


def _write_sprite_pages(emb_dir, thumbs: _Thumbnails, layout: SpriteLayout, progress) -> list:
    """Write the sprite pages, each made from its own rows only (a few grid rows of thumbnails at a time)."""
    from PIL import Image

    n, h, w, c = thumbs.n, thumbs.height, thumbs.width, thumbs.channels
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    names = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="sprite", unit="img")
    per_row = layout.per_row
    grid_rows_at_once = max(1, (1 << 24) // max(1, per_row * h * w * c))  # ~16 MB of thumbnails at a time
    for page, (pw, ph) in enumerate(layout.page_sizes):
        count = min(layout.per_page, n - page * layout.per_page)
        canvas = np.zeros((ph, pw, c), np.uint8)
        done = 0
        while done < count:
            k = min(count - done, grid_rows_at_once * per_row)
            block = thumbs.take(k)
            full, rest = divmod(k, per_row)
            y = (done // per_row) * h  # done is a multiple of per_row until the page's last, short grid row
            if full:
                # Straight into the canvas through a (grid row, y, column, x, C) view: no temp copy.
                view = canvas[y:y + full * h, : per_row * w].reshape(full, h, per_row, w, c)
                view[...] = block[: full * per_row].reshape(full, per_row, h, w, c).transpose(0, 2, 1, 3, 4)
            for j in range(rest):
                cx = j * w
                canvas[y + full * h: y + full * h + h, cx:cx + w] = block[full * per_row + j]
            done += k
            if bar:
                bar.update(k)
        buf = io.BytesIO()
        Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode).save(buf, format="PNG", optimize=False)
        del canvas
        fname = "sprite_%d.png" % page
        fs.write_bytes(fs.join(emb_dir, fname), buf.getbuffer())
        names.append(fname)
    thumbs.check_end()
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
