"""Where a label store keeps its records: the :class:`Storage` protocol and its two backends.

Two layouts, chosen from the path by :func:`open_storage` (see docs/LABEL_STORE.md):

* ``"append"`` (:class:`AppendStorage`, local paths): ``history.jsonl``
  appended to under an exclusive ``fcntl.flock`` on ``.lock``;
  ``snapshot.json`` and ``labels.tsv`` written beside the old ones without
  the lock and renamed over them under it (:func:`fs.pending_file`).
* ``"segments"`` (:class:`SegmentStorage`, ``scheme://`` paths: object
  stores, ``memory://``, ``ram://``): one file per record,
  ``segments/<seq>-<writer>.json``, each written once under a name no other
  writer uses, through TensorBoard's file layer (gfile), which has neither
  locks nor atomic rename nor exclusive create.  Records are ordered by
  ``(seq, writer)``.

A backend knows where records and snapshots lie and how writers exclude
each other; it knows nothing of labels (the model) or of when to snapshot
(the store).  A new backend implements :class:`Storage` and gets a branch in
:func:`open_storage`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import re
import stat
import time
import uuid
import warnings
from typing import ContextManager, Dict, Generator, Iterable, Iterator, Optional, Protocol, Set, Tuple

try:  # fcntl is POSIX only; without it local stores fall back to segments.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from .. import fs
from .records import decode_record, encode_record
from .validate import LabelError

HISTORY_FILE = "history.jsonl"
SNAPSHOT_FILE = "snapshot.json"
PROJECTOR_TSV = "labels.tsv"
LOCK_FILE = ".lock"
SEGMENT_DIR = "segments"

_SEGMENT_RE = re.compile(r"^(\d{10,})-([0-9a-f]{1,32})\.json$")
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{10,})-([0-9a-f]{1,32})\.json$")

#: The first bytes of a snapshot.json (LabelModel.to_snapshot's key order): its version.
_SNAPSHOT_HEAD_RE = re.compile(rb'^\{"format":"tensorboard-al-labels","format_version":1,"n_rows":\d+,"version":(\d+),')
#: fs.temp_path's names: ``<file>.tmp-<pid>-<8 hex>``.
_TEMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}$")
#: A temp file of a live process untouched this long is a stuck writer's: removed.
STALE_TEMP_SECONDS = 600.0


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (a temp file of it is a killed writer's)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs, as another user
        return False
    return False


#: What reading the history yields, one per record: ``(loc, record, problem)``.
#: ``loc`` is where the record lies (byte offset or segment name; the model
#: keeps it for undo/redo); ``record`` is None when the record is damaged, and
#: ``problem`` then says so in one line ("" otherwise).
Read = Tuple[object, Optional[dict], str]


class LabelStoreWarning(UserWarning):
    """Something on disk was skipped (torn or corrupt record); the store still works."""


class Storage(Protocol):
    """What :class:`~.store.LabelStore` asks of where its records lie.

    The store calls every method but :meth:`write_snapshot` under its own
    thread lock; the write path (``read_new``, ``repair_tail``, ``next_seq``,
    ``append``) runs inside :meth:`locked`.
    """

    #: ``"append"`` or ``"segments"``.
    layout: str
    #: Random id of this storage object; every record it writes names it.
    writer: str
    #: Where labels.tsv (the stock Projector's metadata) is written.
    tsv_path: str
    #: Whether a damaged record still takes a version number.  Append: records
    #: are numbered by their line, so the damaged line keeps its place.
    #: Segments: a damaged file is skipped (and retried: it may be half written).
    damaged_counts: bool
    #: Set by :meth:`read_new` when a record turned up that sorts before ones
    #: already applied; the store then reloads from a snapshot (segments only).
    needs_reload: bool

    def locked(self) -> ContextManager[None]:
        """Exclude every other writer of the directory (threads, store objects, processes) while held."""

    def load_snapshot(self) -> Optional[dict]:
        """The newest usable snapshot, or None; raises (ValueError, OSError) when it is unusable."""

    def reset(self, snap: Optional[dict]) -> None:
        """Start reading again right after what ``snap`` holds (None: from the first record)."""

    def snapshot_extra(self) -> dict:
        """What this storage adds to a snapshot to know where to go on reading (see docs/LABEL_STORE.md)."""

    def read_new(self, version: int) -> Iterator[Read]:
        """The records written since the last read (or reset), in order; ``version``: records applied."""

    def iter_all(self) -> Iterator[Read]:
        """Every record from the first, in order, without moving where :meth:`read_new` goes on."""

    def read_at(self, loc) -> dict:
        """The record at ``loc`` (undo/redo read their target again); raises when it is unreadable."""

    def next_seq(self, version: int) -> int:
        """The ``seq`` of the next record this writer appends, ``version`` records being applied."""

    def append(self, record: dict) -> object:
        """Write one record (whole or not at all); returns its loc."""

    def write_snapshot(self, snapshot: Iterable[bytes], version: int, tsv: Iterable[bytes]) -> bool:
        """Store a snapshot (the JSON of the model's snapshot plus :meth:`snapshot_extra`, holding
        ``version`` records) and labels.tsv, each given in pieces; whether they were stored.

        Called *without* :meth:`locked` and while other writers append: the
        snapshot says where in the history it ends, so records appended meanwhile
        are simply replayed after it.  A backend that can tell keeps a newer
        snapshot that another writer stored meanwhile (and returns False).
        """

    def repair_tail(self) -> Optional[str]:
        """Under :meth:`locked`: move aside a last record that a crashed writer cut short; the problem in one line, or None."""

    def repair_if_idle(self) -> Optional[str]:
        """Like :meth:`repair_tail` when no writer holds the lock now (so the tear is a crash); else None."""

    def has_tsv(self) -> bool:
        """Whether labels.tsv exists yet."""


def open_storage(directory: str, storage: Optional[str], gfile, durable: bool) -> Storage:
    """The backend for ``directory``: ``storage`` names it, None picks by the path.

    None: ``"append"`` for local paths (where ``fcntl`` exists), else
    ``"segments"``; ``gfile``: the file layer for segments (default
    :func:`fs.gfile` of ``directory``, imported only when needed); ``durable``:
    fsync appends and snapshots (append only).  LabelError for a bad choice.
    """
    if storage is None:
        storage = "append" if fs.local_path(directory) is not None and fcntl is not None else "segments"
    if storage == "append":
        if fs.local_path(directory) is None:
            raise LabelError("storage 'append' needs a local directory, got %s" % directory)
        return AppendStorage(directory, durable)
    if storage == "segments":
        if gfile is None:
            gfile = fs.gfile(directory)  # the stub for schemes TensorFlow lacks (s3://)
        return SegmentStorage(directory, gfile)
    raise LabelError("storage must be 'append' or 'segments', got %r" % (storage,))


def projector_metadata_path(directory: str) -> str:
    """Where the store in ``directory`` keeps ``labels.tsv`` (see LabelStore.projector_metadata_path)."""
    if fs.local_path(directory) is not None:
        return os.path.join(os.path.abspath(fs.local_path(directory)), PROJECTOR_TSV)
    return posixpath.join(directory.rstrip("/"), PROJECTOR_TSV)


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
    from ..source import PLUGIN_NAME  # not at the top: source imports numpy

    parts = directory.replace("\\", "/").split("/")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == PLUGIN_NAME and parts[i - 1] == "plugins":
            fs.check_dir(directory, "/".join(parts[:i - 1]) or "/", "labels folder", outside="its run folder")
            return


def _open_file(path: str, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a regular file that is no symlink (a link is never followed, a FIFO never waited on)."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise fs.SourceError("%s is a symbolic link; the label store does not follow links" % path) from None
        if e.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise fs.SourceError("%s is not a regular file" % path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise fs.SourceError("%s is not a regular file" % path)
    return fd


class AppendStorage:
    """Local directory: one append-only history file guarded by ``flock``."""

    layout = "append"
    damaged_counts = True

    def __init__(self, directory: str, durable: bool):
        self.directory = os.path.abspath(fs.local_path(directory))
        _confine(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        self.history_path = os.path.join(self.directory, HISTORY_FILE)
        self.snapshot_path = os.path.join(self.directory, SNAPSHOT_FILE)
        self.tsv_path = os.path.join(self.directory, PROJECTOR_TSV)
        self.lock_path = os.path.join(self.directory, LOCK_FILE)
        self.durable = durable
        self.offset = 0  # bytes of history already applied
        self.writer = uuid.uuid4().hex[:12]
        self.needs_reload = False  # one history file has one order

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

    def read_new(self, version: int) -> Iterator[Read]:
        """The complete lines appended since the last read."""
        self.offset = yield from self._read_from(self.offset, version)

    def iter_all(self) -> Iterator[Read]:
        yield from self._read_from(0, 0)

    def _read_from(self, start: int, version: int) -> Generator[Read, None, int]:
        """The complete lines from byte ``start`` (``version`` records before it); returns the byte after them."""
        try:
            f = os.fdopen(_open_file(self.history_path, os.O_RDONLY), "rb")
        except FileNotFoundError:
            return start
        with f:
            f.seek(start)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        pos = 0
        line_no = version
        while pos < end:
            nl = data.index(b"\n", pos)
            loc = start + pos
            line_no += 1
            try:
                record = decode_record(data[pos:nl])
                problem = ""
            except ValueError as e:
                record = None
                problem = ("%s: record %d (byte %d) is damaged (%s); skipped, the records after it are kept"
                           % (self.history_path, line_no, loc, e))
            pos = nl + 1
            yield loc, record, problem
        return start + end

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
        data = encode_record(record)
        fd = _open_file(self.history_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            loc = os.lseek(fd, 0, os.SEEK_END)
            # One write call: a killed process leaves the line whole or not at all
            # (short of a power loss, which fsync covers).
            written = os.write(fd, data)
            if written != len(data):  # a full disk: take the part back, the write fails
                os.ftruncate(fd, loc)
                raise OSError(errno.ENOSPC, "only %d of %d bytes of the record were written to %s"
                              % (written, len(data), self.history_path))
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.offset = loc + len(data)
        return loc

    def read_at(self, loc) -> dict:
        with os.fdopen(_open_file(self.history_path, os.O_RDONLY), "rb") as f:
            f.seek(int(loc))
            return decode_record(f.readline().rstrip(b"\n"))

    def write_snapshot(self, snapshot: Iterable[bytes], version: int, tsv: Iterable[bytes]) -> bool:
        # The slow part (writing and fsyncing some 30 MB at 10^6 rows) without
        # the lock, so that appends go on meanwhile; only the renames under it,
        # after a look at the snapshot there now: a newer one (another process's)
        # stays.  Either way both files are whole: renames are atomic.
        with fs.pending_file(self.snapshot_path, durable=self.durable, mode=0o644) as snap_file, \
                fs.pending_file(self.tsv_path, durable=self.durable, mode=0o644) as tsv_file:
            for piece in snapshot:
                snap_file.write(piece)
            for piece in tsv:
                tsv_file.write(piece)
            snap_file.finish()
            tsv_file.finish()
            with self.locked():
                self._remove_stale_temp_files()
                if self._version_on_disk() > version:
                    return False
                snap_file.replace()
                tsv_file.replace()
        return True

    def _version_on_disk(self) -> int:
        """``version`` of snapshot.json as its first bytes say (-1 when there is none or it is not ours)."""
        try:
            with os.fdopen(_open_file(self.snapshot_path, os.O_RDONLY), "rb") as f:
                head = f.read(256)
        except (OSError, fs.SourceError):
            return -1
        m = _SNAPSHOT_HEAD_RE.match(head)
        return int(m.group(1)) if m else -1

    def _remove_stale_temp_files(self) -> None:
        """Under the lock: delete the temp files of writers that were killed.

        A snapshot's temp files are written without the lock, so a temp file
        may be another writer's work in progress: only those of a process that
        no longer runs on this machine, or untouched for
        :data:`STALE_TEMP_SECONDS`, are removed.  (Removing a live one would
        only make that snapshot fail, never lose a label: the history is whole.)
        """
        now = time.time()
        for name in os.listdir(self.directory):
            m = _TEMP_RE.search(name)
            if not m:
                continue
            path = os.path.join(self.directory, name)
            with contextlib.suppress(OSError):
                if _process_gone(int(m.group(1))) or now - os.lstat(path).st_mtime > STALE_TEMP_SECONDS:
                    os.remove(path)

    def has_tsv(self) -> bool:
        return os.path.exists(self.tsv_path)


class SegmentStorage:
    """Any gfile path: one file per record under a name only its writer uses."""

    layout = "segments"
    damaged_counts = False

    def __init__(self, directory: str, gfile):
        self.gfile = gfile
        self.directory = directory.rstrip("/")
        self.segment_dir = self._join(SEGMENT_DIR)
        self.tsv_path = self._join(PROJECTOR_TSV)
        if fs.local_path(self.directory) is not None:
            _confine(os.path.abspath(fs.local_path(self.directory)))
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
                decode_record(self._read(self._segment_path(name)).rstrip(b"\n"))
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

    def _unapplied(self, covered: Dict[str, int], known: Set[str]):
        """Sorted ``((seq, writer), name)`` of the segments neither in ``known`` nor held by
        ``covered`` (writer -> highest seq a snapshot holds); adds the held ones to ``known``."""
        found = []
        # Skipping known names keeps this cheap: the listing grows with the history.
        for key, name in self._keys(known):
            if key[0] <= covered.get(key[1], 0):
                known.add(name)
                continue
            found.append((key, name))
        found.sort()
        return found

    def read_new(self, version: int) -> Iterator[Read]:
        for key, name in self._unapplied(self.covered, self.known):
            path = self._segment_path(name)
            try:
                record = decode_record(self._read(path).rstrip(b"\n"))
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
        return None  # a segment is one write: it is whole or being written, never torn in a line

    def repair_if_idle(self) -> Optional[str]:
        return None

    def next_seq(self, version: int) -> int:
        # Never below our own last seq: reusing it would overwrite our own file.
        return max(self.max_seq, self.own_seq) + 1

    def append(self, record: dict):
        name = "%010d-%s.json" % (record["seq"], self.writer)
        self._write(self._segment_path(name), encode_record(record))
        key = (record["seq"], self.writer)
        self.own_seq = record["seq"]
        self.seen.add(key)
        self.known.add(name)
        self.max_seq = max(self.max_seq, key[0])
        self.last_key = max(self.last_key, key)
        return name

    def read_at(self, loc) -> dict:
        # loc comes from a snapshot, which anyone who can write the log directory can edit:
        # only a segment file name of this store is read, never a path leading elsewhere.
        if not isinstance(loc, str) or not _SEGMENT_RE.match(loc):
            raise ValueError("%r is not a segment of this store" % (loc,))
        return decode_record(self._read(self._segment_path(loc)).rstrip(b"\n"))

    def iter_all(self) -> Iterator[Read]:
        for _key, name in self._unapplied({}, set()):
            try:
                record = decode_record(self._read(self._segment_path(name)).rstrip(b"\n"))
            except Exception as e:
                yield name, None, "%s: record is damaged or incomplete (%s); skipped" % (name, e)
                continue
            yield name, record, ""

    def write_snapshot(self, snapshot: Iterable[bytes], version: int, tsv: Iterable[bytes]) -> bool:
        # One object each (a single PUT: object stores have no append), under a
        # name of its own; the newest usable one is loaded.
        name = "snapshot-%010d-%s.json" % (version, self.writer)
        self._write(self._join(name), b"".join(snapshot))
        self._write(self.tsv_path, b"".join(tsv))
        self._prune_snapshots()
        return True

    def has_tsv(self) -> bool:
        return self.gfile.exists(self.tsv_path)

    def _prune_snapshots(self, keep: int = 3) -> None:
        remove = getattr(self.gfile, "remove", None)
        if remove is None:  # TensorBoard's stub gfile cannot delete; fs can (boto3 for s3://, else fsspec)
            remove = fs.remove
        names = sorted(n for n in self.gfile.listdir(self.directory) if _SNAPSHOT_RE.match(n))
        for name in names[:-keep]:
            with contextlib.suppress(Exception):
                remove(self._join(name))
