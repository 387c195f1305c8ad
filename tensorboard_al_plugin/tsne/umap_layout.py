"""Semi-supervised UMAP (umap-learn) as a live layout, stepped like the t-SNE.

:class:`SemiSupervisedUMAP` ``.prepare(X, labels)`` returns a :class:`UMAPRun`
with the live-run contract of :class:`~tensorboard_al_plugin.tsne.tsne.TSNERun`
(``step``, ``set_labels``, ``set_params``, ``positions``, ``iteration``,
``last_objective``), so the server's layout sessions, the quality report and
the tests drive UMAP and t-SNE alike. An iteration is one UMAP epoch.

What comes from where:

- the k nearest neighbours, searched once per layout and kept for every
  graph built after (new labels), handed to umap-learn as ``precomputed_knn``:
  below ``SHARE_KNN_BELOW`` (4,096) rows the engine's exact search
  (:func:`~tensorboard_al_plugin.tsne.nearest_neighbors.nearest_neighbors`),
  where umap-learn would compute all pairwise distances, slower; from there
  umap-learn's own NN-descent (pynndescent), far faster than any exact search
  on wide features at a recall of about 0.999 (benchmarks/results/umap_quality.md:
  Fashion-MNIST 10,000 x 784, 1.4 s against the engine's 30 s);
- the fuzzy graph, intersected with the labels as a partial categorical target
  (-1 = unlabeled; ``label_weight`` is umap-learn's ``target_weight``), is
  umap-learn's own: ``UMAP(transform_mode="graph").fit(X, y)``;
- the initialisation is umap-learn's spectral layout, scaled into its
  [0, 10] box as ``UMAP.fit`` does;
- the epochs are those of umap-learn's ``optimize_layout_euclidean`` (SGD
  with negative sampling, the learning rate falling linearly from 1 to 0 over
  a pass). That function runs every epoch of a pass in one call and offers
  no callback but a tqdm bar (whose output is written under tqdm's global
  lock: no place to wait or stop). Calling it again for every few epochs
  would restart its per-edge sampling clocks (an edge sampled less often than
  once per chunk would never move) and its learning rate. So :meth:`UMAPRun.step`
  sets a pass up as that function does and calls, epoch by epoch, the
  compiled kernel it calls (``_optimize_layout_euclidean_single_epoch``), by
  parameter name: the same numbers as one uninterrupted call (a test checks
  chunked steps against one), positions after every step, no thread. A
  umap-learn whose kernel takes a parameter unknown here is refused with a
  message naming its version.

Labels (and ``label_weight``) change the target, hence the graph: the next
``step`` ends the pass under way at the epoch it reached, rebuilds the graph
(from the kept neighbours: no new search) and starts a new pass from the
current positions, its learning rate from 1 again, over the epochs left to
``until``. Labels seen by the layout are those of the last pass started
(``labels_applied``).

umap-learn is imported on the first :meth:`SemiSupervisedUMAP.prepare`, never
by importing this module, and without its optional ParametricUMAP (which
would import TensorFlow, seconds and half a gigabyte, for nothing here).
"""
import importlib
import importlib.util
import inspect
import sys
import threading
import warnings

import numpy as np

from . import params as layout_params
from .nearest_neighbors import nearest_neighbors
from .tsne import check_labels

__all__ = ["SemiSupervisedUMAP", "UMAPRun", "umap_available", "default_epochs", "MISSING_MESSAGE"]

MISSING_MESSAGE = ("UMAP needs the umap-learn package, which is not installed: "
                   "pip install 'tensorboard-al[umap]' (or pip install umap-learn)")

# what ``UMAP.fit`` fixes and this layout keeps: spread, repulsion, negative samples
_SPREAD = 1.0
_GAMMA = 1.0
_NEGATIVE_SAMPLE_RATE = 5
_INITIAL_ALPHA = 1.0

# No NNDescent index comes with the engine's neighbours: fine, nothing is
# transformed later. One targeted filter, set once (catch_warnings is not
# thread-safe, and two layouts may build graphs at once).
warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\] \(knn_search_index\) is not an NNDescent")

# rows from which umap-learn's NN-descent replaces the engine's exact kNN (see above)
SHARE_KNN_BELOW = 4096

_umap_lock = threading.Lock()
_umap = None


def umap_available() -> bool:
    """True when umap-learn can be imported (checked without importing it)."""
    return importlib.util.find_spec("umap") is not None


def default_epochs(n: int) -> int:
    """umap-learn's own number of epochs for N rows: 500 up to 10,000 rows, else 200."""
    return 500 if n <= 10000 else 200


def _import_umap():
    """umap-learn's modules (umap_, layouts, spectral), imported once.

    ``import umap`` tries ``umap.parametric_umap``, which imports TensorFlow
    when it is installed; marking that one submodule as absent while umap
    loads makes umap-learn fall back to its stub for it, as it does without
    TensorFlow. Nothing else is touched (a concurrent TensorFlow import
    elsewhere is not affected)."""
    global _umap
    with _umap_lock:
        if _umap is None:
            if not umap_available():
                raise ImportError(MISSING_MESSAGE)
            blocked = "umap" not in sys.modules and "umap.parametric_umap" not in sys.modules
            if blocked:
                sys.modules["umap.parametric_umap"] = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ImportWarning)
                    umap_ = importlib.import_module("umap.umap_")
                    layouts = importlib.import_module("umap.layouts")
                    spectral = importlib.import_module("umap.spectral")
            finally:
                if blocked and sys.modules.get("umap.parametric_umap", 0) is None:
                    del sys.modules["umap.parametric_umap"]
            _umap = (umap_, layouts, spectral)
        return _umap


class SemiSupervisedUMAP:
    """UMAP of X with the current labels as a partial target.

    n_components : 2 or 3.
    n_neighbors : size of the neighbourhood (umap-learn's ``n_neighbors``),
        2 <= n_neighbors < N.
    min_dist : smallest distance between embedded points, in [0, 1].
    label_weight : umap-learn's ``target_weight`` in [0, 1]: how far the labels
        pull the graph (0: labels ignored; 1: no edge between different labels).
    random_state : int seed or None. A seed makes the layout repeatable and
        its epochs single-threaded (umap-learn's rule); None runs them in parallel.
    """

    def __init__(self, n_components=2, n_neighbors=15, min_dist=0.1, label_weight=0.5, random_state=None):
        self.n_components = layout_params.check_param("n_components", n_components)
        self.n_neighbors = layout_params.check_param("n_neighbors", n_neighbors)
        self.min_dist = layout_params.check_param("min_dist", min_dist)
        self.label_weight = layout_params.check_param("label_weight", label_weight)
        self.random_state = layout_params.check_param("random_state", random_state)

    def prepare(self, X, labels=None, *, initialization=None, iteration=0, phase_progress=None):
        """The run, its graph built and its start positions set (no epoch yet).

        X : (N, D) float features. labels : (N,) int, -1 = unlabeled.
        initialization : (N, n_components) start positions (e.g. those of a
            freed session); default umap-learn's spectral layout.
        iteration : the run's epoch count so far (a resumed session's).
        phase_progress : callable(phase, fraction) for "neighbors" and "affinities".
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] < 3 or not np.isfinite(X).all():
            raise ValueError(f"X: expected a finite 2D array of at least 3 rows, got shape {X.shape}")
        n = X.shape[0]
        layout_params.check_param("n_neighbors", self.n_neighbors, n)
        labels = np.full(n, -1, np.int64) if labels is None else check_labels(labels, n)
        umap_, _, spectral = _import_umap()
        report = phase_progress or (lambda phase, fraction: None)
        report("neighbors", 0.0)
        if n < SHARE_KNN_BELOW:
            # umap-learn's neighbour lists start with the point itself at distance 0
            ind, dist, _ = nearest_neighbors(X, self.n_neighbors - 1,
                                             progress=lambda f: report("neighbors", f))
            knn = (np.hstack([np.arange(n, dtype=np.int32)[:, None], ind]).astype(np.int32),
                   np.hstack([np.zeros((n, 1)), dist]).astype(np.float32))
            search = "exact (the engine's)"
        else:
            seed = self.random_state
            ind, dist, _ = umap_.nearest_neighbors(
                X, self.n_neighbors, "euclidean", {}, False, np.random.RandomState(seed), low_memory=True,
                use_pynndescent=True, n_jobs=1 if seed is not None else -1, verbose=False)
            knn = (np.ascontiguousarray(ind, dtype=np.int32), np.ascontiguousarray(dist, dtype=np.float32))
            search = "NN-descent (umap-learn)"
        report("affinities", 0.0)
        run = UMAPRun(X, knn, self, labels, iteration)
        run.knn_search = search
        report("affinities", 0.5)  # the graph is built; the spectral start follows
        rng = np.random.RandomState(self.random_state)
        if initialization is None:
            graph = run.graph.tocoo()
            Y = spectral.spectral_layout(X, graph, self.n_components, rng)
            Y = umap_.noisy_scale_coords(Y, rng, max_coord=10, noise=0.0001)
            Y = 10.0 * (Y - Y.min(0)) / np.maximum(Y.max(0) - Y.min(0), 1e-12)
        else:
            Y = np.asarray(initialization, dtype=np.float64)
            if Y.shape != (n, self.n_components):
                raise ValueError(f"initialization: expected shape {(n, self.n_components)}, got {Y.shape}")
        run.embedding = np.ascontiguousarray(Y, dtype=np.float32)
        run.positions = run.embedding.copy()
        run.rng = rng
        report("affinities", 1.0)
        return run


class UMAPRun:
    """A live UMAP layout: ``step(n)`` runs n more epochs (see the module docstring).

    positions : (N, d) float32, replaced after every step, never written in place.
    iteration : epochs run so far. last_objective : nan (UMAP's cross-entropy is
        not computed). labels_applied : the labels of the pass under way (or last).
    knn_search : which search found the neighbours ("exact (the engine's)" or
        "NN-descent (umap-learn)").
    """

    def __init__(self, X, knn, model, labels, iteration=0):
        self._X = X
        self._knn = knn
        self.model = model
        self.n_components = model.n_components
        self.label_weight = model.label_weight
        self.iteration = int(iteration)
        self.last_objective = float("nan")
        self.embedding = None        # the pass's working array, written by every epoch
        self.positions = None
        self.rng = None
        self._labels = labels
        self.labels_applied = labels
        self.knn_search = None
        self._target_stale = False
        self.graph = self._build_graph(labels)
        self._pass = None            # the pass under way: its edges, clocks and epoch function
        self._pass_end = 0           # iteration at which the pass under way ends

    # --------------------------------------------------------------- the graph
    def _build_graph(self, labels):
        """umap-learn's fuzzy graph of the kept neighbours, intersected with the
        labels as a categorical target (none when nothing is labeled or the
        weight is 0)."""
        umap_, _, _ = _import_umap()
        use = self.label_weight > 0 and bool((labels >= 0).any())
        seed = self.model.random_state
        model = umap_.UMAP(n_neighbors=self.model.n_neighbors, n_components=self.n_components,
                           min_dist=self.model.min_dist, target_weight=self.label_weight,
                           random_state=seed, n_jobs=1 if seed is not None else -1,
                           precomputed_knn=self._knn, transform_mode="graph")
        model.fit(self._X, y=labels if use else None)
        self.labels_applied = labels
        return model.graph_

    def set_labels(self, labels):
        """New labels (N,) int, -1 = unlabeled: the next step starts a pass with them."""
        labels = check_labels(labels, self._X.shape[0])
        self._labels = labels
        self._target_stale = not np.array_equal(labels, self.labels_applied)
        return self

    def set_params(self, **params):
        """Live parameters: ``label_weight`` (a new target, as new labels)."""
        for name, value in params.items():
            if name != "label_weight":
                raise ValueError(f"unknown parameter {name!r}; a running UMAP takes label_weight")
            value = layout_params.check_param(name, value)
            if value != self.label_weight:
                self.label_weight = value
                self._target_stale = True
        return self

    # ------------------------------------------------------------ the epochs
    def step(self, n_iter=1, until=None):
        """Run ``n_iter`` more epochs. ``until``: the iteration at which a pass
        started now ends (its learning rate reaches 0 there); default
        ``iteration + n_iter``. Positions are published once, at the end."""
        n_iter = int(n_iter)
        for i in range(n_iter):
            if self._target_stale:
                self.graph = self._build_graph(self._labels)
                self._target_stale = False
                self._pass = None
            if self._pass is None or self.iteration >= self._pass_end:
                left = n_iter - i
                end = self.iteration + left if until is None else max(int(until), self.iteration + left)
                self._start_pass(end - self.iteration)
            self._epoch()
        self.positions = self.embedding.copy()
        return self

    def close(self):
        """Drop the pass under way (its arrays)."""
        self._pass = None

    def _start_pass(self, n_epochs):
        """A new optimisation of the current graph from the current positions:
        what umap-learn's simplicial_set_embedding and optimize_layout_euclidean
        set up before their epoch loop."""
        umap_, _, _ = _import_umap()
        graph = self.graph.tocoo()
        graph.sum_duplicates()
        # edges too weak to be sampled once in the pass are dropped, the others
        # sampled in proportion to their weight
        if n_epochs > 10:
            graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
        graph.eliminate_zeros()
        epochs_per_sample = umap_.make_epochs_per_sample(graph.data, n_epochs)
        a, b = umap_.find_ab_params(_SPREAD, self.model.min_dist)
        rng_state = self.rng.randint(umap_.INT32_MIN, umap_.INT32_MAX, 3).astype(np.int64)
        embedding = np.ascontiguousarray(self.positions, dtype=np.float32).copy()
        self.embedding = embedding
        parallel = self.model.random_state is None
        args = {
            "head_embedding": embedding, "tail_embedding": embedding, "head": graph.row, "tail": graph.col,
            "n_vertices": graph.shape[1], "epochs_per_sample": epochs_per_sample, "a": a, "b": b,
            "rng_state": rng_state,
            # one random stream per point, seeded as optimize_layout_euclidean seeds them
            "rng_state_per_sample": np.full((embedding.shape[0], len(rng_state)), rng_state, dtype=np.int64)
            + embedding[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1),
            "gamma": _GAMMA, "dim": embedding.shape[1], "move_other": True,
            "epochs_per_negative_sample": epochs_per_sample / _NEGATIVE_SAMPLE_RATE,
            "epoch_of_next_negative_sample": epochs_per_sample / _NEGATIVE_SAMPLE_RATE,
            "epoch_of_next_sample": epochs_per_sample.copy(),
            # densMAP is off
            "densmap_flag": False, "dens_phi_sum": np.zeros(1, np.float32),
            "dens_re_sum": np.zeros(1, np.float32), "dens_re_cov": 0.0, "dens_re_std": 0.0,
            "dens_re_mean": 0.0, "dens_lambda": 0.0, "dens_R": np.zeros(1, np.float32),
            "dens_mu": np.zeros(1, np.float32), "dens_mu_tot": 0.0,
        }
        fn, names = _epoch_function(parallel)
        self._pass = {"fn": fn, "args": {k: args[k] for k in names}, "epochs": n_epochs, "done": 0}
        self._pass_end = self.iteration + n_epochs

    def _epoch(self):
        """One epoch of the pass: umap-learn's kernel at the pass's learning rate
        (falling linearly from 1 to 0 over the pass, as in optimize_layout_euclidean)."""
        p = self._pass
        n = p["done"]
        p["fn"](**p["args"], alpha=_INITIAL_ALPHA * (1.0 - n / p["epochs"]), n=n)
        p["done"] = n + 1
        self.iteration += 1


_EPOCH_FUNCTIONS = {}
# what the epoch kernel's parameters mean here; a kernel asking for anything
# else is a umap-learn this module does not know
_KNOWN = {"head_embedding", "tail_embedding", "head", "tail", "n_vertices", "epochs_per_sample", "a", "b",
          "rng_state", "rng_state_per_sample", "gamma", "dim", "move_other", "alpha",
          "epochs_per_negative_sample", "epoch_of_next_negative_sample", "epoch_of_next_sample", "n",
          "densmap_flag", "dens_phi_sum", "dens_re_sum", "dens_re_cov", "dens_re_std", "dens_re_mean",
          "dens_lambda", "dens_R", "dens_mu", "dens_mu_tot"}


def _epoch_function(parallel):
    """umap-learn's compiled one-epoch kernel of optimize_layout_euclidean and
    the names of the arguments it takes (all but alpha and n, given per epoch).

    umap-learn's public optimize_layout_euclidean runs every epoch of a pass in
    one call; the live layout needs to stop between epochs, so it calls the
    kernel that function calls, by parameter name. A umap-learn whose kernel
    asks for a parameter not known here is refused with its version named."""
    if parallel not in _EPOCH_FUNCTIONS:
        _, layouts, _ = _import_umap()
        kernel = getattr(layouts, "_optimize_layout_euclidean_single_epoch", None)
        py = getattr(kernel, "py_func", kernel)
        names = () if py is None else tuple(inspect.signature(py).parameters)
        unknown = set(names) - _KNOWN
        if py is None or unknown or not {"alpha", "n", "head_embedding"} <= set(names):
            import umap
            raise RuntimeError(f"umap-learn {getattr(umap, '__version__', '?')} is not supported by this layout "
                               f"(its epoch kernel changed: {sorted(unknown) or 'missing'}); "
                               f"pip install 'umap-learn>=0.5.7,<0.6'")
        # compiled as umap-learn compiles it, but releasing the GIL: an epoch of
        # many rows takes a tenth of a second or more, during which the
        # server's other threads (its HTTP answers) would otherwise wait
        import numba
        fn = numba.njit(py, fastmath=True, parallel=parallel, nogil=True)
        _EPOCH_FUNCTIONS[parallel] = (fn, tuple(n for n in names if n not in ("alpha", "n")))
    return _EPOCH_FUNCTIONS[parallel]
