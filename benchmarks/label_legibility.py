"""Label legibility vs class separation of the supervised t-SNE, over f, r and the class-size cap K.

    .venv/bin/python benchmarks/label_legibility.py [--quick]

Why: with labels fed back into the layout (Luus et al., section 3), same-label
points attract with a_ij = 1 + u_i u_j f N / N_s (in units of 1/N). The factor
N / N_s is largest when few points of a class are labeled in a large
map (exactly when a person starts labeling), and labeled groups then collapse
into one clump that hides their thumbnails. The engine caps the factor at K
(``tsne.supervision.CLASS_SIZE_FACTOR_CAP``; K = inf is the paper's formula).
This benchmark measures legibility and separation over f, r and K and picks
the defaults.

Data: scikit-learn's digits (1,797 x 64) and the first 5,000 Fashion-MNIST test
images (``apt-get install -y dataset-fashion-mnist``; pixels reduced by PCA to
50 dimensions, as the emulation does). Labels are applied as a person applies
them in the tab: a random unlabeled point and its 20 nearest neighbours in
feature space (the tab's default group), of which the members of the group's
majority class get that label (the odd ones out are removed from the group),
until 3 %, 10 % or 30 % of the rows are labeled. Seeded; one layout per
setting: 1,000 iterations (the tab's budget), labels present from iteration 0
with the default 50-iteration ramp, perplexity 20, random_state 0.

Measured on each final layout (``tensorboard_al_plugin.tsne.metrics``):
- legibility, in thumbnails of the tab's default size in the whole-map view
  (31 px wide for 1,797 points and 19 px for 5,000 in a 900 px tall view):
  ``hidden_fraction`` (labeled points whose thumbnail is more than half
  covered by another labeled point's) and ``nn_widths`` (median distance to
  the nearest other labeled point, in thumbnail widths);
- separation (what supervision is for): ``knn4_unlabeled``, the leave-one-out
  4-NN accuracy of the unlabeled points in the layout (true classes), and
  ``knn4_from_labeled``, the accuracy of giving each unlabeled point the
  majority label of its 4 nearest labeled points.

The defaults are the setting with supervision on (f > 0: the tab promises
that labels pull a class together) with the best mean ``knn4_from_labeled``
among those whose labeled thumbnails are, in every case, at least 0.8 times as
far apart as in the unsupervised layout and at most 5 points more often hidden.
``--from-cache`` redraws the JSON's choice and the figure from the last run's
layouts (kept in /tmp) without recomputing them.
Writes benchmarks/results/label_legibility.json and docs/label_legibility.png.
"""
import argparse
import gzip
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

from tensorboard_al_plugin.threads import passive_openmp_wait  # noqa: E402

# Importing the engine does not set it; the runs were measured with it (before numba loads OpenMP).
passive_openmp_wait()

from tensorboard_al_plugin.active.layout import pca_for_tsne  # noqa: E402
from tensorboard_al_plugin.tsne import SemiSupervisedTSNE, supervision  # noqa: E402
from tensorboard_al_plugin.tsne.metrics import (knn_accuracy, label_legibility,  # noqa: E402
                                                normalized_layout, thumbnail_width)

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
RESULTS = os.path.join(HERE, "results", "label_legibility.json")
FIGURE = os.path.join(ROOT, "docs", "label_legibility.png")
GROUP = 20          # the tab's default number of neighbours in a group
N_ITER = 1000       # the tab's default iteration budget
INF = float("inf")
# (f, r, K): the unsupervised layout, the tab's old default (0.1, 0.1, no cap),
# smaller f and larger r without a cap, and caps.
SETTINGS = [(0.0, 0.0, INF), (0.1, 0.1, INF), (0.01, 0.1, INF), (0.03, 0.1, INF), (0.0, 1.0, INF),
            (0.1, 1.0, INF), (0.1, 0.1, 2.5), (0.1, 1.0, 2.5), (0.1, 1.0, 10.0), (0.3, 1.0, 2.5)]
QUICK_SETTINGS = [(0.0, 0.0, INF), (0.1, 0.1, INF), (0.1, 1.0, 2.5)]
FRACTIONS = (0.03, 0.1, 0.3)


def load(name):
    """(features float32 (N, D), classes int (N,), thumbnails (N, h, w) float in [0, 1])."""
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return d.data.astype(np.float32), d.target.astype(np.int64), d.images / 16.0
    img = os.path.join(FMNIST_DIR, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(img):
        sys.exit("Fashion-MNIST not found at %s. Install it with:\n"
                 "    apt-get install -y dataset-fashion-mnist" % FMNIST_DIR)
    with gzip.open(img) as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:5000]
    with gzip.open(os.path.join(FMNIST_DIR, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:5000].astype(np.int64)
    thumbs = pixels.astype(np.float32) / 255.0
    return pca_for_tsne(thumbs.reshape(len(y), -1)), y, thumbs


def group_labels(X, y, fraction, seed=0):
    """Labels (-1 = unlabeled) applied in groups as in the tab, until ``fraction`` is labeled."""
    from sklearn.neighbors import NearestNeighbors
    n = len(y)
    rng = np.random.default_rng(seed)
    nbrs = NearestNeighbors(n_neighbors=GROUP + 1).fit(X).kneighbors(X, return_distance=False)
    labels = np.full(n, -1, dtype=np.int64)
    target = int(round(fraction * n))
    for focus in rng.permutation(n):
        if (labels >= 0).sum() >= target:
            break
        if labels[focus] >= 0:
            continue
        group = nbrs[focus][labels[nbrs[focus]] < 0]
        majority = np.bincount(y[group]).argmax()
        labels[group[y[group] == majority]] = majority
    return labels


def knn_from_labeled(Y, labels, y, k=4):
    """Accuracy of the majority label of each unlabeled point's k nearest labeled points."""
    from sklearn.neighbors import NearestNeighbors
    lab = np.flatnonzero(labels >= 0)
    unl = np.flatnonzero(labels < 0)
    ind = NearestNeighbors(n_neighbors=k).fit(Y[lab]).kneighbors(Y[unl], return_distance=False)
    votes = labels[lab][ind]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == y[unl]).mean())


def layout(X, labels, f, r, cap):
    supervision.CLASS_SIZE_FACTOR_CAP = cap
    try:
        return SemiSupervisedTSNE(perplexity=20, label_importance=f, repulsion_emphasis=r,
                                  random_state=0).prepare(X, labels=labels).step(N_ITER).positions
    finally:
        supervision.CLASS_SIZE_FACTOR_CAP = DEFAULT_CAP


DEFAULT_CAP = supervision.CLASS_SIZE_FACTOR_CAP


def key(f, r, cap):
    return "f=%g r=%g K=%s" % (f, r, "inf" if cap == INF else "%g" % cap)


def choose(rows):
    """The recommended setting and why (see the module docstring)."""
    plain = {(q["data"], q["fraction"]): q for q in rows if q["f"] == 0 and q["r"] == 0}
    by = {}
    for q in rows:
        if q["f"] > 0:  # the tab's promise: labels pull a class together
            by.setdefault(q["setting"], []).append(q)
    ok = {}
    for name, qs in by.items():
        if all(q["nn_widths"] >= 0.8 * plain[q["data"], q["fraction"]]["nn_widths"]
               and q["hidden_fraction"] <= plain[q["data"], q["fraction"]]["hidden_fraction"] + 0.05
               for q in qs):
            ok[name] = float(np.mean([q["knn4_from_labeled"] for q in qs]))
    best = max(ok, key=ok.get) if ok else None
    return {"rule": "among settings with f > 0, max mean knn4_from_labeled subject to nn_widths >= "
                    "0.8 x unsupervised and hidden_fraction <= unsupervised + 0.05 in every case",
            "legible_settings": ok, "recommended": best,
            "unsupervised_mean_knn4_from_labeled": float(np.mean([q["knn4_from_labeled"]
                                                                 for q in plain.values()]))}


def figure(rows, layouts, thumbs, recommended, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = [key(0.0, 0.0, INF), key(0.1, 0.1, INF), recommended]
    titles = ["unsupervised (f = r = 0)", "old default (f = r = 0.1, K = inf)",
              "new default (%s)" % recommended.replace(" ", ", ").replace("=", " = ")]
    datas = sorted({d for d, _, _ in layouts})
    fig = plt.figure(figsize=(15, 5.3 * len(datas) + 4.5))
    gs = fig.add_gridspec(len(datas) + 1, 6, height_ratios=[5.3] * len(datas) + [4])
    cmap = plt.get_cmap("tab10")
    for row, data in enumerate(datas):
        for col, (name, title) in enumerate(zip(shown, titles)):
            ax = fig.add_subplot(gs[row, 2 * col:2 * col + 2])
            Y, labels, y = layouts.get((data, 0.1, name), (None, None, None))
            if Y is None:
                ax.axis("off")
                continue
            P = normalized_layout(Y)
            w = thumbnail_width(len(Y))
            unl = labels < 0
            ax.scatter(P[unl, 0], P[unl, 1], s=1.5, c=cmap(y[unl] % 10), alpha=0.5, linewidths=0)
            for i in np.flatnonzero(~unl):
                x0, y0 = P[i] - w / 2
                ax.imshow(thumbs[data][i], cmap="gray_r", extent=(x0, x0 + w, y0, y0 + w), zorder=2,
                          interpolation="nearest")
                ax.add_patch(plt.Rectangle((x0, y0), w, w, fill=False, lw=0.6,
                                           ec=cmap(labels[i] % 10), zorder=3))
            q = next(q for q in rows if q["data"] == data and q["fraction"] == 0.1 and q["setting"] == name)
            ax.set_title("%s, 10%% labeled: %s\nnearest labeled %.2f thumbnail widths, %.0f%% hidden;\n"
                         "4-NN from labeled %.3f" % (data, title, q["nn_widths"], 100 * q["hidden_fraction"],
                                                     q["knn4_from_labeled"]), fontsize=9)
            ax.set_xlim(-1.1, 1.1)
            ax.set_ylim(-1.1, 1.1)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    for col, data in enumerate(datas):
        ax = fig.add_subplot(gs[-1, 3 * col:3 * col + 3])
        for fi, frac in enumerate(FRACTIONS):
            qs = [q for q in rows if q["data"] == data and q["fraction"] == frac]
            ax.scatter([q["nn_widths"] for q in qs], [q["knn4_from_labeled"] for q in qs],
                       color=cmap(fi), label="%d%% labeled" % round(100 * frac), s=18)
            for q in qs:
                if q["setting"] in shown:
                    mark = {shown[0]: "plain", shown[1]: "old", shown[2]: "new"}[q["setting"]]
                    ax.annotate(mark, (q["nn_widths"], q["knn4_from_labeled"]), fontsize=8,
                                xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("median distance to the nearest labeled point (thumbnail widths)")
        ax.set_ylabel("4-NN accuracy of unlabeled from labeled")
        ax.set_title("%s: legibility vs separation, every setting" % data, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=80)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="digits only, three settings; figure to /tmp (about 30 s)")
    ap.add_argument("--from-cache", action="store_true",
                    help="recompute the choice and redraw the figure from the last full run's layouts")
    args = ap.parse_args()
    cache = os.path.join("/tmp", "label_legibility_layouts.pkl")
    if args.from_cache:
        import pickle
        with open(cache, "rb") as f:
            rows, layouts, thumbs, _ = pickle.load(f)
        with open(RESULTS) as f:
            out = json.load(f)
        out["choice"] = choice = choose(rows)
        with open(RESULTS, "w") as f:
            json.dump(out, f, indent=1)
        figure(rows, layouts, thumbs, choice["recommended"], FIGURE)
        print("recommended:", choice["recommended"], "; wrote", RESULTS, FIGURE)
        return
    datas = ["digits"] if args.quick else ["digits", "fmnist5k"]
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    rows, layouts, thumbs = [], {}, {}
    t_start = time.time()
    # compile the kernels before timing anything
    SemiSupervisedTSNE(perplexity=5, label_importance=0.1, random_state=0).prepare(
        np.random.default_rng(0).normal(size=(300, 5)),
        labels=np.repeat(np.arange(3), 100)).step(2)
    for data in datas:
        X, y, thumbs[data] = load(data)
        for frac in FRACTIONS:
            labels = group_labels(X, y, frac)
            for f, r, cap in settings:
                t0 = time.time()
                Y = layout(X, labels, f, r, cap)
                q = {"data": data, "n": len(y), "fraction": frac, "labeled": int((labels >= 0).sum()),
                     "setting": key(f, r, cap), "f": f, "r": r, "K": None if cap == INF else cap,
                     **label_legibility(Y, labels),
                     "knn4_unlabeled": knn_accuracy(Y, y, 4, mask=labels < 0),
                     "knn4_from_labeled": knn_from_labeled(Y, labels, y),
                     "seconds": round(time.time() - t0, 2)}
                rows.append(q)
                layouts[data, frac, q["setting"]] = (Y, labels, y)
                print("%-8s %3d%%  %-24s hidden %5.1f%%  nn %5.2f  knn4 %.3f  from-labeled %.3f  %5.1fs" % (
                    data, round(100 * frac), q["setting"], 100 * q["hidden_fraction"], q["nn_widths"],
                    q["knn4_unlabeled"], q["knn4_from_labeled"], q["seconds"]), flush=True)
    choice = choose(rows)
    print("recommended:", choice["recommended"])
    total = time.time() - t_start
    load_avg = os.getloadavg()
    out = {"rows": rows, "choice": choice, "n_iter": N_ITER, "group": GROUP,
           "total_seconds": round(total, 1), "load_average_at_end": [round(v, 2) for v in load_avg],
           "machine": {"cpus": os.cpu_count(), "numba_threads": os.environ["NUMBA_NUM_THREADS"],
                       "python": platform.python_version()}}
    if not args.quick:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(out, f, indent=1)
        print("wrote %s" % os.path.relpath(RESULTS, ROOT))
    import pickle  # the layouts, to redraw the figure without recomputing them
    with open(cache, "wb") as f:
        pickle.dump((rows, layouts, thumbs, choice), f)
    path = os.path.join("/tmp", "label_legibility_quick.png") if args.quick else FIGURE
    figure(rows, layouts, thumbs, choice["recommended"] or key(0.0, 0.0, INF), path)
    print("wrote %s" % path)
    print("%.0f s in all, load average %.2f %.2f %.2f" % ((total,) + load_avg))


if __name__ == "__main__":
    main()
