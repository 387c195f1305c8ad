"""Discovery: every embedding of a log directory, scanned in the background and cached.

A scan walks the logdir once, reads each projector config and each manifest
of this plugin's own format, and keeps the result.  Files whose size and
modification time did not change since the last scan are not read again, so a
rescan on every page load stays cheap even with large TSV tensors.
TensorBoard's start-up never waits for a scan: ``has_embeddings()`` answers
from the cache at once and starts a scan when none was made yet.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import embeddings, fs, projector
from .source import PLUGIN_NAME, EmbeddingSource, SourceError, in_plugin_folder, safe_dir_name

logger = logging.getLogger(__name__)


class UnknownEmbedding(KeyError):
    """No embedding of that run and name was found; the message says what exists."""

    def __str__(self):
        return self.args[0]


def scan_logdir(logdir: str, cache: Optional[dict] = None) -> List[EmbeddingSource]:
    """All embeddings under ``logdir``, broken ones included (``ok=False`` and a problem).

    ``cache`` maps a file to ``(signature, sources)`` from an earlier scan and
    is updated in place.
    """
    cache = cache if cache is not None else {}
    configs, manifests = [], []
    # Every path below is built from this one: a relative --logdir would give
    # relative label folders that no longer compare equal to the absolute
    # paths the label store and the Projector publishing work with.
    logdir = fs.absolute(logdir)
    if not fs.isdir(logdir):
        return []
    for directory, _subdirs, files in fs.walk(logdir):
        # Configs inside the plugin's own folders are ours (projector_labels.py), not the user's.
        if projector.CONFIG_NAME in files and not in_plugin_folder(directory):
            configs.append(fs.join(directory, projector.CONFIG_NAME))
        norm = directory.replace("\\", "/").rstrip("/")
        if embeddings.MANIFEST in files and norm.rsplit("/", 2)[-2:-1] == [PLUGIN_NAME]:
            manifests.append(fs.join(directory, embeddings.MANIFEST))
    found: List[EmbeddingSource] = []
    seen = set()
    for path in configs + manifests:
        sig = _signature(path)
        hit = cache.get(path)
        if hit is not None and hit[0] == sig and sig is not None:
            sources = hit[1]
        else:
            try:
                if path.endswith(projector.CONFIG_NAME):
                    sources = projector.read_config(path, logdir)
                else:
                    sources = [embeddings.read_manifest(path, logdir)]
            except Exception as e:  # never let one file break discovery
                logger.exception("reading %s failed", path)
                sources = [EmbeddingSource(fs.relpath(fs.dirname(path), logdir), path.rsplit("/", 1)[-1],
                                           "projector").fail("%s could not be read: %s" % (path, e))]
            cache[path] = (sig, sources)
        seen.add(path)
        found.extend(sources)
    for stale in set(cache) - seen:
        del cache[stale]
    return [_check_label_dir(s, logdir) for s in _deduplicate(found)]


def _check_label_dir(source: EmbeddingSource, logdir: str) -> EmbeddingSource:
    """``source``, or a broken copy of it when its label folder (or a folder above) leads out of the logdir.

    Checked on every scan, outside the file cache: a folder swapped for a
    symlink changes no size or time the cache looks at.
    """
    if not source.label_dir or not source.ok:
        return source
    try:
        fs.check_dir(source.label_dir, logdir, "labels folder")
    except SourceError as e:
        return dataclasses.replace(source, problems=source.problems + ["%s; no labels are written there" % e],
                                   ok=False)
    return source


def _signature(path: str):
    """Change marker of a config or manifest and of the files it names, cheaply."""
    sig = fs.signature(path)
    if sig is None:
        return None
    # A projector config's tensor can change without the config changing; the
    # directory listing with sizes catches rewritten assets next to it.
    try:
        directory = fs.dirname(path)
        names = sorted(fs.listdir(directory))
        extra = tuple((n, fs.signature(fs.join(directory, n))) for n in names
                      if not fs.isdir(fs.join(directory, n)))
    except Exception:
        extra = ()
    return (sig, extra)


def _deduplicate(sources: List[EmbeddingSource]) -> List[EmbeddingSource]:
    """Two configs naming the same tensor in one run are told apart by a suffix."""
    counts = collections.Counter(s.key for s in sources)
    seen: Dict[Tuple[str, str], int] = {}
    out = []
    for s in sources:
        if counts[s.key] > 1:
            k = seen.get(s.key, 0) + 1
            seen[s.key] = k
            if k > 1:
                s.name = "%s (%d)" % (s.name, k)
                if s.format == "projector" and s.label_dir:
                    # Its own label store: the two tensors may not even have the same rows.
                    base = fs.dirname(fs.dirname(s.label_dir.rstrip("/\\")))
                    s.label_dir = fs.join(base, safe_dir_name(s.name), "labels")
        out.append(s)
    out.sort(key=lambda s: (s.run, s.name))
    return out


class Catalog:
    """The cached list of embeddings of one logdir.

    Loaded tensors are not kept here: the server's workspaces (workspace.py)
    keep each embedding's features while it is in use.
    """

    def __init__(self, logdir: Optional[str]):
        self.logdir = logdir
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._file_cache: dict = {}
        self._sources: Optional[List[EmbeddingSource]] = None
        self._scan_thread: Optional[threading.Thread] = None
        self._last_scan = 0.0

    # -- discovery -------------------------------------------------------------------

    def has_embeddings(self) -> bool:
        """Answers at once from the cache; starts a background scan when there is none."""
        with self._lock:
            sources = self._sources
        if sources is None:
            self.scan_in_background()
            return False
        return bool(sources)

    def scan_in_background(self) -> None:
        with self._lock:
            if self._scan_thread is not None and self._scan_thread.is_alive():
                return
            self._scan_thread = threading.Thread(target=self._scan_quietly, name="ActiveLabelingScan",
                                                 daemon=True)
            self._scan_thread.start()

    def _scan_quietly(self) -> None:
        try:
            self.rescan()
        except Exception:
            logger.exception("scanning %s failed", self.logdir)

    def rescan(self) -> List[EmbeddingSource]:
        with self._scan_lock:
            sources = scan_logdir(self.logdir, self._file_cache) if self.logdir else []
            with self._lock:
                self._sources = sources
                self._last_scan = time.time()
            return sources

    def list(self, max_age_s: float = 2.0) -> List[EmbeddingSource]:
        """The embeddings, rescanned when the cache is older than ``max_age_s``."""
        with self._lock:
            fresh = self._sources is not None and time.time() - self._last_scan < max_age_s
            sources = self._sources
        if fresh:
            return list(sources)
        return self.rescan()

    @property
    def scanning(self) -> bool:
        return self._scan_thread is not None and self._scan_thread.is_alive()

    def get(self, run: str, name: str) -> EmbeddingSource:
        sources = self.list(max_age_s=30.0)
        for s in sources:
            if s.run == run and s.name == name:
                return s
        # Maybe written after the last scan.
        for s in self.rescan():
            if s.run == run and s.name == name:
                return s
        runs = sorted({s.run for s in sources})
        if run not in runs:
            raise UnknownEmbedding('unknown run "%s"; runs with embeddings: %s'
                                   % (run, ", ".join(runs) or "none"))
        names = sorted(s.name for s in sources if s.run == run)
        raise UnknownEmbedding('unknown embedding "%s" in run "%s"; it has: %s' % (name, run, ", ".join(names)))

    # -- data --------------------------------------------------------------------------

    def tensor(self, source: EmbeddingSource) -> np.ndarray:
        """The float32 (rows, dims) tensor, read now (SourceError naming the embedding when it cannot be)."""
        try:
            return np.ascontiguousarray(source.load_tensor(), dtype="<f4")
        except SourceError:
            raise
        except Exception as e:  # noqa: BLE001 - TensorFlow's errors too
            # The file went away or changed after discovery: say which, never a 500.
            raise SourceError("the tensor of embedding %s (run %s) cannot be read: %s"
                              % (source.name, source.run, e)) from e
