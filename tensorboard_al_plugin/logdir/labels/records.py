"""What the label store writes: history records, their checksummed lines, snapshots.

A history line (and a segment file) is ``<crc32 of the JSON, 8 hex> <JSON>\\n``.
The JSON record::

    {"seq": 12, "writer": "5f0c2a9e1b7d", "time": "2026-11-23T11:35:01.123Z",
     "author": "alice", "op": "assign", "base_version": 11, "label": "cat",
     "set":  [["cat", [3, 4, 9]]],              # new label -> rows (null = cleared)
     "prev": [[null, [3, 9]], ["dog", [4]]]}    # what those rows held before

``op`` is one of assign, clear, rename (+ ``from``, ``to``), merge
(+ ``classes``, ``into``), import (+ ``source``), undo and redo
(+ ``target``: ``{"id": "<seq>.<writer>", "loc": <where the record is>}``).
Replaying ``set`` of every record in order gives the current labels.  The
snapshot is :meth:`model.LabelModel.to_snapshot` plus what the storage adds
(see storage.py); both formats are described in docs/LABEL_STORE.md.

Everything read back is checked here: a record or snapshot that passes its
checksum may still hold what no writer of this store writes, and is refused
with ValueError like a torn one.
"""

from __future__ import annotations

import datetime
import json
import zlib
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from .validate import MAX_AUTHOR_LENGTH, MAX_LABEL_LENGTH, LabelError, validate_text

FORMAT = "tensorboard-al-labels"
FORMAT_VERSION = 1
OPS = ("assign", "clear", "rename", "merge", "import", "undo", "redo")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode_json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_json_chunks(obj: dict, items_per_chunk: int = 8192) -> Iterator[bytes]:
    """:func:`encode_json` of a dict in pieces: a long list value (a snapshot's 10^6-row
    ``labels`` and ``row_stamps``) is encoded ``items_per_chunk`` items at a time.

    The same JSON text as ``encode_json(obj)``.  In pieces so that a
    background snapshot never holds the whole text, nor the interpreter for
    long (one ``json.dumps`` of 10^6 ints holds it for tens of ms, during
    which no write of another thread can run).
    """
    sep = b"{"
    for key, value in obj.items():
        yield sep + encode_json(key) + b":"
        sep = b","
        if isinstance(value, list) and len(value) > items_per_chunk:
            for a in range(0, len(value), items_per_chunk):
                yield (b"[" if a == 0 else b",") + encode_json(value[a:a + items_per_chunk])[1:-1]
            yield b"]"
        else:
            yield encode_json(value)
    yield b"{}" if sep == b"{" else b"}"


def encode_record(record: dict) -> bytes:
    body = encode_json(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_record(line: bytes) -> dict:
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
    if not isinstance(record, dict) or record.get("op") not in OPS or not isinstance(
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


def is_loc(value) -> bool:
    """Where a record lies in its storage: a byte offset (append) or a segment name."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _check_text(value, what: str, max_length: int, *, optional: bool = False, blank: bool = False) -> None:
    """``optional``: None is fine; ``blank``: "" is fine (an author or time a record left out)."""
    if (value is None and optional) or (value == "" and blank):
        return
    try:
        validate_text(value, what, max_length)
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
                and is_loc(target.get("loc"))):
            raise ValueError("%s target %r is not {id, loc}" % (record["op"], target))


def check_snapshot(snap) -> None:
    """ValueError unless ``snap`` is a snapshot this store could have written (see LabelModel.to_snapshot)."""
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
                    and is_loc(entry[1])):
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


def record_id(record: dict) -> str:
    return "%d.%s" % (record.get("seq", 0), record.get("writer", ""))


def group_rows(pairs: Iterable[Tuple[int, Optional[str]]]) -> List[list]:
    """[(row, label)] -> [[label, [rows...]], ...] in first-appearance order of labels."""
    groups: Dict[Optional[str], List[int]] = {}
    for row, label in pairs:
        groups.setdefault(label, []).append(row)
    return [[label, rows] for label, rows in groups.items()]


def ungroup(groups) -> Dict[int, Optional[str]]:
    return {row: label for label, rows in groups for row in rows}
