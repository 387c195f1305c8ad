"""The neighbour search above the size threshold (k-means cells or FAISS HNSW),
the compiled symmetrisation of P, and the small version of benchmarks/knn_bench.py."""
import json
import os
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from tensorboard_al_plugin.tsne import affinity
from tensorboard_al_plugin.tsne import nearest_neighbors as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clusters(n=3000, dim=50, n_clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_clusters, dim))
    return (centres[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _manifold(n=3000, dim=50, seed=0):
    """Rows near a smooth 3-D surface in 50-D (low intrinsic dimension, one
    connected piece: no cells to prune, the approximate search's case)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 3 * np.pi, size=(n, 3))
    basis = rng.normal(size=(9, dim))
    feats = np.hstack([np.sin(t), np.cos(t), t / 3])
    return (feats @ basis + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def _recall(ind, truth):
    k = truth.shape[1]
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(ind, truth)]))


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(nn, "APPROXIMATE_MIN_ROWS", 1000)


def test_approximate_search_recall_at_least_098_against_exact(low_threshold):
    X = _manifold()
    exact_i, exact_d, method = nn.nearest_neighbors(X, 30, method="exact")
    assert method == nn.EXACT_METHOD
    ind, dist, method = nn.nearest_neighbors(X, 30)  # "auto" above the lowered threshold
    assert "HNSW" in method and nn.nearest_neighbors.last_cells_share > nn.CELLS_MAX_FRACTION
    assert ind.shape == (3000, 30) and ind.dtype == np.int32 and dist.dtype == np.float64
    assert not (ind == np.arange(3000)[:, None]).any()
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert _recall(ind, exact_i) >= 0.98
    # re-ranked in float64: a neighbour found has its exact distance
    same = ind == exact_i
    np.testing.assert_allclose(dist[same], exact_d[same], rtol=1e-6)


def test_clustered_data_take_the_exact_cell_search(low_threshold):
    X = _clusters()
    exact_i, exact_d, _ = nn.nearest_neighbors(X, 40, method="exact")
    ind, dist, method = nn.nearest_neighbors(X, 40)
    assert method == nn.EXACT_CELLS_METHOD
    assert nn.nearest_neighbors.last_cells_share <= nn.CELLS_MAX_FRACTION
    # far fewer distances than all pairs, and exactly the exact search's neighbours
    assert nn.nearest_neighbors.last_scanned_fraction < 0.3
    np.testing.assert_allclose(dist, exact_d, rtol=1e-12)
    assert _recall(ind, exact_i) == 1.0


@pytest.mark.parametrize("data", ["duplicates", "manifold"])
def test_exact_cell_search_equals_exact_search_on_any_data(data):
    # exact whatever the cells: on data it would not be chosen for too
    if data == "duplicates":
        X = _clusters(2500, dim=8, n_clusters=40, seed=3)
        X[:200] = X[0]          # a pile of identical rows
        X[200:210] += 50.0      # a far, tiny group
    else:
        X = _manifold(2500)
    exact_i, exact_d, _ = nn.nearest_neighbors(X, 15, method="exact")
    assign, centroids, _ = nn._partition(nn._faiss(), X, 15)
    ind, dist, method = nn._exact_neighbors(X, 15, None, cells=(assign, centroids))
    assert method == nn.EXACT_CELLS_METHOD
    np.testing.assert_allclose(dist, exact_d, rtol=1e-12, atol=1e-12)
    assert not (ind == np.arange(len(X))[:, None]).any()


@pytest.mark.parametrize("cells", [False, True])
def test_exact_search_runs_its_blocks_with_a_one_thread_blas(cells):
    # Each search thread runs whole blocks, GEMM included, on a one-thread
    # BLAS. Parallel numba kernels between two-thread BLAS calls made the two
    # thread pools trade the cores: ~200 ns per distance instead of ~2 on 2
    # cores. The BLAS threads are as before once the search is done.
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    X = _clusters(3000)
    during = []
    part = (nn._partition(nn._faiss(), X, 20)[:2],) if cells else ()
    ind, dist, method = nn._exact_neighbors(X, 20, lambda f: during.append(blas_threads()), *part)
    assert method == (nn.EXACT_CELLS_METHOD if cells else nn.EXACT_METHOD)
    assert during and all(threads == [1] * len(before) for threads in during)
    assert blas_threads() == before
    exact_i, exact_d, _ = nn.nearest_neighbors(X, 20, method="exact")
    np.testing.assert_allclose(dist, exact_d, rtol=1e-12)


def test_overlapping_searches_leave_the_blas_threads_as_they_were():
    # Two sessions prepare at once: A starts, B starts, A ends, B ends. Each
    # restoring the limit it found would leave BLAS on one thread for good
    # (B found A's limit of 1).
    import threading
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    waits = []

    def progress_a(f):
        a_in.set()
        waits.append(b_in.wait(60))

    def progress_b(f):
        b_in.set()
        waits.append(a_done.wait(60))

    def search(X, progress, done=None):
        nn._exact_neighbors(X, 10, progress)
        if done is not None:
            done.set()

    a = threading.Thread(target=search, args=(_clusters(600, seed=1), progress_a, a_done))
    b = threading.Thread(target=search, args=(_clusters(600, seed=2), progress_b))
    a.start()
    assert a_in.wait(60)
    b.start()
    a.join(120)
    b.join(120)
    assert all(waits) and not a.is_alive() and not b.is_alive()
    assert blas_threads() == before


def test_exact_cell_search_holds_few_copies_of_the_data():
    # At 10^6 x 50 the float64 rows are 400 MB: the search centres them in
    # place, measures the cells' reach chunk by chunk and drops its sorted
    # copies before putting the answer in order (peak 8.7 -> 5.1 copies).
    import tracemalloc
    X = _clusters(20000)
    cells = nn._partition(nn._faiss(), X, 60)[:2]
    small = X[:2000]  # first-use imports and caches (threadpoolctl ...) before, not traced
    nn._exact_neighbors(small, 60, None, cells=nn._partition(nn._faiss(), small, 60)[:2])
    tracemalloc.start()
    try:
        ind, dist, _ = nn._exact_neighbors(X, 60, None, cells=cells)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    copy = X.shape[0] * X.shape[1] * 8
    assert (ind.nbytes + dist.nbytes) / copy == pytest.approx(1.8)  # the answer itself
    assert peak <= 6.0 * copy, peak / copy


@pytest.mark.parametrize("data", [_clusters, _manifold])
def test_search_progress_rises_to_one(low_threshold, data):
    seen = []
    nn.nearest_neighbors(data(2000), 20, progress=seen.append)
    assert len(seen) >= 2 and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    # the bar moves once the cells are made, before the search itself reports
    assert seen[0] == nn._PARTITION_SHARE
    assert all(b >= a for a, b in zip(seen, seen[1:]))


def test_bad_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        nn.nearest_neighbors(np.zeros((10, 2)), 3, method="annoy")


def _scipy_symmetric(indices, cond, n):
    rows = np.repeat(np.arange(n), indices.shape[1])
    C = sp.csr_matrix((cond.ravel(), (rows, indices.ravel())), shape=(n, n))
    P = (C + C.T).tocsr()
    P.sum_duplicates()
    P.eliminate_zeros()
    P.sort_indices()
    P.data /= P.data.sum()
    return P


def test_compiled_symmetrisation_equals_scipys():
    rng = np.random.default_rng(0)
    n, k = 400, 12
    ind = np.stack([rng.choice(n - 1, k, replace=False) for _ in range(n)])
    ind = np.where(ind >= np.arange(n)[:, None], ind + 1, ind).astype(np.int32)  # no self
    cond = rng.random((n, k))
    cond[:, -2:] = 0.0  # underflowed kernels: dropped, as eliminate_zeros does
    cond /= cond.sum(axis=1, keepdims=True)
    P = affinity.symmetrize(ind, cond)
    Q = _scipy_symmetric(ind, cond, n)
    assert P.has_sorted_indices
    np.testing.assert_array_equal(P.indptr, Q.indptr)
    np.testing.assert_array_equal(P.indices, Q.indices)
    np.testing.assert_allclose(P.data, Q.data, rtol=1e-12)
    assert abs(P.sum() - 1.0) < 1e-12 and abs(P - P.T).max() < 1e-15


def test_affinities_progress_reaches_one_after_symmetrisation():
    seen = []
    X = _clusters(1500, dim=10)
    P, info = affinity.perplexity_affinities(X, 10.0, phase_progress=lambda ph, f: seen.append((ph, f)))
    phases = [ph for ph, _ in seen]
    assert phases.index("affinities") > max(i for i, ph in enumerate(phases) if ph == "neighbors")
    assert seen[-1] == ("affinities", 1.0)
    assert abs(P.sum() - 1.0) < 1e-12


def test_knn_bench_small_version_measures_recall_and_ratios(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import knn_bench
    finally:
        sys.path.pop(0)
    methods = ["ours", "ours-exact", "ours-hnsw", "faiss-ivf"]
    try:
        import openTSNE  # noqa: F401  (the bench extra; the lean test venvs have none)
        methods.append("opentsne")
    except ImportError:
        pass
    res = knn_bench.main(["--small", "--threads", "2", "--methods", ",".join(methods),
                          "--out", str(tmp_path)])
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == set(methods) and not any("failed" in r for r in rows.values())
    assert rows["ours-exact"]["recall"] == 1.0
    # the clusters take the exact cell search: exact too
    assert "cells" in rows["ours"]["detail"] and rows["ours"]["recall"] == 1.0
    assert rows["ours-hnsw"]["recall"] >= 0.98
    if "opentsne" in rows:
        assert rows["ours"]["x_opentsne"] == pytest.approx(
            rows["ours"]["affinities_s"] / rows["opentsne"]["affinities_s"])
    saved = json.loads((tmp_path / "knn_bench.json").read_text())
    assert saved["small"]["n"] == 6000 and saved["small"]["threads"] == 2
    md = (tmp_path / "knn_bench.md").read_text()
    assert "| ours-hnsw |" in md and "recall@k" in md
    assert (tmp_path / "knn_bench.png").stat().st_size > 1000


def test_cli_phase_bars_show_each_phase_with_the_time_left(capsys):
    from tensorboard_al_plugin.cli import _PhaseBars
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE, affinity as affinity_module

    with _PhaseBars(delay=0.0):  # the CLI's bars show after 1 s; at once here
        SemiSupervisedTSNE(perplexity=10, random_state=0).prepare(_clusters(1500, dim=10))
    assert affinity_module.phase_listener() is None  # removed again
    err = capsys.readouterr().err
    for name in ("nearest neighbours", "affinities", "PCA initialisation"):
        assert name + ":" in err, err
    assert "100%" in err and "<" in err  # tqdm's elapsed<remaining
