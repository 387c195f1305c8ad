"""Input affinities at scale: this engine's neighbour search against openTSNE's, and the candidates tried.

    .venv/bin/python benchmarks/knn_bench.py [--threads 2] [--repeat 3]   # Fashion-MNIST 70,000 x 50
    flock /tmp/al-big.lock .venv/bin/python benchmarks/knn_bench.py --big   # 1,000,000 x 50, 20 Gaussian clusters
    flock /tmp/al-big.lock .venv/bin/python benchmarks/knn_bench.py --big --big-n 200000   # the same, 200,000 rows
    .venv/bin/python benchmarks/knn_bench.py --small --out DIR    # 6,000 x 50 clusters, seconds (tests/test_knn.py)

Data: Fashion-MNIST's 70,000 images (Debian package dataset-fashion-mnist),
PCA to 50 dims as in tsne_bench.py; ``--big``: 1,000,000 x 50 rows in 20
Gaussian clusters (centres N(0, 4^2) per dimension, unit noise, seed 0).

Methods, each in its own subprocess (so that its peak memory is its own), at
``--threads`` (numba, OpenMP and BLAS threads alike), perplexity 20, k = 60:
  ours          perplexity_affinities() as the engine runs it (method "auto")
  ours-exact    the exact projection-pruned search + calibration (70k only: N^2)
  ours-hnsw     the approximate path forced (FAISS HNSW + float64 re-rank)
  pynndescent   NN-descent (pynndescent.NNDescent, k + 1 neighbours) + our calibration
  faiss-ivf     FAISS IVF-Flat (nlist 1024, nprobe 16) + our calibration (70k, and --small)
  opentsne      openTSNE.affinity.PerplexityBasedNN (Annoy), the peer
Reported: seconds for the neighbours and for the whole affinities, recall@k on
a seeded sample of rows against the exact neighbours (brute force, float64),
peak RSS of the process and above the loaded data, the ratio of the
affinities' time to openTSNE's, and the 1-minute load average. A method that
fails or passes ``--timeout`` is reported as such, never dropped. Writes
OUT/knn_bench.{json,md,png} (default benchmarks/results); the JSON keeps the
other data set's results, so the 70k and the --big runs share one table.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
CACHE = os.path.join("/tmp", "knn_bench_cache")
PERPLEXITY = 20.0
K = 60
SAMPLE = 1000
METHODS = ("ours", "ours-exact", "ours-hnsw", "pynndescent", "faiss-ivf", "opentsne")
DATASETS = {
    "small": dict(title="6,000 x 50, 20 Gaussian clusters (CI size)",
                  methods=("ours", "ours-exact", "ours-hnsw", "faiss-ivf", "opentsne")),
    "fmnist70k": dict(title="Fashion-MNIST 70,000 x 50 (PCA)", methods=METHODS),
    "clusters1m": dict(title="1,000,000 x 50, 20 Gaussian clusters",
                       methods=("ours", "ours-hnsw", "pynndescent", "opentsne")),
}
for _n in (200_000, 500_000):  # --big --big-n N: the same clusters, fewer rows
    DATASETS[f"clusters{_n // 1000}k"] = dict(title=f"{_n:,} x 50, 20 Gaussian clusters",
                                               methods=DATASETS["clusters1m"]["methods"])


def gaussian_clusters(n, dim=50, n_clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_clusters, dim))
    which = rng.integers(n_clusters, size=n)
    X = centres[which].astype(np.float32)
    for lo in range(0, n, 100_000):  # noise chunk by chunk: no (N, D) float64 at 1M
        X[lo:lo + 100_000] += rng.normal(size=(min(n, lo + 100_000) - lo, dim)).astype(np.float32)
    return X


def load(name):
    """(N, 50) float32, cached as .npy under CACHE."""
    path = os.path.join(CACHE, name + ".npy")
    if os.path.exists(path):
        return np.load(path)
    if name == "fmnist70k":
        sys.path.insert(0, HERE)
        from tsne_bench import load_dataset
        X = load_dataset("fmnist70k")[0]
    elif name.startswith("clusters"):
        X = gaussian_clusters(1_000_000 if name == "clusters1m" else int(name[len("clusters"):-1]) * 1000)
    else:
        X = gaussian_clusters(6000, seed=1)
    os.makedirs(CACHE, exist_ok=True)
    np.save(path, X)
    return X


def exact_sample(X, k, sample, seed=0):
    """(rows (S,), their k exact nearest neighbours (S, k)) by float64 brute force."""
    n = len(X)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, sample), replace=False))
    X64 = np.asarray(X, np.float64)
    sq = (X64 * X64).sum(axis=1)
    out = np.empty((len(rows), k), dtype=np.int64)
    for lo in range(0, len(rows), 50):
        r = rows[lo:lo + 50]
        d2 = sq[r, None] + sq[None, :] - 2.0 * (X64[r] @ X64.T)
        d2[np.arange(len(r)), r] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable")
        out[lo:lo + 50] = np.take_along_axis(part, order, axis=1)
    return rows, out


def recall_at_k(indices, rows, truth):
    """Mean share of each sampled row's k exact neighbours found among its k neighbours."""
    k = truth.shape[1]
    return float(np.mean([len(np.intersect1d(indices[r][:k], t)) / k for r, t in zip(rows, truth)]))


def rss_mb():
    """Peak resident memory of this process so far, MB: VmHWM, which starts
    afresh at exec (ru_maxrss keeps the parent's peak across fork and exec,
    and the driver's peak is the exact sample's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------ worker
def _calibrate(indices, distances):
    from tensorboard_al_plugin.tsne.affinity import joint_probabilities
    return joint_probabilities(indices, distances, PERPLEXITY)


def run_method(method, X, threads, small):
    """{'knn_s', 'affinities_s', 'indices', 'detail'} for one method (in this process)."""
    from tensorboard_al_plugin.tsne import nearest_neighbors as nn_module
    from tensorboard_al_plugin.tsne.affinity import perplexity_affinities
    if small:
        nn_module.APPROXIMATE_MIN_ROWS = 1000  # the CI size takes the large-N paths
    n = len(X)
    if method in ("ours", "ours-exact", "ours-hnsw"):
        from tensorboard_al_plugin.tsne import affinity as affinity_module
        # warm the numba kernels (cached on disk: this is their loading, not compilation)
        for how in ("exact", "approximate"):
            _calibrate(*nn_module.nearest_neighbors(X[:300], 10, method=how)[:2])
        search = {"ours": "auto", "ours-exact": "exact", "ours-hnsw": "approximate"}[method]
        found = {}

        def neighbors(X, k, progress=None):
            # the engine's call, with the method of this row, and its result kept for the recall
            found["result"] = nn_module.nearest_neighbors(X, k, progress=progress, method=search)
            found["end"] = time.perf_counter()
            return found["result"]

        affinity_module.nearest_neighbors = neighbors
        t0 = time.perf_counter()
        P, info = perplexity_affinities(X, PERPLEXITY)
        total = time.perf_counter() - t0
        detail = info["neighbors"]
        if "cells" in detail or method == "ours":
            share = getattr(nn_module.nearest_neighbors, "last_cells_share", None)
            if share is not None:
                detail += f"; sampled share of rows in reachable cells {share:.3f}"
        if "exact" in detail:
            detail += f"; distances computed: {nn_module.nearest_neighbors.last_scanned_fraction:.3f} of N^2"
        return dict(knn_s=found["end"] - t0, affinities_s=total, indices=found["result"][0], detail=detail)
    if method == "pynndescent":
        from pynndescent import NNDescent
        NNDescent(X[:300], n_neighbors=11, n_jobs=threads, random_state=0)  # compile (cached)
        t0 = time.perf_counter()
        index = NNDescent(X, n_neighbors=K + 1, n_jobs=threads, random_state=0)
        ind, dist = index.neighbor_graph
        ind, dist = ind[:, 1:].astype(np.int32), dist[:, 1:].astype(np.float64)
        knn_s = time.perf_counter() - t0
        _calibrate(ind, dist)
        import pynndescent
        return dict(knn_s=knn_s, affinities_s=time.perf_counter() - t0, indices=ind,
                    detail=f"pynndescent {pynndescent.__version__}, n_neighbors=k+1, defaults")
    if method == "faiss-ivf":
        import faiss
        faiss.omp_set_num_threads(threads)
        nlist, nprobe = (64, 8) if small else (1024, 16)
        t0 = time.perf_counter()
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(X.shape[1]), X.shape[1], nlist)
        index.train(X)
        index.add(X)
        index.nprobe = nprobe
        dist, ind = index.search(X, K + 1)
        ind, dist = ind[:, 1:].astype(np.int32), np.sqrt(np.maximum(dist[:, 1:], 0)).astype(np.float64)
        knn_s = time.perf_counter() - t0
        _calibrate(ind, dist)
        return dict(knn_s=knn_s, affinities_s=time.perf_counter() - t0, indices=ind,
                    detail=f"faiss {faiss.__version__} IndexIVFFlat nlist={nlist} nprobe={nprobe}")
    if method == "opentsne":
        import openTSNE
        from openTSNE.affinity import PerplexityBasedNN
        PerplexityBasedNN(X[:300], perplexity=5, n_jobs=threads, random_state=0)
        t0 = time.perf_counter()
        aff = PerplexityBasedNN(X, perplexity=PERPLEXITY, n_jobs=threads, random_state=0)
        total = time.perf_counter() - t0
        return dict(knn_s=None, affinities_s=total, indices=aff._PerplexityBasedNN__neighbors,
                    detail=f"openTSNE {openTSNE.__version__} PerplexityBasedNN (method auto: Annoy)")
    raise ValueError(f"unknown method {method!r}")


def worker(args):
    X = load(args.data)
    data_mb = rss_mb()
    truth = np.load(args.truth)
    t_start = time.perf_counter()
    out = run_method(args.worker, X, args.threads, args.data == "small")
    rec = recall_at_k(out["indices"], truth["rows"], truth["indices"])
    res = dict(method=args.worker, knn_s=out["knn_s"], affinities_s=out["affinities_s"], recall=rec,
               detail=out["detail"], peak_mb=rss_mb(), data_mb=data_mb, load=os.getloadavg()[0],
               wall_s=time.perf_counter() - t_start)
    print("RESULT " + json.dumps(res), flush=True)


# ------------------------------------------------------------------ driver
def measure(data, methods, threads, timeout, sample, repeat=1):
    X = load(data)
    truth_path = os.path.join(CACHE, f"{data}-truth-{sample}.npz")
    if not os.path.exists(truth_path):
        rows, truth = exact_sample(X, K, sample)
        np.savez(truth_path, rows=rows, indices=truth)
    n, dim = X.shape
    del X
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    rows = []
    # interleaved repeats; the N^2 exact reference runs once
    for run, method in [(r, m) for r in range(repeat) for m in methods if r == 0 or m != "ours-exact"]:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--data", data,
               "--truth", truth_path, "--threads", str(threads)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode == 0 and lines:
                row = json.loads(lines[-1][len("RESULT "):])
            else:
                tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                row = dict(method=method, failed=f"exit {proc.returncode}: {tail[-300:]}")
        except subprocess.TimeoutExpired:
            row = dict(method=method, failed=f"censored: still running after {timeout} s (killed)")
        row.setdefault("load", os.getloadavg()[0])
        row["process_s"] = time.perf_counter() - t0
        row["repeat"] = run
        print(json.dumps(row), flush=True)
        rows.append(row)
    for r in rows:  # against openTSNE of the same repeat (run next to it)
        ref = next((o.get("affinities_s") for o in rows if o["method"] == "opentsne" and "failed" not in o
                    and o["repeat"] == r["repeat"]), None)
        if ref and r.get("affinities_s"):
            r["x_opentsne"] = r["affinities_s"] / ref
    return dict(data=data, title=DATASETS[data]["title"], n=n, dim=dim, k=K, perplexity=PERPLEXITY,
                threads=threads, sample=sample, machine=f"{platform.machine()}, {os.cpu_count()} cores",
                when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), rows=rows)


def _fmt(v, fmt):
    return "" if v is None else fmt % v


def write_md(results, path):
    lines = ["# Input affinities: neighbour search and calibration", "",
             "benchmarks/knn_bench.py; perplexity 20, k = 60; every method in its own process at the same "
             "thread count; recall@k against the exact neighbours (float64 brute force) on a seeded sample of "
             "rows; peak = the process's peak RSS, above data = peak minus the RSS after loading the data; "
             "x openTSNE = affinities time over openTSNE's in the same run; load = 1-minute load average "
             "when the method finished (2 cores: above 2 the run shared the cores with other work). "
             + ("" if any(r["threads"] >= 16 for r in results.values())
                else "16-thread figures were not measured (no such machine this session)."), ""]
    for res in results.values():
        lines += [f"## {res['title']}", "",
                  f"{res['when']}; {res['machine']}, threads used: {res['threads']}; recall sample: "
                  f"{res['sample']} rows.", "",
                  "| method | run | neighbours s | affinities s | x openTSNE | recall@k | peak MB | above data MB | load | how |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["rows"]:
            if "failed" in r:
                lines.append(f"| {r['method']} | {r.get('repeat', 0) + 1} | | | | | | | {r['load']:.1f} | {r['failed']} |")
                continue
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %.1f | %s |" % (
                r["method"], r.get("repeat", 0) + 1, _fmt(r.get("knn_s"), "%.1f"), _fmt(r.get("affinities_s"), "%.1f"),
                _fmt(r.get("x_opentsne"), "%.2f"), _fmt(r.get("recall"), "%.4f"), _fmt(r.get("peak_mb"), "%.0f"),
                _fmt(r["peak_mb"] - r["data_mb"] if r.get("peak_mb") else None, "%.0f"), r["load"],
                r.get("detail", "")))
        ratios = {}
        for r in res["rows"]:
            if r.get("x_opentsne") is not None and r["method"] != "opentsne":
                ratios.setdefault(r["method"], []).append(r["x_opentsne"])
        if ratios:
            lines += ["", "Median x openTSNE over the runs: " + ", ".join(
                "%s %.2f (%s)" % (m, float(np.median(v)), ", ".join("%.2f" % x for x in v))
                for m, v in ratios.items()) + "."]
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_png(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = [r for r in results.values() if r["data"] != "small"] or list(results.values())
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    for ax, res in zip(axes[0], sets):
        rows = res["rows"]
        names = [r["method"] + (" #%d" % (r.get("repeat", 0) + 1) if any(o.get("repeat") for o in rows) else "")
                 for r in rows]
        times = [r.get("affinities_s") or 0.0 for r in rows]
        colors = ["tab:gray" if r["method"] == "opentsne" else "tab:blue" if r["method"].startswith("ours")
                  else "tab:orange" for r in rows]
        ax.barh(names, times, color=colors)
        for y, r in enumerate(rows):
            label = r["failed"][:40] if "failed" in r else "recall %.3f" % r["recall"]
            if r.get("x_opentsne") is not None and r["method"] != "opentsne":
                label += ", %.2fx openTSNE" % r["x_opentsne"]
            ax.text((r.get("affinities_s") or 0.0), y, " " + label, va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"affinities, seconds ({res['threads']} threads)")
        ax.set_title(res["title"], fontsize=10)
        ax.set_xlim(0, max(times + [1.0]) * 1.45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="threads for every method (default 2)")
    p.add_argument("--big", action="store_true", help="1,000,000 x 50 Gaussian clusters (run under flock /tmp/al-big.lock)")
    p.add_argument("--big-n", type=int, default=1_000_000, choices=(200_000, 500_000, 1_000_000),
                   help="rows of the --big case (default 1,000,000)")
    p.add_argument("--small", action="store_true", help="6,000 x 50 Gaussian clusters, for the test")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the methods this many times, interleaved (each ratio is to the openTSNE run of "
                        "its own repeat): on a shared machine the load moves between runs")
    p.add_argument("--methods", default=None, help="comma-separated subset of " + ", ".join(METHODS))
    p.add_argument("--sample", type=int, default=SAMPLE, help="rows whose recall is measured (default 1000)")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per method before it is censored")
    p.add_argument("--out", default=RESULTS, help="folder of knn_bench.{json,md,png}")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--truth", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    big = "clusters1m" if args.big_n == 1_000_000 else f"clusters{args.big_n // 1000}k"
    data = big if args.big else "small" if args.small else "fmnist70k"
    methods = args.methods.split(",") if args.methods else list(DATASETS[data]["methods"])
    res = measure(data, methods, args.threads, args.timeout, min(args.sample, 300) if args.small else args.sample,
                  args.repeat)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "knn_bench.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results[data] = res
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    write_md(results, os.path.join(args.out, "knn_bench.md"))
    write_png(results, os.path.join(args.out, "knn_bench.png"))
    return res


if __name__ == "__main__":
    main()
