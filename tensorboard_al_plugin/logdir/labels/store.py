"""The label store: durable, shared, undoable labels of one embedding.

One store lives in one directory (next to the embedding it belongs to) and
holds the labels of its ``n_rows`` rows.  Every change is a *record* in a
history that is only ever appended to (records.py); a compacted *snapshot*
(rewritten every :data:`SNAPSHOT_EVERY_RECORDS` records or
:data:`SNAPSHOT_EVERY_SECONDS` seconds, by a background thread: at 10^6
rows it takes the better part of a second, which no write should wait for)
makes loading fast, and ``labels.tsv`` beside it lets the stock Projector
show the labels.  Where
records lie is the storage's business (storage.py: a history file under a
lock, or one object per record); what they add up to is the model's
(model.py).  The store validates requests, takes the lock, brings the
model up to date with what other writers appended, writes the record and
decides when to snapshot.  See docs/LABEL_STORE.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .model import LabelModel
from .records import encode_json_chunks, group_rows, now, record_id, ungroup
from .storage import LabelStoreWarning, Storage, open_storage
from .validate import LabelError, os_user, validate_author, validate_label

# The snapshot policy, read here at every write (to change it, set it on this
# module, ``labels.store``: the package's copies of the names are not read).
#: A write has the snapshot (and labels.tsv) rewritten in the background after this many records...
SNAPSHOT_EVERY_RECORDS = 100
#: ...or when the last snapshot is this many seconds old...
SNAPSHOT_EVERY_SECONDS = 10.0
#: ...but background snapshots take at most this share of the time: after one that took t
#: seconds, the next starts t / SNAPSHOT_MAX_SHARE seconds after it began at the earliest.
#: At 10^6 rows (~0.8 s a snapshot on 2 loaded cores) that is one every 8 s while someone
#: labels without pause: the writes made meanwhile share the interpreter with it less often, and
#: a load replays a few hundred records more (~40 ms at 10^6 rows).
SNAPSHOT_MAX_SHARE = 0.1


class ConflictError(Exception):
    """The request is well formed but cannot apply now (nothing to undo or redo)."""


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
        self._storage: Storage = open_storage(directory, storage, gfile, durable)
        self.directory = directory
        self.n_rows = n_rows
        self.default_author = validate_author(default_author) if default_author is not None else os_user()
        self.problems: List[str] = []  # one line per record skipped, for the UI
        self._metadata = metadata
        self._metadata_columns = None
        self._columns_lock = threading.Lock()  # the metadata is read once, outside self._lock
        self._lock = threading.RLock()
        self._snapshot_version = 0  # records the newest snapshot holds, written or being written...
        self._written_version = 0   # ...and written
        # The first write of every process snapshots, so labels.tsv appears at once.
        self._snapshot_time = float("-inf")
        self._pending: Optional[Tuple[LabelModel, dict]] = None  # what the background thread writes next
        self._snapshot_seconds = 0.0  # how long the last snapshot of this object took
        self._snapshotter: Optional[threading.Thread] = None
        self._snapshotter_done = threading.Condition(self._lock)
        # Taken before self._lock: one snapshot of this object at a time, in the order of their copies.
        self._snapshot_writing = threading.Lock()
        with self._lock:
            self._load()
            with contextlib.suppress(OSError):
                self._problem(self._storage.repair_if_idle() or "")
        if not self._storage.has_tsv():
            # So that a Projector config can point at labels.tsv from the start.
            try:
                self.snapshot()
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
        with every snapshot: after the first write of each store object, after
        a write once :data:`SNAPSHOT_EVERY_RECORDS` records or
        :data:`SNAPSHOT_EVERY_SECONDS` seconds have passed since the last
        snapshot (both in the background, a moment later: see
        :meth:`wait_snapshot`), and by :meth:`snapshot` and :meth:`flush`.
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
                positions[record_id(record)] = pos
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
            model = LabelModel(self.n_rows)
            for loc, record, _problem in self._storage.iter_all():
                if record is None:
                    if self._storage.damaged_counts:
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
            stored = m.spelling(label)
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
            (stored,), to = self._stored_classes(m, [old]), m.spelling(new)
            return [(r, to) for r, l in enumerate(m.labels) if l == stored], {"from": stored, "to": to}

        return self._write("rename", author, base_version, effect)

    def merge(self, classes, into, *, author=None, base_version=None) -> dict:
        """Relabel every row of ``classes`` as ``into`` (new or existing); returns LabelState."""
        if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes:
            raise LabelError("classes must be a non-empty list of class names")
        classes = [validate_label(c) for c in classes]
        into = validate_label(into)

        def effect(m):
            stored, target = self._stored_classes(m, classes), m.spelling(into)
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
        """Rewrite the snapshot and labels.tsv now; returns once they are written.

        Writes go on meanwhile (from other threads): the labels are copied
        under the lock (a few ms at 10^6 rows), the files written without it.
        """
        self._snapshot(only_if_behind=False)

    def flush(self) -> bool:
        """Snapshot when the last snapshot this store wrote lacks records it knows of; whether it did.

        Writes have the snapshot rewritten only every
        :data:`SNAPSHOT_EVERY_RECORDS` records or :data:`SNAPSHOT_EVERY_SECONDS`
        seconds; the server calls this once writing pauses, so labels.tsv
        (what the stock Projector shows) is current a moment after the last
        label.  A background snapshot in progress is finished first.
        """
        return self._snapshot(only_if_behind=True)

    def wait_snapshot(self, timeout: Optional[float] = None) -> bool:
        """Wait until no background snapshot is being written; False when ``timeout`` s passed first."""
        with self._lock:
            return self._snapshotter_done.wait_for(lambda: self._snapshotter is None, timeout)

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
    def _stored_classes(model: LabelModel, classes: Sequence[str]) -> List[str]:
        """The classes as the store spells them; LabelError for a class no row has.

        Names arrive normalised to NFC, while a store written before labels were
        normalised may hold another form of the same name: that one is meant.
        """
        out = []
        for c in classes:
            c = model.spelling(c)
            if model.counts.get(c, 0) <= 0:
                raise LabelError("unknown class %r: no row has this label" % c)
            out.append(c)
        return out

    def _revert(self, m: LabelModel, op: str):
        stack = m.undo if op == "undo" else m.redo
        if not stack:
            raise ConflictError("nothing to %s" % op)
        target_id, loc = stack[-1]
        try:
            target = self._storage.read_at(loc)
        except Exception as e:
            raise ConflictError("cannot %s: the record of that action (%s) is unreadable (%s)"
                                % (op, target_id.split(".")[0], e)) from None
        new_of = ungroup(target["set"])
        prev_of = ungroup(target.get("prev", []))
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
        with self._lock:
            with self._storage.locked():
                self._refresh(repair=True)
                m = self._model
                pairs, extra = effect(m)
                seq = self._storage.next_seq(m.version)
                record = {"seq": seq, "writer": self._storage.writer, "time": now(), "author": author, "op": op}
                if base_version is not None:
                    record["base_version"] = base_version
                record.update(extra)
                record["set"] = group_rows(pairs)
                record["prev"] = group_rows((r, m.labels[r]) for r, _ in pairs)
                loc = self._storage.append(record)
                m.apply(record, loc)
            # Other processes may write again from here: the copies below (the state, a few ms at
            # 10^6 rows, and a snapshot's) need only this object's lock, under which the model and
            # where the storage stands change together.
            since = time.monotonic() - self._snapshot_time
            if ((m.version - self._snapshot_version >= SNAPSHOT_EVERY_RECORDS or since >= SNAPSHOT_EVERY_SECONDS)
                    and since * SNAPSHOT_MAX_SHARE >= self._snapshot_seconds):
                self._snapshot_in_background()
            return m.state()

    def _columns(self) -> Optional[Tuple[List[str], List[List[str]]]]:
        """The embedding's metadata columns for labels.tsv, read once; None when there are none or they fail."""
        with self._columns_lock:
            if self._metadata is not None and self._metadata_columns is None:
                try:
                    names, values = self._metadata()
                    self._metadata_columns = (list(names), [list(v) for v in values])
                except Exception as e:  # a broken metadata file must not stop the labels
                    self._problem("labels.tsv without the metadata columns: %s" % e)
                    self._metadata_columns = ([], [])
            return self._metadata_columns

    def _freeze(self) -> Tuple[LabelModel, dict]:
        """Under the lock: (a copy of the model, where the storage stands): what a snapshot is written from."""
        frozen = self._model.frozen()
        self._snapshot_version = max(self._snapshot_version, frozen.version)
        self._snapshot_time = time.monotonic()
        return frozen, self._storage.snapshot_extra()

    def _snapshot(self, only_if_behind: bool) -> bool:
        """Copy the model under the lock, write its snapshot without it; whether one was written."""
        with self._snapshot_writing:
            with self._lock:
                with self._storage.locked():
                    self._refresh(repair=True)
                if only_if_behind and self._model.version == self._written_version:
                    return False
                frozen, extra = self._freeze()
                if self._pending is not None and self._pending[0].version <= frozen.version:
                    self._pending = None  # this one holds what the background thread was asked for
            self._write_frozen(frozen, extra)
            return True

    def _write_frozen(self, frozen: LabelModel, extra: dict) -> None:
        """Under self._snapshot_writing, without the lock: write the snapshot of ``frozen`` and its labels.tsv.

        Made in pieces of about a millisecond with a ``time.sleep(0)`` after
        each: a thread that waits for the interpreter (a write between two
        system calls) gets it at once, instead of after the 5 ms switch
        interval, some ten times per write.
        """
        started = time.monotonic()
        snap = frozen.to_snapshot(pause=_let_others_run)
        snap.update(extra)
        tsv = (piece.encode("utf-8") for piece in frozen.projector_tsv_chunks(self._columns()))
        self._storage.write_snapshot(_pausing(encode_json_chunks(snap)), frozen.version, _pausing(tsv))
        with self._lock:
            self._written_version = max(self._written_version, frozen.version)
            self._snapshot_seconds = time.monotonic() - started

    def _snapshot_in_background(self) -> None:
        """Under the lock, right after a write: have a background thread snapshot the labels as they are now.

        Only the copy is made here (a few ms at 10^6 rows); turning it into
        files (the better part of a second at 10^6 rows) is the thread's work.
        """
        self._pending = self._freeze()
        if self._snapshotter is None:
            # Not a daemon: a process that exits normally finishes its snapshot first
            # (under a second at 10^6 rows), rather than leave temp files behind.
            self._snapshotter = threading.Thread(target=self._snapshot_loop, daemon=False,
                                                 name="label-snapshot %s" % self.directory)
            self._snapshotter.start()

    def _snapshot_loop(self) -> None:
        """The background snapshot thread: writes the newest copy asked for, until none is left.

        A snapshot is only a shortcut for loading (the history has every
        label): when one fails, the problem is reported, and the next write
        past the policy's limits tries again.  A process killed meanwhile
        leaves the old snapshot and a temp file, which the next snapshot
        removes.
        """
        while True:
            with self._lock:
                if self._pending is None:
                    self._snapshotter = None
                    self._snapshotter_done.notify_all()
                    return
                frozen, extra = self._pending
                self._pending = None
            try:
                with self._snapshot_writing:
                    if frozen.version > self._written_version:  # else snapshot() or flush() was quicker
                        self._write_frozen(frozen, extra)
            except Exception as e:
                with self._lock:
                    self._snapshot_version = self._written_version
                self._problem("could not write the label snapshot in %s (the history has every label; "
                              "retried after the next writes): %s" % (self.directory, e))

    def _problem(self, text: str) -> None:
        if text and not (self.problems and self.problems[-1] == text):
            warnings.warn(text, LabelStoreWarning, stacklevel=3)
            self.problems.append(text)

    def _load(self) -> None:
        self._load_snapshot()
        self._refresh()

    def _load_snapshot(self) -> None:
        snap = None
        try:
            snap = self._storage.load_snapshot()
            model = LabelModel.from_snapshot(snap, self.n_rows) if snap else LabelModel(self.n_rows)
        except Exception as e:  # damaged snapshot: the history alone still has everything
            self._problem("label snapshot in %s is unusable (%s); replaying the whole history"
                          % (self.directory, e))
            snap = None
            model = LabelModel(self.n_rows)
        self._storage.reset(snap)
        self._model = model
        self._snapshot_version = self._written_version = model.version
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
                    if self._storage.damaged_counts:
                        m.version += 1  # the damaged line keeps its place in the numbering
                    self._problem(problem)
                    continue
                m.apply(record, loc)
            if m.out_of_range > before:
                self._problem("%s: %d labelled rows lie beyond the embedding's %d rows; ignored"
                              % (self.directory, m.out_of_range - before, self.n_rows))
            if not self._storage.needs_reload:
                break
            self._load_snapshot()
        if repair:
            self._problem(self._storage.repair_tail() or "")


def _let_others_run() -> None:
    time.sleep(0)  # gives up the interpreter lock to a thread waiting for it


def _pausing(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield piece
        _let_others_run()
