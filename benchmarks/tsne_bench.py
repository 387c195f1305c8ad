"""Side-by-side t-SNE benchmark: this engine vs openTSNE vs scikit-learn.

    .venv/bin/python benchmarks/tsne_bench.py [--quick] [--only NAME ...] [--iters N]
    .venv/bin/python benchmarks/tsne_bench.py --affinity-pairs 3   # 70k affinities, paired

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
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
N_THREADS = 2
CHUNK = 10
CACHE = os.path.join("/tmp", "tsne_bench_cache")


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


def run_one(cfg):
    """Run one configuration in this process; returns a dict of results."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(N_THREADS))
    X, y = load_dataset(cfg["data"])
    base_rss = rss_mb()
    engine, d, n_iter = cfg["engine"], cfg["dim"], cfg["n_iter"]
    res = dict(cfg, n=X.shape[0])
    rng = np.random.default_rng(0)
    mask = None
    times = []
    if engine == "ours":
        from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
        labels = None
        kw = {}
        if cfg.get("supervised"):
            known = rng.random(X.shape[0]) < 0.5
            labels = np.where(known, y, -1)
            mask = ~known
            kw = dict(label_importance=0.1, repulsion_emphasis=0.1)
        est = SemiSupervisedTSNE(n_components=d, perplexity=20, random_state=0, **kw)
        # warm the JIT cache outside the timed region
        SemiSupervisedTSNE(n_components=d, perplexity=5, random_state=0, method="fast",
                           **kw).prepare(X[:300], labels=None if labels is None else labels[:300]
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
    res["ms_per_iter"] = 1000 * float(np.median(times))
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


def configs(quick, iters):
    out = []
    plan = [("digits", 750), ("fmnist10k", 750), ("fmnist70k", 750)]
    if quick:
        plan = [("digits", 300)]
    for data, n_iter in plan:
        n_iter = iters or n_iter
        for d in (2, 3):
            big = data == "fmnist70k"
            out.append(dict(data=data, dim=d, engine="ours", n_iter=n_iter))
            out.append(dict(data=data, dim=d, engine="ours", supervised=True, n_iter=n_iter))
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


def summarise(results, pairs=None):
    """Adds ratio_to_opentsne to our runs and writes JSON, PNG and Markdown."""
    best = {}
    for r in results:
        if r.get("engine", "").startswith("opentsne") and "ms_per_iter" in r:
            k = (r["data"], r["dim"])
            best[k] = min(best.get(k, np.inf), r["ms_per_iter"])
    for r in results:
        k = (r.get("data"), r.get("dim"))
        if r.get("engine") == "ours" and k in best and "ms_per_iter" in r:
            r["ratio_to_opentsne"] = r["ms_per_iter"] / best[k]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, threads used: {N_THREADS}",
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version()}
    pairs = pairs if pairs is not None else _previous_pairs()
    with open(os.path.join(RESULTS, "tsne_bench.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "affinity_pairs": pairs}, f, indent=1,
                  default=str)
    lines = ["| data | dim | engine | affinities s | ms/iter | x openTSNE | peak MB | KL | 4-NN | 10-NN | 4-NN unlabeled | iters | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(v, p=2):
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{p}f}"
    for r in results:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['dim']} | {r['engine']} | failed: {r['error'][:60]} |")
            continue
        eng = r["engine"] + (" f=r=0.1, 50% labeled" if r.get("supervised") else "")
        lines.append(f"| {r['data']} ({r['n']}) | {r['dim']}D | {eng} | {fmt(r.get('affinity_s'), 1)} | "
                     f"{fmt(r['ms_per_iter'], 1)} | {fmt(r.get('ratio_to_opentsne'))} | "
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
          "only (seconds per iteration), without quality figures.", ""] + lines
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
        engines = ["ours", "ours-sup", "opentsne-fft", "opentsne-bh", "sklearn"]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        w = 0.16
        for e_i, eng in enumerate(engines):
            xs, ms, aff = [], [], []
            for g_i, g in enumerate(groups):
                for r in ok:
                    key = r["engine"] + ("-sup" if r.get("supervised") else "")
                    if (r["data"], r["dim"]) == g and key == eng:
                        xs.append(g_i + (e_i - 2) * w)
                        ms.append(r["ms_per_iter"])
                        aff.append(r.get("affinity_s") or np.nan)
            axes[0].bar(xs, ms, w, label=eng)
            axes[1].bar(xs, aff, w, label=eng)
        for ax, title in zip(axes, ["ms per iteration (median)", "affinity time (s)"]):
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([f"{g[0]}\n{g[1]}D" for g in groups])
            ax.set_yscale("log")
            ax.set_title(title)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"t-SNE engines, {N_THREADS} threads ({meta['date']})")
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "tsne_bench.png"), dpi=110)
        plt.close(fig)
    except Exception as exc:  # the chart is a convenience; numbers are in JSON
        print("chart failed:", exc, file=sys.stderr)


def _env():
    return dict(os.environ, NUMBA_NUM_THREADS=str(N_THREADS), OMP_NUM_THREADS=str(N_THREADS),
                OPENBLAS_NUM_THREADS=str(N_THREADS), PYTHONPATH=ROOT,
                # the same for every engine: OpenMP threads that spin while
                # waiting collapse on a shared machine (openTSNE ran 2-10x
                # slower with the default policy while other jobs ran)
                OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="digits only, 300 iterations")
    ap.add_argument("--only", nargs="*", help="substrings of run names to keep, e.g. digits 10k-2d")
    ap.add_argument("--iters", type=int, default=None, help="iterations per run")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--affinity-pairs", type=int, default=0, metavar="ROUNDS",
                    help="only time the affinities of fmnist70k, this engine and openTSNE "
                         "alternately, ROUNDS times each; kept in the JSON beside the runs")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--aff", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one)), default=str))
        return
    if args.aff:
        print("RESULT " + json.dumps(affinity_one(json.loads(args.aff)), default=str))
        return
    if not os.path.isdir(FMNIST_DIR) and not args.quick:
        sys.exit(f"Fashion-MNIST not found at {FMNIST_DIR}. Install it with:\n"
                 "    sudo apt-get install -y dataset-fashion-mnist\n(or run with --quick)")
    os.makedirs(RESULTS, exist_ok=True)
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
    env = _env()
    for cfg in configs(args.quick, args.iters):
        name = name_of(cfg)
        if args.only and not any(s in name for s in args.only):
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        try:
            p = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], env=env,
                               capture_output=True, text=True, timeout=args.timeout)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                raise RuntimeError((p.stderr or p.stdout).strip().splitlines()[-1:])
            r = json.loads(line[-1][7:])
        except Exception as exc:
            r = dict(cfg, error=str(exc))
        print("   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                      if k in ("affinity_s", "ms_per_iter", "peak_rss_mb", "kl", "knn4", "knn4_unlabeled", "error")},
              flush=True)
        results = [o for o in results if name_of(o) != name] + [r]
        results.sort(key=lambda o: [name_of(c) for c in configs(False, None)].index(name_of(o))
                     if name_of(o) in [name_of(c) for c in configs(False, None)] else 99)
        summarise(results)
    print(f"wrote {RESULTS}/tsne_bench.json, .png, .md")


if __name__ == "__main__":
    main()
