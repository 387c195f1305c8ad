"""The labels of one embedding in memory: records in, state out (no files).

:class:`LabelModel` applies history records in order and keeps what the
store answers with: per row its label and who set it when, the class counts
and order, the shared undo/redo stacks and the version (records applied).  It
turns itself into a snapshot and back, and into the Projector's labels.tsv.
"""

from __future__ import annotations

import unicodedata
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from .records import FORMAT, FORMAT_VERSION, check_snapshot, record_id

#: How many actions undo can go back (older ones stay in the history).
UNDO_DEPTH = 1000


class LabelModel:
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
        entry = [record_id(record), loc]
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
    def spelling(self, label: str) -> str:
        """``label`` (NFC) as the store already spells it: a store written before labels
        were normalised may hold another Unicode form of the same name, and one class
        must not become two that look alike."""
        if self.counts.get(label, 0) > 0:
            return label
        return next((k for k, n in self.counts.items()
                     if n > 0 and unicodedata.normalize("NFC", k) == label), label)

    def classes(self) -> List[dict]:
        return [{"name": c, "count": self.counts[c]} for c in self.class_order if self.counts[c] > 0]

    def state(self) -> dict:
        return {
            "version": self.version,
            "labels": self.labels[:],  # a copy (slicing is the quickest: ~2 ms at 10^6 rows)
            "classes": self.classes(),
            "can_undo": bool(self.undo),
            "can_redo": bool(self.redo),
        }

    # -- snapshot
    def frozen(self) -> "LabelModel":
        """A copy of what a snapshot and labels.tsv are made of, to write them while writes go on.

        Copies the per-row lists (a few ms at 10^6 rows); the strings and
        stamp tuples in them never change, so they are shared.
        """
        m = LabelModel.__new__(LabelModel)
        m.n_rows, m.version, m.out_of_range = self.n_rows, self.version, self.out_of_range
        m.labels, m.row_stamp, m.stamps = self.labels[:], self.row_stamp[:], self.stamps[:]
        m.counts, m.class_order = dict(self.counts), self.class_order[:]
        m.undo, m.redo = [list(e) for e in self.undo], [list(e) for e in self.redo]
        return m

    def to_snapshot(self, pause: Callable[[], None] = lambda: None, rows_per_chunk: int = 8192) -> dict:
        """The snapshot (docs/LABEL_STORE.md) as a dict; ``pause`` is called between chunks of
        ``rows_per_chunk`` rows (a background snapshot lets writes run there)."""
        index: Dict[Optional[str], int] = {c: i for i, c in enumerate(self.class_order)}
        index[None] = -1
        used = set()  # only the stamps some row still shows are kept, in record order
        for a in range(0, self.n_rows, rows_per_chunk):
            used.update(self.row_stamp[a:a + rows_per_chunk])
            pause()
        used.discard(-1)
        kept = sorted(used)
        new_index = {s: j for j, s in enumerate(kept)}
        new_index[-1] = -1
        labels: List[int] = []
        row_stamps: List[int] = []
        for a in range(0, self.n_rows, rows_per_chunk):
            labels.extend(map(index.__getitem__, self.labels[a:a + rows_per_chunk]))
            row_stamps.extend(map(new_index.__getitem__, self.row_stamp[a:a + rows_per_chunk]))
            pause()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "version": self.version,
            "classes": self.class_order,
            "labels": labels,
            "stamps": [list(self.stamps[s]) for s in kept],
            "row_stamps": row_stamps,
            "undo": self.undo,
            "redo": self.redo,
        }

    @classmethod
    def from_snapshot(cls, snap: dict, n_rows: int) -> "LabelModel":
        check_snapshot(snap)
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
        """labels.tsv as one string (:meth:`projector_tsv_chunks` joined)."""
        return "".join(self.projector_tsv_chunks(columns))

    def projector_tsv_chunks(self, columns: Optional[Tuple[List[str], List[List[str]]]] = None,
                             rows_per_chunk: int = 8192) -> Iterator[str]:
        """labels.tsv in pieces of ``rows_per_chunk`` lines: ``label``, ``author``, ``index``, then
        ``columns`` (names, one list of N values each).

        ``columns`` are the embedding's own metadata, so the Projector entry of
        the labels can also be coloured and searched by them; a name that clashes
        with ours gets " (metadata)" appended.  In pieces so that a background
        snapshot of 10^6 rows never holds the whole text (nor the interpreter
        for long: each piece is about a millisecond).
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
        yield "\t".join(header) + "\n"
        labels, stamps, row_stamp = self.labels, self.stamps, self.row_stamp
        for a in range(0, len(labels), rows_per_chunk):
            b = min(a + rows_per_chunk, len(labels))
            starts = ["\t\t" if label is None else "%s\t%s\t" % (label, stamps[s][0])
                      for label, s in zip(labels[a:b], row_stamp[a:b])]
            if values:
                extra = ["\t".join(t) for t in zip(*(v[a:b] for v in values))]
                yield "".join(["%s%d\t%s\n" % t for t in zip(starts, range(a, b), extra)])
            else:
                yield "".join(["%s%d\n" % t for t in zip(starts, range(a, b))])
