"""The label store: durable, shared, undoable labels of one embedding.

One store lives in one directory (next to the embedding it belongs to) and
holds the labels of its ``n_rows`` rows.  Every change is a *record* in a
history that is only ever appended to; a compacted *snapshot* (rewritten
atomically every :data:`SNAPSHOT_EVERY_RECORDS` records or
:data:`SNAPSHOT_EVERY_SECONDS` seconds) makes loading fast, and
``labels.tsv`` beside it lets the stock Projector show the labels.

Two storage layouts, chosen from the path (see docs/LABEL_STORE.md):

* ``"append"`` (local paths): ``history.jsonl`` appended to under an
  exclusive ``fcntl.flock`` on ``.lock``; ``snapshot.json`` and
  ``labels.tsv`` replaced with ``os.replace``.
* ``"segments"`` (``scheme://`` paths: object stores, ``memory://``,
  ``ram://``): one file per record, ``segments/<seq>-<writer>.json``, each
  written once under a name no other writer uses, through TensorBoard's file
  layer (gfile), which has neither locks nor atomic rename nor exclusive
  create.  Records are ordered by ``(seq, writer)``.

A history line (and a segment file) is ``<crc32 of the JSON, 8 hex> <JSON>\\n``.
The JSON record::

    {"seq": 12, "writer": "5f0c2a9e1b7d", "time": "2026-11-23T11:35:01.123Z",
     "author": "alice", "op": "assign", "base_version": 11, "label": "cat",
     "set":  [["cat", [3, 4, 9]]],              # new label -> rows (null = cleared)
     "prev": [[null, [3, 9]], ["dog", [4]]]}    # what those rows held before

``op`` is one of assign, clear, rename (+ ``from``, ``to``), merge
(+ ``classes``, ``into``), import (+ ``source``), undo and redo
(+ ``target``: ``{"id": "<seq>.<writer>", "loc": <where the record is>}``).
Replaying ``set`` of every record in order gives the current labels.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import getpass
import json
import os
import posixpath
import re
import stat
import threading
import time
import unicodedata
import uuid
import warnings
import zlib
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

try:  # fcntl is POSIX only; without it local stores fall back to segments.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

FORMAT = "tensorboard-al-labels"
FORMAT_VERSION = 1
MAX_LABEL_LENGTH = 256
MAX_AUTHOR_LENGTH = 128
HISTORY_FILE = "history.jsonl"
SNAPSHOT_FILE = "snapshot.json"
PROJECTOR_TSV = "labels.tsv"
LOCK_FILE = ".lock"
SEGMENT_DIR = "segments"
#: How many actions undo can go back (older ones stay in the history).
UNDO_DEPTH = 1000
#: A write rewrites the snapshot (and labels.tsv) after this many records...
SNAPSHOT_EVERY_RECORDS = 100
#: ...or when the last snapshot is this many seconds old.
SNAPSHOT_EVERY_SECONDS = 10.0

_OPS = ("assign", "clear", "rename", "merge", "import", "undo", "redo")
_SEGMENT_RE = re.compile(r"^(\d{10,})-([0-9a-f]{1,32})\.json$")
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{10,})-([0-9a-f]{1,32})\.json$")
# Characters a label or author may not contain anywhere: control characters
# (C0 incl. tab and newline, DEL, C1) and the Unicode line/paragraph
# separators, which would break a TSV/CSV line or the Projector's metadata
# file; the bidi embeddings, overrides and isolates (U+202A-202E,
# U+2066-2069), which make text display in another order than it has (a
# label could pass for another one); U+FEFF (a byte order mark); and lone
# surrogates, which cannot be written as UTF-8.  The bidi *marks* U+200E,
# U+200F and U+061C are allowed inside a label: right-to-left writers need
# them to place neutral characters, and they reorder nothing beyond their
# neighbours.  Like every invisible character they may not start or end a
# label (see _INVISIBLE).
_BAD_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_CHAR_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return"}
# Characters that draw nothing.  A label may not consist of them only, nor
# begin or end with one ("cat" and "cat" + U+200B would look like one class).
# Besides whitespace (str.isspace): soft hyphen, combining grapheme joiner,
# the Arabic letter mark, Hangul and Khmer fillers, Mongolian free variation
# selectors and vowel separator, zero-width space and (non-)joiners, the bidi
# marks, word joiner and invisible operators, blank Braille pattern,
# variation selectors.
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f"
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10))) + "".join(map(chr, range(0xE0100, 0xE01F0))))


class LabelError(ValueError):
    """Bad input (label, rows, class name, import line); the message is one sentence."""


class ConflictError(Exception):
    """The request is well formed but cannot apply now (nothing to undo or redo)."""


class LabelStoreWarning(UserWarning):
    """Something on disk was skipped (torn or corrupt record); the store still works."""


def validate_label(label) -> str:
    """Return ``label`` in Unicode NFC if it is a valid label, else raise :class:`LabelError`.

    Valid: a ``str`` of 1..256 characters (after NFC) without tab, newline or
    any other control character, bidi override or isolate, byte order mark or
    lone surrogate; not only invisible characters; and not starting or ending
    with whitespace or an invisible character (which would make "cat" and
    "cat " two classes that look the same).  The message names the character
    and its position.
    """
    return _validate_text(label, "label", MAX_LABEL_LENGTH)


def validate_author(author) -> str:
    """Return ``author`` (NFC) if valid (like a label, at most 128 characters), else raise LabelError."""
    return _validate_text(author, "author", MAX_AUTHOR_LENGTH)


def _char_name(ch: str) -> str:
    name = _CHAR_NAMES.get(ch)
    if name:
        return name
    category = unicodedata.category(ch)
    if category == "Cc":
        return "control character U+%04X" % ord(ch)
    if category == "Cs":
        return "a lone surrogate U+%04X" % ord(ch)
    return "U+%04X %s" % (ord(ch), unicodedata.name(ch, "(unnamed)"))


def _validate_text(value, what: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise LabelError("%s must be a string, got %s" % (what, type(value).__name__))
    bad = _BAD_CHARS_RE.search(value)
    if bad:
        raise LabelError("%s %r contains %s at position %d" % (what, value, _char_name(bad.group()), bad.start()))
    value = unicodedata.normalize("NFC", value)
    if not value:
        raise LabelError("%s is empty" % what)
    if len(value) > max_length:
        raise LabelError(
            "%s is %d characters long; at most %d are allowed" % (what, len(value), max_length)
        )
    if value != value.strip():
        raise LabelError("%s %r has leading or trailing whitespace" % (what, value))
    if all(ch in _INVISIBLE or ch.isspace() for ch in value):
        raise LabelError("%s %r has only invisible characters (%s)"
                         % (what, value, ", ".join(_char_name(ch) for ch in dict.fromkeys(value))))
    for position in (0, len(value) - 1):
        if value[position] in _INVISIBLE:
            raise LabelError("%s %r %s with the invisible character %s"
                             % (what, value, "starts" if position == 0 else "ends",
                                _char_name(value[position])))
    return value


def os_user() -> str:
    """The OS user running the server (the default author), or "unknown"."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment or password db
        return "unknown"
    try:
        return validate_author(name)
    except LabelError:
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _encode_json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _encode_record(record: dict) -> bytes:
    body = _encode_json(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_record(line: bytes) -> dict:
    """Parse one ``<crc> <json>`` line (without its newline); ValueError when damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        raise ValueError("not a '<crc32> <json>' line")
    body = line[9:]
    if int(line[:8], 16) != zlib.crc32(body):
        raise ValueError("checksum mismatch")
    try:
        record = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(record, dict) or record.get("op") not in _OPS or not isinstance(
        record.get("set"), list
    ):
        raise ValueError("not a label record")
    _check_record(record)
    return record


# A record or snapshot that passes its checksum may still hold what no writer
# of this store writes (a file in a shared log directory is untrusted input):
# each check below raises ValueError, and the record is skipped like a torn one.


def _is_int(value, minimum: int = 0) -> bool:
    return type(value) is int and value >= minimum


def _ints(values, minimum: int, below: Optional[int] = None) -> bool:
    """A list of ints >= minimum (and < below); C-speed for the 10^6-row lists of a snapshot."""
    if not isinstance(values, list):
        return False
    if not values:
        return True
    if set(map(type, values)) != {int}:
        return False
    return min(values) >= minimum and (below is None or max(values) < below)


def _is_loc(value) -> bool:
    """Where a record lies in its storage: a byte offset (append) or a segment name."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _check_text(value, what: str, max_length: int, *, optional: bool = False, blank: bool = False) -> None:
    """``optional``: None is fine; ``blank``: "" is fine (an author or time a record left out)."""
    if (value is None and optional) or (value == "" and blank):
        return
    try:
        _validate_text(value, what, max_length)
    except LabelError as e:
        raise ValueError(str(e)) from None


def _check_groups(groups, what: str) -> None:
    """``set``/``prev``: [[label or null, [row, ...]], ...]."""
    if not isinstance(groups, list):
        raise ValueError("%s is not a list" % what)
    for group in groups:
        if not (isinstance(group, list) and len(group) == 2):
            raise ValueError("%s holds %r, not a [label, rows] pair" % (what, group))
        _check_text(group[0], what + " label", MAX_LABEL_LENGTH, optional=True)
        if not _ints(group[1], 0):
            raise ValueError("%s rows of %r are not row indices (whole numbers >= 0)" % (what, group[0]))


def _spelling(model, label: str) -> str:
    """``label`` (NFC) as the store already spells it: a store written before labels
    were normalised may hold another Unicode form of the same name, and one class
    must not become two that look alike."""
    if model.counts.get(label, 0) > 0:
        return label
    return next((k for k, n in model.counts.items()
                 if n > 0 and unicodedata.normalize("NFC", k) == label), label)


def _check_record(record: dict) -> None:
    if "seq" in record and not _is_int(record["seq"]):
        raise ValueError("seq %r is not a whole number" % (record["seq"],))
    if not isinstance(record.get("writer", ""), str):
        raise ValueError("writer is not a string")
    if record.get("base_version") is not None and not _is_int(record["base_version"]):
        raise ValueError("base_version %r is not a whole number" % (record["base_version"],))
    _check_text(record.get("author"), "author", MAX_AUTHOR_LENGTH, optional=True, blank=True)
    _check_text(record.get("time"), "time", 64, optional=True, blank=True)
    _check_groups(record["set"], "set")
    _check_groups(record.get("prev", []), "prev")
    for key in ("label", "from", "to", "into"):
        if key in record:
            _check_text(record[key], key, MAX_LABEL_LENGTH)
    if "classes" in record:
        if not isinstance(record["classes"], list):
            raise ValueError("classes is not a list")
        for c in record["classes"]:
            _check_text(c, "class", MAX_LABEL_LENGTH)
    if not isinstance(record.get("source", ""), str):
        raise ValueError("source is not a string")
    if record["op"] in ("undo", "redo"):
        target = record.get("target")
        if not (isinstance(target, dict) and isinstance(target.get("id"), str)
                and _is_loc(target.get("loc"))):
            raise ValueError("%s target %r is not {id, loc}" % (record["op"], target))


def _check_snapshot(snap) -> None:
    """ValueError unless ``snap`` is a snapshot this store could have written (see _Model.to_snapshot)."""
    if not isinstance(snap, dict):
        raise ValueError("not a JSON object")
    if snap.get("format") != FORMAT or snap.get("format_version") != FORMAT_VERSION:
        raise ValueError("not a version %d label snapshot" % FORMAT_VERSION)
    classes = snap.get("classes")
    if not isinstance(classes, list):
        raise ValueError("classes is not a list")
    for c in classes:
        _check_text(c, "class", MAX_LABEL_LENGTH)
    if len(set(classes)) != len(classes):
        raise ValueError("classes repeat a name")
    stamps = snap.get("stamps")
    if not isinstance(stamps, list):
        raise ValueError("stamps is not a list")
    for stamp in stamps:
        if not (isinstance(stamp, list) and len(stamp) == 2):
            raise ValueError("stamp %r is not [author, time]" % (stamp,))
        _check_text(stamp[0], "author", MAX_AUTHOR_LENGTH, blank=True)
        _check_text(stamp[1], "time", 64, blank=True)
    if not _ints(snap.get("labels"), -1, len(classes)):
        raise ValueError("labels are not class indices -1..%d" % (len(classes) - 1))
    if not _ints(snap.get("row_stamps"), -1, len(stamps)):
        raise ValueError("row_stamps are not stamp indices -1..%d" % (len(stamps) - 1))
    if not _is_int(snap.get("version")):
        raise ValueError("version %r is not a whole number" % (snap.get("version"),))
    for key in ("undo", "redo"):
        for entry in snap.get(key, []) if isinstance(snap.get(key, []), list) else [None]:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and _is_loc(entry[1])):
                raise ValueError("%s entry %r is not [id, loc]" % (key, entry))
    # What the storage keeps in it (history_offset: append; the rest: segments).
    if "history_offset" in snap and not _is_int(snap["history_offset"]):
        raise ValueError("history_offset %r is not a whole number" % (snap["history_offset"],))
    if "max_seq" in snap and not _is_int(snap["max_seq"]):
        raise ValueError("max_seq %r is not a whole number" % (snap["max_seq"],))
    covered = snap.get("covered", {})
    if not (isinstance(covered, dict) and all(_is_int(v) for v in covered.values())):
        raise ValueError("covered is not {writer: seq}")
    last_key = snap.get("last_key", [0, ""])
    if not (isinstance(last_key, list) and len(last_key) == 2 and _is_int(last_key[0])
            and isinstance(last_key[1], str)):
        raise ValueError("last_key %r is not [seq, writer]" % (last_key,))


def _record_id(record: dict) -> str:
    return "%d.%s" % (record.get("seq", 0), record.get("writer", ""))


def _group_rows(pairs: Iterable[Tuple[int, Optional[str]]]) -> List[list]:
    """[(row, label)] -> [[label, [rows...]], ...] in first-appearance order of labels."""
    groups: Dict[Optional[str], List[int]] = {}
    for row, label in pairs:
        groups.setdefault(label, []).append(row)
    return [[label, rows] for label, rows in groups.items()]


def _ungroup(groups) -> Dict[int, Optional[str]]:
    return {row: label for label, rows in groups for row in rows}


# --------------------------------------------------------------------------- model


class _Model:
    """The labels of n rows plus undo/redo stacks, built by applying records in order.

    Knows nothing of files: records in, state out.  ``loc`` is where a record
    can be read again (byte offset or segment name), kept for undo/redo.
    """

    def __init__(self, n_rows: int):
        self.n_rows = n_rows
        self.labels: List[Optional[str]] = [None] * n_rows
        self.row_stamp: List[int] = [-1] * n_rows  # index into stamps
        self.stamps: List[Tuple[str, str]] = []  # (author, time) of records
        self.counts: Dict[str, int] = {}
        self.class_order: List[str] = []  # every class ever used, first use first
        self.undo: List[list] = []  # [id, loc] of actions that can be undone, newest last
        self.redo: List[list] = []
        self.version = 0
        self.out_of_range = 0

    # -- applying
    def _note_class(self, label: str, position: Optional[int] = None) -> None:
        if label not in self.counts:
            self.counts[label] = 0
            if position is None:
                self.class_order.append(label)
            else:
                self.class_order.insert(position, label)

    def apply(self, record: dict, loc) -> None:
        self.version += 1
        op = record["op"]
        if op == "rename":
            # The new name takes the old one's place, so colours stay put.
            old, new = record.get("from"), record.get("to")
            if old in self.counts and isinstance(new, str):
                self._note_class(new, self.class_order.index(old))
        stamp = len(self.stamps)
        self.stamps.append((record.get("author", ""), record.get("time", "")))
        labels, counts, row_stamp, n = self.labels, self.counts, self.row_stamp, self.n_rows
        for label, rows in record["set"]:
            if label is not None:
                self._note_class(label)
            for row in rows:
                if not 0 <= row < n:
                    self.out_of_range += 1
                    continue
                old = labels[row]
                if old is not None:
                    counts[old] -= 1
                if label is not None:
                    counts[label] += 1
                labels[row] = label
                row_stamp[row] = stamp if label is not None else -1
        entry = [_record_id(record), loc]
        if op in ("undo", "redo"):
            target = record.get("target") or {}
            src, dst = (self.undo, self.redo) if op == "undo" else (self.redo, self.undo)
            for i in range(len(src) - 1, -1, -1):
                if src[i][0] == target.get("id"):
                    dst.append(src.pop(i))
                    break
        else:
            self.undo.append(entry)
            del self.undo[:-UNDO_DEPTH]
            self.redo.clear()

    # -- reading
    def classes(self) -> List[dict]:
        return [{"name": c, "count": self.counts[c]} for c in self.class_order if self.counts[c] > 0]

    def state(self) -> dict:
        return {
            "version": self.version,
            "labels": list(self.labels),
            "classes": self.classes(),
            "can_undo": bool(self.undo),
            "can_redo": bool(self.redo),
        }

    # -- snapshot
    def to_snapshot(self) -> dict:
        index = {c: i for i, c in enumerate(self.class_order)}
        used: Dict[int, int] = {}
        stamps = []
        row_stamps = []
        for s in self.row_stamp:
            if s < 0:
                row_stamps.append(-1)
                continue
            j = used.get(s)
            if j is None:
                j = used[s] = len(stamps)
                stamps.append(list(self.stamps[s]))
            row_stamps.append(j)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "version": self.version,
            "classes": self.class_order,
            "labels": [-1 if label is None else index[label] for label in self.labels],
            "stamps": stamps,
            "row_stamps": row_stamps,
            "undo": self.undo,
            "redo": self.redo,
        }

    @classmethod
    def from_snapshot(cls, snap: dict, n_rows: int) -> "_Model":
        _check_snapshot(snap)
        model = cls(n_rows)
        classes = list(snap["classes"])
        ids = snap["labels"]
        rs = snap["row_stamps"]
        if len(ids) != len(rs):
            raise ValueError("labels and row_stamps differ in length")
        # A tensor rewritten with fewer or more rows keeps the labels that still fit.
        m = min(n_rows, len(ids))
        model.out_of_range = sum(1 for i in ids[m:] if i >= 0)
        table = classes + [None]  # index -1 -> None
        model.labels[:m] = [table[i] for i in ids[:m]]
        model.stamps = [tuple(s) for s in snap["stamps"]]
        model.row_stamp[:m] = rs[:m]
        model.class_order = classes
        model.counts = dict.fromkeys(classes, 0)
        for label in model.labels:
            if label is not None:
                model.counts[label] += 1
        model.undo = [list(e) for e in snap.get("undo", [])]
        model.redo = [list(e) for e in snap.get("redo", [])]
        model.version = int(snap["version"])
        return model

    def projector_tsv(self, columns: Optional[Tuple[List[str], List[List[str]]]] = None) -> str:
        """labels.tsv: ``label``, ``author``, ``index``, then ``columns`` (names, one list of N values each).

        ``columns`` are the embedding's own metadata, so the Projector entry of
        the labels can also be coloured and searched by them; a name that clashes
        with ours gets " (metadata)" appended.
        """
        # Several columns, so the Projector expects (and gets) a header row.  The
        # row number keeps an unlabelled row's line from being blank: the
        # Projector skips whitespace-only lines, which would shift every later
        # row onto the wrong point.  An empty field reads there as "missing".
        names, values = columns if columns else ([], [])
        values = [v for v in values if len(v) == len(self.labels)]
        names = names[:len(values)]
        ours = ("label", "author", "index")
        header = list(ours) + [n + " (metadata)" if n in ours else n for n in names]
        out = ["\t".join(header) + "\n"]
        stamps, row_stamp = self.stamps, self.row_stamp
        for i, (label, s) in enumerate(zip(self.labels, row_stamp)):
            extra = "".join("\t" + v[i] for v in values)
            if label is None:
                out.append("\t\t%d%s\n" % (i, extra))
            else:
                out.append("%s\t%s\t%d%s\n" % (label, stamps[s][0], i, extra))
        return "".join(out)


# --------------------------------------------------------------------------- storage


def projector_metadata_path(directory: str) -> str:
    """Where the store in ``directory`` keeps ``labels.tsv`` (see LabelStore.projector_metadata_path)."""
    if _is_local(directory):
        return os.path.join(os.path.abspath(_local_path(directory)), PROJECTOR_TSV)
    return posixpath.join(directory.rstrip("/"), PROJECTOR_TSV)


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _confine(directory: str) -> None:
    """Refuse a store folder under ``<run>/plugins/active_labeling/`` that leads out of its run folder.

    A ``labels/`` folder, or a folder above it, that is a symlink to another
    place would receive every write of the store (and lose its stray temp
    files): SourceError (a 4xx on the label routes) before anything is
    created, written or deleted.  Checked when the store opens and before
    every write, so a folder swapped after the log directory was scanned is
    caught too.  Stores elsewhere (a path a Python caller chose) are not
    confined.
    """
    from . import fs
    from .source import PLUGIN_NAME

    parts = directory.replace("\\", "/").split("/")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == PLUGIN_NAME and parts[i - 1] == "plugins":
            fs.check_dir(directory, "/".join(parts[:i - 1]) or "/", "labels folder", outside="its run folder")
            return


def _open_file(path: str, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a regular file that is no symlink (a link is never followed, a FIFO never waited on)."""
    from .source import SourceError

    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SourceError("%s is a symbolic link; the label store does not follow links" % path) from None
        if e.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise SourceError("%s is not a regular file" % path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceError("%s is not a regular file" % path)
    return fd


class _AppendStorage:
    """Local directory: one append-only history file guarded by ``flock``."""

    layout = "append"

    def __init__(self, directory: str, durable: bool):
        self.directory = os.path.abspath(_local_path(directory))
        _confine(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        self.history_path = os.path.join(self.directory, HISTORY_FILE)
        self.snapshot_path = os.path.join(self.directory, SNAPSHOT_FILE)
        self.tsv_path = os.path.join(self.directory, PROJECTOR_TSV)
        self.lock_path = os.path.join(self.directory, LOCK_FILE)
        self.durable = durable
        self.offset = 0  # bytes of history already applied
        self.writer = uuid.uuid4().hex[:12]

    @contextlib.contextmanager
    def locked(self):
        # flock locks an open file description, so separate LabelStore
        # instances in one process exclude each other too.
        _confine(self.directory)
        fd = _open_file(self.lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def repair_if_idle(self) -> Optional[str]:
        """Cut a torn tail now if no writer holds the lock (so it is a crash, not a write)."""
        fd = _open_file(self.lock_path, os.O_RDWR | os.O_CREAT)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return None  # someone is writing; the next write repairs
            return self.repair_tail()
        finally:
            os.close(fd)

    def load_snapshot(self):
        try:
            with os.fdopen(_open_file(self.snapshot_path, os.O_RDONLY), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        snap = json.loads(data.decode("utf-8"))
        try:
            size = os.path.getsize(self.history_path)
        except FileNotFoundError:
            size = 0
        if snap.get("history_offset", 0) > size:
            raise ValueError(
                "%s covers %d bytes of history but %s has only %d"
                % (self.snapshot_path, snap["history_offset"], self.history_path, size)
            )
        return snap

    def reset(self, snap) -> None:
        self.offset = snap.get("history_offset", 0) if snap else 0

    def snapshot_extra(self) -> dict:
        return {"history_offset": self.offset}

    def read_new(self, version: int) -> Iterator[Tuple[object, Optional[dict], str]]:
        """Yield (loc, record or None when damaged, problem) for complete new lines."""
        try:
            f = os.fdopen(_open_file(self.history_path, os.O_RDONLY), "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        pos = 0
        line_no = version
        while pos < end:
            nl = data.index(b"\n", pos)
            loc = self.offset + pos
            line_no += 1
            try:
                record = _decode_record(data[pos:nl])
                problem = ""
            except ValueError as e:
                record = None
                problem = ("%s: record %d (byte %d) is damaged (%s); skipped, the records after it are kept"
                           % (self.history_path, line_no, loc, e))
            pos = nl + 1
            yield loc, record, problem
        self.offset += end

    def repair_tail(self) -> Optional[str]:
        """Under the lock: cut a torn last line (a crashed writer's) so appends stay aligned."""
        try:
            size = os.path.getsize(self.history_path)
        except FileNotFoundError:
            return None
        if size == self.offset:
            return None
        with os.fdopen(_open_file(self.history_path, os.O_RDWR), "r+b") as f:
            f.seek(self.offset)
            tail = f.read()
            if b"\n" in tail:  # complete lines the caller has not read yet
                return None
            aside = "%s.torn-%d" % (self.history_path, self.offset)
            with os.fdopen(_open_file(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as g:
                g.write(tail)
            f.truncate(self.offset)
        return "%s: the last record (byte %d, %d bytes) was cut short by a crash; moved to %s" % (
            self.history_path, self.offset, len(tail), aside)

    def next_seq(self, version: int) -> int:
        return version + 1

    def append(self, record: dict):
        data = _encode_record(record)
        fd = _open_file(self.history_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            loc = os.lseek(fd, 0, os.SEEK_END)
            # One write call: a killed process leaves the line whole or not at all
            # (short of a power loss, which fsync covers).
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.offset = loc + len(data)
        return loc

    def read_at(self, loc) -> dict:
        with os.fdopen(_open_file(self.history_path, os.O_RDONLY), "rb") as f:
            f.seek(int(loc))
            return _decode_record(f.readline().rstrip(b"\n"))

    def iter_all(self) -> Iterator[Tuple[object, Optional[dict], str]]:
        saved = self.offset
        self.offset = 0
        try:
            yield from self.read_new(0)
        finally:
            self.offset = saved

    def _replace(self, path: str, data: bytes) -> None:
        tmp = "%s.tmp-%d-%s" % (path, os.getpid(), uuid.uuid4().hex[:8])
        with os.fdopen(_open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as f:
            f.write(data)
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)

    def write_snapshot(self, snap: dict, version: int, tsv: str) -> None:
        # Under the lock: any leftover temp file is from a writer that was killed.
        for name in os.listdir(self.directory):
            if ".tmp-" in name:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.directory, name))
        self._replace(self.snapshot_path, _encode_json(snap))
        self._replace(self.tsv_path, tsv.encode("utf-8"))


class _SegmentStorage:
    """Any gfile path: one file per record under a name only its writer uses."""

    layout = "segments"

    def __init__(self, directory: str, gfile):
        self.gfile = gfile
        self.directory = directory.rstrip("/")
        self.segment_dir = self._join(SEGMENT_DIR)
        self.tsv_path = self._join(PROJECTOR_TSV)
        if _is_local(self.directory):
            _confine(os.path.abspath(_local_path(self.directory)))
        gfile.makedirs(self.segment_dir)
        self.writer = uuid.uuid4().hex[:12]
        self.own_seq = 0
        self.covered: Dict[str, int] = {}  # writer -> highest seq the snapshot holds
        self.seen = set()  # (seq, writer) applied since the snapshot
        self.known = set()
        self.last_key = (0, "")
        self.max_seq = 0
        self.damaged: Dict[str, str] = {}  # name -> problem, retried on every refresh
        self.needs_reload = False

    def _join(self, name: str) -> str:
        if "://" in self.directory:
            return posixpath.join(self.directory, name)
        return os.path.join(self.directory, name)

    def _segment_path(self, name: str) -> str:
        if "://" in self.directory:
            return posixpath.join(self.segment_dir, name)
        return os.path.join(self.segment_dir, name)

    @contextlib.contextmanager
    def locked(self):
        yield  # no lock on object stores: names never collide (see module docstring)

    def _read(self, path: str) -> bytes:
        with self.gfile.GFile(path, "rb") as f:
            return f.read()

    def _write(self, path: str, data: bytes) -> None:
        if path.startswith("ram://") and self.gfile.exists(path):
            # TensorFlow's ram:// file system appends on "wb" instead of truncating.
            self.gfile.remove(path)
        # One write call: object stores make the whole object appear at once.
        with self.gfile.GFile(path, "wb") as f:
            f.write(data)

    def load_snapshot(self):
        names = []
        for name in self.gfile.listdir(self.directory):
            m = _SNAPSHOT_RE.match(name.rstrip("/"))
            if m:
                names.append((int(m.group(1)), m.group(2), name))
        last_error = None
        keys = None
        readable: Dict[str, bool] = {}
        for _, _, name in sorted(names, reverse=True):
            try:
                snap = json.loads(self._read(self._join(name)).decode("utf-8"))
                covered = snap["covered"]
                last_key = tuple(snap.get("last_key", (0, "")))
            except Exception as e:  # being written right now, or damaged: try an older one
                last_error = "%s: %s" % (self._join(name), e)
                continue
            if keys is None:
                keys = list(self._keys())
            # A record the snapshot lacks but that sorts before its newest one
            # (a writer that lost a race for a seq) would be applied out of
            # order on top of it: use an older snapshot, or none.  A torn file
            # (a writer killed mid-write) is no record and does not count.
            if not any(k < last_key and k[0] > covered.get(k[1], 0) and self._readable(n, readable)
                       for k, n in keys):
                return snap
        if last_error:
            warnings.warn("skipping unreadable label snapshot " + last_error, LabelStoreWarning)
        return None

    def _readable(self, name: str, cache: Dict[str, bool]) -> bool:
        if name not in cache:
            try:
                _decode_record(self._read(self._segment_path(name)).rstrip(b"\n"))
                cache[name] = True
            except Exception:
                cache[name] = False
        return cache[name]

    def reset(self, snap) -> None:
        self.covered = dict(snap.get("covered", {})) if snap else {}
        self.max_seq = snap.get("max_seq", 0) if snap else 0
        self.last_key = tuple(snap.get("last_key", (0, ""))) if snap else (0, "")
        self.seen = set()
        self.known = set()  # segment names applied or covered by the snapshot
        self.needs_reload = False

    def snapshot_extra(self) -> dict:
        covered = dict(self.covered)
        for seq, writer in self.seen:
            if seq > covered.get(writer, 0):
                covered[writer] = seq
        return {"covered": covered, "max_seq": self.max_seq, "last_key": list(self.last_key)}

    def _keys(self, skip=frozenset()):
        for name in self.gfile.listdir(self.segment_dir):
            if name in skip:
                continue
            m = _SEGMENT_RE.match(name)
            if m:
                yield (int(m.group(1)), m.group(2)), name

    def _new_names(self):
        found = []
        # Skipping known names keeps this cheap: the listing grows with the history.
        for key, name in self._keys(self.known):
            if key[0] <= self.covered.get(key[1], 0):
                self.known.add(name)
                continue
            found.append((key, name))
        found.sort()
        return found

    def read_new(self, version: int):
        for key, name in self._new_names():
            path = self._segment_path(name)
            try:
                record = _decode_record(self._read(path).rstrip(b"\n"))
            except Exception as e:
                # Not fatal and not final: a slow writer may still be writing it.
                if name not in self.damaged:
                    self.damaged[name] = "%s: record is damaged or incomplete (%s); skipped" % (path, e)
                    yield None, None, self.damaged[name]
                continue
            self.damaged.pop(name, None)
            if key < self.last_key:
                # A record that sorts before what we applied (two writers raced for
                # one seq): the order changed, so rebuild from the snapshot.
                self.needs_reload = True
                return
            self.seen.add(key)
            self.known.add(name)
            self.last_key = key
            self.max_seq = max(self.max_seq, key[0])
            yield name, record, ""

    def repair_tail(self) -> Optional[str]:
        return None

    def next_seq(self, version: int) -> int:
        # Never below our own last seq: reusing it would overwrite our own file.
        return max(self.max_seq, self.own_seq) + 1

    def append(self, record: dict):
        name = "%010d-%s.json" % (record["seq"], self.writer)
        self._write(self._segment_path(name), _encode_record(record))
        key = (record["seq"], self.writer)
        self.own_seq = record["seq"]
        self.seen.add(key)
        self.known.add(name)
        self.max_seq = max(self.max_seq, key[0])
        self.last_key = max(self.last_key, key)
        return name

    def read_at(self, loc) -> dict:
        return _decode_record(self._read(self._segment_path(loc)).rstrip(b"\n"))

    def iter_all(self):
        saved = (self.covered, self.seen, self.known, self.last_key, self.max_seq, self.damaged)
        self.covered, self.seen, self.known, self.last_key, self.max_seq, self.damaged = (
            {}, set(), set(), (0, ""), 0, {})
        try:
            for key, name in self._new_names():
                try:
                    record = _decode_record(self._read(self._segment_path(name)).rstrip(b"\n"))
                    yield name, record, ""
                except Exception as e:
                    yield name, None, "%s: record is damaged or incomplete (%s); skipped" % (name, e)
        finally:
            self.covered, self.seen, self.known, self.last_key, self.max_seq, self.damaged = saved

    def write_snapshot(self, snap: dict, version: int, tsv: str) -> None:
        name = "snapshot-%010d-%s.json" % (version, self.writer)
        self._write(self._join(name), _encode_json(snap))
        self._write(self.tsv_path, tsv.encode("utf-8"))
        self._prune_snapshots()

    def _prune_snapshots(self, keep: int = 3) -> None:
        remove = getattr(self.gfile, "remove", None)
        if remove is None:  # TensorBoard's stub gfile cannot delete; fs can (boto3 for s3://, else fsspec)
            from . import fs

            remove = fs.remove
        names = sorted(n for n in self.gfile.listdir(self.directory) if _SNAPSHOT_RE.match(n))
        for name in names[:-keep]:
            with contextlib.suppress(Exception):
                remove(self._join(name))


# --------------------------------------------------------------------------- store


class LabelStore:
    """The labels of one embedding, kept in ``directory``.

    Args:
      directory: where this embedding's label files live: a local path or any
        path the TensorBoard file layer understands (``memory://``, ``ram://``,
        ``s3://``...).  Created if missing.
      n_rows: rows of the embedding's tensor; row indices are 0..n_rows-1.
      default_author: author of writes that name none (default: the OS user).
      gfile: the file layer module for ``scheme://`` paths (default
        :func:`fs.gfile` of ``directory``, imported only when needed).
      storage: ``"append"`` or ``"segments"``; default ``"append"`` for local
        paths, ``"segments"`` for the rest.  ``"segments"`` works on local
        paths too (through gfile), which is how its two-process test runs.
      durable: fsync every history append (default True; about 0.2 ms).
      metadata: the embedding's metadata as ``() -> (names, columns)`` (an
        ``EmbeddingSource.load_metadata``), called once, at the first
        labels.tsv: its columns follow ours there, so the Projector entry of
        the labels can be coloured by them too.  The user's files stay as they are.

    Every method is safe to call from several threads; several stores (in one
    or many processes) may share one directory.  Each write first reads what
    others appended, so it applies to the newest labels; ``base_version`` is
    only recorded (writes merge row by row, last writer wins per row).
    """

    def __init__(self, directory: str, n_rows: int, *, default_author: Optional[str] = None,
                 gfile=None, storage: Optional[str] = None, durable: bool = True,
                 metadata: Optional[Callable[[], Tuple[List[str], List[List[str]]]]] = None):
        if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
            raise LabelError("n_rows must be a whole number >= 0, got %r" % (n_rows,))
        if storage is None:
            storage = "append" if _is_local(directory) and fcntl is not None else "segments"
        if storage == "append":
            if not _is_local(directory):
                raise LabelError("storage 'append' needs a local directory, got %s" % directory)
            self._storage = _AppendStorage(directory, durable)
        elif storage == "segments":
            if gfile is None:
                from . import fs

                gfile = fs.gfile(directory)  # the stub for schemes TensorFlow lacks (s3://)
            self._storage = _SegmentStorage(directory, gfile)
        else:
            raise LabelError("storage must be 'append' or 'segments', got %r" % (storage,))
        self.directory = directory
        self.n_rows = n_rows
        self.default_author = validate_author(default_author) if default_author is not None else os_user()
        self.problems: List[str] = []  # one line per record skipped, for the UI
        self._metadata = metadata
        self._metadata_columns = None
        self._lock = threading.RLock()
        self._snapshot_version = 0
        # The first write of every process snapshots, so labels.tsv appears at once.
        self._snapshot_time = float("-inf")
        with self._lock:
            self._load()
            if isinstance(self._storage, _AppendStorage):
                with contextlib.suppress(OSError):
                    self._problem(self._storage.repair_if_idle() or "")
            if not self._exists(self.projector_metadata_path):
                # So that a Projector config can point at labels.tsv from the start.
                try:
                    with self._storage.locked():
                        self._refresh()
                        self._write_snapshot()
                    self._snapshot_time = float("-inf")  # the first write still snapshots
                except Exception as e:  # a read-only log directory still reads
                    self._problem("cannot write %s: %s" % (self.projector_metadata_path, e))

    # -- public attributes
    @property
    def layout(self) -> str:
        """"append" or "segments"."""
        return self._storage.layout

    @property
    def projector_metadata_path(self) -> str:
        """Path of ``labels.tsv`` (columns ``label``, ``author``, ``index``, then the ``metadata``
        columns; header row; one line per row).

        Written when a store opens a directory without one, then rewritten
        with every snapshot: by the first write of each store object, by a
        write once :data:`SNAPSHOT_EVERY_RECORDS` records or
        :data:`SNAPSHOT_EVERY_SECONDS` seconds have passed since the last
        snapshot, and by :meth:`snapshot`.
        """
        return self._storage.tsv_path

    @property
    def version(self) -> int:
        with self._lock:
            self._refresh()
            return self._model.version

    # -- reading
    def state(self) -> dict:
        """LabelState: ``{"version", "labels", "classes", "can_undo", "can_redo"}`` (docs/HTTP_API.md)."""
        with self._lock:
            self._refresh()
            return self._model.state()

    def row_details(self) -> Tuple[List[Optional[str]], List[Optional[str]], List[Optional[str]]]:
        """(labels, authors, times): per row its label, who set it and when (ISO 8601 UTC).

        Each a list of ``n_rows`` entries, None where the row is unlabelled.
        """
        with self._lock:
            self._refresh()
            m = self._model
            authors = [m.stamps[s][0] if s >= 0 else None for s in m.row_stamp]
            times = [m.stamps[s][1] if s >= 0 else None for s in m.row_stamp]
            return list(m.labels), authors, times

    def history(self, since: int = 0, limit: Optional[int] = None) -> List[dict]:
        """HistoryRecords after version ``since``, oldest first (at most ``limit``).

        HistoryRecord: ``{"seq", "time", "author", "op", "base_version",
        "changes": [{"label": str|None, "rows": [int]}], "previous": [...same...]}``
        plus ``label`` (assign), ``from``/``to`` (rename), ``classes``/``into``
        (merge), ``source`` (import), ``target`` (undo/redo: seq of the action).
        ``seq`` is the record's position in the history (1-based).
        """
        with self._lock:
            out = []
            positions: Dict[str, int] = {}
            pos = 0
            for _, record, _problem in self._storage.iter_all():
                pos += 1
                if record is None:
                    continue
                positions[_record_id(record)] = pos
                if pos <= since:
                    continue
                item = {
                    "seq": pos,
                    "time": record.get("time"),
                    "author": record.get("author"),
                    "op": record["op"],
                    "base_version": record.get("base_version"),
                    "changes": [{"label": l, "rows": r} for l, r in record["set"]],
                    "previous": [{"label": l, "rows": r} for l, r in record.get("prev", [])],
                }
                for k in ("label", "from", "to", "classes", "into", "source"):
                    if k in record:
                        item[k] = record[k]
                if "target" in record:
                    item["target"] = positions.get(record["target"].get("id"))
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
            return out

    def replay(self) -> dict:
        """LabelState rebuilt from the whole history, ignoring the snapshot (a consistency check)."""
        with self._lock:
            model = _Model(self.n_rows)
            for loc, record, _problem in self._storage.iter_all():
                if record is None:
                    if self.layout == "append":
                        model.version += 1
                else:
                    model.apply(record, loc)
            return model.state()

    # -- writing
    def assign(self, rows, label, *, author=None, base_version=None) -> dict:
        """Give ``label`` to ``rows``; returns the new LabelState."""
        label = validate_label(label)
        rows = self._check_rows(rows)
        def effect(m):
            stored = _spelling(m, label)
            return [(r, stored) for r in rows], {"label": stored}

        return self._write("assign", author, base_version, effect)

    def clear(self, rows, *, author=None, base_version=None) -> dict:
        """Remove the labels of ``rows``; returns the new LabelState."""
        rows = self._check_rows(rows)
        return self._write("clear", author, base_version, lambda m: ([(r, None) for r in rows], {}))

    def rename(self, old, new, *, author=None, base_version=None) -> dict:
        """Rename class ``old`` to ``new`` (onto an existing class: merges); returns LabelState."""
        old = validate_label(old)
        new = validate_label(new)
        if old == new:
            raise LabelError("cannot rename class %r to itself" % old)

        def effect(m):
            (stored,), to = self._stored_classes(m, [old]), _spelling(m, new)
            return [(r, to) for r, l in enumerate(m.labels) if l == stored], {"from": stored, "to": to}

        return self._write("rename", author, base_version, effect)

    def merge(self, classes, into, *, author=None, base_version=None) -> dict:
        """Relabel every row of ``classes`` as ``into`` (new or existing); returns LabelState."""
        if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes:
            raise LabelError("classes must be a non-empty list of class names")
        classes = [validate_label(c) for c in classes]
        into = validate_label(into)

        def effect(m):
            stored, target = self._stored_classes(m, classes), _spelling(m, into)
            wanted = set(stored) - {target}
            return ([(r, target) for r, l in enumerate(m.labels) if l in wanted],
                    {"classes": stored, "into": target})

        return self._write("merge", author, base_version, effect)

    def undo(self, *, author=None, base_version=None) -> dict:
        """Undo the newest action not yet undone, whoever made it; ConflictError if none.

        Rows changed again since that action keep their newer label.
        """
        return self._write("undo", author, base_version, lambda m: self._revert(m, "undo"))

    def redo(self, *, author=None, base_version=None) -> dict:
        """Redo the newest undone action (until a new action clears redo); ConflictError if none."""
        return self._write("redo", author, base_version, lambda m: self._revert(m, "redo"))

    def snapshot(self) -> None:
        """Rewrite the snapshot and labels.tsv now."""
        with self._lock, self._storage.locked():
            self._refresh(repair=True)
            self._write_snapshot()

    def flush(self) -> bool:
        """Snapshot when this store wrote records the last snapshot does not hold; whether it did.

        Writes snapshot only every :data:`SNAPSHOT_EVERY_RECORDS` records or
        :data:`SNAPSHOT_EVERY_SECONDS` seconds; the server calls this once
        writing pauses, so labels.tsv (what the stock Projector shows) is
        current a moment after the last label.
        """
        with self._lock:
            if self._model.version == self._snapshot_version:
                return False
            self.snapshot()
            return True

    # -- used by label_io.import_labels
    def _import(self, assignments: Dict[int, str], *, author=None, source: str = "") -> dict:
        rows = self._check_rows(list(assignments))
        extra = {"source": source} if source else {}
        return self._write("import", author, None, lambda m: (
            [(r, assignments[r]) for r in rows], extra))

    # -- internals
    def _check_rows(self, rows) -> List[int]:
        if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
            raise LabelError("rows must be a list of row indices, got %s" % type(rows).__name__)
        out = []
        seen = set()
        for r in rows:
            if isinstance(r, bool):
                raise LabelError("row index must be a whole number, got %r" % (r,))
            try:
                i = r.__index__()
            except (AttributeError, TypeError):
                raise LabelError("row index must be a whole number, got %r" % (r,)) from None
            if not 0 <= i < self.n_rows:
                raise LabelError("row index %d is out of range: this embedding has rows 0..%d"
                                 % (i, self.n_rows - 1) if self.n_rows else
                                 "row index %d is out of range: this embedding has no rows" % i)
            if i not in seen:
                seen.add(i)
                out.append(i)
        if not out:
            raise LabelError("rows is empty: name at least one row")
        out.sort()
        return out

    @staticmethod
    def _stored_classes(model: _Model, classes: Sequence[str]) -> List[str]:
        """The classes as the store spells them; LabelError for a class no row has.

        Names arrive normalised to NFC, while a store written before labels were
        normalised may hold another form of the same name: that one is meant.
        """
        out = []
        for c in classes:
            c = _spelling(model, c)
            if model.counts.get(c, 0) <= 0:
                raise LabelError("unknown class %r: no row has this label" % c)
            out.append(c)
        return out

    def _revert(self, m: _Model, op: str):
        stack = m.undo if op == "undo" else m.redo
        if not stack:
            raise ConflictError("nothing to %s" % op)
        target_id, loc = stack[-1]
        try:
            target = self._storage.read_at(loc)
        except Exception as e:
            raise ConflictError("cannot %s: the record of that action (%s) is unreadable (%s)"
                                % (op, target_id.split(".")[0], e)) from None
        new_of = _ungroup(target["set"])
        prev_of = _ungroup(target.get("prev", []))
        pairs = []
        for row in sorted(new_of):
            new, prev = new_of[row], prev_of.get(row)
            if new == prev or not 0 <= row < m.n_rows:
                continue
            if op == "undo" and m.labels[row] == new:
                pairs.append((row, prev))
            elif op == "redo" and m.labels[row] == prev:
                pairs.append((row, new))
        return pairs, {"target": {"id": target_id, "loc": loc}}

    def _write(self, op, author, base_version, effect) -> dict:
        author = validate_author(author) if author is not None else self.default_author
        if base_version is not None and (isinstance(base_version, bool) or not isinstance(base_version, int)
                                         or base_version < 0):
            raise LabelError("base_version must be a whole number >= 0, got %r" % (base_version,))
        with self._lock, self._storage.locked():
            self._refresh(repair=True)
            m = self._model
            pairs, extra = effect(m)
            seq = self._storage.next_seq(m.version)
            record = {"seq": seq, "writer": self._storage.writer, "time": _now(), "author": author, "op": op}
            if base_version is not None:
                record["base_version"] = base_version
            record.update(extra)
            record["set"] = _group_rows(pairs)
            record["prev"] = _group_rows((r, m.labels[r]) for r, _ in pairs)
            loc = self._storage.append(record)
            m.apply(record, loc)
            if (m.version - self._snapshot_version >= SNAPSHOT_EVERY_RECORDS
                    or time.monotonic() - self._snapshot_time >= SNAPSHOT_EVERY_SECONDS):
                self._write_snapshot()
            return m.state()

    def _columns(self) -> Optional[Tuple[List[str], List[List[str]]]]:
        """The embedding's metadata columns for labels.tsv, read once; None when there are none or they fail."""
        if self._metadata is not None and self._metadata_columns is None:
            try:
                names, values = self._metadata()
                self._metadata_columns = (list(names), [list(v) for v in values])
            except Exception as e:  # a broken metadata file must not stop the labels
                self._problem("labels.tsv without the metadata columns: %s" % e)
                self._metadata_columns = ([], [])
        return self._metadata_columns

    def _write_snapshot(self) -> None:
        snap = self._model.to_snapshot()
        snap.update(self._storage.snapshot_extra())
        self._storage.write_snapshot(snap, self._model.version, self._model.projector_tsv(self._columns()))
        self._snapshot_version = self._model.version
        self._snapshot_time = time.monotonic()

    def _exists(self, path: str) -> bool:
        if isinstance(self._storage, _AppendStorage):
            return os.path.exists(path)
        return self._storage.gfile.exists(path)

    def _problem(self, text: str) -> None:
        if text:
            warnings.warn(text, LabelStoreWarning, stacklevel=3)
            self.problems.append(text)

    def _load(self) -> None:
        self._load_snapshot()
        self._refresh()

    def _load_snapshot(self) -> None:
        snap = None
        try:
            snap = self._storage.load_snapshot()
            model = _Model.from_snapshot(snap, self.n_rows) if snap else _Model(self.n_rows)
        except Exception as e:  # damaged snapshot: the history alone still has everything
            self._problem("label snapshot in %s is unusable (%s); replaying the whole history"
                          % (self.directory, e))
            snap = None
            model = _Model(self.n_rows)
        self._storage.reset(snap)
        self._model = model
        self._snapshot_version = model.version
        if model.out_of_range:
            self._problem("%s: %d labelled rows lie beyond the embedding's %d rows; ignored"
                          % (self.directory, model.out_of_range, self.n_rows))

    def _refresh(self, repair: bool = False) -> None:
        """Apply what other writers appended since we last looked (only the new tail)."""
        # A rebuild (segments only) happens when a record turns up that sorts
        # before ones already applied; after it every record is applied in order.
        for _attempt in range(3):
            m = self._model
            before = m.out_of_range
            for loc, record, problem in self._storage.read_new(m.version):
                if record is None:
                    if isinstance(self._storage, _AppendStorage):
                        m.version += 1  # the damaged line keeps its place in the numbering
                    self._problem(problem)
                    continue
                m.apply(record, loc)
            if m.out_of_range > before:
                self._problem("%s: %d labelled rows lie beyond the embedding's %d rows; ignored"
                              % (self.directory, m.out_of_range - before, self.n_rows))
            if not getattr(self._storage, "needs_reload", False):
                break
            self._load_snapshot()
        if repair:
            self._problem(self._storage.repair_tail() or "")
