"""Live layout sessions: semi-supervised t-SNE, UMAP (or PCA) running in the server.

Pure Python and threads, no HTTP. One session per key (e.g. (run, embedding));
each has a background thread that prepares the layout and steps it in chunks.
Positions are published as a fresh float32 array under a lock after every
chunk, so readers never see a half-written layout.

At most ``max_running`` sessions prepare or step at the same time; the others
wait in state "waiting". A session that nobody polled (``status`` or
``positions``) for ``idle_timeout_s`` is paused and its affinities and
features are freed (``status()["freed"]``); ``resume`` rebuilds them and
continues from the last positions and iteration.

States: "preparing" (loading features, computing affinities; ``progress`` in
[0, 1]), "waiting" (for a free slot), "running", "paused", "done" (the
iteration budget ``n_iter`` is spent; new labels or parameters extend it by
``extra_iter``), "error" (``error`` says why).

A UMAP session (tsne/umap_layout.py) is stepped like a t-SNE one, an
iteration being an epoch; its budget is ``n_epochs`` (None: umap-learn's
choice for N). New labels or a new ``label_weight`` start a new pass of its
optimisation from the current positions at the next chunk, running at least
``extra_iter`` epochs (running or done alike). Its ``objective`` stays None.

While a layout prepares, ``phase`` names the step under way (PHASES, in
order; a PCA session has only "loading" and "pca"), ``phase_progress`` is
the fraction of that step done, ``progress`` the fraction of the whole
preparation (each phase weighted by its expected cost, PHASE_COSTS) and
``eta_s`` the seconds left, extrapolated from the speed so far (None until
there is enough to go on). "first_iterations" is the first chunk of
iterations of a fresh run, up to the first frame (it pays the kernels'
loading, or their compilation on a first use); it is costed too, so the
estimate runs on to the first frame; the state stays "preparing" until it is
done, then ``phase`` is None.
"""
import threading
import time
import traceback

import numpy as np

from .threads import passive_openmp_wait
from .tsne import SemiSupervisedTSNE
from .tsne import params as layout_params
from .tsne.pca import principal_components
from .tsne.tsne import check_labels
from .tsne import umap_layout
from .tsne.nearest_neighbors import APPROXIMATE_MIN_ROWS

# The parameters a session takes (declared in tsne/params.py): the estimator's,
# and the session's own with their defaults.
TSNE_PARAMS = layout_params.ESTIMATOR_PARAMS
UMAP_PARAMS = layout_params.UMAP_PARAMS
METHODS = ("tsne", "pca", "umap")
SESSION_DEFAULTS = layout_params.defaults(scope="session")
UMAP_DEFAULTS = {name: layout_params.BY_NAME[name].default for name in UMAP_PARAMS}

PHASES = ("loading", "neighbors", "affinities", "pca", "first_iterations")
# phase_costs: distances per row the neighbour search computes at most (see there)
_NEIGHBOR_COLUMNS = max(40_000, APPROXIMATE_MIN_ROWS)
# Share of the progress bar for loading the features, whose size is unknown until loaded.
_LOADING_SHARE = 0.05


def phase_costs(n: int, dim: int, k: int, pca: bool, tsne: bool = True) -> dict:
    """Expected seconds of each preparation phase on two cores, for N rows of D
    features and k neighbours (``tsne`` False: a PCA session, PCA only).
    Fitted to the engine's times at N = 2,000 to 20,000 and D = 50 and 784:
    the exact kNN (~N^2 (D + 270)) dominates everywhere; only the ratios
    matter (``eta_s`` rescales them by the speed the session actually sees)."""
    costs = {}
    if tsne:
        # from APPROXIMATE_MIN_ROWS rows on, the search (k-means cells or HNSW)
        # costs about as many distances per row as the exact one at ~40,000
        # rows (benchmarks/results/knn_bench.md), not N
        costs["neighbors"] = 1.5e-10 * n * min(n, _NEIGHBOR_COLUMNS) * (dim + 270)
        costs["affinities"] = 2e-7 * n * k + 1e-3
    if pca:
        costs["pca"] = 4.3e-8 * n * (dim + 1000) + 1e-3
    if tsne:
        # the first chunk (one iteration: its kernels' loading from numba's
        # cache, then an attraction and a repulsion pass) ~ one calibration
        costs["first_iterations"] = 2e-7 * n * k + 5e-2
    return costs


# A chunk of iterations aims at this much wall time, so pause, parameter and
# label changes take effect quickly and positions are fresh for the poller.
_CHUNK_SECONDS = 0.1
_MAX_CHUNK = 50


class _Session:
    def __init__(self, key, load_features, labels, params, method):
        self.key = key
        self.load_features = load_features
        self.labels = labels
        self.params = params
        self.method = method
        self.state = "preparing"
        self.progress = 0.0
        self.phase = "loading"           # one of PHASES while preparing, else None
        self.phase_fraction = 0.0
        self.costs = {}                  # phase -> expected cost (phase_costs)
        self.cost_done = 0.0             # expected cost of the work done so far
        self.cost_at = 0.0               # monotonic time when cost_done was last reported
        self.cost_t0 = None              # monotonic time the costed phases started
        self.iteration = 0
        self.objective = None
        self.error = None
        self.freed = False
        self.positions = None            # float32 (N, d), replaced, never written in place
        self.run = None
        self.target_iter = params["n_epochs"] if method == "umap" else params["n_iter"]
        self.want_pause = False
        self.stop = False
        self.pending_labels = None
        self.pending_params = {}
        self.last_poll = time.monotonic()
        self.want_free = False           # free() asked: free the memory at the next chunk boundary
        self.holds_slot = False
        self.stepping = False            # a chunk is being computed
        self.thread = None


class SessionManager:
    """Runs and tracks live layout sessions.

    max_running : sessions allowed to prepare or step at once.
    idle_timeout_s : seconds without a ``status``/``positions`` call after
        which a session is paused and its memory freed (``inf``: never by
        itself; the server's workspaces call :meth:`free` by their own policy).
    """

    def __init__(self, max_running: int = 2, idle_timeout_s: float = 600.0):
        if max_running < 1:
            raise ValueError(f"max_running: expected >= 1, got {max_running!r}")
        self.max_running = int(max_running)
        self.idle_timeout_s = float(idle_timeout_s)
        self._sessions = {}
        self._running = 0
        self._queue = []                 # sessions waiting for a slot, oldest first
        self._cond = threading.Condition()
        self._closed = False
        # the server's first parallel loop runs in a session: before it, not at import
        passive_openmp_wait()

    # ------------------------------------------------------------ public API
    def start(self, key, load_features, labels, params: dict, method: str = "tsne") -> dict:
        """Start (or restart) the session ``key``.

        load_features : callable () -> float32 (N, D), called in the background.
        labels : (N,) int, -1 = unlabeled (ignored for PCA).
        params : SemiSupervisedTSNE keyword arguments (n_components, perplexity,
            learning_rate, theta, label_importance, repulsion_emphasis,
            supervision_start, point_learning_rate_epochs, random_state, method)
            plus n_iter (iteration budget, default 1000) and extra_iter
            (iterations added by a label or parameter change after "done",
            default 300). Unknown names raise ValueError.
        method : "tsne", "pca" or "umap" (which takes n_components, n_neighbors,
            min_dist, label_weight, random_state, n_epochs and extra_iter, and
            ignores the t-SNE ones; ValueError when umap-learn is missing).
        """
        if method not in METHODS:
            raise ValueError(f"method: expected 'tsne', 'pca' or 'umap', got {method!r}")
        if method == "umap" and not umap_layout.umap_available():
            raise ValueError(umap_layout.MISSING_MESSAGE)
        # Checked here, as far as they can be before the features are loaded (the
        # perplexity's upper bound needs N): a bad value would otherwise fail the
        # session in the background, after the start was answered with success
        # (and a NaN would then break every status answer, which is JSON).
        full = dict(SESSION_DEFAULTS)
        if method == "umap":
            full.update(UMAP_DEFAULTS)
        full.update(layout_params.check_params(dict(params or {})))
        tsne_kw = {k: v for k, v in full.items() if k in TSNE_PARAMS}
        full["n_components"] = tsne_kw.get("n_components", 2)
        labels = None if labels is None else check_labels(labels, len(labels))
        if method == "umap" and labels is not None:
            # the labels give N before the features load: the neighbours' bound and the epochs
            layout_params.check_param("n_neighbors", full["n_neighbors"], len(labels))
            if full.get("n_epochs") is None:
                full["n_epochs"] = umap_layout.default_epochs(len(labels))
        # a session's params say its own budget: epochs for UMAP, iterations for t-SNE
        full.pop("n_iter" if method == "umap" else "n_epochs", None)
        session = _Session(key, load_features, labels, full, method)
        with self._cond:
            if self._closed:
                raise RuntimeError("SessionManager is closed")
            old = self._sessions.get(key)
            if old is not None:
                old.stop = True
            self._sessions[key] = session
            self._cond.notify_all()
        session.thread = threading.Thread(target=self._work, args=(session,), daemon=True,
                                          name=f"layout-{key!r}")
        session.thread.start()
        return self.status(key)

    def pause(self, key) -> dict:
        with self._cond:
            s = self._get(key)
            s.want_pause = True
            self._cond.notify_all()
            # let the chunk in flight (~0.1 s) finish, so that the answer is
            # "paused" with the final iteration; the worker never flips it back
            self._cond.wait_for(lambda: not s.stepping, timeout=5.0)
            if s.method != "pca" and s.state in ("running", "waiting", "done"):
                s.state = "paused"
        return self.status(key)

    def free(self, key) -> None:
        """Pause the session ``key`` and free its affinities and features now, as
        ``idle_timeout_s`` without a poll does; ``resume`` rebuilds them and
        continues from the last positions. No-op when there is no session or
        nothing to free (a PCA layout, a finished or failed thread)."""
        with self._cond:
            s = self._sessions.get(key)
            if s is None or s.freed or s.method == "pca" or s.thread is None or not s.thread.is_alive():
                return
            s.want_free = True
            self._cond.notify_all()

    def resume(self, key) -> dict:
        with self._cond:
            s = self._get(key)
            s.want_pause = False
            s.want_free = False
            s.last_poll = time.monotonic()
            if s.state == "done" and s.method != "pca":
                s.target_iter = max(s.target_iter, s.iteration + s.params["extra_iter"])
            if s.state == "paused" and s.freed and (s.thread is None or not s.thread.is_alive()):
                s.thread = threading.Thread(target=self._work, args=(s,), daemon=True,
                                            name=f"layout-{key!r}")
                s.thread.start()
            self._cond.notify_all()
        return self.status(key)

    def set_params(self, key, **params) -> dict:
        """Change live parameters (t-SNE: label_importance, repulsion_emphasis,
        supervision_start, point_learning_rate_epochs, learning_rate, theta;
        UMAP: label_weight) without restarting. ValueError on unknown names,
        bad values, or a parameter of another method."""
        with self._cond:
            method = self._get(key).method
        checked = {k: layout_params.check_live_param(k, v, method) for k, v in params.items()}
        with self._cond:
            s = self._get(key)
            s.pending_params.update(checked)
            s.params.update(checked)
            self._extend(s)
            self._cond.notify_all()
        return self.status(key)

    def set_labels(self, key, labels) -> None:
        """New labels (N,) int, -1 = unlabeled, or a function that makes them (called only
        when there is a session: at 10^6 rows making them costs tens of ms); no-op when there is none."""
        with self._cond:
            s = self._sessions.get(key)
            if s is None:
                return
            labels = np.asarray(labels() if callable(labels) else labels)
            n = None if s.positions is None else s.positions.shape[0]
            if n is not None:
                labels = check_labels(labels, n)
            s.labels = labels
            s.pending_labels = labels
            self._extend(s)
            self._cond.notify_all()

    def status(self, key) -> "dict | None":
        """SessionStatus (see docs/HTTP_API.md) or None when there is no session.

        Fields: method, state, progress, iteration, objective (None until
        known), n_components, n_points, params, error, freed (memory released
        while idle; resume rebuilds it), waiting (True while queued for a slot),
        phase (one of PHASES while preparing, else None), phase_progress (the
        fraction of that phase done), eta_s (seconds left of the preparation,
        None when not known).
        """
        with self._cond:
            s = self._sessions.get(key)
            if s is None:
                return None
            s.last_poll = time.monotonic()
            return {
                "method": s.method,
                "state": s.state,
                "progress": float(s.progress),
                "iteration": int(s.iteration),
                "objective": s.objective,
                "n_components": int(s.params["n_components"]),
                "n_points": None if s.positions is None else int(s.positions.shape[0]),
                "params": {k: v for k, v in s.params.items()},
                "error": s.error,
                "freed": s.freed,
                "waiting": s.state == "waiting",
                "phase": s.phase if s.state == "preparing" else None,
                "phase_progress": float(s.phase_fraction) if s.state == "preparing" else 0.0,
                "eta_s": self._eta(s),
            }

    def positions(self, key):
        """(positions float32 (N, d), iteration, objective, state) or None.

        Before the first layout exists (state "preparing"/"waiting") the array
        has 0 rows. objective is nan until known. The array is never modified
        afterwards; callers may keep it.
        """
        with self._cond:
            s = self._sessions.get(key)
            if s is None:
                return None
            s.last_poll = time.monotonic()
            pos = s.positions
            if pos is None:
                pos = np.zeros((0, int(s.params["n_components"])), dtype=np.float32)
            obj = float("nan") if s.objective is None else float(s.objective)
            return pos, int(s.iteration), obj, s.state

    def close(self) -> None:
        """Stop every session thread (server shutdown, tests)."""
        with self._cond:
            self._closed = True
            threads = []
            for s in self._sessions.values():
                s.stop = True
                threads.append(s.thread)
            self._cond.notify_all()
        for t in threads:
            if t is not None:
                t.join(timeout=10)
        with self._cond:
            self._sessions.clear()

    # ------------------------------------------------------------ internals
    def _get(self, key):
        s = self._sessions.get(key)
        if s is None:
            raise KeyError(key)
        return s

    @staticmethod
    def _eta(s):
        """Seconds left of the costed phases: the cost still to do at the speed
        seen so far, counted down since the last report. None before 2% of the
        cost or half a second of work, and outside those phases."""
        total = sum(s.costs.values())
        if s.phase not in s.costs or s.cost_t0 is None or total <= 0:
            return None
        spent = s.cost_at - s.cost_t0
        if s.cost_done < 0.02 * total or spent < 0.5:
            return None
        left = spent * (total - s.cost_done) / s.cost_done - (time.monotonic() - s.cost_at)
        return round(max(0.0, left), 1)

    def _set_phase(self, s, phase, fraction=0.0):
        """Record progress within ``phase`` (worker thread); progress never moves back."""
        with self._cond:
            if phase != s.phase:
                s.phase = phase
                s.phase_fraction = 0.0
            f = min(1.0, max(s.phase_fraction, float(fraction)))
            s.phase_fraction = f
            if phase in s.costs:
                now = time.monotonic()
                if s.cost_t0 is None:
                    s.cost_t0 = now
                before = sum(c for p, c in s.costs.items() if PHASES.index(p) < PHASES.index(phase))
                s.cost_done = before + f * s.costs[phase]
                s.cost_at = now
                total = sum(s.costs.values())
                s.progress = max(s.progress, _LOADING_SHARE + (1 - _LOADING_SHARE) * s.cost_done / total)
            elif phase == "loading":
                s.progress = max(s.progress, _LOADING_SHARE * f)

    def _load(self, s, pca):
        """Load the features (phase "loading") and cost the phases after it."""
        self._set_phase(s, "loading")
        X = s.load_features()
        shape = np.shape(X)
        n, dim = (shape[0], shape[1]) if len(shape) == 2 else (1, 1)
        if s.method == "umap":
            k = int(min(n - 1, s.params.get("n_neighbors", UMAP_DEFAULTS["n_neighbors"]) - 1))
        else:
            k = int(min(n - 1, np.floor(3 * float(s.params.get("perplexity", 20.0)))))
        with self._cond:
            s.costs = phase_costs(n, dim, max(1, k), pca, tsne=s.method != "pca")
            if s.method == "umap" and n >= umap_layout.SHARE_KNN_BELOW:
                # umap-learn's NN-descent, not the exact search: ~n D (1.4 s at 10,000 x 784)
                s.costs["neighbors"] = 1.8e-7 * n * dim
            s.cost_t0 = None
            s.cost_done = 0.0
        self._set_phase(s, "loading", 1.0)
        return X

    @staticmethod
    def _extend(s):
        # a finished layout keeps reacting to new labels and parameters; a UMAP
        # layout always does so with a new pass, which needs room to settle
        if (s.method == "tsne" and s.state == "done") or (s.method == "umap" and s.target_iter is not None):
            s.target_iter = max(s.target_iter, s.iteration + s.params["extra_iter"])

    def _acquire_slot(self, s):
        """Wait for a free slot, first come first served; False when the
        session should stop instead."""
        with self._cond:
            self._queue.append(s)
            try:
                while True:
                    if s.stop or self._closed:
                        return False
                    free = self.max_running - self._running
                    if free > 0 and s in self._queue[:free]:
                        self._running += 1
                        s.holds_slot = True
                        return True
                    if not s.want_pause:
                        s.state = "waiting"
                    self._cond.wait(0.5)
            finally:
                self._queue.remove(s)
                self._cond.notify_all()

    def _release_slot(self, s):
        with self._cond:
            if s.holds_slot:
                s.holds_slot = False
                self._running -= 1
                self._cond.notify_all()

    def _work(self, s):
        try:
            if not self._acquire_slot(s):
                return
            try:
                if s.method == "pca":
                    self._pca(s)
                    return
                self._prepare(s)
                run = s.run
                try:
                    self._loop(s)
                finally:
                    if isinstance(run, umap_layout.UMAPRun):
                        run.close()  # its pass's helper thread
            finally:
                self._release_slot(s)
        except Exception as exc:  # reported through status, never raised in a thread
            with self._cond:
                s.state = "error"
                s.error = f"{type(exc).__name__}: {exc}"
                s.run = None
                s.debug_traceback = traceback.format_exc()

    def _pca(self, s):
        s.state = "preparing"
        X = np.asarray(self._load(s, True), dtype=np.float32)
        self._set_phase(s, "pca")
        d = int(s.params["n_components"])
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"features: expected a 2D array, got shape {X.shape}")
        # one LAPACK SVD is fastest up to a few thousand rows; beyond, with
        # many columns, the randomized SVD of the few axes wanted
        k = min(d, *X.shape)
        solver = "randomized" if X.shape[0] > 5000 and X.shape[1] > 50 else "exact"
        # features of no columns have no axes: the layout is all zeros
        Y = principal_components(X, k, solver=solver, random_state=0) if k else np.zeros((X.shape[0], 0))
        if Y.shape[1] < d:
            Y = np.hstack([Y, np.zeros((Y.shape[0], d - Y.shape[1]))])
        with self._cond:
            s.positions = np.ascontiguousarray(Y, dtype=np.float32)
            s.progress = 1.0
            s.phase = None
            s.state = "done"

    def _prepare(self, s):
        with self._cond:
            s.state = "preparing"
            s.progress = 0.0
            resume_from = s.positions if s.freed else None

        X = self._load(s, resume_from is None and s.method == "tsne")
        with self._cond:
            labels = s.labels
            s.pending_labels = None
        phase_progress = lambda phase, f: self._set_phase(s, phase, f)  # noqa: E731
        if s.method == "umap":
            with self._cond:
                if s.target_iter is None:  # started without labels: N known only now
                    s.target_iter = s.params["n_epochs"] = umap_layout.default_epochs(len(X))
            kw = {k: v for k, v in s.params.items() if k in UMAP_PARAMS}
            run = umap_layout.SemiSupervisedUMAP(**kw).prepare(
                X, labels=labels, initialization=resume_from, iteration=s.iteration,
                phase_progress=phase_progress)
        else:
            kw = {k: v for k, v in s.params.items() if k in TSNE_PARAMS}
            if resume_from is not None:
                kw["initialization"] = resume_from.astype(np.float64)
            run = SemiSupervisedTSNE(**kw).prepare(X, labels=labels, phase_progress=phase_progress)
        del X
        if resume_from is not None and s.method == "tsne":
            # continue the schedules where they were; gains restart at 1
            run.iteration = s.iteration
        with self._cond:
            s.run = run
            s.freed = False
            if s.positions is None:
                s.positions = run.positions
        # up to the first frame (``_loop``'s first chunk); costed for t-SNE: the estimate runs on
        self._set_phase(s, "first_iterations", 0.0)
        with self._cond:
            if "first_iterations" not in s.costs:
                s.progress = 1.0

    def _loop(self, s):
        chunk = 1
        while True:
            with self._cond:
                while True:
                    if s.stop:
                        return
                    idle = s.want_free or time.monotonic() - s.last_poll > self.idle_timeout_s
                    if idle:
                        # free the big arrays; resume() rebuilds them
                        s.want_free = False
                        s.run = None
                        s.freed = True
                        s.want_pause = True
                        s.state = "paused"
                        return
                    if s.want_pause:
                        s.state = "paused"
                    elif s.iteration >= s.target_iter:
                        s.state = "done"
                    else:
                        break
                    # holding no CPU while paused or done: give the slot away
                    if s.holds_slot:
                        s.holds_slot = False
                        self._running -= 1
                        self._cond.notify_all()
                    self._cond.wait(min(1.0, self.idle_timeout_s))
                need_slot = not s.holds_slot
            if need_slot:
                if not self._acquire_slot(s):
                    return
                continue  # re-check pause / stop after waiting
            with self._cond:
                if s.want_pause:
                    continue
                # the first chunk of a fresh run is still part of the preparation (see the docstring)
                s.state = "preparing" if s.phase == "first_iterations" else "running"
                s.stepping = True
                labels, s.pending_labels = s.pending_labels, None
                params, s.pending_params = s.pending_params, {}
            run = s.run
            if labels is not None:
                run.set_labels(labels)
            if params:
                run.set_params(**params)
            n = max(1, min(chunk, s.target_iter - run.iteration))
            t0 = time.perf_counter()
            if s.method == "umap":
                run.step(n, until=s.target_iter)  # a new pass runs to the end of the budget
            else:
                run.step(n)
            dt = time.perf_counter() - t0
            chunk = int(np.clip(n * _CHUNK_SECONDS / max(dt, 1e-4), 1, _MAX_CHUNK))
            pos = run.positions
            with self._cond:
                s.stepping = False
                self._cond.notify_all()
                s.positions = pos
                s.iteration = run.iteration
                s.phase = None
                s.progress = 1.0  # the first frame is out: the preparation is over
                if s.state == "preparing":
                    s.state = "running"
                obj = run.last_objective
                s.objective = float(obj) if np.isfinite(obj) else None
                waiting = bool(self._queue)
            if waiting:
                # let a queued session have a turn (round robin)
                self._release_slot(s)
