"""Compile every numba kernel of the package once, before the first layout needs it.

The engine's kernels are compiled on first use and kept in numba's on-disk
cache (every kernel is declared with ``cache=True``). Without a warm-up the
first layout after an install pays that compile, about 30 s on two cores.
:func:`warm_up` runs the engine on small seeded inputs along every path the
tab and the benchmark take, so that each kernel is compiled for the argument
types those paths use (or loaded, when the cache already holds it):

- neighbours and affinities of 3,000 rows (more than one 2,048-column block,
  so both block layouts of the top-k kernel; a cloud of identical rows, so
  the float64 brute-force re-search);
- 2D and 3D layouts with labels and supervision (f = r = 0.1): exact
  repulsion on 300 rows, FFT (2D) and Barnes-Hut (2D, 3D) on 300 and 3,000
  rows, so both the exact and the tree form of the supervision correction;
- the active-learning kernels: the Barnes-Hut focus tree, its walk and the
  focus counts of Algorithm 1, in 2D and 3D.

numba stores the cache next to each module (``__pycache__``) when that folder
is writable, else in the user's cache folder (``~/.cache/numba``), or in
``NUMBA_CACHE_DIR`` when that is set; :func:`warm_up` reports which.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import time
from typing import Callable, Dict, Optional

import numpy as np

__all__ = ["warm_up", "cached_kernels", "package_kernels", "PHASES"]

#: The warm-up's phases, in order (names as the progress bar shows them).
PHASES = ("neighbours and affinities", "2D layout", "3D layout", "active-learning kernels")

_SEED = 20190103  # any fixed seed: the inputs only need to be the same every time


def package_kernels() -> Dict[str, object]:
    """``{"tensorboard_al_plugin.module.function": dispatcher}`` for every numba kernel the package defines.

    Only modules whose source mentions numba are imported, so nothing
    optional (TensorFlow) is pulled in.
    """
    import numba

    import tensorboard_al_plugin

    found = {}
    for info in pkgutil.walk_packages(tensorboard_al_plugin.__path__, "tensorboard_al_plugin."):
        spec = importlib.util.find_spec(info.name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if "numba" not in f.read():
                continue
        module = importlib.import_module(info.name)
        for attr, obj in vars(module).items():
            if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.py_func.__module__ == info.name:
                found["%s.%s" % (info.name, attr)] = obj
    return found


def cached_kernels() -> Dict[str, object]:
    """``{"module.function": dispatcher}`` (names below the package) of the kernels declared with cache=True."""
    prefix = len("tensorboard_al_plugin.")
    # stats.cache_path is None for a kernel without cache=True (the inlined helpers)
    return {name[prefix:]: k for name, k in package_kernels().items() if k.stats.cache_path is not None}


def _data(rng, n, dims=10, classes=5):
    """Gaussian blobs (n, dims) float32 and their class (n,); the first 100 rows are one point repeated."""
    centres = rng.normal(scale=6.0, size=(classes, dims))
    y = np.arange(n) % classes
    X = (centres[y] + rng.normal(size=(n, dims))).astype(np.float32)
    X[:100] = X[0]  # identical rows: the neighbour search re-checks them by brute force
    return X, y.astype(np.int64)


def _layouts(X, y, n_components, methods):
    """Step a supervised layout of X with each repulsion method; return the last positions."""
    from .tsne import SemiSupervisedTSNE

    labels = y.copy()
    labels[::25] = -1  # some rows unlabeled, the rest labeled (the correction's tree needs > 2,829)
    positions = None
    for method, rows in methods:
        # r = 1, the tab's default: up to r = 0.2 a kept correction has no error estimate to
        # sample (tsne._sample_correction), its interval being already the longest
        model = SemiSupervisedTSNE(n_components=n_components, perplexity=20, method=method,
                                   label_importance=0.1, repulsion_emphasis=1.0, random_state=_SEED)
        first = labels[:rows].copy()
        first[1::7] = -1
        run = model.prepare(X[:rows], labels=first)
        run.step(3)          # inside the u ramp of labels given at once: the scaled pairs' pass
        run.objective()
        more = first.copy()
        more[1:rows:14] = labels[1:rows:14]
        run.set_labels(more)
        run.step(1)          # a second ramp: the labeled pairs' attraction with u per pair
        run.objective()
        run.set_params(point_learning_rate_epochs=0)
        run.step(1)          # the ramp over: the weights written out once
        run.set_labels(labels[:rows])
        run.step(1)          # new labels settled at once: the weights brought up to date
        run.objective()
        if method != "exact":
            _extrapolated(run)
        positions = run.positions
    # large runs keep their points in the Z-order of their start (tsne.LOCALITY_MIN_POINTS)
    from .tsne import repulsion, tsne
    tsne._permute(run._P, repulsion._morton_order(run._Y))
    if n_components == 2:
        # compact classes far apart and a label far from its class: the FFT
        # correction's class grids leave it out and sum it exactly (repulsion._stray_sums)
        rng = np.random.default_rng(_SEED)
        codes = labels[:3000].astype(np.int32)
        angle = 1.3 * y[:3000]
        Y = 100.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(size=(3000, 2))
        Y[1] = Y.max(axis=0) + 50.0     # labeled (every 25th from 0 is not)
        repulsion.fft_repulsion_2d(Y, codes=codes, u=(codes >= 0) * 1.0, repulsion_emphasis=0.1,
                                   on_grid=True)
    return positions


def _extrapolated(run):
    """A kept correction with a slope from the one before, used at an age: what step does
    where its check finds the extrapolated correction the closer (tsne._Kept), which a
    few warm-up iterations need not reach."""
    from .tsne import tsne

    kept = None
    for _ in range(2):
        rep, Z, rep_c, Z_c = run._repulsion_parts(run._Y)
        kept = tsne._Kept(rep_c, Z_c, run.iteration, run._Y, run._codes, run._u, run._lab_idx,
                          run.params["repulsion_emphasis"], before=kept)
        run.step(1)
    kept.extrapolate = True
    kept.value(*run._plain(run._Y), 1)


def _active(layout, X, y):
    from .active.emulation import emulation_step
    from .active.neighbourhood import BarnesHutTree
    from .active.suggest import suggest

    labels = np.full(len(y), -1, np.int64)
    labels[:50] = y[:50]
    emulation_step(layout, y, labels)
    BarnesHutTree(layout).neighbourhood(0)
    suggest("tsne", X, [None] * len(y), layout=layout, n=2)


def warm_up(progress: Optional[Callable[[str, int], None]] = None) -> dict:
    """Compile (or load from the cache) every kernel; return what happened.

    ``progress(phase, index)`` is called before each of :data:`PHASES`.
    Returns ``{"seconds", "phases": [{"name", "seconds"}], "kernels":
    [{"name", "signatures", "compiled", "loaded", "cache_dir"}], "compiled",
    "loaded", "not_exercised": [names], "cache_dirs": [folders],
    "cache_writable": bool}``: "compiled" counts signatures compiled (and
    written to the cache) now, "loaded" those found in the cache;
    "not_exercised" names kernels no phase reached (a new kernel the warm-up
    misses), which the first layout would still compile.
    """
    t_start = time.perf_counter()
    kernels = cached_kernels()  # imports the engine: part of what a first layout waits for
    from .tsne import perplexity_affinities

    X, y = _data(np.random.default_rng(_SEED), 3000)
    phases = []
    layouts = {}
    for index, name in enumerate(PHASES):
        if progress is not None:
            progress(name, index)
        t0 = time.perf_counter()
        if index == 0:
            perplexity_affinities(X, 20.0)
            # the approximate search's float64 re-rank (large N only, so not reached above)
            from .tsne.nearest_neighbors import nearest_neighbors
            nearest_neighbors(X, 20, method="approximate")
        elif index == 1:
            layouts[2] = _layouts(X, y, 2, [("exact", 300), ("fft", 3000), ("bh", 3000)])
        elif index == 2:
            layouts[3] = _layouts(X, y, 3, [("exact", 300), ("bh", 300), ("bh", 3000)])
        else:
            for layout in layouts.values():
                _active(layout[-300:], X[-300:], y[-300:])
        phases.append({"name": name, "seconds": round(time.perf_counter() - t0, 2)})
    report = []
    for name, kernel in sorted(kernels.items()):
        stats = kernel.stats
        report.append({"name": name, "signatures": len(kernel.signatures),
                       "compiled": sum(stats.cache_misses.values()), "loaded": sum(stats.cache_hits.values()),
                       "cache_dir": stats.cache_path})
    dirs = sorted({k["cache_dir"] for k in report})
    # A kernel called only from other kernels is compiled into them, and gets no
    # signature of its own when they come from the cache.
    called = {name for k in kernels.values() for name in k.py_func.__code__.co_names}
    return {
        "seconds": round(time.perf_counter() - t_start, 2),
        "phases": phases,
        "kernels": report,
        "compiled": sum(k["compiled"] for k in report),
        "loaded": sum(k["loaded"] for k in report),
        "not_exercised": [k["name"] for k in report
                          if k["signatures"] == 0 and k["name"].rsplit(".", 1)[1] not in called],
        "cache_dirs": dirs,
        "cache_writable": all(os.access(d, os.W_OK) for d in dirs),
    }
