"""How far off the supervision's correction is when step() reuses it, by r and by age.

    .venv/bin/python benchmarks/correction_reuse.py [--data fmnist70k] [--quick]

Why: the supervised repulsion is the plain one plus a correction on labeled
pairs of different labels (b_ij - 1 = r u_i u_j). ``step()`` computes the
correction afresh every ``tsne.correction_interval(r)`` iterations and reuses
it in between (the plain repulsion and the attraction are fresh on every
iteration), and past that interval while ``tsne.reuse_error`` estimates the
reused one's error under ``tsne.CORRECTION_TOLERANCE`` (up to
``CORRECTION_MAX_EVERY``). This measures what the reuse costs in accuracy,
how well that estimate predicts it, and how often step recomputes the
correction: along one whole run per r, at a few check iterations, the repulsive
force on the labeled points (rep + rep_c) / (Z + Z_c) with a correction
computed `age` iterations earlier against the fresh one, as
|F_reused - F_fresh| / |F_fresh| over the labeled points, beside the
estimate and beside the error of the correction extrapolated linearly in
age from that one and the one ``correction_interval(r)`` iterations before
it (what step uses where its check finds that the closer; only where a
sample is kept, r > 0.2). The FFT
interpolation's own error on the repulsion is about 2% (``repulsion``'s
docstring), the yardstick.

Data: Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``; PCA to
50 dimensions, the yardstick P of tsne_bench.py, perplexity 20) or digits
(``--quick``); half the points labeled at random with their true class,
f = 0.1, labels from iteration 0 with the default 50-iteration ramp, the
default schedule (exaggeration 4 until 100, to 1 at 250), 2D, random_state 0,
the engine's default method (FFT from 5,000 points, else Barnes-Hut).
Writes benchmarks/results/correction_reuse.{json,md} and docs/correction_reuse.png.
"""
import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from tensorboard_al_plugin.threads import passive_openmp_wait  # noqa: E402

passive_openmp_wait()

RESULTS = os.path.join(HERE, "results")
FIGURE = os.path.join(ROOT, "docs", "correction_reuse.png")
CHECKS = (40, 70, 100, 150, 250, 400, 700)
QUICK_CHECKS = (20, 60, 120, 200)
AGES = (3, 7, 11, 15)
FFT_ERROR = 0.02  # the FFT interpolation's error on the repulsion (repulsion.fft_repulsion_2d)


def load(data):
    """(X, y, P) for 'digits' (its own P, perplexity 20) or a tsne_bench data set."""
    import tsne_bench
    X, y = tsne_bench.load_dataset(data)
    if data == "digits":
        from tensorboard_al_plugin.tsne import perplexity_affinities
        return X, y, perplexity_affinities(X, 20.0)[0]
    return X, y, tsne_bench.yardstick_P(data, X)


def _run(X, y, P, r, seed):
    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(X.shape[0]) < 0.5, y, -1)
    return SemiSupervisedTSNE(n_components=2, perplexity=20, random_state=seed,
                              label_importance=0.1, repulsion_emphasis=r).prepare(
                                  X, affinities=P, labels=labels)


def fresh_counts(X, y, P, r, checks, extrapolate, seed=0):
    """Fresh corrections step computes between one check and the next along a run with
    the extrapolation on or off (``tsne.CORRECTION_EXTRAPOLATE``)."""
    from tensorboard_al_plugin.tsne import tsne
    saved = tsne.CORRECTION_EXTRAPOLATE
    tsne.CORRECTION_EXTRAPOLATE = extrapolate
    try:
        run, counts, counted = _run(X, y, P, r, seed), [], 0
        for c in checks:
            run.step(c - run.iteration)
            counts.append(run.fresh_corrections - counted)
            counted = run.fresh_corrections
        return counts
    finally:
        tsne.CORRECTION_EXTRAPOLATE = saved


def measure(X, y, P, r, checks, ages, seed=0):
    """Along one run at repulsion emphasis r: ({age: [relative error at each
    check]}, {age: [step's estimate of it]}, [fresh corrections step computed
    since the previous check], method, {age: [error of the correction
    extrapolated to that age]} or None where step never extrapolates)."""
    from tensorboard_al_plugin.tsne.tsne import (CORRECTION_MAX_EVERY, _Kept,
                                                 correction_interval, reuse_error)
    run = _run(X, y, P, r, seed)
    gap = correction_interval(r)
    extrapolates = gap < CORRECTION_MAX_EVERY
    wanted = {c - a for c in checks for a in ages} | set(checks)
    if extrapolates:
        wanted |= {c - a - gap for c in checks for a in ages}
    wanted = sorted(wanted)
    if wanted[0] < 0:
        raise SystemExit(f"a check comes before its age: checks {checks}, ages {ages}")
    kept = {}
    errors = {a: [] for a in ages}
    estimates = {a: [] for a in ages}
    ahead = {a: [] for a in ages} if extrapolates else None
    fresh, counted = [], 0
    from tqdm import tqdm
    for it in tqdm(wanted, desc=f"r = {r}", unit="state"):
        run.step(it - run.iteration)
        run._refresh_weights(run.iteration)  # u and the weights of this iteration
        rep, Z, rep_c, Z_c = run._repulsion_parts(run._Y)  # what step() computes afresh
        kept[it] = _Kept(rep_c, Z_c, it, run._Y, run._codes, run._u.copy(), run._lab_idx, r)
        if it in checks:
            lab = run._codes >= 0
            F = ((rep + rep_c) / (Z + Z_c))[lab]
            for a in ages:
                old = kept[it - a]
                F_old = ((rep + old.rep_c) / (Z + old.Z_c))[lab]
                errors[a].append(float(np.linalg.norm(F_old - F) / np.linalg.norm(F)))
                estimates[a].append(reuse_error(run._Y, rep, old, run._codes, run._u,
                                                run._lab_idx, r))
                if extrapolates:
                    prev, s = kept[it - a - gap], a / gap
                    rep_e = rep + old.rep_c + s * (old.rep_c - prev.rep_c)
                    Z_e = Z + old.Z_c + s * (old.Z_c - prev.Z_c)
                    F_e = (rep_e / Z_e)[lab]
                    ahead[a].append(float(np.linalg.norm(F_e - F) / np.linalg.norm(F)))
            fresh.append(run.fresh_corrections - counted)
            counted = run.fresh_corrections
        for k in [k for k in kept if k < it - max(ages) - gap]:
            del kept[k]
    return errors, estimates, fresh, run.method, ahead


def summarise(out, path_md):
    from tensorboard_al_plugin.tsne.tsne import (CORRECTION_MAX_EVERY, CORRECTION_SAMPLE,
                                                 CORRECTION_TOLERANCE, correction_interval)
    m = out["meta"]
    lines = ["# Reusing the supervision's correction", "",
             f"{m['date']}; {m['machine']}, threads {m['threads']}, load {m['load']}. "
             f"`benchmarks/correction_reuse.py{' --quick' if m['quick'] else ''}`: {m['data']} "
             f"({m['n']} points, 2D, method {m['method']}), half labeled, f = 0.1.", "",
             "Relative error of the repulsive force on the labeled points with a correction "
             "`age` iterations old against a fresh one, in %, at iterations "
             f"{', '.join(map(str, m['checks']))} (early exaggeration ends at 100-250). "
             "step() reuses the correction for at most `correction_interval(r) - 1` "
             "iterations (marked *); the FFT interpolation's own error is about 2 %.", "",
             "| r | age | " + " | ".join(f"it {c}" for c in m["checks"]) + " | max |",
             "|---|---|" + "---|" * (len(m["checks"]) + 1)]
    for row in out["rows"]:
        mark = " *" if row["age"] == correction_interval(row["r"]) - 1 else ""
        lines.append(f"| {row['r']} | {row['age']}{mark} | "
                     + " | ".join(f"{100 * e:.2f}" for e in row["errors"])
                     + f" | {100 * max(row['errors']):.2f} |")
    tol = 100 * CORRECTION_TOLERANCE
    lines += ["", "Past `correction_interval(r)`, step keeps the correction while `reuse_error` (the "
              f"exact correction on {CORRECTION_SAMPLE} labeled points, now against then) "
              f"estimates its error under {tol:g} %, up to age {CORRECTION_MAX_EVERY - 1} (asked at the "
              "end of the interval, then where the last estimate, extrapolated linearly in age, "
              "would reach the tolerance). The estimate "
              "for the same corrections, in %, and its ratio to the error:", "",
              "| r | age | " + " | ".join(f"it {c}" for c in m["checks"]) + " | estimate / error |",
              "|---|---|" + "---|" * (len(m["checks"]) + 1)]
    for row in out["rows"]:
        ratio = [s / e for s, e in zip(row["estimates"], row["errors"]) if e > 1e-3]
        span = f"{min(ratio):.2f}-{max(ratio):.2f}" if ratio else "-"
        lines.append(f"| {row['r']} | {row['age']} | "
                     + " | ".join(f"{100 * e:.2f}" for e in row["estimates"]) + f" | {span} |")
    rows = [row for row in out["rows"] if row.get("extrapolated")]
    if rows:
        lines += ["", "Where a sample is kept (r > 0.2) step also extrapolates the correction "
                  "linearly in age from that one and the one before it, and its check goes "
                  "on with whichever of the two it finds closer. The error of the "
                  "correction so extrapolated (from the fresh ones `age` and `age + "
                  "correction_interval(r)` iterations old), in %, and its ratio to the "
                  "constant one's:", "",
                  "| r | age | " + " | ".join(f"it {c}" for c in m["checks"])
                  + " | extrapolated / constant |",
                  "|---|---|" + "---|" * (len(m["checks"]) + 1)]
        for row in rows:
            ratio = [x / e for x, e in zip(row["extrapolated"], row["errors"]) if e > 1e-3]
            span = f"{min(ratio):.2f}-{max(ratio):.2f}" if ratio else "-"
            lines.append(f"| {row['r']} | {row['age']} | "
                         + " | ".join(f"{100 * e:.2f}" for e in row["extrapolated"])
                         + f" | {span} |")
    lines += ["", "Fresh corrections step computed between one check and the next "
              "(the first: from iteration 0), and in all, with the extrapolation (the "
              "engine's default) and without it (`tsne.CORRECTION_EXTRAPOLATE = False`):", "",
              "| r | extrapolated | " + " | ".join(f"to it {c}" for c in m["checks"])
              + " | all |",
              "|---|---|" + "---|" * (len(m["checks"]) + 1)]
    for f in out.get("fresh", []):
        for key, name in (("counts", "yes"), ("counts_constant", "no")):
            if key in f:
                lines.append(f"| {f['r']} | {name} | " + " | ".join(str(c) for c in f[key])
                             + f" | {sum(f[key])} |")
    with open(path_md, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(out, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard_al_plugin.tsne.tsne import CORRECTION_TOLERANCE, correction_interval
    rs = sorted({row["r"] for row in out["rows"]})
    fig, axes = plt.subplots(1, len(rs), figsize=(5 * len(rs), 3.8), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], rs):
        for row in (o for o in out["rows"] if o["r"] == r):
            used = row["age"] == correction_interval(r) - 1
            line, = ax.plot(out["meta"]["checks"], [100 * e for e in row["errors"]], marker="o",
                            lw=2.5 if used else 1,
                            label=f"age {row['age']}" + (" (step's interval)" if used else ""))
            ax.plot(out["meta"]["checks"], [100 * e for e in row["estimates"]], ls=":",
                    color=line.get_color(), lw=1)
            if row.get("extrapolated"):
                ax.plot(out["meta"]["checks"], [100 * e for e in row["extrapolated"]], ls="--",
                        marker="x", color=line.get_color(), lw=1)
        ax.axhline(100 * FFT_ERROR, color="grey", ls="--", lw=1, label="FFT interpolation error")
        ax.axhline(100 * CORRECTION_TOLERANCE, color="k", ls=":", lw=1,
                   label="step's tolerance (dotted: its estimates)")
        ax.axvspan(100, 250, color="0.93", zorder=0)
        extra = any(o.get("extrapolated") for o in out["rows"] if o["r"] == r)
        ax.set_title(f"r = {r}: fresh at least every {correction_interval(r)} iterations"
                     + ("\n(dashed, x: extrapolated in age)" if extra else ""), fontsize=9)
        ax.set_xlabel("iteration (shaded: exaggeration ends)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("error of the labeled points' repulsion, %")
    fig.suptitle(f"Reused supervision correction, {out['meta']['data']} ({out['meta']['n']} points)",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="fmnist70k", choices=("digits", "fmnist10k", "fmnist70k"))
    ap.add_argument("--quick", action="store_true", help="digits, checks up to iteration 200 (CI)")
    ap.add_argument("--r", type=float, nargs="+", default=[0.1, 1.0], help="repulsion emphases")
    ap.add_argument("--ages", type=int, nargs="+", default=list(AGES))
    ap.add_argument("--results", default=RESULTS, help="folder for the JSON and the table")
    ap.add_argument("--figure", default=FIGURE)
    args = ap.parse_args(argv)
    data = "digits" if args.quick else args.data
    checks = QUICK_CHECKS if args.quick else CHECKS
    X, y, P = load(data)
    rows, method = [], None
    fresh = {}
    constant = {}
    for r in args.r:
        errors, estimates, fresh[r], method, ahead = measure(X, y, P, r, checks, sorted(args.ages))
        rows += [dict(r=r, age=a, errors=e, estimates=estimates[a],
                      extrapolated=None if ahead is None else ahead[a])
                 for a, e in errors.items()]
        if ahead is not None:
            constant[r] = fresh_counts(X, y, P, r, checks, extrapolate=False)
    import numba
    out = {"meta": dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        machine=f"{platform.machine()}, {os.cpu_count()} cores",
                        threads=numba.get_num_threads(), load=round(os.getloadavg()[0], 1),
                        data=data, n=int(X.shape[0]), method=method, checks=list(checks),
                        quick=bool(args.quick)),
           "rows": rows, "fresh": [dict(r=r, counts=c, **({"counts_constant": constant[r]}
                                                            if r in constant else {}))
                                   for r, c in fresh.items()]}
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "correction_reuse.json"), "w") as f:
        json.dump(out, f, indent=1)
    summarise(out, os.path.join(args.results, "correction_reuse.md"))
    plot(out, args.figure)
    print(open(os.path.join(args.results, "correction_reuse.md")).read())
    print("wrote", os.path.join(args.results, "correction_reuse.{json,md}"), "and", args.figure)
    return out


if __name__ == "__main__":
    main()
