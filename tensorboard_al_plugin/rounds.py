"""Active-learning rounds: every classifier retrain is a round, kept next to the labels.

A round records what the person did since the round before (the rows whose
label changed, with the new label, None for a cleared one), how many rows
were labeled and with which classes, and what the model needs for its own
view of the data: the weights of the classifier's hidden layer (the paper's
D/4 ReLU units; a few kB to a few MB, whatever the row count).

What costs is done only when someone looks (the Rounds panel): the model
view (the hidden layer of every row on its first three principal axes,
turned onto a neighbouring round's view when that one was computed, so that
stepping moves the thumbnails instead of flipping them; computed once, then
kept) and the accuracy estimate, cross-validated on the labeled rows of the
round (several trainings; :meth:`RoundStore.missing_accuracy`).

Files, in ``<labels folder>/rounds/``, written whole and atomically (local
folders and object stores alike, several processes may add rounds)::

    r-<13-digit ms time>-<8 hex>.json   the round (see ROUND_KEYS)
    r-<same>.npz                        the hidden layer: W1 (float16), b1, mean, scale
    r-<same>.npy                        its model view, float16 (rows, 3), once asked for

Only names of that form are read; a file that does not parse is skipped and
said once in ``problems``.  No HTTP here.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .logdir import fs
from .logdir.source import SourceError

logger = logging.getLogger(__name__)

ROUND_RE = re.compile(r"^(r-\d{13}-[0-9a-f]{8})\.json$")
#: Model-view components stored per round (the tab shows 2 or 3).
MODEL_VIEW_COMPONENTS = 3
#: Folds of the accuracy estimate (fewer when a class has fewer labeled rows).
CV_FOLDS = 3
_MAX_JSON_BYTES = 256 * 1024 * 1024
ROUND_KEYS = ("id", "version", "time", "rows", "n_labeled", "classes", "changed", "accuracy", "accuracy_std",
              "accuracy_folds", "n_components", "train_seconds", "accuracy_on", "suggested")
#: What ``accuracy`` was measured on: "labeled rows" (cross-validated here), or a "held-out set" (benchmark).
ACCURACY_ON = ("labeled rows", "held-out set")


def hidden_layer(state) -> Dict[str, np.ndarray]:
    """What :func:`model_view` needs of a trained classifier: its input scaling and hidden layer."""
    W1, b1, _, _ = state.classifier.logit_parts()
    return {"W1": np.asarray(W1, np.float32), "b1": np.asarray(b1, np.float32),
            "mean": np.asarray(state.mean, np.float32), "scale": np.asarray(state.scale, np.float32)}


def model_view(features, layer: Dict[str, np.ndarray], n_components: int = MODEL_VIEW_COMPONENTS) -> np.ndarray:
    """The hidden layer (:func:`hidden_layer`) of every row, on its first principal axes: float32 (rows, n_components)."""
    from .tsne.pca import principal_components

    X = (np.asarray(features, np.float32) - layer["mean"]) / layer["scale"]
    hidden = np.maximum(X @ layer["W1"].astype(np.float32) + layer["b1"].astype(np.float32), 0.0)
    k = min(n_components, *hidden.shape)
    out = np.zeros((hidden.shape[0], n_components), np.float32)
    if k > 0 and float(hidden.std()) > 0:
        out[:, :k] = principal_components(hidden, k, solver="exact" if hidden.shape[0] <= 5000 else "randomized")
    return out


def align_to(previous: Optional[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """``positions`` turned about its centre (a rotation or reflection) and moved onto ``previous``'s
    centre, to lie closest to ``previous`` (orthogonal Procrustes; no scaling)."""
    if previous is None or previous.shape != positions.shape:
        return positions
    centre = previous.astype(np.float32).mean(axis=0)
    a = positions - positions.mean(axis=0)
    b = previous.astype(np.float32) - centre
    u, _, vt = np.linalg.svd(a.T.astype(np.float64) @ b.astype(np.float64))
    return ((a @ (u @ vt)) + centre).astype(np.float32)


def cv_accuracy(features, labels: Sequence, folds: int = CV_FOLDS, random_state: int = 0):
    """(mean, std, folds) accuracy of the paper's classifier, cross-validated on the labeled rows.

    (None, None, 0) when it cannot be estimated: fewer than two classes with at
    least two labeled rows each.  Stratified folds; at most ``folds``, fewer
    when the smallest class has fewer rows.
    """
    from sklearn.model_selection import StratifiedKFold

    from .active import train_classifier
    from .active.suggest import parse_labels

    codes, _ = parse_labels(labels)
    rows = np.flatnonzero(codes >= 0)
    counts = np.bincount(codes[rows]) if len(rows) else np.zeros(0, int)
    kept = np.flatnonzero(counts >= 2)
    rows = rows[np.isin(codes[rows], kept)]
    if len(kept) < 2:
        return None, None, 0
    k = int(min(folds, counts[kept].min()))
    X = np.asarray(features, np.float32)
    scores = []
    for train, test in StratifiedKFold(k, shuffle=True, random_state=random_state).split(rows, codes[rows]):
        train_labels = [None] * len(X)
        for r in rows[train]:
            train_labels[r] = int(codes[r])
        try:
            state = train_classifier(X, train_labels, random_state=random_state)
        except ValueError:  # a fold with one class
            continue
        predicted = state.predict_proba(X[rows[test]]).argmax(axis=1)
        truth = [state.classes.index(int(codes[r])) if int(codes[r]) in state.classes else -1 for r in rows[test]]
        scores.append(float(np.mean(predicted == np.asarray(truth))))
    if not scores:
        return None, None, 0
    return round(float(np.mean(scores)), 4), round(float(np.std(scores)), 4), len(scores)


class RoundStore:
    """The rounds of one embedding of ``rows`` rows, in ``directory`` (created at the first round)."""

    def __init__(self, directory: str, rows: int):
        self.directory = directory
        self.rows = rows
        self.problems: List[str] = []
        self._lock = threading.RLock()
        self._cache: Dict[str, dict] = {}   # file name -> parsed round

    # -- reading ---------------------------------------------------------------------

    def rounds(self) -> List[dict]:
        """Every round of this embedding (of its current row count), oldest first, numbered from 1."""
        with self._lock:
            names = self._names()
            out = []
            for name in names:
                rnd = self._cache.get(name)
                if rnd is None:
                    rnd = self._read(name)
                    if rnd is None:
                        continue
                    self._cache[name] = rnd
                if rnd["rows"] == self.rows:
                    out.append(rnd)
            out.sort(key=lambda r: (r["version"], r["id"]))  # label versions order the rounds, whoever wrote them
            return [dict(r, round=i + 1) for i, r in enumerate(out)]

    def labels_at(self, rnd_number: int, rounds: Optional[List[dict]] = None) -> List[Optional[str]]:
        """The labels as they were at round ``rnd_number`` (1-based), replayed from the rounds' changes."""
        rounds = self.rounds() if rounds is None else rounds
        labels: List[Optional[str]] = [None] * self.rows
        for rnd in rounds[:rnd_number]:
            for row, label in rnd["changed"]:
                labels[row] = label
        return labels

    def positions(self, rnd_number: int, features) -> np.ndarray:
        """Model view of round ``rnd_number``: float32 (rows, 3), computed from ``features`` (rows, D) at
        the first request and kept; IndexError when there is no such round."""
        rounds = self.rounds()
        if not 1 <= rnd_number <= len(rounds):
            raise IndexError("round %d does not exist; there are %d round(s)" % (rnd_number, len(rounds)))
        rnd_id = rounds[rnd_number - 1]["id"]
        with self._lock:
            kept = self._kept_view(rnd_id)
            if kept is not None:
                return kept
            layer = self._layer(rnd_id)
            if layer["W1"].shape[0] != np.shape(features)[1]:
                raise SourceError("round %d was trained on %d features, the embedding has %d"
                                  % (rnd_number, layer["W1"].shape[0], np.shape(features)[1]))
            view = model_view(features, layer)
            for other in (rnd_number - 1, rnd_number + 1):  # a neighbour already on screen: turn onto it
                if 1 <= other <= len(rounds):
                    near = self._kept_view(rounds[other - 1]["id"])
                    if near is not None:
                        view = align_to(near, view)
                        break
            self._write_npy(rnd_id + ".npy", view.astype(np.float16))
            return view

    def _kept_view(self, rnd_id: str) -> Optional[np.ndarray]:
        path = fs.join(self.directory, rnd_id + ".npy")
        if not fs.exists(path):
            return None
        arr = self._read_npy(rnd_id + ".npy", 128 + 16 * self.rows * MODEL_VIEW_COMPONENTS)
        if arr.ndim != 2 or arr.shape[0] != self.rows or arr.shape[1] < 1:
            raise SourceError("round view %s.npy holds shape %s, expected (%d, %d)"
                              % (rnd_id, arr.shape, self.rows, MODEL_VIEW_COMPONENTS))
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _layer(self, rnd_id: str) -> Dict[str, np.ndarray]:
        data = fs.read_bytes(fs.join(self.directory, rnd_id + ".npz"), self.directory, _MAX_JSON_BYTES,
                             "round weights")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                layer = {k: np.asarray(z[k]) for k in ("W1", "b1", "mean", "scale")}
        except Exception as e:
            raise SourceError("round weights %s.npz cannot be read: %s" % (rnd_id, e))
        d, h = layer["W1"].shape if layer["W1"].ndim == 2 else (0, 0)
        if not d or layer["b1"].shape != (h,) or layer["mean"].shape != (d,) or layer["scale"].shape != (d,):
            raise SourceError("round weights %s.npz do not fit together" % rnd_id)
        return layer

    def _read_npy(self, name: str, limit: int) -> np.ndarray:
        data = fs.read_bytes(fs.join(self.directory, name), self.directory, limit, "round view")
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as e:
            raise SourceError("round view %s cannot be read: %s" % (name, e))

    def _write_npy(self, name: str, arr: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        fs.write_atomic(fs.join(self.directory, name), buf.getvalue(), durable=False)

    def _names(self) -> List[str]:
        if not fs.isdir(self.directory):
            return []
        return sorted(n for n in fs.listdir(self.directory) if ROUND_RE.match(n))

    def _read(self, name: str) -> Optional[dict]:
        path = fs.join(self.directory, name)
        try:
            rnd = json.loads(fs.read_bytes(path, self.directory, _MAX_JSON_BYTES, "round").decode("utf-8"))
            rnd.setdefault("accuracy_on", ACCURACY_ON[0])
            rnd.setdefault("suggested", [])
            rnd = {k: rnd[k] for k in ROUND_KEYS}
            if rnd["accuracy_on"] not in ACCURACY_ON:
                raise ValueError("accuracy_on %r is none of %s" % (rnd["accuracy_on"], ", ".join(ACCURACY_ON)))
            if rnd["id"] + ".json" != name or not isinstance(rnd["rows"], int):
                raise ValueError("its id does not match its name")
            changed = [(int(row), None if label is None else str(label)) for row, label in rnd["changed"]]
            suggested = [int(row) for row in rnd["suggested"]]
            if any(not 0 <= row < rnd["rows"] for row, _ in changed) or any(not 0 <= r < rnd["rows"] for r in suggested):
                raise ValueError("a row is out of range")
            rnd["changed"] = changed
            rnd["suggested"] = suggested
            return rnd
        except Exception as e:  # noqa: BLE001 - any damage: skip the round, say so once
            problem = "round %s skipped: %s" % (name, e)
            if problem not in self.problems:
                self.problems.append(problem)
                logger.warning("%s (in %s)", problem, self.directory)
            return None

    # -- writing ---------------------------------------------------------------------

    def record(self, version: int, labels: Sequence[Optional[str]], classes: Sequence, layer: Dict[str, np.ndarray],
               train_seconds: float = 0.0, suggested: Sequence[int] = ()) -> dict:
        """Add the round of a classifier of ``classes`` trained on ``labels`` (label store ``version``);
        ``layer``: its :func:`hidden_layer`; ``suggested``: rows suggested since the round before.

        Cheap: the changed rows and the hidden layer's weights; the model view waits until asked for.
        """
        with self._lock:
            rounds = self.rounds()
            if rounds and rounds[-1]["version"] >= version:
                return rounds[-1]  # another process (or an older request) recorded it already
            before = self.labels_at(len(rounds), rounds)
            changed = [[i, label] for i, (old, label) in enumerate(zip(before, labels)) if old != label]
            stamp = int(time.time() * 1000)
            if rounds:  # names sort in recording order too, even within one millisecond
                stamp = max(stamp, int(rounds[-1]["id"][2:15]) + 1)
            name = "r-%013d-%s" % (stamp, uuid.uuid4().hex[:8])
            rnd = {"id": name, "version": int(version), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "rows": self.rows, "n_labeled": sum(label is not None for label in labels),
                   "classes": list(classes), "changed": changed, "accuracy": None, "accuracy_std": None,
                   "accuracy_folds": 0, "n_components": MODEL_VIEW_COMPONENTS,
                   "train_seconds": round(float(train_seconds), 3), "accuracy_on": ACCURACY_ON[0],
                   "suggested": sorted({int(r) for r in suggested if 0 <= int(r) < self.rows})}
            fs.makedirs(self.directory)
            buf = io.BytesIO()
            np.savez(buf, W1=layer["W1"].astype(np.float16), b1=layer["b1"], mean=layer["mean"], scale=layer["scale"])
            fs.write_atomic(fs.join(self.directory, name + ".npz"), buf.getvalue(), durable=False)
            self._write(rnd)  # last: a round is listed only once its weights are there
            return dict(rnd, round=len(rounds) + 1)

    def set_accuracy(self, rnd_id: str, accuracy, std, folds: int, on: str = ACCURACY_ON[0]) -> None:
        """Store a round's accuracy: cross-validated on its labeled rows (``folds`` > 0; -1: too few
        labels to estimate), or measured on a held-out set (``on="held-out set"``, ``folds`` 0)."""
        if on not in ACCURACY_ON:
            raise ValueError("on must be one of %s, got %r" % (", ".join(ACCURACY_ON), on))
        with self._lock:
            name = rnd_id + ".json"
            rnd = self._cache.get(name) or self._read(name)
            if rnd is None:
                return
            rnd = dict(rnd, accuracy=accuracy, accuracy_std=std, accuracy_folds=folds, accuracy_on=on)
            self._write(rnd)

    def _write(self, rnd: dict) -> None:
        stored = {k: rnd[k] for k in ROUND_KEYS}
        fs.write_atomic(fs.join(self.directory, rnd["id"] + ".json"),
                        json.dumps(stored, separators=(",", ":")).encode("utf-8"), durable=False)
        self._cache[rnd["id"] + ".json"] = {**stored, "changed": [tuple(c) for c in rnd["changed"]]}

    # -- the accuracy estimates --------------------------------------------------------

    def missing_accuracy(self, rounds: Optional[List[dict]] = None) -> List[Tuple[int, dict]]:
        """(round number, round) of the rounds without an accuracy estimate yet, newest first
        (of ``rounds``, a :meth:`rounds` list the caller already has, else read now)."""
        rounds = self.rounds() if rounds is None else rounds
        return [(r["round"], r) for r in reversed(rounds) if r["accuracy"] is None and r["accuracy_folds"] == 0
                and r["accuracy_on"] == ACCURACY_ON[0]]

    def estimate(self, rnd_number: int, rnd: dict, features, rounds: Optional[List[dict]] = None) -> None:
        """Cross-validate round ``rnd_number``'s labels and store the estimate (folds -1: none possible)."""
        labels = self.labels_at(rnd_number, rounds)
        mean, std, folds = cv_accuracy(features, labels)
        self.set_accuracy(rnd["id"], mean, std, folds if folds else -1)
