"""The supervised iteration while a person keeps labeling: a labeling session's cost.

    .venv/bin/python benchmarks/labeling_session.py [--data fmnist70k] [--compare-root DIR]
    .venv/bin/python benchmarks/labeling_session.py --quick           # digits, 300 iterations (CI)
    flock /tmp/al-big.lock .venv/bin/python benchmarks/labeling_session.py --big --iters 300

Why: tsne_bench.py labels half the points at iteration 0 and nothing after.
In the tab a person labels a group (a point and its nearest neighbours)
every few seconds, and each group starts its own u_i ramp (50 iterations
by default), so some ramp is going on most of the time. This runs that
session: half the points labeled at iteration 0 (as tsne_bench.py), then
from iteration ``--from`` on a group every ``--every`` iterations: an
unlabeled seed and its ``--group`` - 1 unlabeled neighbours of highest
affinity p_ij, each with its true class (seeded). The supervised run and an
unsupervised one on the same affinities and start are stepped in turn, one
iteration each (``--grain``; the supervised chunk of ``--every`` iterations
includes its ``set_labels``), in one process, so the machine's load falls on
both alike. ``--repeat K`` runs each engine and r K times, in turn, and adds
the median and range of the ratios.

Reported per engine and r (f = 0.1, the tab's default; r = 0.1 as
tsne_bench.py and r = 1, the tab's default): ms per iteration, wall clock,
over the whole run, before the first group (early: the first labels' ramp
and the iterations after it) and over the session (from ``--from`` on), the
supervised / unsupervised ratio, and the labeled pairs the attraction's
second pass visits per iteration in the session (this engine's count: the
pairs with a point whose u_i still ramps). ``--compare-root DIR`` runs the
same sessions with the engine of another checkout (e.g. a ``git worktree``
of an older commit) in its own processes, taking turns with this one's,
after one untimed session of it (``--warm-up``: a fresh worktree's numba
cache is cold).

Data: Fashion-MNIST 70,000 (``apt-get install -y dataset-fashion-mnist``;
PCA to 50 dimensions, tsne_bench.py's P, perplexity 20), digits
(``--quick``) or ``--big``: tsne_bench.py's 10^6 points in 20 Gaussian
clusters with this engine's affinities (built and cached by tsne_bench.py's
``--big --big-affinities ours``, or here on first use) and its PCA start.
2D, 2 threads (``--threads``). Writes
benchmarks/results/labeling_session.{json,md} and docs/labeling_session.png
(``--big``: labeling_session_big.{json,md,png}).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

RESULTS = os.path.join(HERE, "results")
FIGURES = os.path.join(ROOT, "docs")


def _session_labels(P, y, start, n_groups, group, seed):
    """(labels at iteration 0, [group index arrays]): ``start`` of the points
    labeled at random, then groups of an unlabeled seed and its unlabeled
    neighbours of highest p_ij, each labeled with its true class."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    labels = np.where(rng.random(n) < start, y, -1)
    taken = labels >= 0
    groups = []
    for _ in range(n_groups):
        free = np.flatnonzero(~taken)
        if free.size == 0:
            break
        s = int(rng.choice(free))
        lo, hi = P.indptr[s], P.indptr[s + 1]
        cols, vals = P.indices[lo:hi], P.data[lo:hi]
        order = cols[np.argsort(-vals, kind="stable")]
        members = np.concatenate(([s], order[~taken[order]][:group - 1])).astype(np.int64)
        taken[members] = True
        groups.append(members)
    return labels, groups


def _load(cfg):
    """(X or None, P CSR, y, start positions or None: the engine's PCA of X) for cfg["data"]."""
    import tsne_bench
    if cfg["data"] == "big":
        import scipy.sparse as sp
        tsne_bench.N_THREADS = cfg["threads"]
        aff = tsne_bench.big_affinities(dict(n=cfg["n"], source="ours"))
        if "error" in aff:
            raise RuntimeError(aff["error"])
        p_path, i_path, _ = tsne_bench._big_paths(cfg["n"], "ours")
        _, y = tsne_bench.big_data(cfg["n"])
        return None, sp.load_npz(p_path).tocsr(), y, np.load(i_path)["d2"].astype(np.float64)
    X, y = tsne_bench.load_dataset(cfg["data"])
    if cfg["data"] == "digits":
        from tensorboard_al_plugin.tsne import perplexity_affinities
        P = perplexity_affinities(X, 20.0)[0]
    else:
        P = tsne_bench.yardstick_P(cfg["data"], X)
    return X, P.tocsr(), y, None


def worker(cfg):
    """One session (this process's engine, from PYTHONPATH): the timings and counts."""
    import numba
    numba.set_num_threads(min(cfg["threads"], numba.config.NUMBA_NUM_THREADS))
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
    X, P, y, init = _load(cfg)
    n, every, n_iter = y.shape[0], cfg["every"], cfg["iters"]
    n_groups = max(0, (n_iter - cfg["from"] + every - 1) // every)
    labels, groups = _session_labels(P, y, cfg["start"], n_groups, cfg["group"], cfg["seed"])
    sup = dict(label_importance=cfg["f"], repulsion_emphasis=cfg["r"])
    kw = dict(n_components=2, perplexity=20, random_state=0,
              **({} if init is None else dict(initialization=init)))
    # numba's first calls (compilation or cache loading) outside the timed loop, on every
    # path of a session: the first labels' ramp and its end, then a group's ramp among settled
    # labels and its end (a cold cache once compiled the ramp's end and the groups' kernels
    # inside an engine's first timed run: 2.56 for the first 100 iterations against 1.17;
    # warmed on 3,000 points by Barnes-Hut, not the runs' FFT, 0.79)
    from tensorboard_al_plugin.tsne.tsne import FFT_MIN_POINTS
    m = min(n, 3000)
    # the runs' own method: FFT from FFT_MIN_POINTS points, which 3,000 would not reach
    method = "fft" if n >= FFT_MIN_POINTS else "fast"
    Xw = np.random.default_rng(1).normal(size=(m, 5)).astype(np.float32)
    warm = np.where(np.random.default_rng(2).random(m) < 0.5, y[:m] % 3, -1)
    run = SemiSupervisedTSNE(n_components=2, perplexity=10, random_state=0, method=method,
                             point_learning_rate_epochs=4, **sup).prepare(Xw, labels=warm)
    run.step(6)
    free = np.flatnonzero(warm < 0)[:20]
    warm[free] = y[free] % 3
    run.set_labels(warm)
    run.step(8)
    # and the unsupervised run's (its kernels' other type specialisations: no labels, no codes)
    SemiSupervisedTSNE(n_components=2, perplexity=10, random_state=0, method=method).prepare(
        Xw).step(3)
    runs = {"unsupervised": SemiSupervisedTSNE(**kw).prepare(X, affinities=P),
            "supervised": SemiSupervisedTSNE(**kw, **sup).prepare(X, affinities=P, labels=labels)}
    ms = {k: [] for k in runs}
    visited, labeled = [], []
    current = labels.copy()
    g = 0
    # within a chunk the two runs take turns of ``grain`` iterations: at 1, whatever the shared
    # machine does over a second falls on both alike. The same engine's ratio over the first
    # 100 iterations (70k, r = 1), six invocations each, grains alternating, beside a process
    # that kept one core busy in bursts of 0.3 to 3 s (load 1.6 to 2.6): 0.99 to 1.29 in
    # 20-iteration turns (~1 s each), 1.15 to 1.24 in turns of one; on the quiet machine 1.15
    # to 1.24 and 1.15 to 1.21
    grain = cfg["grain"]
    for it in range(0, n_iter, every):
        span = min(every, n_iter - it)
        spent = dict.fromkeys(runs, 0.0)
        if it >= cfg["from"] and g < len(groups):
            t0 = time.perf_counter()
            current[groups[g]] = y[groups[g]]
            g += 1
            runs["supervised"].set_labels(current)
            spent["supervised"] += time.perf_counter() - t0
        for k in range(0, span, grain):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run.step(min(grain, span - k))
                spent[name] += time.perf_counter() - t0
        for name in runs:
            ms[name].append(1000 * spent[name] / span)
        # this engine's second pass: the pairs with a point still ramping (an engine without
        # _write_weights passed every labeled pair while any ramp ran: not counted here)
        run = runs["supervised"]
        if hasattr(run, "_write_weights"):
            visited.append(0 if run._pairs is None else int(run._pairs[2].size))
        else:
            visited.append(None)
        labeled.append(int((current >= 0).sum()))
    first = cfg["from"] // every
    out = dict(cfg, n=int(n), nnz=int(P.nnz), groups=g, iters_per_chunk=every, ms=ms,
               visited=visited, labeled=labeled, load_average=os.getloadavg(),
               finite=bool(all(np.all(np.isfinite(r.positions)) for r in runs.values())),
               # the supervision corrections step computed afresh (an engine without the count:
               # None; it computed one every tsne.correction_interval(r) iterations)
               fresh_corrections=getattr(runs["supervised"], "fresh_corrections", None))
    for name in runs:
        t = np.asarray(ms[name])
        out[name + "_whole_ms"] = float(t.mean())
        out[name + "_session_ms"] = float(t[first:].mean()) if t.size > first else None
        # before the first group: the first labels' ramp and the iterations after it
        out[name + "_early_ms"] = float(t[:max(first, 1)].mean())
    out["ratio_whole"] = out["supervised_whole_ms"] / out["unsupervised_whole_ms"]
    out["ratio_early"] = out["supervised_early_ms"] / out["unsupervised_early_ms"]
    if out["supervised_session_ms"] is not None:
        out["ratio_session"] = out["supervised_session_ms"] / out["unsupervised_session_ms"]
    v = [x for x in visited[first:] if x is not None]
    out["visited_session_mean"] = float(np.mean(v)) if len(v) == len(visited[first:]) else None
    # every labeled pair of P (the old second pass's work while any ramp runs)
    rows = np.repeat(np.arange(n), np.diff(P.indptr))
    on = current[rows] >= 0
    out["labeled_pairs_end"] = int((on & (current[P.indices] >= 0)).sum())
    return out


def _commit(root):
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _run(cfg, root, timeout):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
               NUMBA_NUM_THREADS=str(cfg["threads"]),
               OMP_NUM_THREADS=str(cfg["threads"]), OPENBLAS_NUM_THREADS=str(cfg["threads"]),
               MKL_NUM_THREADS=str(cfg["threads"]),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)],
                           env=env, capture_output=True, text=True, timeout=timeout)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            raise RuntimeError(" ".join((p.stderr or p.stdout).strip().splitlines()[-3:]))
        return json.loads(line[-1][7:])
    except Exception as exc:   # reported in the table, never dropped
        return dict(cfg, error=str(exc))


def _fmt(v, p=1):
    return "-" if v is None else f"{v:.{p}f}"


def _turns(meta):
    g = meta["grain"]
    return "one iteration at a time" if g == 1 else f"{g} iterations at a time"


def _by_engine_and_r(rows):
    """[((engine, r), its rows)] in the order first seen."""
    groups = {}
    for r in rows:
        groups.setdefault((r["engine"], r["r"]), []).append(r)
    return list(groups.items())


def summarise(out, path):
    m = out["meta"]
    lines = [f"# Labeling session: the supervised iteration while groups keep coming", "",
             f"{m['date']}; {m['machine']}, threads {m['threads']}; data {m['data']} "
             f"({m['n']:,} points, 2D); {m['iters']} iterations; {100 * m['start']:.0f} % labeled at "
             f"iteration 0, then a group of {m['group']} every {m['every']} iterations from "
             f"iteration {m['from']} on; f = {m['f']}; u_i ramp 50 iterations. Supervised and "
             "unsupervised stepped in turn, "
             f"{_turns(m)}, in one process per row (wall clock, ms per iteration). "
             "Session = from the first group on; early = before it (the first labels' ramp and "
             "the iterations after it). Pairs visited = labeled pairs in the attraction's "
             "second pass per iteration in the session (this engine's count); all labeled pairs "
             "at the end for comparison. Fresh corrections = the supervision corrections step "
             "computed afresh in the whole run (- where the engine does not count them). "
             "Load = 1-minute load average at the row's end.", "",
             "| engine | r | unsupervised whole | supervised whole | sup / unsup whole | "
             "sup / unsup early | "
             "unsupervised session | supervised session | sup / unsup session | groups | "
             "pairs visited | all labeled pairs | fresh corrections | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        engine = r["engine"] + (f", #{r['invocation']}" if m.get("repeat", 1) > 1 else "")
        if "error" in r:
            lines.append(f"| {engine} | {r['r']} | failed: {r['error']} |" + " |" * 11)
            continue
        vis = r["visited_session_mean"]
        lines.append(
            f"| {engine} | {r['r']} | {_fmt(r['unsupervised_whole_ms'])} | "
            f"{_fmt(r['supervised_whole_ms'])} | **{_fmt(r['ratio_whole'], 2)}** | "
            f"**{_fmt(r.get('ratio_early'), 2)}** | "
            f"{_fmt(r['unsupervised_session_ms'])} | {_fmt(r['supervised_session_ms'])} | "
            f"**{_fmt(r.get('ratio_session'), 2)}** | {r['groups']} | "
            f"{'-' if vis is None else f'{vis:,.0f}'} | "
            f"{r['labeled_pairs_end']:,} | {_fmt(r.get('fresh_corrections'), 0)} | "
            f"{r['load_average'][0]:.1f} |")
    if m.get("repeat", 1) > 1:
        lines += ["", f"Over the {m['repeat']} invocations of each engine and r (taken in turn): "
                  "the median ratio and, in brackets, the lowest and highest. A failed invocation "
                  "is counted, not dropped.", "",
                  "| engine | r | invocations (failed) | sup / unsup whole | sup / unsup early | "
                  "sup / unsup session |", "|---|---|---|---|---|---|"]
        for (engine, rv), group in _by_engine_and_r(out["rows"]):
            ok = [r for r in group if "error" not in r]
            cells = []
            for key in ("ratio_whole", "ratio_early", "ratio_session"):
                v = [r[key] for r in ok if r.get(key) is not None]
                cells.append("-" if not v else f"**{np.median(v):.2f}** "
                                               f"({min(v):.2f} to {max(v):.2f})")
            lines.append(f"| {engine} | {rv} | {len(group)} ({len(group) - len(ok)}) | "
                         + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(out, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rs = sorted({r["r"] for r in out["rows"]})
    fig, axes = plt.subplots(1, len(rs), figsize=(6 * len(rs), 4), squeeze=False)
    for ax, rv in zip(axes[0], rs):
        for (engine, r_), group in _by_engine_and_r(out["rows"]):
            ok = [r for r in group if "error" not in r]
            if r_ != rv or not ok:
                continue
            # with repeats, each chunk's median over the invocations
            sup = np.median([r["ms"]["supervised"] for r in ok], axis=0)
            unsup = np.median([r["ms"]["unsupervised"] for r in ok], axis=0)
            it = np.arange(len(sup)) * ok[0]["every"]
            more = f" (median of {len(ok)})" if len(ok) > 1 else ""
            ax.plot(it, sup, label=f"{engine}: supervised{more}")
            ax.plot(it, unsup, ls=":", label=f"{engine}: unsupervised{more}")
        ax.axvline(out["meta"]["from"], color="grey", lw=0.8)
        ax.set(title=f"{out['meta']['data']}, r = {rv}: a group every {out['meta']['every']} "
                     "iterations from the grey line", xlabel="iteration", ylabel="ms per iteration")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", default="fmnist70k", choices=("digits", "fmnist10k", "fmnist70k"))
    ap.add_argument("--big", action="store_true", help="10^6 points in 20 clusters (tsne_bench --big)")
    ap.add_argument("--big-n", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="digits, 300 iterations (CI)")
    ap.add_argument("--iters", type=int, default=None, help="iterations (default 750; --quick 300)")
    ap.add_argument("--every", type=int, default=None, help="iterations between groups (default 20)")
    ap.add_argument("--from", dest="start_it", type=int, default=100,
                    help="iteration of the first group (default 100: after the first labels' ramp)")
    ap.add_argument("--group", type=int, default=21, help="points per group (a seed and 20 neighbours)")
    ap.add_argument("--start", type=float, default=0.5, help="fraction labeled at iteration 0")
    ap.add_argument("--r", type=float, nargs="+", default=[0.1, 1.0], help="repulsion emphases")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grain", type=int, default=1,
                    help="iterations per turn of the two runs inside a chunk (default 1; up to the "
                         "chunk, --every, as before 2026-12-04)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="invocations per engine and r, in turn; the table adds their median and range")
    ap.add_argument("--compare-root", help="also run the engine of this checkout, labelled by its commit")
    ap.add_argument("--warm-up", choices=("compare", "all", "none"), default="compare",
                    help="engines that get an untimed session before the timed ones (default: "
                         "--compare-root's, whose numba cache a fresh worktree lacks)")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per session")
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("--figure", help="the plot (default docs/labeling_session[_big].png)")
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return None
    data = "big" if args.big else "digits" if args.quick else args.data
    iters = args.iters or (300 if args.quick else 750)
    every = args.every or (10 if args.quick else 20)
    start_it = min(args.start_it, 50) if args.quick else args.start_it
    base = dict(data=data, n=args.big_n, iters=iters, every=every, start=args.start, group=args.group,
                f=0.1, seed=0, threads=args.threads,
                # turns within a chunk: 1 to --every (the table states what was run)
                grain=max(1, min(args.grain, every)),
                repeat=max(1, args.repeat), **{"from": start_it})
    roots = [(f"this engine ({_commit(ROOT)})", ROOT)]
    if args.compare_root:
        roots.append((f"before ({_commit(args.compare_root)})", os.path.abspath(args.compare_root)))
    rows = []
    # an engine from another checkout (a fresh git worktree) has a cold numba cache, and the
    # worker's warm-up does not reach every kernel a 750-iteration session compiles (a cold
    # ebb2163 took 245, 118, 508 and 95 ms an iteration in the chunks at iterations 0, 100,
    # 280 and 580 of its first session, against ~50): one untimed session of it first
    warm = roots[1:] if args.warm_up == "compare" else roots if args.warm_up == "all" else []
    for label, root in warm:
        print(f"[{time.strftime('%H:%M:%S')}] {label}: an untimed session first "
              "(numba's cache) ...", flush=True)
        got = _run(dict(base, r=args.r[-1]), root, args.timeout)
        if "error" in got:
            print(f"  warm-up failed: {got['error']}", flush=True)
    # repeats in turn (every engine and r once, then again), so a change of the machine's load
    # falls on all of them
    for rep in range(max(1, args.repeat)):
        for label, root in roots:
            for r in args.r:
                print(f"[{time.strftime('%H:%M:%S')}] {label}, r = {r}"
                      + (f", invocation {rep + 1} of {args.repeat}" if args.repeat > 1 else "")
                      + " ...", flush=True)
                got = _run(dict(base, r=r), root, args.timeout)
                got["engine"] = label
                got["invocation"] = rep + 1
                rows.append(got)
                print(f"[{time.strftime('%H:%M:%S')}]   " + (got.get("error") or
                      f"whole {got['supervised_whole_ms']:.1f} / {got['unsupervised_whole_ms']:.1f} "
                      f"ms = {got['ratio_whole']:.2f}, before the first group "
                      f"{got['ratio_early']:.2f}, session "
                      f"{got.get('ratio_session') or float('nan'):.2f}"), flush=True)
    n = next((r["n"] for r in rows if "n" in r and "error" not in r), None)
    out = {"meta": dict(base, n=n, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        machine=f"{platform.machine()}, {os.cpu_count()} cores", quick=bool(args.quick)),
           "rows": rows}
    name = "labeling_session_big" if args.big else "labeling_session"
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    summarise(out, os.path.join(args.results, name + ".md"))
    figure = args.figure or os.path.join(FIGURES, name + ".png")
    plot(out, figure)
    print(open(os.path.join(args.results, name + ".md")).read())
    print("wrote", os.path.join(args.results, name + ".{json,md}"), "and", figure)
    return out


if __name__ == "__main__":
    main()
