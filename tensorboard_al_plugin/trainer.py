"""Background classifier training inside the server, for the tab's predictions and suggestions.

One worker thread trains at a time (bounded CPU next to the layout sessions).
When labels change, :meth:`ClassifierTrainer.request` marks the embedding
stale; the worker retrains the paper's classifier from its current state
(warm start, 50 epochs) on the newest labels and publishes predictions.  A
request never waits for training: readers get the last finished model and a
status that says whether a newer one is on its way.  No HTTP here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Hashable, List, Optional

import numpy as np

logger = logging.getLogger(__name__)


class _Entry:
    def __init__(self, load_features: Callable[[], np.ndarray]):
        self.load_features = load_features
        self.features: Optional[np.ndarray] = None
        self.labels: Optional[List[Optional[str]]] = None
        self.wanted_version = -1
        self.trained_version = -1
        self.state = None  # active.ClassifierState
        self.predicted: Optional[np.ndarray] = None  # class index per row
        self.confidence: Optional[np.ndarray] = None
        self.uncertainty: Optional[np.ndarray] = None
        self.error: Optional[str] = None
        self.needs_labels = False
        self.training = False
        self.seconds = 0.0
        self.last_used = time.time()
        self.on_trained: Optional[Callable] = None  # (version, labels, state, seconds) after a model


class ClassifierTrainer:
    """One background thread retraining the paper's classifier per embedding.

    ``backend`` "numpy" (default, the fastest on a CPU), "keras", or "auto" (Keras
    when TensorFlow is installed, else numpy): the same network either way.
    ``idle_timeout_s``: an embedding whose model nobody asked about for this
    long is forgotten (its features freed); None: only :meth:`forget` does it
    (the server's workspaces decide)."""

    def __init__(self, idle_timeout_s: Optional[float] = 1800.0, backend: str = "numpy"):
        self.backend = backend
        self._entries: Dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle_timeout_s = idle_timeout_s
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="ActiveLabelingTrainer", daemon=True)
        self._thread.start()

    def request(self, key, load_features, labels: List[Optional[str]], version: int,
                on_trained: Optional[Callable] = None) -> None:
        """Ask for a model trained on ``labels`` (the label store's ``version``); returns at once.

        ``on_trained(version, labels, state, seconds)`` is called in the
        worker after each model of ``key`` is trained (the workspace records a round).
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(load_features)
            if on_trained is not None:
                entry.on_trained = on_trained
            entry.last_used = time.time()
            if version > entry.wanted_version:
                entry.wanted_version = version
                entry.labels = list(labels)
                self._wake.notify()

    def status(self, key) -> dict:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return {"status": "idle", "version": None, "classes": []}
            entry.last_used = time.time()
            # Newer labels waiting for a model come first: the error of an
            # older version (one class labeled) says nothing about them, and a
            # tab that read "needs_labels" there would stop asking.
            if entry.training or entry.trained_version < entry.wanted_version:
                status = "training"
            elif entry.error:
                status = "needs_labels" if entry.needs_labels else "error"
            else:
                status = "ready"
            return {"status": status, "version": entry.trained_version if entry.state is not None else None,
                    "classes": list(entry.state.classes) if entry.state is not None else [],
                    "error": entry.error, "train_seconds": round(entry.seconds, 3),
                    "backend": entry.state.members[0].backend if entry.state is not None else None}

    def predictions(self, key):
        """(status dict, predicted class index (n,), confidence (n,), uncertainty (n,)) or None arrays."""
        with self._lock:
            entry = self._entries.get(key)
            arrays = (None, None, None) if entry is None else (entry.predicted, entry.confidence, entry.uncertainty)
        return (self.status(key),) + arrays

    def model(self, key):
        """The last trained ClassifierState (or None), for suggestions."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.state

    def forget(self, key) -> None:
        """Drop the model, predictions and features of ``key`` (a training in flight finishes unseen)."""
        with self._lock:
            self._entries.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()

    # -- worker ------------------------------------------------------------------------

    def _next_job(self):
        while not self._closed:
            now = time.time()
            for key, entry in list(self._entries.items()):
                if self._idle_timeout_s is not None and now - entry.last_used > self._idle_timeout_s:
                    del self._entries[key]  # nobody looked for a long time: free the features
            for key, entry in self._entries.items():
                if entry.wanted_version > entry.trained_version and not entry.training:
                    entry.training = True
                    return key, entry, entry.wanted_version, entry.labels
            self._wake.wait(timeout=30.0)
        return None

    def _work(self) -> None:
        from .active import predictions, train_classifier

        while True:
            with self._lock:
                job = self._next_job()
            if job is None:
                return
            key, entry, version, labels = job
            started = time.perf_counter()
            error, needs_labels, state, arrays = None, False, entry.state, None
            try:
                if entry.features is None:
                    entry.features = np.asarray(entry.load_features(), dtype=np.float32)
                state = train_classifier(entry.features, labels, state=entry.state, backend=self.backend)
                predicted, confidence, uncertainty = predictions(entry.features, state)
                index = {c: i for i, c in enumerate(state.classes)}
                arrays = (np.array([index[p] for p in predicted], dtype=np.int32),
                          np.asarray(confidence, np.float32), np.asarray(uncertainty, np.float32))
            except ValueError as e:  # fewer than two classes labeled yet
                error, needs_labels = str(e), True
            except Exception as e:
                logger.exception("training the classifier for %s failed", key)
                error = "training failed: %s" % e
            with self._lock:
                entry.training = False
                entry.trained_version = max(entry.trained_version, version)
                entry.seconds = time.perf_counter() - started
                entry.error = error
                entry.needs_labels = needs_labels
                if arrays is not None:
                    entry.state = state
                    entry.predicted, entry.confidence, entry.uncertainty = arrays
                on_trained = entry.on_trained if arrays is not None else None
            if on_trained is not None:
                try:
                    on_trained(version, labels, state, entry.seconds)
                except Exception:
                    logger.exception("after training the classifier for %s", key)
