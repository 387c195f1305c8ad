"""One home per embedding inside the server: its data, labels, layout and classifier.

The routes in ``plugin.py`` parse a request, ask :class:`Workspaces` for the
embedding's :class:`Workspace`, call one method and answer.  Everything the
server keeps about an embedding hangs off that one object:

- its ``source`` (what discovery found: tensor, metadata, sprite pages) and
  the features once loaded;
- its label store, with the policy for the files derived from it: the stock
  Projector's entry is written once, at the first label, and ``labels.tsv``
  catches up with the history once writing pauses;
- its rounds (rounds.py): every classifier retrain is one, stored next to the labels;
- its live layout and its classifier.  Those run on two shared pools, because
  CPU is shared: :class:`~.sessions.SessionManager` steps at most two
  layouts at once and :class:`~.trainer.ClassifierTrainer` trains one model
  at a time.  The workspace is their only caller and decides when what they
  hold for it is freed.

:class:`Workspaces` is the one registry, with one lock and one idle policy:
an embedding nobody asked about for :data:`IDLE_S` seconds rests (its layout
pauses and frees its affinities, keeping the positions; its classifier and
features are dropped; its labels are flushed), and the next request wakes it
(``layout/resume`` rebuilds a freed layout, a prediction request retrains).
One housekeeping thread does the flushing and the resting.  No HTTP here:
errors are exceptions the routes turn into status codes.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Dict, Optional, Tuple

import numpy as np

from .logdir import fs
from .logdir.catalog import Catalog
from .logdir.source import EmbeddingSource, SourceError

logger = logging.getLogger(__name__)

#: An embedding nobody asked about for this long rests (see the module docstring).
IDLE_S = 600.0
#: labels.tsv catches up with the history once an embedding had no write for this long...
FLUSH_QUIET_S = 2.0
#: ...checked this often (also how often idle embeddings are looked for).
HOUSEKEEPING_S = 1.0
#: At most this many embeddings keep their features loaded (least recently used go first).
MAX_LOADED_FEATURES = 4

LABEL_ACTIONS = ("assign", "clear", "rename", "merge", "undo", "redo")
#: What a label write answers with (``write_labels(answer=...)``).
LABEL_ANSWERS = ("state", "changes")


class NoLabels(ValueError):
    """The embedding cannot hold labels (its source names no label folder)."""


class NoLayout(LookupError):
    """The embedding has no layout session (or no positions yet)."""

    def __str__(self):
        return self.args[0]


class PartMissing(LookupError):
    """A part the embedding does not have (no sprite images)."""

    def __str__(self):
        return self.args[0]


def label_codes(state) -> np.ndarray:
    """Class indices (by first appearance, as LabelState lists classes) per row; -1 = unlabeled."""
    index = {c["name"]: i for i, c in enumerate(state["classes"])}
    index[None] = -1
    labels = state["labels"]
    try:  # every label is a listed class: a dict lookup per row, no Python loop (~40% quicker)
        return np.fromiter(map(index.__getitem__, labels), dtype=np.int64, count=len(labels))
    except KeyError:
        return np.array([index.get(label, -1) for label in labels], dtype=np.int64)


class Workspace:
    """One embedding's data, labels, layout and classifier (see the module docstring).

    Made by :class:`Workspaces`; every method is safe to call from several threads.
    """

    def __init__(self, source: EmbeddingSource, hub: "Workspaces"):
        self.key: Tuple[str, str] = source.key
        self.source = source
        self._hub = hub
        self._lock = threading.RLock()
        self._store = None
        self._features: Optional[np.ndarray] = None
        self._preview: Optional[np.ndarray] = None           # the PCA preview, kept with the features
        self._published: Optional[EmbeddingSource] = None  # the source whose labels the Projector was given
        self._unflushed_since: Optional[float] = None       # monotonic time of a write not yet in labels.tsv
        self._rounds = None                                  # RoundStore, opened at first use
        self._suggested: set = set()                         # rows suggested since the last round
        self._estimating: Optional[threading.Thread] = None  # the rounds' accuracy estimates, when looked at
        self.last_used = time.monotonic()
        self.resting = False

    # -- lifecycle (called by Workspaces) ---------------------------------------------

    def _renew(self, source: EmbeddingSource) -> None:
        """Discovery found the embedding's files changed: read them afresh.

        The label store is reopened (its rows may differ), the features are
        reloaded on their next use and the Projector entry is written again at
        the next label; a running layout and classifier go on as they are.
        """
        with self._lock:
            if source is self.source:
                return
            self._flush_quietly()
            self.source = source
            self._store = None
            self._rounds = None
            self._features = None
            self._preview = None
            self._unflushed_since = None

    def _touch(self) -> None:
        self.last_used = time.monotonic()
        self.resting = False

    def rest(self) -> None:
        """Free what can be rebuilt: the layout's affinities, the classifier, the features; flush the labels."""
        with self._lock:
            self.resting = True
            self._features = None
            self._preview = None
            self._flush_quietly()
        self._hub._free_layout(self.key)
        self._hub._forget_classifier(self.key)

    def flush_if_quiet(self, now: float, quiet_s: float) -> None:
        """Have labels.tsv catch up when the last write is ``quiet_s`` old.

        A store snapshots on a write only every 100 records or 10 s; without
        this the last labels before a pause would reach labels.tsv (what the
        stock Projector shows) only with the next write.  The history is the
        record either way; this only refreshes the derived files.
        """
        with self._lock:
            if self._unflushed_since is None or now - self._unflushed_since < quiet_s:
                return
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        store, self._unflushed_since = self._store, None
        if store is None:
            return
        try:
            store.flush()
        except Exception:
            logger.exception("could not refresh labels.tsv of %s/%s", *self.key)

    # -- data ------------------------------------------------------------------------

    def features(self) -> np.ndarray:
        """The float32 (rows, dims) tensor, loaded once and kept while the embedding is in use."""
        with self._lock:
            features = self._features
        if features is None:
            features = self._hub.catalog.tensor(self.source)
            with self._lock:
                self._features = features
        self._hub._used_features(self)
        return features

    def _drop_features(self) -> None:
        with self._lock:
            self._features = None
            self._preview = None

    def preview(self) -> np.ndarray:
        """The quick first look the tab draws before any layout: the features on their
        first 3 principal axes (fewer columns padded with 0), float32 (rows, 3); computed
        once and kept with the features."""
        with self._lock:
            preview = self._preview
        if preview is None:
            from .tsne.pca import principal_components

            X = self.features()
            k = min(3, *X.shape)
            preview = np.zeros((X.shape[0], 3), dtype=np.float32)
            if k:
                preview[:, :k] = principal_components(X, k)
            with self._lock:
                self._preview = preview
        return preview

    def feature_neighbours(self, row: int, k: int) -> np.ndarray:
        """The ``k`` rows nearest to ``row`` in feature space, nearest first (uint32); IndexError for no such row."""
        from .wire import feature_neighbours

        return feature_neighbours(self.features(), row, k)

    def metadata(self) -> Tuple[list, list]:
        """(column names, columns); empty when the embedding has none; SourceError when it is broken."""
        source = self.source
        if source.load_metadata is None:
            _raise_part_problem(source, "metadata ignored")
            return [], []
        return source.load_metadata()

    def sprite(self):
        """The sprite's layout; PartMissing without one, SourceError when it is configured but broken."""
        source = self.source
        if source.sprite is None:
            _raise_part_problem(source, "sprite ignored")
            raise PartMissing("embedding %s of run %s has no sprite images" % (source.name, source.run))
        return source.sprite

    def sprite_page(self, page: int) -> bytes:
        """PNG bytes of sprite page ``page``; as :meth:`sprite` without one, IndexError past the last page."""
        pages = self.sprite().pages
        if page >= pages:
            raise IndexError("page %d does not exist; the sprite has %d page(s)" % (page, pages))
        return self.source.load_sprite_page(page)

    # -- labels ----------------------------------------------------------------------

    def _label_dir(self) -> str:
        """Where the labels (and rounds) live; NoLabels when the embedding cannot hold labels."""
        source = self.source
        if not source.label_dir:
            raise NoLabels("embedding %s of run %s cannot hold labels" % (source.name, source.run))
        return source.label_dir

    def store(self):
        """The label store, opened at first use (NoLabels when the embedding cannot hold labels)."""
        from .logdir.labels import LabelStore

        label_dir = self._label_dir()
        with self._lock:
            if self._store is None:
                self._store = LabelStore(label_dir, self.source.rows, default_author=self._hub.default_author,
                                         metadata=self.source.load_metadata)
                if self._store.version > 0:
                    self._publish_labels()
            return self._store

    def labels(self) -> dict:
        """LabelState (docs/HTTP_API.md)."""
        return self.store().state()

    def history(self, since: int = 0) -> list:
        return self.store().history(since=since)

    def write_labels(self, action: str, *, author=None, base_version=None, answer="state", **args) -> dict:
        """One label action (``LABEL_ACTIONS``) -> the new LabelState.

        ``args``: ``rows`` and ``label`` (assign), ``rows`` (clear), ``old`` and
        ``new`` (rename), ``classes`` and ``into`` (merge), none (undo, redo).
        LabelError for bad input, ConflictError when it cannot apply now.
        Then the labels reach the running layout at once, the classifier
        retrains in the background, the Projector gets its entry at the first
        label and labels.tsv catches up once writing pauses.

        ``answer="changes"``: when this write is the only one since
        ``base_version`` (an assign or a clear), the state comes without its
        per-row ``labels`` and with ``changes`` instead (see :func:`_as_changes`):
        at 10^6 rows the whole list is 6 MB of JSON per write.
        """
        if action not in LABEL_ACTIONS:
            raise ValueError("unknown label action %r" % action)
        if answer not in LABEL_ANSWERS:
            raise ValueError('answer must be "state" or "changes", got %r' % (answer,))
        store = self.store()
        state = getattr(store, action)(**args, author=author, base_version=base_version)
        sessions = self._hub._sessions
        if sessions is not None:
            sessions.set_labels(self.key, lambda: label_codes(state))
        trainer = self._hub._trainer
        if trainer is not None and trainer.status(self.key)["status"] != "idle":
            self._request_training(state)
        with self._lock:
            self._publish_labels()
            self._unflushed_since = time.monotonic()  # the quiet time counts from the last write
        self._hub._start_housekeeping()
        if answer == "changes":
            return _as_changes(state, action, base_version, args.get("rows"))
        return state

    def export_csv(self, *, all_rows: bool = False) -> Tuple[str, str]:
        """(file name, CSV text) of the labels with the metadata columns."""
        from .logdir.label_io import export_csv

        source = self.source
        columns = {}
        if source.load_metadata is not None:
            names, data = source.load_metadata()
            columns = dict(zip(names, data))
        out = io.StringIO()
        export_csv(self.store(), out, metadata_columns=columns, all_rows=all_rows)
        return "%s-%s-labels.csv" % (_safe_filename(source.run), _safe_filename(source.name)), out.getvalue()

    def _publish_labels(self) -> None:
        """The stock Projector gets an entry showing the labels (logdir/projector_labels.py).

        Done once per discovered source, when its store first holds a label:
        merely viewing an embedding adds no run to TensorBoard.  Tried once: a
        read-only logdir logs one error, not one per label.
        """
        from .logdir.projector_labels import publish_labels

        if self._published is self.source or self._store is None:
            return
        self._published = self.source
        try:
            publish_labels(self.source, self._store.projector_metadata_path)
        except Exception:
            logger.exception("could not write the Projector entry for labels of %s/%s", *self.key)

    # -- layout ----------------------------------------------------------------------

    def start_layout(self, method: str, params: dict) -> dict:
        """Start (or restart) the live layout; ValueError/TypeError for bad parameters."""
        if method not in ("tsne", "pca", "umap"):
            raise ValueError('field "method" must be "tsne", "pca" or "umap", got %r' % (method,))
        rows = self.source.rows
        perplexity = params.get("perplexity")
        if isinstance(perplexity, (int, float)) and method == "tsne" and perplexity * 3 >= rows:
            # Checked here because the session loads the tensor in the background.
            raise ValueError("perplexity %g is too large for %d rows: it must be below %d (rows / 3)"
                             % (perplexity, rows, (rows + 2) // 3))
        codes = label_codes(self.labels())
        return self._hub.sessions().start(self.key, self.features, codes, params, method=method)

    def layout(self, action: str, **params) -> dict:
        """``pause``, ``resume`` or ``params`` (live parameters) -> the layout's status; NoLayout without one."""
        sessions = self._hub.sessions()
        try:
            if action == "params":
                return sessions.set_params(self.key, **params)
            return getattr(sessions, action)(self.key)
        except KeyError:
            raise NoLayout("no layout session for embedding %s of run %s" % (self.key[1], self.key[0]))

    def layout_status(self) -> dict:
        status = self._hub.sessions().status(self.key)
        if status is None:
            raise NoLayout("no layout session for embedding %s of run %s" % (self.key[1], self.key[0]))
        return status

    def layout_positions(self):
        """(positions float32 (N, d), iteration, objective, state); NoLayout without a session."""
        got = self._hub.sessions().positions(self.key)
        if got is None:
            raise NoLayout("no layout positions yet for embedding %s of run %s" % (self.key[1], self.key[0]))
        return got

    # -- classifier ------------------------------------------------------------------

    def _request_training(self, state) -> None:
        self._hub.trainer().request(self.key, self.features, state["labels"], state["version"],
                                    on_trained=self._round_trained if self.source.label_dir else None)

    def predictions(self) -> dict:
        """The last trained classifier's prediction per row; asks for a retrain when labels moved on."""
        self._request_training(self.labels())
        status, predicted, confidence, uncertainty = self._hub.trainer().predictions(self.key)
        body = dict(status)
        if predicted is not None:
            body.update(predicted=predicted.tolist(), confidence=np.round(confidence, 4).tolist(),
                        uncertainty=np.round(uncertainty, 4).tolist())
        return body

    def suggest(self, strategy: str, n: int) -> dict:
        """``n`` suggestions of ``strategy`` (active.STRATEGIES); NoLayout when a t-SNE strategy has no layout."""
        from .active import suggest
        from .active.strategies import LAYOUT_STRATEGIES

        state = self.labels()
        layout = None
        if strategy in LAYOUT_STRATEGIES:
            sessions = self._hub._sessions
            got = sessions.positions(self.key) if sessions is not None else None
            if got is None:
                raise NoLayout("strategy %s needs a layout: start the layout first" % strategy)
            layout = got[0]
        self._request_training(state)
        model = self._hub.trainer().model(self.key)
        items = suggest(strategy, self.features(), state["labels"], layout=layout, classifier_state=model, n=n)
        with self._lock:  # the next round shows what was suggested before it
            self._suggested.update(int(it["row"]) for it in items)
        return {"strategy": strategy, "version": state["version"], "items": items}

    # -- rounds ----------------------------------------------------------------------

    def round_store(self):
        """The rounds (rounds.py), kept in the labels folder's ``rounds/``; NoLabels without one."""
        from .rounds import RoundStore

        label_dir = self._label_dir()
        with self._lock:
            if self._rounds is None:
                self._rounds = RoundStore(fs.join(label_dir, "rounds"), self.source.rows)
            return self._rounds

    def _round_trained(self, version, labels, state, seconds) -> None:
        """Every classifier retrain is a round (called by the trainer's worker)."""
        from .rounds import hidden_layer

        with self._lock:
            suggested, self._suggested = self._suggested, set()
        self.round_store().record(version, labels, state.classes, hidden_layer(state), train_seconds=seconds,
                                  suggested=suggested)

    def rounds(self) -> dict:
        """``{"rounds": [...], "estimating": bool, "problems": [...]}``; starts the accuracy
        estimates of rounds that have none (in the background: they cost trainings)."""
        store = self.round_store()
        rounds = store.rounds()
        estimating = False
        if store.missing_accuracy(rounds):
            with self._lock:
                if self._estimating is None or not self._estimating.is_alive():
                    self._estimating = threading.Thread(target=self._estimate, name="al-rounds-accuracy",
                                                        daemon=True)
                    self._estimating.start()
                estimating = True
        return {"rounds": rounds, "estimating": estimating, "problems": list(store.problems)}

    def _estimate(self) -> None:
        store = self.round_store()
        try:
            features = self.features()
            rounds = store.rounds()
            for number, rnd in store.missing_accuracy(rounds):
                store.estimate(number, rnd, features, rounds)
        except Exception:
            logger.exception("estimating the rounds' accuracy of %s/%s failed", *self.key)

    def round_positions(self, number: int) -> np.ndarray:
        """Model view of round ``number`` (1-based): float32 (rows, 3), computed at the first request;
        IndexError past the last round."""
        return self.round_store().positions(number, self.features())


class Workspaces:
    """The server's one registry: a :class:`Workspace` per (run, embedding), one lock, one idle policy.

    ``catalog`` finds the embeddings; ``default_author`` signs label writes
    that name none; ``classifier_backend`` is the trainer's ("numpy",
    "keras", "auto").  The layout pool and the trainer start at first use.
    """

    def __init__(self, catalog: Catalog, *, default_author: Optional[str] = None,
                 classifier_backend: str = "numpy", idle_s: float = IDLE_S,
                 flush_quiet_s: float = FLUSH_QUIET_S, housekeeping_s: float = HOUSEKEEPING_S,
                 max_loaded_features: int = MAX_LOADED_FEATURES):
        self.catalog = catalog
        self.default_author = default_author
        self.classifier_backend = classifier_backend
        self.idle_s = idle_s
        self.flush_quiet_s = flush_quiet_s
        self.housekeeping_s = housekeeping_s
        self.max_loaded_features = max_loaded_features
        self._workspaces: Dict[Tuple[str, str], Workspace] = {}
        self._loaded_order: list = []   # keys of workspaces holding features, least recently used first
        self._lock = threading.Lock()
        self._sessions = None
        self._trainer = None
        self._housekeeper: Optional[threading.Thread] = None
        self._closed = threading.Event()

    # -- lookup ----------------------------------------------------------------------

    def get(self, run: str, name: str, *, require_ok: bool = True) -> Workspace:
        """The workspace of an embedding the catalog knows (UnknownEmbedding otherwise).

        ``require_ok``: SourceError when the embedding is broken (its problems say how).
        """
        source = self.catalog.get(run, name)
        if require_ok and not source.ok:
            raise SourceError("embedding %s of run %s cannot be opened: %s"
                              % (source.name, source.run, "; ".join(source.problems)))
        with self._lock:
            ws = self._workspaces.get(source.key)
            if ws is None:
                ws = self._workspaces[source.key] = Workspace(source, self)
        ws._renew(source)
        ws._touch()
        self._start_housekeeping()
        return ws

    def existing(self, run: str, name: str) -> Optional[Workspace]:
        """The workspace if one was opened (no discovery: cheap for the layout's polling), else None."""
        with self._lock:
            ws = self._workspaces.get((run, name))
        if ws is not None:
            ws._touch()
        return ws

    # -- the shared pools ------------------------------------------------------------

    def sessions(self):
        """The layout pool (SessionManager): at most two layouts prepare or step at once."""
        with self._lock:
            if self._sessions is None:
                from .sessions import SessionManager

                # Idle layouts are freed by this registry's policy (Workspace.rest), not the pool's own.
                self._sessions = SessionManager(idle_timeout_s=float("inf"))
            return self._sessions

    def trainer(self):
        """The classifier trainer: one model trains at a time."""
        with self._lock:
            if self._trainer is None:
                from .trainer import ClassifierTrainer

                self._trainer = ClassifierTrainer(backend=self.classifier_backend, idle_timeout_s=None)
            return self._trainer

    def _free_layout(self, key) -> None:
        if self._sessions is not None:
            self._sessions.free(key)

    def _forget_classifier(self, key) -> None:
        if self._trainer is not None:
            self._trainer.forget(key)

    def _used_features(self, ws: Workspace) -> None:
        """``ws`` used its features: drop those of the least recently used beyond the limit."""
        with self._lock:
            if ws.key in self._loaded_order:
                self._loaded_order.remove(ws.key)
            self._loaded_order.append(ws.key)
            drop = self._loaded_order[:-self.max_loaded_features] if self.max_loaded_features > 0 else []
            del self._loaded_order[:len(drop)]
            victims = [self._workspaces[k] for k in drop if k in self._workspaces]
        for victim in victims:
            victim._drop_features()

    # -- housekeeping ----------------------------------------------------------------

    def _start_housekeeping(self) -> None:
        with self._lock:
            if self._housekeeper is None and not self._closed.is_set():
                self._housekeeper = threading.Thread(target=self._housekeeping, name="al-workspaces",
                                                     daemon=True)
                self._housekeeper.start()

    def _housekeeping(self) -> None:
        while not self._closed.wait(self.housekeeping_s):
            self.tidy(time.monotonic())

    def tidy(self, now: float) -> None:
        """Flush the labels of embeddings whose writing paused; rest the idle ones."""
        with self._lock:
            workspaces = list(self._workspaces.values())
        for ws in workspaces:
            ws.flush_if_quiet(now, self.flush_quiet_s)
            if not ws.resting and now - ws.last_used >= self.idle_s:
                try:
                    ws.rest()
                except Exception:
                    logger.exception("could not free the resources of %s/%s", *ws.key)

    def close(self) -> None:
        """Flush every store and stop the threads (server shutdown, tests)."""
        self._closed.set()
        with self._lock:
            workspaces = list(self._workspaces.values())
            sessions, trainer = self._sessions, self._trainer
        for ws in workspaces:
            with ws._lock:
                ws._flush_quietly()
        if sessions is not None:
            sessions.close()
        if trainer is not None:
            trainer.close()


def _raise_part_problem(source, prefix):
    """A configured but broken part (metadata, sprite) answers with its problem, not as absent."""
    for problem in source.problems:
        if problem.startswith(prefix):
            raise SourceError(problem)


def _safe_filename(name):
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name).strip("._") or "embedding"


__all__ = ["Workspace", "Workspaces", "NoLabels", "NoLayout", "PartMissing", "label_codes", "LABEL_ACTIONS", "LABEL_ANSWERS",
           "IDLE_S", "FLUSH_QUIET_S"]


def _as_changes(state: dict, action: str, base_version, rows) -> dict:
    """``state`` answered as changes since ``base_version``, when they are exactly this write's.

    The versions count records, so ``version == base_version + 1`` means no
    other writer's record came in between: the rows of an assign or a clear
    are the only ones changed, all to one label (an assign's as stored: the
    store may keep an existing class's spelling). Otherwise (another writer
    came first; undo, redo, rename, merge) the whole state, ``labels`` and
    all. The answer: the state's other keys plus ``changes_from``
    (= ``base_version``) and ``changes`` ([{"label", "rows"}]).
    """
    if (action not in ("assign", "clear") or base_version is None or not rows
            or state["version"] != base_version + 1):
        return state
    out = {k: v for k, v in state.items() if k != "labels"}
    out["changes_from"] = base_version
    out["changes"] = [{"label": state["labels"][rows[0]], "rows": list(rows)}]
    return out

