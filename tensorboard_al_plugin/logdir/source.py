"""What every embedding source offers, whatever its format on disk.

An :class:`EmbeddingSource` is cheap to hold: it knows its shape, metadata
columns and sprite layout (read when the log directory is scanned), and loads
the tensor, the metadata and sprite pages only when asked.  A source that
cannot be opened keeps ``ok = False`` and says why in ``problems``, so one
broken file never hides the other embeddings of a log directory.
"""

from __future__ import annotations

import collections
import hashlib
import io
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from . import fs
from .fs import SourceError  # noqa: F401 - defined beside the file checks, known here by every caller

PLUGIN_NAME = "active_labeling"

# WebGL implementations guarantee 8192 px textures on desktops; sprite pages
# never exceed it so that any number of thumbnails can be drawn.
MAX_PAGE_PX = 8192
#: Sprite pages cut out of large images are kept (PNG bytes) up to this much.
PAGE_CACHE_BYTES = 256 << 20


@dataclass
class SpriteLayout:
    """Where thumbnail ``i`` lies: page ``i // per_page``, cell ``i % per_page`` in row-major order."""

    thumb_width: int
    thumb_height: int
    per_row: int
    per_page: int
    page_sizes: List[Tuple[int, int]]  # (width, height) in px of every page

    @property
    def pages(self) -> int:
        return len(self.page_sizes)

    def to_json(self) -> dict:
        return {
            "thumb_width": self.thumb_width,
            "thumb_height": self.thumb_height,
            "per_row": self.per_row,
            "per_page": self.per_page,
            "pages": self.pages,
            "page_sizes": [list(s) for s in self.page_sizes],
        }

    @classmethod
    def for_count(cls, n: int, thumb_width: int, thumb_height: int) -> "SpriteLayout":
        """The layout this plugin writes: a square grid when it fits one page, else full pages."""
        if thumb_width > MAX_PAGE_PX or thumb_height > MAX_PAGE_PX:
            raise ValueError("thumbnails larger than %d px cannot be drawn" % MAX_PAGE_PX)
        side = max(1, int(np.ceil(np.sqrt(max(n, 1)))))
        if side * thumb_width <= MAX_PAGE_PX and side * thumb_height <= MAX_PAGE_PX:
            per_row = side
            rows = max(1, int(np.ceil(n / per_row)))
            return cls(thumb_width, thumb_height, per_row, per_row * rows,
                       [(per_row * thumb_width, rows * thumb_height)])
        per_row = MAX_PAGE_PX // thumb_width
        rows_per_page = MAX_PAGE_PX // thumb_height
        per_page = per_row * rows_per_page
        sizes = []
        for start in range(0, n, per_page):
            count = min(per_page, n - start)
            rows = int(np.ceil(count / per_row))
            sizes.append((per_row * thumb_width, rows * thumb_height))
        return cls(thumb_width, thumb_height, per_row, per_page, sizes)


@dataclass
class EmbeddingSource:
    """One embedding found in the log directory.

    ``run`` is the run's path relative to the logdir ("." for the root) and
    ``name`` the embedding's name within the run; together they are the key
    every route and CLI command uses.
    """

    run: str
    name: str
    format: str  # "active_labeling" | "projector"
    rows: Optional[int] = None
    dims: Optional[int] = None
    metadata_columns: List[str] = field(default_factory=list)
    sprite: Optional[SpriteLayout] = None
    problems: List[str] = field(default_factory=list)
    ok: bool = True
    # Where this embedding's labels live (a directory the label store owns).
    label_dir: Optional[str] = None
    # Loaders, bound by the reader that found the source.
    load_tensor: Optional[Callable[[], np.ndarray]] = field(default=None, repr=False)
    load_metadata: Optional[Callable[[], Tuple[List[str], List[List[str]]]]] = field(default=None, repr=False)
    load_sprite_page: Optional[Callable[[int], bytes]] = field(default=None, repr=False)
    # Projector-format only: the files the user's config names, resolved, so a
    # Projector run of this plugin's own can show the labels
    # (projector_labels.py).  {"tensor", "tensor_shape"} or {"checkpoint",
    # "variable"}, plus {"sprite", "sprite_dims"} when the sprite is usable.
    projector_assets: Optional[dict] = field(default=None, repr=False)

    @property
    def key(self) -> Tuple[str, str]:
        return (self.run, self.name)

    def fail(self, message: str) -> "EmbeddingSource":
        self.problems.append(message)
        self.ok = False
        return self

    def to_json(self) -> dict:
        return {
            "run": self.run,
            "name": self.name,
            "format": self.format,
            "rows": self.rows,
            "dims": self.dims,
            "metadata_columns": list(self.metadata_columns) if self.ok else [],
            "sprite": self.sprite.to_json() if (self.sprite and self.ok) else None,
            "labels_supported": bool(self.ok and self.label_dir),
            "problems": list(self.problems),
            "ok": self.ok,
        }


def safe_dir_name(name: str) -> str:
    """A directory name for an arbitrary embedding name (tensor names hold '/' and ':')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "embedding"
    if cleaned == name:
        return name
    return "%s-%s" % (cleaned[:80], hashlib.sha1(name.encode("utf-8")).hexdigest()[:8])


# --- parsing shared by both formats -------------------------------------------------


def parse_tensor_tsv(data: bytes, where: str) -> np.ndarray:
    """A float32 (rows, dims) array from tab-separated text; SourceError naming the bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError("%s is not UTF-8 text (a binary tensor needs tensor_shape in the config)" % where)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise SourceError("%s is empty" % where)
    width = len(lines[0].split("\t"))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != width:
            raise SourceError("%s line %d has %d values, expected %d like line 1 (ragged TSV)"
                              % (where, number, len(cells), width))
    try:
        return np.loadtxt(io.StringIO(text), delimiter="\t", dtype=np.float32, ndmin=2)
    except ValueError:
        pass
    for number, line in enumerate(text.splitlines(), start=1):
        for column, cell in enumerate(line.split("\t"), start=1):
            if not line.strip():
                continue
            try:
                float(cell)
            except ValueError:
                raise SourceError("%s line %d column %d: %r is not a number" % (where, number, column, cell))
    raise SourceError("%s could not be read as a tab-separated table of numbers" % where)


def parse_metadata_tsv(data: bytes, where: str, rows: Optional[int],
                       header: Optional[bool] = None) -> Tuple[List[str], List[List[str]]]:
    """Columns and columnar values of a metadata TSV, following the Projector's rules.

    The file has a header row when it has more than one column (``header=None``
    detects that from the first line, as the Projector does); a single column
    has no header and is named "metadata".  Raises SourceError for ragged rows
    and for a row count that disagrees with the tensor.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError("%s is not UTF-8 text" % where)
    lines = text.splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise SourceError("%s is empty" % where)
    if header is None:
        header = "\t" in lines[0]
    if header:
        columns = lines[0].split("\t")
        body, first_line = lines[1:], 2
    else:
        columns, body, first_line = ["metadata"], lines, 1
    width = len(columns)
    data_cols: List[List[str]] = [[] for _ in range(width)]
    for offset, line in enumerate(body):
        cells = line.split("\t")
        if len(cells) != width:
            raise SourceError("%s line %d has %d fields, expected %d (ragged TSV)"
                              % (where, first_line + offset, len(cells), width))
        for c, cell in enumerate(cells):
            data_cols[c].append(cell)
    if rows is not None and len(body) != rows:
        raise SourceError("%s has %d rows but the tensor has %d rows" % (where, len(body), rows))
    return columns, data_cols


def sprite_problem(width: int, height: int, thumb_w: int, thumb_h: int, rows: int,
                   where: str) -> Optional[str]:
    """Why a single-image sprite cannot hold ``rows`` thumbnails, or None when it can."""
    if thumb_w <= 0 or thumb_h <= 0:
        return "%s: single_image_dim must be two positive sizes, got %dx%d" % (where, thumb_w, thumb_h)
    if width % thumb_w or height % thumb_h:
        return ("%s is %dx%d px, not a whole grid of %dx%d thumbnails"
                % (where, width, height, thumb_w, thumb_h))
    capacity = (width // thumb_w) * (height // thumb_h)
    if capacity < rows:
        return ("%s holds %d thumbnails of %dx%d px but the tensor has %d rows"
                % (where, capacity, thumb_w, thumb_h, rows))
    return None


def guarded(what: str, load: Callable) -> Callable:
    """``load`` with every failure a SourceError naming ``what``: files can change after the scan."""

    def run(*args):
        try:
            return load(*args)
        except SourceError:
            raise
        except Exception as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SourceError("%s cannot be read: %s" % (what, detail)) from e

    return run


def image_size(path: str, root: str, what: str = "sprite") -> Tuple[int, int]:
    """Width and height of an image from its header alone (nothing is decoded).

    SourceError when the file is not a readable image, or when it has more
    pixels than :data:`fs.MAX_IMAGE_PIXELS` (a decompression bomb: a small
    file that decodes to gigabytes).
    """
    from PIL import Image

    name = "%s %s" % (what, fs.display(path, root))
    f, _ = fs.open_file(path, root, fs.MAX_IMAGE_BYTES, what)
    with f:
        try:
            with Image.open(f) as image:
                width, height = image.size
        except Image.DecompressionBombError as e:  # Pillow's own limit lies above ours
            pixels = re.search(r"\((\d+) pixels\)", str(e))
            raise SourceError("%s has %s pixels, more than the pixel limit of %d px"
                              % (name, pixels.group(1) if pixels else "too many", fs.MAX_IMAGE_PIXELS))
        except Exception as e:
            raise SourceError("%s is not a readable image (%s)" % (name, type(e).__name__))
    if width * height > fs.MAX_IMAGE_PIXELS:
        raise SourceError("%s is %dx%d px, more than the pixel limit of %d px"
                          % (name, width, height, fs.MAX_IMAGE_PIXELS))
    return width, height


class _PageCache:
    """Sprite pages cut out of large images, least recently used first out, bounded by bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._pages: "collections.OrderedDict" = collections.OrderedDict()
        self._lock = threading.Lock()
        # One decode at a time: concurrent requests for a page wait for the
        # decode under way instead of decoding the image again, and the peak
        # memory is that of one image.
        self.decoding = threading.Lock()

    def get(self, key) -> Optional[bytes]:
        with self._lock:
            data = self._pages.get(key)
            if data is not None:
                self._pages.move_to_end(key)
            return data

    def put(self, key, data: bytes) -> None:
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._pages[key] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes and len(self._pages) > 1:
                _, dropped = self._pages.popitem(last=False)
                self.bytes -= len(dropped)


PAGE_CACHE = _PageCache(PAGE_CACHE_BYTES)


def retile_sprite(path: str, root: str, source_per_row: int, layout: SpriteLayout, rows: int, page: int) -> bytes:
    """Page ``page`` of ``layout``, cut out of one large sprite image (for sprites above 8192 px).

    The image is decoded once per process (while its size and modification
    time stay the same): that one decode cuts every page, and the pages are
    kept in :data:`PAGE_CACHE`.
    """
    from PIL import Image

    key = (path, fs.signature(path), source_per_row, layout.thumb_width, layout.thumb_height,
           layout.per_row, layout.per_page, rows)
    data = PAGE_CACHE.get(key + (page,))
    if data is not None:
        return data
    with PAGE_CACHE.decoding:
        data = PAGE_CACHE.get(key + (page,))
        if data is not None:
            return data
        image_size(path, root)  # the pixel limit, from the header
        png = fs.read_bytes(path, root, fs.MAX_IMAGE_BYTES, "sprite")
        try:
            with Image.open(io.BytesIO(png)) as image:
                image.load()
                pages = [_cut_page(image, source_per_row, layout, rows, k) for k in range(layout.pages)]
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise SourceError("sprite %s cannot be decoded (%s)" % (fs.display(path, root), e))
        for k, data in enumerate(pages):
            PAGE_CACHE.put(key + (k,), data)
        return pages[page]


def _cut_page(image, source_per_row: int, layout: SpriteLayout, rows: int, page: int) -> bytes:
    from PIL import Image

    w, h = layout.thumb_width, layout.thumb_height
    start = page * layout.per_page
    count = min(layout.per_page, rows - start)
    out = Image.new(image.mode, layout.page_sizes[page])
    if image.mode == "P":
        out.putpalette(image.getpalette())
    for k in range(count):
        i = start + k
        sx, sy = (i % source_per_row) * w, (i // source_per_row) * h
        dx, dy = (k % layout.per_row) * w, (k // layout.per_row) * h
        out.paste(image.crop((sx, sy, sx + w, sy + h)), (dx, dy))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def in_plugin_folder(path: str) -> bool:
    """True for paths inside a run's ``plugins/active_labeling/`` folder: files this plugin wrote."""
    parts = path.replace("\\", "/").split("/")
    return "plugins" in parts and PLUGIN_NAME in parts


def label_dir_for(run_dir: str, name: str, projector: bool) -> str:
    base = fs.join(run_dir, "plugins", PLUGIN_NAME)
    if projector:
        return fs.join(base, "_projector", safe_dir_name(name), "labels")
    return fs.join(base, name, "labels")


def check_columns(columns: Sequence[str]) -> None:
    for c in columns:
        if "\t" in c or "\n" in c or "\r" in c:
            raise SourceError("metadata column name %r contains a tab or newline" % c)
