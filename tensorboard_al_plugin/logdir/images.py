"""Image sources for ``tensorboard-al embed``: a folder of images, a CSV/TSV that lists them, or an ``.npy`` array.

:func:`open_source` lists the candidate images of a source without decoding
them; :func:`load_image` decodes one into a Pillow image of mode ``L``,
``RGB`` or ``RGBA`` (palette, 1-bit, 16-bit, 32-bit, float, CMYK, YCbCr,
LAB, grey+alpha all end there), and :func:`thumbnail` / :func:`model_input`
make the two arrays the embedding needs from it.

Every file is untrusted input, as in the log directory: a path resolves
(symlinks followed) inside the source folder (the folder itself, or the
CSV's folder), only regular files are read (``fs.open_file``: no FIFO, no
device, at most ``fs.MAX_IMAGE_BYTES``), and an image's width x height is
checked from its header against ``fs.MAX_IMAGE_PIXELS`` before it is
decoded.  A bad input never stops the whole source: it becomes a
:class:`Skipped` entry, one line naming the file (or CSV line) and what is
wrong.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import fs

#: What a folder source reads (by extension, case-insensitive); other files are counted as ignored.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
#: The column of a CSV/TSV that holds the image paths: the first of these names (case-insensitive).
PATH_COLUMNS = ("path", "file", "filename", "image")
#: Columns the embed command writes itself; a CSV column of the same name becomes "<name>_csv".
OWN_COLUMNS = ("path", "folder", "width", "height")


class ImageSourceError(ValueError):
    """The source as a whole cannot be read (no such folder, a CSV without a path column...): one line."""


@dataclass
class Skipped:
    """One input left out: ``where`` is a path relative to the source (or ``line N`` of a CSV)."""

    where: str
    reason: str

    def line(self) -> str:
        return "%s: %s" % (self.where, self.reason)


@dataclass
class ImageSource:
    """The candidate images of a source, in a fixed order (sorted paths; CSV order; array order).

    ``paths[i]``: the image's path relative to ``root`` with ``/`` separators
    (for an array, ``name.npy[i]``); ``files[i]``: the file to read (None for
    an array); ``columns``: extra metadata per candidate (a CSV's other
    columns; for an array, its ``index``); ``skipped``: inputs already left
    out while listing; ``ignored``: files of a folder that are not images by
    their extension, and hidden entries (names starting with ``.``).
    """

    kind: str  # "folder" | "csv" | "npy"
    root: str
    paths: List[str] = field(default_factory=list)
    files: List[Optional[str]] = field(default_factory=list)
    columns: Dict[str, List[str]] = field(default_factory=dict)
    skipped: List[Skipped] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    array: Optional[np.ndarray] = None
    _scale: Optional[Tuple[float, float]] = None  # float arrays: (offset, factor) to 0..255

    def __len__(self) -> int:
        return len(self.paths)


def open_source(source: str) -> ImageSource:
    """List the images of ``source``: a folder (recursive), a ``.csv``/``.tsv`` file, or a ``.npy`` array."""
    if fs.is_remote(source):
        raise ImageSourceError("%s: embed reads local images; copy them to this machine first" % source)
    if not os.path.exists(source):
        raise ImageSourceError("%s does not exist" % source)
    if os.path.isdir(source):
        return _folder(source)
    lower = source.lower()
    if lower.endswith((".csv", ".tsv")):
        return _table(source)
    if lower.endswith(".npy"):
        return _array(source)
    raise ImageSourceError("%s is neither a folder, a .csv/.tsv list of images, nor an .npy image array" % source)


def clean_cell(value: str) -> str:
    """A metadata value for one TSV cell: tabs and line breaks written as ``\\t``, ``\\n``, ``\\r``."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r") \
        if any(ch in value for ch in "\t\n\r") else value


def _folder(root: str) -> ImageSource:
    root = os.path.abspath(root)
    real_root = os.path.realpath(root)
    src = ImageSource("folder", root)
    found: List[Tuple[str, str]] = []
    seen: Dict[str, str] = {}
    outside = "the source folder %s" % root

    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for d in sorted(dirnames):
            full = os.path.join(directory, d)
            if d.startswith("."):
                src.ignored.append(rel_dir + d + "/")
                dirnames.remove(d)
            elif os.path.islink(full):
                dirnames.remove(d)
                if fs.is_within(full, real_root):
                    src.skipped.append(Skipped(rel_dir + d + "/", "a symbolic link to a folder inside the source; "
                                               "not followed (its images are read where it points)"))
                else:
                    src.skipped.append(Skipped(rel_dir + d + "/", "a symbolic link to a folder that resolves "
                                               "outside %s; not followed" % outside))
        dirnames.sort()
        for f in filenames:
            rel = rel_dir + f
            full = os.path.join(directory, f)
            if f.startswith(".") or not f.lower().endswith(IMAGE_EXTENSIONS):
                src.ignored.append(rel)
                continue
            if not fs.is_within(full, real_root):
                src.skipped.append(Skipped(rel, "a symbolic link that resolves outside %s" % outside))
                continue
            real = os.path.realpath(full)
            if real in seen:
                src.skipped.append(Skipped(rel, "the same file as %s (a link to it)" % seen[real]))
                continue
            seen[real] = rel
            found.append((rel, full))
    found.sort()
    src.paths = [clean_cell(rel) for rel, _ in found]
    src.files = [full for _, full in found]
    return src


def _table(path: str) -> ImageSource:
    folder = os.path.dirname(os.path.abspath(path))
    real_folder = os.path.realpath(folder)
    name = os.path.basename(path)
    try:
        text = fs.read_text(path, folder, fs.MAX_METADATA_BYTES, "image list")
    except fs.SourceError as e:
        raise ImageSourceError(str(e)) from None
    text = text.lstrip("\ufeff")  # a spreadsheet's UTF-8 byte-order mark
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImageSourceError("%s is empty; it needs a header row with a path column (%s)"
                               % (name, ", ".join(PATH_COLUMNS))) from None
    except csv.Error as e:
        raise ImageSourceError("%s line 1: %s" % (name, e)) from None
    lowered = [h.lower() for h in header]
    path_col = next((lowered.index(c) for c in PATH_COLUMNS if c in lowered), None)
    if path_col is None:
        raise ImageSourceError("%s has no path column: name one column %s (paths relative to %s); its columns: %s"
                               % (name, " or ".join(PATH_COLUMNS), folder, ", ".join(header) or "none"))
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes or any(not h for h in header):
        raise ImageSourceError("%s line 1: column names must be unique and non-empty (%s)"
                               % (name, "repeated: " + ", ".join(dupes) if dupes else "an empty name"))
    others = [i for i in range(len(header)) if i != path_col]
    names = [clean_cell(header[i] + "_csv" if header[i].lower() in OWN_COLUMNS else header[i]) for i in others]
    src = ImageSource("csv", folder, columns={n: [] for n in names})
    seen: Dict[str, int] = {}
    outside = "the CSV's folder %s" % folder
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            where = "%s line %d" % (name, line)
            if len(row) != len(header):
                src.skipped.append(Skipped(where, "has %d fields, the header has %d" % (len(row), len(header))))
                continue
            p = row[path_col].strip()
            if not p:
                src.skipped.append(Skipped(where, "the %s column is empty" % header[path_col]))
                continue
            full = os.path.normpath(p if os.path.isabs(p) else os.path.join(folder, p))
            if not (fs.is_within_lexically(full, folder) and fs.is_within(full, real_folder)):
                src.skipped.append(Skipped(where, "%s resolves outside %s" % (p, outside)))
                continue
            if not os.path.exists(full):
                src.skipped.append(Skipped(where, "%s does not exist" % p))
                continue
            real = os.path.realpath(full)
            if real in seen:
                src.skipped.append(Skipped(where, "%s is a duplicate of line %d (the same file)" % (p, seen[real])))
                continue
            seen[real] = line
            src.paths.append(clean_cell(os.path.relpath(full, folder).replace(os.sep, "/")))
            src.files.append(full)
            for n, i in zip(names, others):
                src.columns[n].append(clean_cell(row[i]))
    except csv.Error as e:
        raise ImageSourceError("%s line %d: %s" % (name, reader.line_num, e)) from None
    return src


def _array(path: str) -> ImageSource:
    name = os.path.basename(path)
    try:
        fs.check_file(path, os.path.dirname(os.path.abspath(path)), fs.MAX_TENSOR_BYTES, "image array")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except fs.SourceError as e:
        raise ImageSourceError(str(e)) from None
    except (ValueError, OSError, EOFError) as e:
        raise ImageSourceError("%s is not a readable .npy array (%s)" % (name, str(e).splitlines()[0])) from None
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] in (1, 3, 4))):
        raise ImageSourceError("%s has shape %s; an image array is (N, H, W) or (N, H, W, C) with C 1, 3 or 4"
                               % (name, arr.shape))
    if arr.dtype.kind not in "buif":
        raise ImageSourceError("%s has dtype %s; images are bool, integers or floats" % (name, arr.dtype))
    if arr.shape[1] * arr.shape[2] > fs.MAX_IMAGE_PIXELS:
        raise ImageSourceError("%s: images of %dx%d px are more than the pixel limit of %d px"
                               % (name, arr.shape[2], arr.shape[1], fs.MAX_IMAGE_PIXELS))
    src = ImageSource("npy", os.path.dirname(os.path.abspath(path)), array=arr)
    src.paths = ["%s[%d]" % (name, i) for i in range(len(arr))]
    src.files = [None] * len(arr)
    src.columns = {"index": [str(i) for i in range(len(arr))]}
    src._scale = _array_scale(arr)
    return src


def _array_scale(arr: np.ndarray) -> Tuple[float, float]:
    """(offset, factor) taking the array's values to 0..255, chosen once for the whole array.

    uint8 and bool as they are (bool: x255); other integers 0..65535 (16-bit) when
    they fit, else their range; floats as [0, 1] when they lie in it, as 0..255 when
    they lie in that, else their range.  NaN and infinity are left to the rows.
    """
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        return 0.0, 1.0
    if kind == "b":
        return 0.0, 255.0
    lo, hi = np.inf, -np.inf
    for start in range(0, len(arr), 4096):  # one pass, a chunk at a time
        chunk = np.asarray(arr[start:start + 4096], dtype=np.float64)
        finite = chunk[np.isfinite(chunk)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not np.isfinite(lo):
        return 0.0, 1.0
    if kind in "ui" and lo >= 0 and hi <= 255:
        return 0.0, 1.0
    if kind in "ui" and lo >= 0 and hi <= 65535:
        return 0.0, 255.0 / 65535.0
    if kind == "f" and lo >= 0 and hi <= 1:
        return 0.0, 255.0
    if kind == "f" and lo >= 0 and hi <= 255:
        return 0.0, 1.0
    return -lo, 255.0 / (hi - lo) if hi > lo else 1.0


NOT_AN_IMAGE = "is not an image (its content is no image format Pillow reads)"


class ImageError(ValueError):
    """One image cannot be used; the message says why (the caller names the file)."""


def header(src: ImageSource, i: int) -> Tuple[int, int, str]:
    """(width, height, mode) of candidate ``i`` from its header alone; ImageError when it is not a usable image."""
    if src.array is not None:
        a = src.array
        return int(a.shape[2]), int(a.shape[1]), "L" if a.ndim == 3 or a.shape[3] == 1 else \
            ("RGB" if a.shape[3] == 3 else "RGBA")
    from PIL import Image

    with _open(src, i) as f, _decoding():
        with Image.open(f) as img:
            width, height, mode = img.width, img.height, img.mode
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF: shown turned by 90 degrees
                width, height = height, width
    _check_pixels(width, height)
    return width, height, mode


def load_image(src: ImageSource, i: int, draft: Optional[int] = None):
    """Candidate ``i`` decoded, as a Pillow image of mode L, RGB or RGBA (EXIF rotation applied).

    ``draft``: a JPEG may be decoded at a reduced scale whose sides stay at
    least this many px (much faster for photos).  ImageError when it cannot
    be decoded (truncated, corrupt, too many pixels).
    """
    from PIL import Image

    if src.array is not None:
        return _array_image(src, i)
    with _open(src, i) as f, _decoding():
        img = Image.open(f)
        _check_pixels(img.width, img.height)
        # Read before load(): Pillow 9.0 reads a TIFF's EXIF from the file, which load() has closed.
        orientation = img.getexif().get(0x0112, 1)
        if draft and img.format == "JPEG":
            img.draft("RGB" if img.mode not in ("L", "1") else "L", (draft, draft))
        img.load()
        turn = _exif_turns().get(orientation)
        return canonical(img.transpose(turn) if turn is not None else img)


def _exif_turns():
    """EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose)."""
    from PIL import Image

    t = getattr(Image, "Transpose", Image)  # the enum from Pillow 9.1; module constants before
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
            7: t.TRANSVERSE, 8: t.ROTATE_90}


def canonical(img):
    """``img`` in mode L, RGB or RGBA, keeping what it shows.

    Palette images keep their transparency (RGBA) or become RGB; 1-bit and
    grey stay grey; 16- and 32-bit integer images are scaled from 0..65535;
    float images from [0, 1] when they lie in it, else from their own range;
    CMYK, YCbCr, LAB and HSV become RGB; grey or RGB with alpha become RGBA.
    """
    from PIL import Image

    mode = img.mode
    if mode in ("L", "RGB", "RGBA"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("LA", "La", "PA", "RGBa"):
        return img.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        a = np.asarray(img).astype(np.float64)
        if a.ndim == 3:
            a = a[..., 0]
        finite = a[np.isfinite(a)]
        if mode == "F" and finite.size and finite.min() >= 0 and finite.max() <= 1:
            a = a * 255.0
        elif mode == "F" and finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            a = (a - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
        else:
            a = a * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.nan_to_num(a) + 0.5, 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


def thumbnail(img, side: int, channels: int) -> np.ndarray:
    """(side, side, channels) uint8: ``img`` fitted into a square, centred, the rest transparent/black.

    Integer upscales use nearest-neighbour (small images stay crisp, as digits
    need); everything else Lanczos.
    """
    from PIL import Image

    w, h = img.size
    scale = side / max(w, h)
    tw, th = max(1, min(side, round(w * scale))), max(1, min(side, round(h * scale)))
    resample = Image.NEAREST if scale >= 1 and scale == int(scale) else Image.LANCZOS
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if img.mode != mode:
        img = _flatten(img) if mode != "RGBA" else img
        img = img.convert(mode)
    if (tw, th) != (w, h):
        img = img.resize((tw, th), resample)
    out = np.zeros((side, side, channels), np.uint8)
    x0, y0 = (side - tw) // 2, (side - th) // 2
    out[y0:y0 + th, x0:x0 + tw] = np.asarray(img).reshape(th, tw, channels)
    return out


def model_input(img, size: Tuple[int, int], channels: int) -> np.ndarray:
    """(height, width, channels) uint8: ``img`` stretched to ``size`` (bilinear), alpha composited over white."""
    from PIL import Image

    img = _flatten(img).convert("L" if channels == 1 else "RGB")
    height, width = size
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR, reducing_gap=3.0)
    return np.asarray(img).reshape(height, width, channels)


def _flatten(img):
    """RGBA composited over white (what image viewers show behind transparency); other modes unchanged."""
    if img.mode != "RGBA":
        return img
    from PIL import Image

    background = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, img).convert("RGB")


def _array_image(src: ImageSource, i: int):
    from PIL import Image

    row = np.asarray(src.array[i])
    if row.dtype != np.uint8:
        row = row.astype(np.float64)
        if not np.all(np.isfinite(row)):
            raise ImageError("holds NaN or infinity")
        offset, factor = src._scale
        row = np.clip((row + offset) * factor + 0.5, 0, 255).astype(np.uint8)
    if row.ndim == 3 and row.shape[2] == 1:
        row = row[..., 0]
    return Image.fromarray(np.ascontiguousarray(row), {2: "L", 3: "RGB", 4: "RGBA"}[row.ndim if row.ndim == 2
                                                                                   else row.shape[2]])


@contextlib.contextmanager
def _decoding():
    """Pillow's errors while reading an image as one ImageError saying what is wrong."""
    from PIL import Image

    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError("has more pixels than the limit of %d px" % fs.MAX_IMAGE_PIXELS) from None
    except Image.UnidentifiedImageError:
        raise ImageError(NOT_AN_IMAGE) from None
    except Exception as e:
        raise ImageError("is truncated or corrupt (%s)" % _why(e)) from None


@contextlib.contextmanager
def quiet_pillow():
    """Pillow's warnings silenced (its pixel-count warning lies below our own limit, which is an error).

    Not thread-safe, as ``warnings.catch_warnings`` is not: enter it once around work that decodes in threads.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", message="Palette images with Transparency")
        yield


def _open(src: ImageSource, i: int):
    try:
        f, _ = fs.open_file(src.files[i], src.root, fs.MAX_IMAGE_BYTES, "")
    except fs.SourceError as e:
        # fs names the file first; the caller names it again, so keep only what is wrong.
        text = str(e)
        shown = fs.display(src.files[i], src.root)
        raise ImageError(text[len(shown):].lstrip() if text.startswith(shown) else text) from None
    return f


def _check_pixels(width: int, height: int) -> None:
    if width * height > fs.MAX_IMAGE_PIXELS:
        raise ImageError("is %dx%d px, more than the pixel limit of %d px" % (width, height, fs.MAX_IMAGE_PIXELS))


def _why(e: Exception) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return "%s: %s" % (type(e).__name__, text) if text else type(e).__name__
