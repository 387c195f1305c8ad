"""Side-by-side t-SNE benchmark: this engine vs openTSNE vs scikit-learn.

    .venv/bin/python benchmarks/tsne_bench.py [--quick] [--only NAME ...] [--iters N] [--threads N]
    .venv/bin/python benchmarks/tsne_bench.py --affinity-pairs 3   # 70k affinities, paired
    .venv/bin/python benchmarks/tsne_bench.py --interleaved   # engines stepped in turn, one process
    flock /tmp/al-big.lock .venv/bin/python benchmarks/tsne_bench.py --big [--big-n 1000000]

Data: scikit-learn's digits (1797 x 64) and Fashion-MNIST (Debian package
dataset-fashion-mnist: ``apt-get install -y dataset-fashion-mnist``), first
10,000 rows and all 70,000 rows, raw pixels reduced by PCA to 50 dims.

Every configuration runs in its own subprocess so that peak memory (max RSS)
is its own. Reported per run: affinity time (s), median ms per iteration
(timed over chunks of 10 iterations), peak RSS (MB), final KL divergence on a
common yardstick (this engine's P and objective with f = r = 0, exact up to
10,000 points), leave-one-out 4-NN / 10-NN accuracy in the embedding, and for
this engine the ratio of ms/iteration to openTSNE's best method at the same N
and dimension. Writes benchmarks/results/tsne_bench.{json,png,md}.

Iteration cost is reported three ways: the median over chunks of 10
iterations (``ms_per_iter``), the mean over the first 100 iterations, inside
early exaggeration (``early_ms_per_iter``), and the mean over the whole run
(``mean_ms_per_iter``); with the supervised run's ratio to the unsupervised
one (``sup_ratio_*``) and each of ours to openTSNE's best method at the same N
and dimension (``ratio_to_opentsne_*``). ``--compare-root DIR`` adds runs of
this engine from another checkout (e.g. a ``git worktree`` of an older
commit), labelled ``ours@before``, in the same invocation.

``--big``: 20 seeded Gaussian clusters in 50 dimensions (``--big-n`` rows,
default 1,000,000), one affinity matrix (openTSNE's ``PerplexityBasedNN``,
Annoy, perplexity 20) built once and given to both engines, the same PCA
initialisation, and only the iterations timed: ``--phase-iters`` iterations
inside early exaggeration, then as many after it (not a whole run). Run it
under ``flock /tmp/al-big.lock``; peak RSS of every step is recorded.
Writes benchmarks/results/tsne_bench_big.{json,md}.
"""
import argparse
import gzip
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
# FASHION_MNIST_DIR: the idx .gz files elsewhere (benchmarks/device_16.sh carries them)
FMNIST_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
N_THREADS = int(os.environ.get("TSNE_BENCH_THREADS", "2"))
CHUNK = 10
EARLY_ITERS = 100  # the early-phase figure: mean over these first iterations
BIG_CLUSTERS = 20
BIG_BH3D_ITERS = 5  # --big: iterations per phase of openTSNE's 3D Barnes-Hut above 100,000 rows
CACHE = os.environ.get("TSNE_BENCH_CACHE", os.path.join("/tmp", "tsne_bench_cache"))


def load_dataset(name):
    """(X float32 (N, D), y int) for 'digits', 'fmnist10k', 'fmnist70k'."""
    if name == "digits":
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return X.astype(np.float32), y
    files = [("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    Xs, ys = [], []
    for img, lab in files:
        pi, pl = os.path.join(FMNIST_DIR, img), os.path.join(FMNIST_DIR, lab)
        if not os.path.exists(pi):
            sys.exit(f"Fashion-MNIST not found at {FMNIST_DIR}. Install it with:\n"
                     "    sudo apt-get install -y dataset-fashion-mnist")
        with gzip.open(pi) as f:
            Xs.append(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784))
        with gzip.open(pl) as f:
            ys.append(np.frombuffer(f.read(), np.uint8, offset=8))
    X = np.vstack(Xs).astype(np.float32) / 255.0
    y = np.concatenate(ys).astype(np.int64)
    if name == "fmnist10k":
        X, y = X[:10000], y[:10000]
    from sklearn.decomposition import PCA
    X = PCA(50, svd_solver="randomized", random_state=0).fit_transform(X).astype(np.float32)
    return X, y


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def yardstick_P(data, X):
    """Our P for the dataset (perplexity 20), cached across the runs' processes."""
    import scipy.sparse as sp
    from tensorboard_al_plugin.tsne import perplexity_affinities
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"{data}_P.npz")
    if os.path.exists(path):
        return sp.load_npz(path)
    P, _ = perplexity_affinities(X, 20.0)
    sp.save_npz(path + ".tmp.npz", P)
    os.replace(path + ".tmp.npz", path)
    return P


def quality(Y, X, y, data, mask=None):
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE, knn_accuracy
    n = Y.shape[0]
    # common yardstick: our P, our objective, f = r = 0
    ref = SemiSupervisedTSNE(n_components=Y.shape[1], perplexity=20,
                             method="exact" if n <= 10000 else "fast",
                             initialization=np.asarray(Y, np.float64)).prepare(
                                 affinities=yardstick_P(data, X))
    out = {"kl": ref.objective(),
           "knn4": knn_accuracy(Y, y, 4), "knn10": knn_accuracy(Y, y, 10)}
    if mask is not None:
        out["knn4_unlabeled"] = knn_accuracy(Y, y, 4, mask=mask)
    return out


def _set_threads():
    import numba
    numba.set_num_threads(min(N_THREADS, numba.config.NUMBA_NUM_THREADS))


def timing(times):
    """ms/iter from per-iteration times of chunks: median, early mean, whole-run mean."""
    t = np.asarray(times, dtype=np.float64)
    early = t[:max(1, EARLY_ITERS // CHUNK)]
    return {"ms_per_iter": 1000 * float(np.median(t)), "early_ms_per_iter": 1000 * float(early.mean()),
            "mean_ms_per_iter": 1000 * float(t.mean())}


def run_one(cfg):
    """Run one configuration in this process; returns a dict of results."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(N_THREADS))
    _set_threads()
    X, y = load_dataset(cfg["data"])
    base_rss = rss_mb()
    engine, d, n_iter = cfg["engine"], cfg["dim"], cfg["n_iter"]
    res = dict(cfg, n=X.shape[0])
    rng = np.random.default_rng(0)
    mask = None
    times = []
    if engine in ("ours", "ours@before"):
        import tensorboard_al_plugin
        from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
        res["engine_path"] = os.path.dirname(os.path.dirname(tensorboard_al_plugin.__file__))
        labels = None
        kw = {}
        if cfg.get("supervised"):
            known = rng.random(X.shape[0]) < 0.5
            labels = np.where(known, y, -1)
            mask = ~known
            kw = dict(label_importance=0.1, repulsion_emphasis=0.1)
        est = SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0, **kw)
        # warm the JIT cache outside the timed region, on the same paths (FFT from 5,000 rows)
        m = min(X.shape[0], 6000)
        SemiSupervisedTSNE(n_components=d, perplexity=5, random_state=0, method="fast",
                           **kw).prepare(X[:m], labels=None if labels is None else labels[:m]
                                         ).step(2)
        t0 = time.perf_counter()
        run = est.prepare(X, labels=labels)
        res["affinity_s"] = time.perf_counter() - t0
        res["method"] = run.info
        for _ in range(0, n_iter, CHUNK):
            t0 = time.perf_counter()
            run.step(CHUNK)
            times.append((time.perf_counter() - t0) / CHUNK)
        Y = run.positions
    elif engine.startswith("opentsne"):
        import openTSNE
        from openTSNE import affinity, initialization
        method = engine.split("-")[1]
        t0 = time.perf_counter()
        aff = affinity.PerplexityBasedNN(X, perplexity=20, n_jobs=N_THREADS, random_state=0)
        res["affinity_s"] = time.perf_counter() - t0
        res["method"] = {"neighbors": "openTSNE auto (exact below 1000 rows, else Annoy)",
                         "repulsion": method, "version": openTSNE.__version__}
        init = initialization.pca(X, n_components=d, random_state=0)
        emb = openTSNE.TSNEEmbedding(init, aff, negative_gradient_method=method,
                                     n_jobs=N_THREADS, random_state=0)
        ee = min(250, n_iter // 3)
        for k in range(0, n_iter, CHUNK):
            params = (dict(exaggeration=12, momentum=0.5) if k < ee else
                      dict(exaggeration=1, momentum=0.8))
            t0 = time.perf_counter()
            emb = emb.optimize(CHUNK, inplace=True, **params)
            times.append((time.perf_counter() - t0) / CHUNK)
        Y = np.asarray(emb, dtype=np.float32)
    elif engine == "sklearn":
        from sklearn.manifold import TSNE
        t0 = time.perf_counter()
        Y = TSNE(n_components=d, perplexity=20, max_iter=max(n_iter, 250), init="pca",
                 random_state=0, n_jobs=N_THREADS).fit_transform(X).astype(np.float32)
        total = time.perf_counter() - t0
        res["affinity_s"] = None
        res["total_s"] = total
        res["method"] = {"repulsion": "barnes_hut (total time / iterations, affinities included)"}
        times = [total / max(n_iter, 250)]
    res.update(timing(times))
    if engine == "sklearn":
        res["early_ms_per_iter"] = None  # one total time: no per-phase figure
    res["peak_rss_mb"] = rss_mb()
    res["base_rss_mb"] = base_rss
    if cfg.get("quality", True):
        res.update(quality(Y, X, y, cfg["data"], mask))
    res["load_average"] = os.getloadavg()
    return res


def affinity_one(cfg):
    """Affinity time only (one engine), for the paired comparison."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(N_THREADS))
    X, _ = load_dataset(cfg["data"])
    if cfg["engine"] == "ours":
        from tensorboard_al_plugin.tsne import perplexity_affinities
        perplexity_affinities(X[:300], 5.0)  # JIT warm-up
        t0 = time.perf_counter()
        _, info = perplexity_affinities(X, 20.0)
        method = info["neighbors"]
    else:
        from openTSNE import affinity
        t0 = time.perf_counter()
        affinity.PerplexityBasedNN(X, perplexity=20, n_jobs=N_THREADS, random_state=0)
        method = "openTSNE (Annoy)"
    return dict(cfg, affinity_s=time.perf_counter() - t0, method=method,
                load_average=os.getloadavg())


def configs(quick, iters, compare=False):
    out = []
    plan = [("digits", 750), ("fmnist10k", 750), ("fmnist70k", 750)]
    if quick:
        plan = [("digits", 300)]
    for data, n_iter in plan:
        n_iter = iters or n_iter
        for d in (2, 3):
            big = data == "fmnist70k"
            for eng in ("ours", "ours@before") if compare else ("ours",):
                out.append(dict(data=data, dim=d, engine=eng, n_iter=n_iter))
                out.append(dict(data=data, dim=d, engine=eng, supervised=True, n_iter=n_iter))
            if d == 2:
                out.append(dict(data=data, dim=d, engine="opentsne-fft", n_iter=n_iter))
            if d == 3 or data == "digits":
                if big:
                    # seconds per iteration: timed on the first iterations
                    # only (no quality: the layout is not converged)
                    out.append(dict(data=data, dim=d, engine="opentsne-bh",
                                    n_iter=min(n_iter, 60), quality=False))
                else:
                    out.append(dict(data=data, dim=d, engine="opentsne-bh", n_iter=n_iter))
            if not big and not (data == "fmnist10k" and d == 3):
                out.append(dict(data=data, dim=d, engine="sklearn", n_iter=n_iter))
    return out


def name_of(c):
    return f"{c['data']}-{c['dim']}d-{c['engine']}" + ("-sup" if c.get("supervised") else "")


def _previous_pairs():
    path = os.path.join(RESULTS, "tsne_bench.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f).get("affinity_pairs", [])
    return []


FIGURES = ("ms_per_iter", "early_ms_per_iter", "mean_ms_per_iter")


def add_ratios(results):
    """Adds, to each run of this engine, its ratio to openTSNE's best method at
    the same data and dimension (``ratio_to_opentsne`` on the median,
    ``ratio_to_opentsne_early`` and ``_mean`` on the other figures) and, to a
    supervised run, its ratio to the unsupervised run of the same engine
    (``sup_ratio_early``, ``sup_ratio_mean``, ``sup_ratio``)."""
    best = {}
    for r in results:
        if r.get("engine", "").startswith("opentsne") and "ms_per_iter" in r:
            for fig in FIGURES:
                k = (r["data"], r["dim"], fig)
                if r.get(fig) is not None:
                    if r[fig] < best.get(k, (np.inf, None))[0]:
                        best[k] = (r[fig], r["engine"])
    plain = {(r["data"], r["dim"], r["engine"]): r for r in results
             if r.get("engine", "").startswith("ours") and not r.get("supervised") and "ms_per_iter" in r}
    for r in results:
        if not r.get("engine", "").startswith("ours") or "ms_per_iter" not in r:
            continue
        for fig, suffix in zip(FIGURES, ("", "_early", "_mean")):
            k = (r["data"], r["dim"], fig)
            if k in best and r.get(fig) is not None:
                r["ratio_to_opentsne" + suffix] = r[fig] / best[k][0]
                r["opentsne_best" + suffix] = best[k][1]
            ref = plain.get((r["data"], r["dim"], r["engine"]))
            if r.get("supervised") and ref is not None and r.get(fig) is not None:
                r["sup_ratio" + suffix] = r[fig] / ref[fig]


def fmt(v, p=2):
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{p}f}"


def summarise(results, pairs=None):
    """Adds the ratios (``add_ratios``) and writes JSON, PNG and Markdown."""
    add_ratios(results)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, threads used: {N_THREADS}",
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version()}
    pairs = pairs if pairs is not None else _previous_pairs()
    path = os.path.join(RESULTS, "tsne_bench.json")
    kept = {}
    if os.path.exists(path):   # the interleaved runs' results stay beside these
        with open(path) as f:
            kept = {k: v for k, v in json.load(f).items() if k == "interleaved"}
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": results, "affinity_pairs": pairs, **kept}, f,
                  indent=1, default=str)
    lines = ["| data | dim | engine | affinities s | ms/iter median | early ms/iter | whole-run ms/iter | sup/unsup early | sup/unsup whole | x openTSNE best early | x openTSNE best whole | peak MB | KL | 4-NN | 10-NN | 4-NN unlabeled | iters | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['dim']} | {r['engine']}"
                         f"{' supervised' if r.get('supervised') else ''} | failed: {r['error'][:80]} |")
            continue
        eng = r["engine"] + (" f=r=0.1, 50% labeled" if r.get("supervised") else "")
        lines.append(f"| {r['data']} ({r['n']}) | {r['dim']}D | {eng} | {fmt(r.get('affinity_s'), 1)} | "
                     f"{fmt(r['ms_per_iter'], 1)} | {fmt(r.get('early_ms_per_iter'), 1)} | "
                     f"{fmt(r.get('mean_ms_per_iter'), 1)} | {fmt(r.get('sup_ratio_early'))} | "
                     f"{fmt(r.get('sup_ratio_mean'))} | {fmt(r.get('ratio_to_opentsne_early'))} | "
                     f"{fmt(r.get('ratio_to_opentsne_mean'))} | "
                     f"{fmt(r['peak_rss_mb'], 0)} | {fmt(r.get('kl'), 3)} | {fmt(r.get('knn4'), 3)} | "
                     f"{fmt(r.get('knn10'), 3)} | {fmt(r.get('knn4_unlabeled'), 3)} | "
                     f"{r.get('n_iter', '')} | {fmt((r.get('load_average') or [None])[0], 1)} |")
    md = ["# t-SNE benchmark", "", f"{meta['date']}; {meta['machine']}; load average at the "
          f"end {meta['load_average_at_end'][0]:.1f} (shared machine).", "",
          "KL: every embedding scored with this engine's P and exact objective (f = r = 0; "
          "FFT/Barnes-Hut above 10,000 points). scikit-learn's ms/iter is its total time "
          "(affinities included) over its iterations. load: 1-minute load average at the end "
          "of the run (2 cores; above 2 the runs shared the cores with other work). "
          "openTSNE's Barnes-Hut at 70,000 points in 3D is timed on its first 60 iterations "
          "only (seconds per iteration; its 'whole-run' figure is those 60, inside early "
          "exaggeration), without quality figures. early: mean over the first "
          f"{EARLY_ITERS} iterations (inside early exaggeration: ours 4 until iteration 100, "
          "openTSNE 12 until 250); whole-run: mean over all iterations; median: over chunks of "
          f"{CHUNK}. sup/unsup: the supervised run over the unsupervised one of the same engine "
          "and checkout; x openTSNE best: over the fastest openTSNE method at the same data and "
          "dimension for that figure (FFT or Barnes-Hut in 2D, Barnes-Hut in 3D). ours@before: "
          "this engine from the checkout given with --compare-root, in the same invocation. "
          + _not_16(), ""] + lines
    if pairs:
        md += ["", "## Affinities, paired", "",
               "This engine and openTSNE alternately on the same data (`--affinity-pairs`), so "
               "that the load of the shared machine falls on both alike.", "",
               "| data | round | ours s | openTSNE s | ratio | load |", "|---|---|---|---|---|---|"]
        for p in pairs:
            md.append(f"| {p['data']} | {p['round']} | {p['ours_s']:.1f} | {p['opentsne_s']:.1f} | "
                      f"{p['ours_s'] / p['opentsne_s']:.2f} | {p['load']:.1f} |")
        ratios = [p["ours_s"] / p["opentsne_s"] for p in pairs]
        md.append(f"\nMedian ratio: {np.median(ratios):.2f} (method: {pairs[0].get('method', '')}).")
    with open(os.path.join(RESULTS, "tsne_bench.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        ok = [r for r in results if "ms_per_iter" in r]
        groups = sorted({(r["data"], r["dim"]) for r in ok},
                        key=lambda g: (["digits", "fmnist10k", "fmnist70k"].index(g[0]), g[1]))
        engines = ["ours", "ours-sup", "ours@before", "ours@before-sup", "opentsne-fft",
                   "opentsne-bh", "sklearn"]
        engines = [e for e in engines if any(
            r["engine"] + ("-sup" if r.get("supervised") else "") == e for r in ok)]
        fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
        w = 0.8 / max(1, len(engines))
        panels = [("early_ms_per_iter", f"ms per iteration, first {EARLY_ITERS} (early exaggeration)"),
                  ("mean_ms_per_iter", "ms per iteration, whole run (mean)"),
                  ("affinity_s", "affinity time (s)")]
        for e_i, eng in enumerate(engines):
            for ax, (key, _) in zip(axes, panels):
                xs, vals = [], []
                for g_i, g in enumerate(groups):
                    for r in ok:
                        if (r["data"], r["dim"]) == g and \
                                r["engine"] + ("-sup" if r.get("supervised") else "") == eng:
                            xs.append(g_i + (e_i - (len(engines) - 1) / 2) * w)
                            vals.append(r.get(key) if r.get(key) is not None else np.nan)
                ax.bar(xs, vals, w, label=eng)
        for ax, (_, title) in zip(axes, panels):
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([f"{g[0]}\n{g[1]}D" for g in groups])
            ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"t-SNE engines, {N_THREADS} threads ({meta['date']}, {meta['machine']})")
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "tsne_bench.png"), dpi=110)
        plt.close(fig)
    except Exception as exc:  # the chart is a convenience; numbers are in JSON
        print("chart failed:", exc, file=sys.stderr)


# ---------------------------------------------------------------- --interleaved


def interleaved_plan(quick):
    """(data, dim, openTSNE methods, openTSNE iterations or None for all)."""
    plan = [("digits", 2, ("fft", "bh"), None), ("digits", 3, ("bh",), None)]
    if not quick:
        plan += [("fmnist10k", 2, ("fft",), None), ("fmnist10k", 3, ("bh",), None),
                 ("fmnist70k", 2, ("fft",), None),
                 # openTSNE's 3D Barnes-Hut at 70,000 points: ~0.9 s per iteration
                 ("fmnist70k", 3, ("bh",), 100)]
    return plan


def interleaved_one(cfg):
    """This engine unsupervised and supervised (f = r = 0.1, half labeled) and
    openTSNE's methods stepped in turn, CHUNK iterations each, in one process:
    whatever load the shared machine has falls on all of them alike. Wall
    and process CPU time per iteration; no quality figures (see the runs)."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(N_THREADS))
    _set_threads()
    X, y = load_dataset(cfg["data"])
    d, n_iter = cfg["dim"], cfg["n_iter"]
    import openTSNE
    from openTSNE import affinity, initialization
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(X.shape[0]) < 0.5, y, -1)
    sup = dict(label_importance=0.1, repulsion_emphasis=0.1)
    m = min(X.shape[0], 6000)
    SemiSupervisedTSNE(n_components=d, perplexity=5, random_state=0, method="fast", **sup).prepare(
        X[:m], labels=labels[:m]).step(3)
    P = yardstick_P(cfg["data"], X)
    runs = {"ours": SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0).prepare(
                X, affinities=P),
            "ours-sup": SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0,
                                           **sup).prepare(X, affinities=P, labels=labels)}
    aff = affinity.PerplexityBasedNN(X, perplexity=20, n_jobs=N_THREADS, random_state=0)
    init = initialization.pca(X, n_components=d, random_state=0)
    limit = {}
    for method in cfg["opentsne"]:
        name = "opentsne-" + method
        runs[name] = openTSNE.TSNEEmbedding(init.copy(), aff, negative_gradient_method=method,
                                            n_jobs=N_THREADS, random_state=0)
        limit[name] = cfg.get("opentsne_iters") or n_iter
    # JIT / first-call costs outside the timed loop
    for name in runs:
        if name.startswith("opentsne"):
            runs[name].optimize(1, inplace=True, exaggeration=12, momentum=0.5)
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    ee = min(250, n_iter // 3)
    for k in range(0, n_iter, CHUNK):
        for name, run in runs.items():
            if k >= limit.get(name, n_iter):
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            if name.startswith("opentsne"):
                params = (dict(exaggeration=12, momentum=0.5) if k < ee else
                          dict(exaggeration=1, momentum=0.8))
                runs[name] = run.optimize(CHUNK, inplace=True, **params)
            else:
                run.step(CHUNK)
            wall[name].append((time.perf_counter() - t0) / CHUNK)
            cpu[name].append((time.process_time() - c0) / CHUNK)
    out = dict(cfg, n=X.shape[0], load_average=os.getloadavg(), engines={})
    early = max(1, EARLY_ITERS // CHUNK)
    for name in runs:
        w, c = np.asarray(wall[name]), np.asarray(cpu[name])
        out["engines"][name] = {"early_ms": 1000 * float(w[:early].mean()),
                                "whole_ms": 1000 * float(w.mean()),
                                "early_cpu_ms": 1000 * float(c[:early].mean()),
                                "whole_cpu_ms": 1000 * float(c.mean()),
                                "iters": int(w.size * CHUNK)}
    return out


def summarise_interleaved(rows):
    """Ratios of the interleaved runs, into the JSON (key "interleaved") and a
    Markdown file of their own."""
    path = os.path.join(RESULTS, "tsne_bench.json")
    blob = {}
    if os.path.exists(path):
        with open(path) as f:
            blob = json.load(f)
    blob["interleaved"] = rows
    with open(path, "w") as f:
        json.dump(blob, f, indent=1, default=str)
    lines = ["| data | dim | ours early | ours sup early | openTSNE best early | sup/unsup early | "
             "sup x openTSNE early | ours whole | ours sup whole | openTSNE best whole | "
             "sup/unsup whole | sup x openTSNE whole | sup/unsup CPU early, whole | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['dim']}D | failed: {r['error'][:80]} |")
            continue
        e = r["engines"]
        o, s = e["ours"], e["ours-sup"]
        peers = {k: v for k, v in e.items() if k.startswith("opentsne")}
        be = min(peers, key=lambda k: peers[k]["early_ms"])
        bw = min(peers, key=lambda k: peers[k]["whole_ms"])
        note = lambda k: f"{k[9:]}{'' if peers[k]['iters'] >= o['iters'] else ', first %d' % peers[k]['iters']}"  # noqa: E731
        lines.append(
            f"| {r['data']} ({r['n']}) | {r['dim']}D | {o['early_ms']:.1f} | {s['early_ms']:.1f} | "
            f"{peers[be]['early_ms']:.1f} ({note(be)}) | {s['early_ms'] / o['early_ms']:.2f} | "
            f"{s['early_ms'] / peers[be]['early_ms']:.2f} | {o['whole_ms']:.1f} | {s['whole_ms']:.1f} | "
            f"{peers[bw]['whole_ms']:.1f} ({note(bw)}) | {s['whole_ms'] / o['whole_ms']:.2f} | "
            f"{s['whole_ms'] / peers[bw]['whole_ms']:.2f} | "
            f"{s['early_cpu_ms'] / o['early_cpu_ms']:.2f}, {s['whole_cpu_ms'] / o['whole_cpu_ms']:.2f} | "
            f"{r['load_average'][0]:.1f} |")
    md = ["# t-SNE benchmark, interleaved", "",
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
          f"{os.cpu_count()} cores, threads used: {N_THREADS}. `benchmarks/tsne_bench.py "
          "--interleaved`.", "",
          "Per data set and dimension, one process steps this engine unsupervised, this engine "
          "supervised (f = r = 0.1, half the points labeled, labels set at iteration 0 so that "
          "the u ramp falls in the early phase) and openTSNE's best method(s) in turn, "
          f"{CHUNK} iterations each, so that the load of the shared machine falls on all alike. "
          "ms per iteration, wall clock: early = the first "
          f"{EARLY_ITERS} iterations (ours: exaggeration 4 until 100; openTSNE: 12 until 250), "
          "whole = every iteration of the run (750; openTSNE's 3D Barnes-Hut at 70,000 points only "
          "its first 100, all inside early exaggeration). Our affinities are the yardstick P "
          "(perplexity 20, cached), openTSNE's its own (Annoy); affinity times and quality are in "
          "tsne_bench.md. The CPU column is the same ratio by process CPU time. load: 1-minute load "
          f"average at the end ({os.cpu_count()} cores). " + _not_16(), ""] + lines
    with open(os.path.join(RESULTS, "tsne_bench_interleaved.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def run_interleaved(args):
    rows = []
    path = os.path.join(RESULTS, "tsne_bench.json")
    if os.path.exists(path):
        with open(path) as f:
            rows = json.load(f).get("interleaved", [])
    for data, dim, methods, limit in interleaved_plan(args.quick):
        name = f"{data}-{dim}d"
        if args.only and not any(o in name for o in args.only):
            continue
        cfg = dict(data=data, dim=dim, opentsne=list(methods), opentsne_iters=limit,
                   n_iter=args.iters or (300 if args.quick else 750))
        print(f"[{time.strftime('%H:%M:%S')}] interleaved {name} ...", flush=True)
        r = _subprocess("--inter", cfg, _env(), args.timeout)
        print("   ", r.get("error") or {k: {f: round(v, 1) for f, v in e.items()}
                                         for k, e in r["engines"].items()}, flush=True)
        rows = [o for o in rows if (o["data"], o["dim"]) != (data, dim)] + [r]
        rows.sort(key=lambda o: [(p[0], p[1]) for p in interleaved_plan(False)].index(
            (o["data"], o["dim"])))
        summarise_interleaved(rows)
    print(f"wrote {RESULTS}/tsne_bench.json (interleaved), tsne_bench_interleaved.md")


# ---------------------------------------------------------------- --big


def big_data(n, dims=50, seed=0):
    """(X float32 (n, dims), cluster (n,)): BIG_CLUSTERS seeded Gaussian clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(BIG_CLUSTERS, dims)).astype(np.float32)
    y = rng.integers(0, BIG_CLUSTERS, size=n)
    X = centres[y]
    X += rng.standard_normal((n, dims), dtype=np.float32)
    return X, y


def _big_paths(n, source="opentsne"):
    os.makedirs(CACHE, exist_ok=True)
    tag = f"big{n}" if source == "opentsne" else f"big{n}_{source}"
    return (os.path.join(CACHE, f"{tag}_P.npz"), os.path.join(CACHE, f"big{n}_init.npz"),
            os.path.join(CACHE, f"{tag}_affinities.json"))


def big_affinities(cfg):
    """Build the one affinity matrix (openTSNE's PerplexityBasedNN with Annoy,
    or with cfg["source"] == "ours" this engine's perplexity_affinities) and
    the PCA starts and cache them, or report the cached ones (built by an
    earlier invocation, whose time, threads and peak memory are kept beside them)."""
    source = cfg.get("source", "opentsne")
    p_path, i_path, m_path = _big_paths(cfg["n"], source)
    if all(os.path.exists(x) for x in (p_path, i_path, m_path)):
        with open(m_path) as f:
            return dict(json.load(f), cached=True)
    _set_threads()
    import scipy.sparse as sp
    from openTSNE import initialization
    n = cfg["n"]
    X, _ = big_data(n)
    t0 = time.perf_counter()
    if source == "ours":
        from tensorboard_al_plugin.tsne import perplexity_affinities
        P, info = perplexity_affinities(X, 20.0)
        step = f"affinities (this engine's perplexity_affinities, perplexity 20: {info.get('neighbors')})"
    else:
        from openTSNE import affinity
        P = affinity.PerplexityBasedNN(X, perplexity=20, n_jobs=N_THREADS, random_state=0).P
        step = "affinities (openTSNE PerplexityBasedNN, Annoy, perplexity 20)"
    seconds = time.perf_counter() - t0
    sp.save_npz(p_path + ".tmp.npz", P.tocsr())
    os.replace(p_path + ".tmp.npz", p_path)
    if not os.path.exists(i_path):
        inits = {f"d{d}": initialization.pca(X, n_components=d, random_state=0) for d in (2, 3)}
        np.savez(i_path + ".tmp.npz", **inits)
        os.replace(i_path + ".tmp.npz", i_path)
    out = dict(cfg, source=source, step=step, affinity_s=seconds, nnz=int(P.nnz),
               peak_rss_mb=rss_mb(), threads=N_THREADS,
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load_average=os.getloadavg())
    with open(m_path, "w") as f:
        json.dump(out, f)
    return out


def big_one(cfg):
    """Time one engine on the cached affinities: cfg['iters'] early + cfg['iters'] late iterations."""
    _set_threads()
    import scipy.sparse as sp
    n, d, k, engine = cfg["n"], cfg["dim"], cfg["iters"], cfg["engine"]
    p_path, i_path, _ = _big_paths(n, cfg.get("source", "opentsne"))
    P = sp.load_npz(p_path).tocsr()
    init = np.load(i_path)[f"d{d}"].astype(np.float64)
    res = dict(cfg, nnz=int(P.nnz))
    early, late = [], []
    if engine.startswith("ours"):
        import tensorboard_al_plugin
        from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
        res["engine_path"] = os.path.dirname(os.path.dirname(tensorboard_al_plugin.__file__))
        kw, labels = {}, None
        if cfg.get("supervised"):
            _, y = big_data(n)
            labels = np.where(np.random.default_rng(0).random(n) < 0.5, y, -1)
            kw = dict(label_importance=0.1, repulsion_emphasis=0.1)
        # JIT warm-up outside the timed region (same paths, 6,000 rows)
        Xs, ys = big_data(6000, seed=1)
        SemiSupervisedTSNE(n_components=d, perplexity=10, random_state=0, method="fast", **kw).prepare(
            Xs, labels=None if labels is None else np.where(np.random.default_rng(1).random(6000) < 0.5, ys, -1)
        ).step(3)
        est = SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0,
                                 initialization=init, **kw)
        run = est.prepare(affinities=P, labels=labels)
        res["method"] = run.info
        for _ in range(k):
            t0 = time.perf_counter()
            run.step(1)
            early.append(time.perf_counter() - t0)
        # the late phase: no exaggeration, final momentum (the layout is the one
        # the early iterations left, not a converged one)
        run.iteration = max(run.iteration, run.exaggeration_iter[1])
        for _ in range(k):
            t0 = time.perf_counter()
            run.step(1)
            late.append(time.perf_counter() - t0)
        Y = run.positions
    else:
        import openTSNE
        from openTSNE import affinity
        method = engine.split("-")[1]
        aff = affinity.PrecomputedAffinities(P, normalize=False)
        emb = openTSNE.TSNEEmbedding(init, aff, negative_gradient_method=method,
                                     n_jobs=N_THREADS, random_state=0)
        res["method"] = {"repulsion": method, "version": openTSNE.__version__}
        for phase, params in ((early, dict(exaggeration=12, momentum=0.5)),
                              (late, dict(exaggeration=1, momentum=0.8))):
            for _ in range(k):
                t0 = time.perf_counter()
                emb = emb.optimize(1, inplace=True, **params)
                phase.append(time.perf_counter() - t0)
        Y = np.asarray(emb)
    res["early_ms_per_iter"] = 1000 * float(np.mean(early))
    res["late_ms_per_iter"] = 1000 * float(np.mean(late))
    res["mean_ms_per_iter"] = 1000 * float(np.mean(early + late))
    res["finite"] = bool(np.all(np.isfinite(Y)))
    res["peak_rss_mb"] = rss_mb()
    res["load_average"] = os.getloadavg()
    return res


def big_interleaved(cfg):
    """--big --interleaved: this engine unsupervised and supervised and
    openTSNE's methods on the cached affinities in one process, one iteration
    each in turn: cfg['iters'] early, then cfg['iters'] late (as big_one)."""
    _set_threads()
    import openTSNE
    import scipy.sparse as sp
    from openTSNE import affinity
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
    n, d, k = cfg["n"], cfg["dim"], cfg["iters"]
    p_path, i_path, _ = _big_paths(n, cfg.get("source", "opentsne"))
    P = sp.load_npz(p_path).tocsr()
    init = np.load(i_path)[f"d{d}"].astype(np.float64)
    _, y = big_data(n)
    labels = np.where(np.random.default_rng(0).random(n) < 0.5, y, -1)
    sup = dict(label_importance=0.1, repulsion_emphasis=0.1)
    Xs, ys = big_data(6000, seed=1)
    SemiSupervisedTSNE(n_components=d, perplexity=10, random_state=0, method="fast", **sup).prepare(
        Xs, labels=np.where(np.random.default_rng(1).random(6000) < 0.5, ys, -1)).step(3)
    runs = {("ours", False): SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0,
                                                initialization=init).prepare(affinities=P),
            ("ours", True): SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0,
                                               initialization=init, **sup).prepare(
                                                   affinities=P, labels=labels)}
    aff = affinity.PrecomputedAffinities(P, normalize=False)
    for m in cfg["opentsne"]:
        runs[("opentsne-" + m, False)] = openTSNE.TSNEEmbedding(
            init.copy(), aff, negative_gradient_method=m, n_jobs=N_THREADS, random_state=0)
    times = {key: {"early": [], "late": [], "early_cpu": [], "late_cpu": [], "all": []}
             for key in runs}

    def tick(key, params, phases):
        """One timed iteration of one engine, its wall and CPU time kept under each of ``phases``."""
        run = runs[key]
        t0, c0 = time.perf_counter(), time.process_time()
        if key[0] == "ours":
            run.step(1)
        else:
            runs[key] = run.optimize(1, inplace=True, **params)
        w, c = time.perf_counter() - t0, time.process_time() - c0
        times[key]["all"].append(w)
        for phase in phases:
            times[key][phase].append(w)
            times[key][phase + "_cpu"].append(c)

    whole = cfg.get("whole")
    if whole:
        # a whole run, each engine on its own schedule (ours: exaggeration 4 until 100, then
        # linear to 1 at 250; openTSNE: 12 until 250, as interleaved_one): early = the first
        # EARLY_ITERS iterations, late = every one from 250 on, mean = all of them
        ee = min(250, whole // 3)
        for it in range(whole):
            params = dict(exaggeration=12, momentum=0.5) if it < ee else \
                dict(exaggeration=1, momentum=0.8)
            phases = [ph for ph, inside in (("early", it < EARLY_ITERS), ("late", it >= ee))
                      if inside]
            for key in list(runs):
                tick(key, params, phases)
        k = whole
    for phase in () if whole else ("early", "late"):
        if phase == "late":
            for (eng, _), run in runs.items():
                if eng == "ours":   # no exaggeration, final momentum, as big_one
                    run.iteration = max(run.iteration, run.exaggeration_iter[1])
        params = dict(exaggeration=12, momentum=0.5) if phase == "early" else \
            dict(exaggeration=1, momentum=0.8)
        for _ in range(k):
            for key in list(runs):
                tick(key, params, (phase,))
    out = []
    load = os.getloadavg()
    for (eng, supervised), t in times.items():
        out.append(dict(n=n, dim=d, engine=eng, supervised=supervised, iters=k, interleaved=True,
                        whole=bool(whole),
                        nnz=int(P.nnz), early_ms_per_iter=1000 * float(np.mean(t["early"])),
                        late_ms_per_iter=1000 * float(np.mean(t["late"])),
                        mean_ms_per_iter=1000 * float(np.mean(t["all"])),
                        early_cpu_ms=1000 * float(np.mean(t["early_cpu"])),
                        late_cpu_ms=1000 * float(np.mean(t["late_cpu"])),
                        peak_rss_mb=rss_mb(), load_average=load,
                        finite=bool(np.all(np.isfinite(np.asarray(runs[(eng, supervised)].positions
                                                                  if eng == "ours" else
                                                                  runs[(eng, supervised)]))))))
    return {"runs": out}


def big_configs(n, iters, compare=False):
    out = []
    for d in (2, 3):
        for eng in ("ours", "ours@before") if compare else ("ours",):
            out.append(dict(n=n, dim=d, engine=eng, iters=iters))
            out.append(dict(n=n, dim=d, engine=eng, iters=iters, supervised=True))
        for m in (("fft", "bh") if d == 2 else ("bh",)):
            # openTSNE's 3D Barnes-Hut takes tens of seconds per iteration at
            # this size: a few iterations per phase time it well enough
            k = min(iters, BIG_BH3D_ITERS) if (m, d) == ("bh", 3) and n > 100_000 else iters
            out.append(dict(n=n, dim=d, engine="opentsne-" + m, iters=k))
    return out


def name_of_big(c):
    return f"{c['dim']}d-{c['engine']}" + ("-sup" if c.get("supervised") else "") + \
        ("-whole" if c.get("whole") else "")


def big_ratios(runs):
    """sup/unsup and x openTSNE best (2D: FFT or BH; 3D: BH) per phase."""
    for ph in ("early", "late", "mean"):
        key = ph + "_ms_per_iter"
        for r in runs:
            if not r.get("engine", "").startswith("ours") or key not in r:
                continue
            # rows of one invocation (an older engine's rows kept beside carry its note)
            same = [o for o in runs if o.get("dim") == r["dim"] and key in o
                    and bool(o.get("whole")) == bool(r.get("whole"))
                    and o.get("note") == r.get("note")]
            peers = [o[key] for o in same if o["engine"].startswith("opentsne")]
            if peers:
                r[f"ratio_to_opentsne_{ph}"] = r[key] / min(peers)
            plain = [o for o in same if o["engine"] == r["engine"] and not o.get("supervised")]
            if r.get("supervised") and plain:
                r[f"sup_ratio_{ph}"] = r[key] / plain[0][key]


def summarise_big(aff, runs, n, iters):
    big_ratios(runs)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, threads used: {N_THREADS}",
            "load_average_at_end": os.getloadavg(), "python": platform.python_version(),
            "n": n, "iters_per_phase": iters}
    with open(os.path.join(RESULTS, "tsne_bench_big.json"), "w") as f:
        json.dump({"meta": meta, "affinities": aff, "results": runs}, f, indent=1, default=str)
    md = ["# t-SNE benchmark, large case", "",
          f"{meta['date']}; {meta['machine']}; load average at the end "
          f"{meta['load_average_at_end'][0]:.1f} (shared machine).", "",
          f"{n:,} points in 50 dimensions, {BIG_CLUSTERS} seeded Gaussian clusters. One affinity "
          f"matrix for both engines ({(aff or {}).get('step', 'affinities')[12:-1] or '?'}, "
          f"built in {fmt((aff or {}).get('affinity_s'), 0)} s with {(aff or {}).get('threads', '?')} "
          f"thread(s), {(aff or {}).get('nnz', 0):,} entries, peak "
          f"{fmt((aff or {}).get('peak_rss_mb'), 0)} MB), the same PCA start. NOT a "
          f"whole run: k iterations inside early exaggeration (ours 4, openTSNE 12) then "
          f"k after it (exaggeration 1, momentum 0.8) on the layout the early ones left (k: "
          f"'iters per phase' in the table; {iters} for this invocation) "
          f"(openTSNE's 3D Barnes-Hut above 100,000 rows: {BIG_BH3D_ITERS} + {BIG_BH3D_ITERS}). "
          "Supervised: f = r = 0.1, 50% of the points labeled with their cluster. peak MB: the "
          "run's process (affinities loaded from disk). Engines marked 'interleaved' "
          "(`--interleaved`) were stepped in one process, one iteration each in turn, so that "
          "the shared machine's load fell on all alike; their peak MB is that process's. "
          "Rows marked 'whole run' (`--big-whole N`) are instead N iterations from the start, "
          "each engine on its own schedule (ours: exaggeration 4 until 100, linear to 1 at 250; "
          "openTSNE: 12 until 250, then 1): early = the first "
          f"{EARLY_ITERS}, late = from 250 on, whole = the mean of all N ('iters' column). "
          + _not_16(), "",
          "| dim | engine | early ms/iter | late ms/iter | sup/unsup early | sup/unsup late | "
          "x openTSNE best early | x openTSNE best late | iters per phase | peak MB | load | "
          "whole ms/iter | sup/unsup whole | x openTSNE best whole |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        eng = r["engine"] + (" f=r=0.1, 50% labeled" if r.get("supervised") else "") + \
            (" (interleaved)" if r.get("interleaved") else "") + \
            (" (whole run)" if r.get("whole") else "") + \
            (f" [{r['note']}]" if r.get("note") else "")
        if "error" in r:
            md.append(f"| {r['dim']}D | {eng} | failed: {str(r['error'])[:80]} |")
            continue
        md.append(f"| {r['dim']}D | {eng} | {fmt(r['early_ms_per_iter'], 1)} | "
                  f"{fmt(r['late_ms_per_iter'], 1)} | {fmt(r.get('sup_ratio_early'))} | "
                  f"{fmt(r.get('sup_ratio_late'))} | {fmt(r.get('ratio_to_opentsne_early'))} | "
                  f"{fmt(r.get('ratio_to_opentsne_late'))} | {r['iters']} | {fmt(r['peak_rss_mb'], 0)} | "
                  f"{fmt(r['load_average'][0], 1)} | "
                  + (f"{fmt(r['mean_ms_per_iter'], 1)} | {fmt(r.get('sup_ratio_mean'))} | "
                     f"{fmt(r.get('ratio_to_opentsne_mean'))} |" if r.get("whole") else " | | |"))
    with open(os.path.join(RESULTS, "tsne_bench_big.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def _subprocess(flag, cfg, env, timeout):
    """Run this script with ``flag cfg`` in a fresh process; its RESULT dict or an error dict."""
    try:
        p = subprocess.run([sys.executable, __file__, flag, json.dumps(cfg)], env=env,
                           capture_output=True, text=True, timeout=timeout)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            raise RuntimeError(" ".join((p.stderr or p.stdout).strip().splitlines()[-1:]))
        return json.loads(line[-1][7:])
    except Exception as exc:
        return dict(cfg, error=str(exc))


def run_big(args):
    env = _env()
    aff = _subprocess("--big-aff", dict(n=args.big_n, source=args.big_affinities), env, args.timeout)
    print(f"[{time.strftime('%H:%M:%S')}] affinities: {aff}", flush=True)
    runs = []
    path = os.path.join(RESULTS, "tsne_bench_big.json")
    if args.only and os.path.exists(path):
        # runs not repeated this time keep their previous results
        with open(path) as f:
            prev = json.load(f)
        if prev["meta"]["n"] == args.big_n:   # each run keeps its own iterations per phase
            runs = prev["results"]
    if "error" not in aff and args.interleaved:
        for d in (2, 3):
            if args.only and not any(o in f"{d}d" for o in args.only):
                continue
            methods = (["fft"] + (["bh"] if args.big_n <= 200_000 else [])) if d == 2 else ["bh"]
            cfg = dict(n=args.big_n, dim=d, iters=args.phase_iters, opentsne=methods,
                       source=args.big_affinities, whole=args.big_whole)
            got = _subprocess("--big-inter", cfg, env, args.timeout)
            new = got.get("runs") or [dict(cfg, engine="interleaved", error=got.get("error"))]
            for r in new:
                print(f"[{time.strftime('%H:%M:%S')}] {d}D {r['engine']}"
                      f"{' sup' if r.get('supervised') else ''}: "
                      + (r.get("error") or f"early {r['early_ms_per_iter']:.1f} ms, late "
                         f"{r['late_ms_per_iter']:.1f} ms"), flush=True)
            keys = {name_of_big(r) for r in new}
            runs = [o for o in runs if name_of_big(o) not in keys] + new
            summarise_big(aff, runs, args.big_n, args.phase_iters)
    elif "error" not in aff:
        for cfg in big_configs(args.big_n, args.phase_iters, bool(args.compare_root)):
            if args.only and not any(o in name_of_big(cfg) for o in args.only):
                continue
            cfg["source"] = args.big_affinities
            r = _subprocess("--big-one", cfg, _env(args.compare_root if cfg["engine"] == "ours@before"
                                                   else None), args.timeout)
            print(f"[{time.strftime('%H:%M:%S')}] {cfg['dim']}D {cfg['engine']}"
                  f"{' sup' if cfg.get('supervised') else ''}: "
                  + (r.get("error") or f"early {r['early_ms_per_iter']:.1f} ms, late "
                     f"{r['late_ms_per_iter']:.1f} ms, peak {r['peak_rss_mb']:.0f} MB"), flush=True)
            at = [i for i, o in enumerate(runs) if name_of_big(o) == name_of_big(cfg)]
            if at:
                runs[at[0]] = r
            else:
                runs.append(r)
            summarise_big(aff, runs, args.big_n, args.phase_iters)
    summarise_big(aff, runs, args.big_n, args.phase_iters)
    print(f"wrote {RESULTS}/tsne_bench_big.json, .md")


def _not_16():
    """The results' caveat where fewer than 16 threads ran (benchmarks/device_16.sh runs 16)."""
    return "" if N_THREADS >= 16 else "16-core figures were not measured (no such machine this session)."


def _env(root=None):
    """The environment of every run: the thread count for numba, BLAS and
    OpenMP, and the checkout whose engine runs (``root``, default this one)."""
    return dict(os.environ, NUMBA_NUM_THREADS=str(N_THREADS), OMP_NUM_THREADS=str(N_THREADS),
                OPENBLAS_NUM_THREADS=str(N_THREADS), MKL_NUM_THREADS=str(N_THREADS),
                TSNE_BENCH_THREADS=str(N_THREADS),
                # packages installed beside (pip --target) stay on the path
                PYTHONPATH=os.pathsep.join(filter(None, [root or ROOT, os.environ.get("PYTHONPATH")])),
                # the same for every engine: OpenMP threads that spin while
                # waiting collapse on a shared machine (openTSNE ran 2-10x
                # slower with the default policy while other jobs ran)
                OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))


def main():
    global N_THREADS, RESULTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="digits only, 300 iterations")
    ap.add_argument("--only", nargs="*", help="substrings of run names to keep, e.g. digits 10k-2d")
    ap.add_argument("--iters", type=int, default=None, help="iterations per run")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per run (default 3600; with --big-whole 6 hours: the 750 "
                         "iterations of three engines at 10^6 points took 69 min, and a run at "
                         "load 3 did not finish in one hour)")
    ap.add_argument("--affinity-pairs", type=int, default=0, metavar="ROUNDS",
                    help="only time the affinities of fmnist70k, this engine and openTSNE "
                         "alternately, ROUNDS times each; kept in the JSON beside the runs")
    ap.add_argument("--threads", type=int, default=N_THREADS,
                    help="threads for every engine (numba, BLAS, FFT workers, openTSNE n_jobs); "
                         f"default {N_THREADS}")
    ap.add_argument("--compare-root", metavar="DIR",
                    help="also run this engine from the checkout DIR (e.g. a git worktree of an "
                         "older commit), labelled ours@before")
    ap.add_argument("--big", action="store_true",
                    help="the large case only (run it under flock /tmp/al-big.lock)")
    ap.add_argument("--big-n", type=int, default=1_000_000, help="rows of the large case")
    ap.add_argument("--phase-iters", type=int, default=30,
                    help="large case: iterations timed in each phase (early, late)")
    ap.add_argument("--interleaved", action="store_true",
                    help="time this engine unsupervised and supervised and openTSNE's best "
                         "method stepped in turn in one process (writes tsne_bench_interleaved.md)")
    ap.add_argument("--results", default=RESULTS, help="folder for the results (default: %(default)s)")
    ap.add_argument("--inter", help=argparse.SUPPRESS)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--aff", help=argparse.SUPPRESS)
    ap.add_argument("--big-affinities", choices=("opentsne", "ours"), default="opentsne",
                    help="large case: whose affinity matrix both engines get (default openTSNE's, "
                         "Annoy; 'ours' is this engine's perplexity_affinities)")
    ap.add_argument("--big-whole", type=int, default=0, metavar="N",
                    help="large case with --interleaved: time N iterations from the start, each "
                         "engine on its own schedule (750: a whole run), instead of "
                         "--phase-iters per phase")
    ap.add_argument("--big-aff", help=argparse.SUPPRESS)
    ap.add_argument("--big-inter", help=argparse.SUPPRESS)
    ap.add_argument("--big-one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    N_THREADS = args.threads
    RESULTS = args.results
    if args.timeout is None:
        args.timeout = 6 * 3600 if args.big_whole else 3600
    # one configuration in this (child) process: print its RESULT line
    for flag, fn in ((args.big_aff, big_affinities), (args.big_one, big_one),
                     (args.big_inter, big_interleaved), (args.one, run_one),
                     (args.aff, affinity_one), (args.inter, interleaved_one)):
        if flag:
            print("RESULT " + json.dumps(fn(json.loads(flag)), default=str))
            return
    os.makedirs(RESULTS, exist_ok=True)
    if args.big:
        run_big(args)
        return
    if args.interleaved:
        run_interleaved(args)
        return
    if not os.path.isdir(FMNIST_DIR) and not args.quick:
        sys.exit(f"Fashion-MNIST not found at {FMNIST_DIR}. Install it with:\n"
                 "    sudo apt-get install -y dataset-fashion-mnist\n(or run with --quick)")
    if args.affinity_pairs:
        path = os.path.join(RESULTS, "tsne_bench.json")
        with open(path) as f:
            results = json.load(f)["results"]
        pairs = []
        for rnd in range(args.affinity_pairs):
            got = {}
            for eng in ("ours", "opentsne"):
                p = subprocess.run([sys.executable, __file__, "--aff",
                                    json.dumps(dict(data="fmnist70k", engine=eng))],
                                   env=_env(), capture_output=True, text=True)
                line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
                if not line:
                    sys.exit((p.stderr or p.stdout).strip())
                got[eng] = json.loads(line[-1][7:])
                print(f"[{time.strftime('%H:%M:%S')}] round {rnd} {eng}: "
                      f"{got[eng]['affinity_s']:.1f} s, load {got[eng]['load_average'][0]:.1f}",
                      flush=True)
            pairs.append(dict(data="fmnist70k", round=rnd, ours_s=got["ours"]["affinity_s"],
                              opentsne_s=got["opentsne"]["affinity_s"],
                              load=got["opentsne"]["load_average"][0],
                              method=got["ours"]["method"]))
        summarise(results, pairs)
        return
    # runs not repeated this time keep their previous results (--only)
    results = []
    path = os.path.join(RESULTS, "tsne_bench.json")
    if args.only and os.path.exists(path):
        with open(path) as f:
            results = json.load(f)["results"]
    compare = bool(args.compare_root)
    order = [name_of(c) for c in configs(False, None, compare=True)]
    for cfg in configs(args.quick, args.iters, compare):
        name = name_of(cfg)
        if args.only and not any(s in name for s in args.only):
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        env = _env(args.compare_root if cfg["engine"] == "ours@before" else None)
        r = _subprocess("--one", cfg, env, args.timeout)
        print("   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                      if k in ("affinity_s", "ms_per_iter", "early_ms_per_iter", "mean_ms_per_iter",
                               "peak_rss_mb", "kl", "knn4", "knn4_unlabeled", "error")},
              flush=True)
        results = [o for o in results if name_of(o) != name] + [r]
        results.sort(key=lambda o: order.index(name_of(o)) if name_of(o) in order else 99)
        summarise(results)
    print(f"wrote {RESULTS}/tsne_bench.json, .png, .md")


if __name__ == "__main__":
    main()
