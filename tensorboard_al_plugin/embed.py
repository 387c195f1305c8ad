"""From a folder of images to a labeling session: what ``tensorboard-al embed`` does.

One call, :func:`embed_images`, reads an image source (``logdir/images.py``),
computes features with an extractor of ``tensorboard_al_plugin.features``,
and writes one embedding with thumbnails and metadata
(``logdir/embeddings.write_embedding_atomically``).  It streams: images are
decoded once, in batches, into two uint8 arrays on disk (np.memmap in a
temporary folder): the thumbnails, read back one sprite page at a time, and
the images at the extractor's input size, read back one batch at a time for
each pass of the extractor (PCA and the Exemplar-CNN make several).  Only
the (N, D) features are ever whole in memory.  When the input-size cache
would not fit on the temporary disk, every pass decodes the images again.

Bad inputs are skipped and listed (one line each: the file, what is wrong),
both through ``warn`` as they are found and in ``skipped.tsv`` in the
embedding's folder; no usable image at all is an :class:`EmbedError`.  The
embedding appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .logdir import images as imgsrc
from .logdir.images import ImageError, ImageSourceError, Skipped

#: Modes whose images show colour; every other mode is grey.
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
#: Modes that may carry transparency.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA", "P"}
#: Image side (px) for features whose extractor takes any size, unless --size says otherwise.
DEFAULT_INPUT_SIDE = {"pixels": 32, "pca": 32, "rn": 64, "exemplar-random": 64}
#: ... for extractors not listed above (ImageNet CNNs and the user's model).
DEFAULT_CNN_SIDE = 224
#: Sources whose images all share one size of at most this many px per side keep that size (pixels, pca, rn).
NATIVE_MAX_SIDE = 64
#: Thumbnail side (px) for images of mixed or large sizes.
DEFAULT_THUMBNAIL = 64
#: Pixels of thumbnail atlas a default thumbnail side keeps within: two full 8192 px pages.
ATLAS_BUDGET_PX = 2 * 8192 * 8192
#: Name prefix of a run's temporary folder in $TMPDIR, followed by its process id.
TEMP_PREFIX = "tensorboard-al-embed-"
#: Skipped inputs named one by one through ``warn`` before the rest are only counted.
WARN_LINES = 20


class EmbedError(ValueError):
    """The embedding cannot be made (no usable image, a bad option, the name taken): one line."""


@dataclass
class EmbedResult:
    emb_dir: str
    rows: int
    dims: int
    features: str  # the extractor's describe()
    input_shape: Tuple[int, int, int]
    thumbnail: int
    skipped: List[Skipped] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


def default_name(source: str) -> str:
    """An embedding name from the source's file or folder name (letters, digits, ``.``, ``_``, ``-``)."""
    base = os.path.basename(os.path.normpath(os.path.abspath(source)))
    if base.lower().endswith((".csv", ".tsv", ".npy")):
        base = base[:-4]
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in base).strip(".")
    return name or "images"


def embed_images(
    source: str,
    logdir: str,
    *,
    run: str = ".",
    name: Optional[str] = None,
    features: str = "pca",
    layer: Optional[str] = None,
    weights: Optional[str] = None,
    exemplar: Optional[str] = None,
    epochs: int = 10,
    size: Optional[int] = None,
    thumbnail: Optional[int] = None,
    batch_size: int = 64,
    seed: int = 0,
    workers: Optional[int] = None,
    progress: bool = False,
    warn: Optional[Callable[[str], None]] = None,
) -> EmbedResult:
    """Embed the images of ``source`` (a folder, a CSV/TSV list, or an .npy array) into ``logdir``.

    ``features``, ``exemplar``, ``epochs``, ``weights``, ``layer``, ``batch_size``
    and ``seed`` go to :func:`tensorboard_al_plugin.features.make_extractor`.
    ``size``: the side in px images are resized to for an extractor that takes
    any size (pixels, pca, rn); ``thumbnail``: the thumbnail side in px.
    ``workers``: decoding threads (default: the CPU count, at most 4).
    ``warn``: called with one line per skipped input (the first
    :data:`WARN_LINES`), e.g. ``tqdm.write``.  Raises EmbedError,
    ImageSourceError, FeatureError (all ValueError) with one line.
    """
    from .features import make_extractor
    from .logdir.embeddings import check_new_embedding, write_embedding_atomically

    warn = warn or (lambda line: None)
    name = name or default_name(source)
    for flag, value in (("size", size), ("thumbnail", thumbnail)):
        if value is not None and not (1 <= value <= 4096):
            raise EmbedError("--%s %d: give a side in px between 1 and 4096" % (flag, value))
    try:
        check_new_embedding(logdir, name, run)
    except FileExistsError as e:
        raise EmbedError(str(e)) from None
    extractor = make_extractor(features, exemplar=exemplar, epochs=epochs, weights=weights, layer=layer,
                               batch_size=batch_size, seed=seed, progress=progress)
    t0 = time.perf_counter()
    src = imgsrc.open_source(source)
    skipped = list(src.skipped)
    shown = [0]

    def skip(where: str, reason: str) -> None:
        skipped.append(Skipped(where, reason))
        if shown[0] < WARN_LINES:
            warn("skipped %s: %s" % (where, reason))
        shown[0] += 1

    for s in src.skipped:
        if shown[0] < WARN_LINES:
            warn("skipped %s" % s.line())
        shown[0] += 1

    # Headers: sizes and modes decide the common channels and sizes before anything is decoded.
    heads = {}
    with imgsrc.quiet_pillow():
        for i in _bar(range(len(src)), progress, "scanning", "img"):
            try:
                heads[i] = imgsrc.header(src, i)
            except ImageError as e:
                skip(src.paths[i], str(e))
    if not heads:
        raise EmbedError(_nothing_usable(source, src, skipped))
    sizes = {(w, h) for w, h, _ in heads.values()}
    modes = {m for _, _, m in heads.values()}
    colour = bool(modes & _COLOUR_MODES)
    in_c = 3 if (extractor.needs_colour or colour) else 1
    in_h, in_w = _input_size(extractor, features, size, sizes)
    thumb = thumbnail or _thumbnail_side(sizes, len(heads))
    square = all(w == h for w, h in sizes)
    thumb_c = 4 if (modes & _ALPHA_MODES or not square) else (3 if colour else 1)

    _remove_stale_temp(tempfile.gettempdir())
    # Named first and made inside the try: an interrupt right after mkdir still removes it.
    tmp = os.path.join(tempfile.gettempdir(), "%s%d-%s" % (TEMP_PREFIX, os.getpid(), os.urandom(6).hex()))
    try:
        os.mkdir(tmp, 0o700)
        candidates = sorted(heads)
        thumbs = _disk_array(tmp, "thumbnails", (len(candidates), thumb, thumb, thumb_c), required=True)
        inputs = _disk_array(tmp, "inputs", (len(candidates), in_h, in_w, in_c), required=False)
        draft = max(thumb, in_h, in_w)
        workers = workers or min(4, os.cpu_count() or 1)

        def decode(i):
            try:
                img = imgsrc.load_image(src, i, draft=draft)
                return (imgsrc.thumbnail(img, thumb, thumb_c),
                        imgsrc.model_input(img, (in_h, in_w), in_c) if inputs is not None else None)
            except ImageError as e:
                return e

        good: List[int] = []
        t1 = time.perf_counter()
        with imgsrc.quiet_pillow(), ThreadPoolExecutor(workers) as pool, \
                _bar(None, progress, "reading", "img", len(candidates)) as bar:
            for start in range(0, len(candidates), 256):
                chunk = candidates[start:start + 256]
                for i, out in zip(chunk, pool.map(decode, chunk)):
                    if isinstance(out, ImageError):
                        skip(src.paths[i], str(out))
                        continue
                    k = len(good)
                    thumbs[k] = out[0]
                    if inputs is not None:
                        inputs[k] = out[1]
                    good.append(i)
                if bar is not None:
                    bar.update(len(chunk))
        n = len(good)
        if n == 0:
            raise EmbedError(_nothing_usable(source, src, skipped))
        if n == 1:
            raise EmbedError("only one usable image in %s (%s); an embedding needs at least 2"
                             % (source, src.paths[good[0]]))
        t2 = time.perf_counter()

        def batches():
            for start in range(0, n, batch_size):
                if inputs is not None:
                    # rows n.. of the disk array belong to no image (those skipped while reading)
                    block = inputs[start:min(start + batch_size, n)]
                else:
                    block = np.stack([_redecode(src, i, draft, (in_h, in_w), in_c)
                                      for i in good[start:start + batch_size]])
                yield block.astype(np.float32) / np.float32(255.0)

        n_batches = -(-n // batch_size)
        passes = [0]
        # Training extractors show their own bar (with the loss); a PCA's passes get one here.
        own_bar = features.partition(":")[0].lower() not in ("pixels", "pca")

        def fit_batches():
            passes[0] += 1
            return _bar(batches(), progress and not own_bar, "fitting" + (" (pass %d)" % passes[0] if passes[0] > 1
                                                                           else ""), "batch", n_batches)

        with imgsrc.quiet_pillow():  # only when the inputs are decoded again
            if extractor.needs_fit:
                extractor.fit(fit_batches)
            x = extractor.transform(_bar(batches(), progress, "features", "batch", n_batches))
        t3 = time.perf_counter()
        metadata = _metadata(src, good, heads)
        description = extractor.describe()
        about = {"source": os.path.abspath(source), "kind": src.kind, "features": features,
                 "exemplar": exemplar, "described": description, "input_shape": [in_h, in_w, in_c],
                 "thumbnail": thumb, "rows": n, "skipped": len(skipped), "ignored": len(src.ignored),
                 "seconds": {"scan": round(t1 - t0, 3), "read": round(t2 - t1, 3), "features": round(t3 - t2, 3)},
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        extra = {"embed.json": (json.dumps(about, indent=1) + "\n").encode("utf-8")}
        if skipped:
            extra["skipped.tsv"] = skipped_tsv(skipped)
        try:
            emb_dir = write_embedding_atomically(logdir, x, name=name, run=run, thumbnails=thumbs[:n],
                                                 metadata=metadata, extra_files=extra, author="tensorboard-al embed",
                                                 progress=progress)
        except FileExistsError as e:
            raise EmbedError(str(e)) from None
        t4 = time.perf_counter()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return EmbedResult(emb_dir, n, int(x.shape[1]), description, (in_h, in_w, in_c), thumb, skipped,
                       list(src.ignored), {"scan": t1 - t0, "read": t2 - t1, "features": t3 - t2,
                                           "write": t4 - t3, "total": t4 - t0})


def _remove_stale_temp(folder: str) -> None:
    """Remove this user's temporary folders of embed runs whose process is gone (killed with SIGKILL...).

    Their arrays can take gigabytes; the process id in the name tells a live run's folder from a dead one's.
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        pid = entry[len(TEMP_PREFIX):].split("-", 1)[0] if entry.startswith(TEMP_PREFIX) else ""
        path = os.path.join(folder, entry)
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # vanished meanwhile, or a live process of another user
            pass


def skipped_tsv(skipped: Sequence[Skipped]) -> bytes:
    """``skipped.tsv``: a header row ``input<TAB>reason``, then one row per skipped input."""
    rows = ["input\treason"] + ["%s\t%s" % (imgsrc.clean_cell(s.where), imgsrc.clean_cell(s.reason))
                                for s in skipped]
    return ("\n".join(rows) + "\n").encode("utf-8")


def _nothing_usable(source, src, skipped) -> str:
    if not skipped:
        what = {"folder": "no image files (%s) in %s" % (", ".join(imgsrc.IMAGE_EXTENSIONS), source),
                "csv": "%s lists no images" % source, "npy": "%s holds no images" % source}[src.kind]
        if src.ignored:
            what += " (ignored %d other files, e.g. %s)" % (len(src.ignored), src.ignored[0])
        return what
    return "no usable image in %s: all %d skipped (first: %s)" % (source, len(skipped), skipped[0].line())


def _input_size(extractor, spec, size, sizes) -> Tuple[int, int]:
    h, w = extractor.input_shape[:2]
    if h is not None and w is not None:
        if size is not None and (size, size) != (h, w):
            raise EmbedError("--size %d: %s takes images of %dx%d px; leave --size out" % (size, spec, w, h))
        return int(h), int(w)
    if size is not None:
        return size, size
    kind = spec.partition(":")[0].lower()
    if kind in DEFAULT_INPUT_SIDE and len(sizes) == 1:
        (w0, h0), = sizes
        if max(w0, h0) <= NATIVE_MAX_SIDE:
            return h0, w0
    side = DEFAULT_INPUT_SIDE.get(kind, DEFAULT_CNN_SIDE)
    return side, side


def _thumbnail_side(sizes, n) -> int:
    """The default thumbnail side for ``n`` images of these (width, height) sizes.

    Images of one small square size keep it, upscaled by a whole factor to at
    least 32 px (crisp digits); others get 64 px.  Either shrinks (never below
    16 px, nor below a small square size) so that the atlas stays within
    :data:`ATLAS_BUDGET_PX` pixels: the browser holds every page as a texture
    (70,000 Fashion-MNIST images: 28 px, not 56; 70,000 photos: 43 px, not 64).
    """
    fits = max(16, int(np.sqrt(ATLAS_BUDGET_PX / max(n, 1))))
    if len(sizes) == 1:
        (w, h), = sizes
        if w == h and w <= DEFAULT_THUMBNAIL:
            upscaled = w * max(1, -(-32 // w))
            return upscaled if upscaled <= fits else max(w, min(upscaled, fits) // w * w)
    return min(DEFAULT_THUMBNAIL, fits)


def _disk_array(folder, name, shape, required) -> Optional[np.ndarray]:
    """A uint8 np.memmap of ``shape`` in ``folder``; None when optional and the disk has not room for it."""
    nbytes = int(np.prod(shape, dtype=np.int64))
    free = shutil.disk_usage(folder).free
    if nbytes > 0.9 * free:
        if not required:
            return None
        raise EmbedError("the %s need %.1f GiB in %s, which has %.1f GiB free (set TMPDIR to a bigger disk, or "
                         "make --thumbnail smaller)" % (name, nbytes / 2 ** 30, folder, free / 2 ** 30))
    return np.lib.format.open_memmap(os.path.join(folder, name + ".npy"), mode="w+", dtype=np.uint8, shape=shape)


def _redecode(src, i, draft, size, channels) -> np.ndarray:
    try:
        return imgsrc.model_input(imgsrc.load_image(src, i, draft=draft), size, channels)
    except ImageError as e:
        raise EmbedError("%s changed while it was embedded: it now %s" % (src.paths[i], e)) from None


def _metadata(src, good, heads) -> dict:
    if src.kind == "npy":
        return {"index": [src.columns["index"][i] for i in good]}
    paths = [src.paths[i] for i in good]
    columns = {"path": paths,
               "folder": [p.rsplit("/", 1)[0] if "/" in p else "." for p in paths],
               "width": [str(heads[i][0]) for i in good],
               "height": [str(heads[i][1]) for i in good]}
    for column, values in src.columns.items():
        columns[column] = [values[i] for i in good]
    return columns


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _bar(iterable, progress, desc, unit, total=None):
    """A tqdm bar over ``iterable`` (or, with ``iterable`` None, a bar to update by hand) when ``progress``."""
    if not progress:
        return iterable if iterable is not None else _NoBar()
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, dynamic_ncols=True, leave=True)
