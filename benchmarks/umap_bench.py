"""UMAP layout benchmark (issue 14): does sharing the engine's kNN with umap-learn help,
and how does UMAP compare with t-SNE in 4-NN accuracy (the paper's Table 1)?

    .venv/bin/python benchmarks/umap_bench.py knn [--rows 1797,10000] [--out benchmarks/results/umap_knn.json]
    .venv/bin/python benchmarks/umap_bench.py report Q1.json Q2.json ... [--knn K.json] [--out benchmarks/results/umap_quality.md]

``knn``: for digits (1,797 x 64) and Fashion-MNIST subsets (raw 784 pixels,
seeded), the time from features to UMAP's fuzzy graph, as the tab's UMAP
layout builds it (the engine's exact kNN handed to umap-learn as
``precomputed_knn``) and as umap-learn alone does (its exact pairwise
distances below 4,096 rows, NN-descent above), each the median of 3 runs after
a warm-up (numba compiled); and the recall of umap-learn's own neighbours
against the exact ones. ``report``: a Markdown table of ``tensorboard-al
quality --layout both --with-labels --json`` outputs (one per dataset), with
the kNN table when given. The machine's load average is written beside the
times.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.tsne.nearest_neighbors import nearest_neighbors  # noqa: E402

K = 15  # umap-learn's n_neighbors default, the tab's


def _data(rows):
    from tensorboard_al_plugin.research.datasets import load_dataset
    if rows == 1797:
        return "digits", load_dataset("digits")[0]
    X = load_dataset("fashion-mnist")[0]
    pick = np.random.default_rng(0).permutation(len(X))[:rows]
    return "fashion-mnist %d" % rows, np.ascontiguousarray(X[pick], dtype=np.float32)


def _graph(X, knn):
    from tensorboard_al_plugin.tsne.umap_layout import _import_umap
    umap_, _, _ = _import_umap()
    model = umap_.UMAP(n_neighbors=K, random_state=0, n_jobs=1, transform_mode="graph",
                       precomputed_knn=knn if knn is not None else (None, None, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return model


def _ours(X):
    n = len(X)
    t0 = time.perf_counter()
    ind, dist, _ = nearest_neighbors(X, K - 1)
    knn = (np.hstack([np.arange(n, dtype=np.int32)[:, None], ind]).astype(np.int32),
           np.hstack([np.zeros((n, 1)), dist]).astype(np.float32))
    t1 = time.perf_counter()
    _graph(X, knn)
    return t1 - t0, time.perf_counter() - t0, knn[0]


def _theirs(X):
    t0 = time.perf_counter()
    model = _graph(X, None)
    return time.perf_counter() - t0, model


def knn(args):
    load = [os.getloadavg()]
    rows = [int(r) for r in args.rows.split(",")]
    _ours(_data(1797)[1][:300])
    _theirs(_data(1797)[1][:300])
    out = []
    for n in rows:
        name, X = _data(n)
        ours, theirs = [], []
        for _ in range(3):
            knn_s, total_s, exact = _ours(X)
            ours.append((knn_s, total_s))
            t, model = _theirs(X)
            theirs.append(t)
        own = getattr(model, "_knn_indices", None)
        if own is None:  # below 4,096 rows umap-learn computes all distances: exact
            recall = 1.0
        else:
            recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(own, exact)]))
        out.append({"data": name, "rows": n, "dims": int(X.shape[1]),
                    "ours_knn_s": round(statistics.median(o[0] for o in ours), 3),
                    "ours_to_graph_s": round(statistics.median(o[1] for o in ours), 3),
                    "umap_learn_to_graph_s": round(statistics.median(theirs), 3),
                    "umap_learn_search": "exact pairwise" if own is None else "NN-descent (pynndescent)",
                    "umap_learn_knn_recall": round(recall, 4)})
        print(out[-1], flush=True)
    load.append(os.getloadavg())
    import umap
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
              platform.machine(), "cpus": os.cpu_count(), "load_average_start_end": load,
              "umap_learn": umap.__version__, "n_neighbors": K, "rows": out}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out)


def report(args):
    lines = ["# UMAP vs t-SNE (issue 14)", ""]
    lines += ["4-NN accuracy in 3D (mean +- std over 5 stratified folds), `tensorboard-al quality --layout both "
              "--with-labels`. *with labels*: per fold, the layout is given the other folds' labels (the fold "
              "itself unlabeled) and the 4-NN fitted on those rows is scored on the fold; t-SNE with the tab's "
              "label_importance 0.1 / repulsion_emphasis 1, UMAP with label_weight 0.5. Both on the same PCA-50 "
              "input; t-SNE 1,000 iterations, UMAP umap-learn's epochs (500 up to 10,000 rows).", ""]
    lines += ["| data | rows | t-SNE | t-SNE with labels | UMAP | UMAP with labels | features | seconds "
              "(t-SNE, +labels, UMAP, +labels) | load |", "|---|---|---|---|---|---|---|---|---|"]
    for path in args.quality:
        with open(path) as f:
            q = json.load(f)
        def cell(key):
            r = q.get(key)
            return "%.3f +- %.3f" % (r["mean"], r["std"]) if r else "-"
        s = q.get("seconds", {})
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            q.get("data", os.path.basename(path)), q["n_samples"], cell("tsne_knn_accuracy"),
            cell("tsne_with_labels_knn_accuracy"), cell("umap_knn_accuracy"), cell("umap_with_labels_knn_accuracy"),
            cell("feature_knn_accuracy"),
            ", ".join(str(s.get(k, "-")) for k in ("tsne", "tsne_with_labels", "umap", "umap_with_labels")),
            q.get("load", "-")))
    if args.knn:
        with open(args.knn) as f:
            k = json.load(f)
        lines += ["", "## Sharing the engine's kNN with umap-learn", "",
                  "Features to UMAP's fuzzy graph (n_neighbors %d), median of 3 after a warm-up; %s, %d CPUs, "
                  "load average %s at the start and %s at the end, umap-learn %s, %s." % (
                      k["n_neighbors"], k["machine"], k["cpus"], ", ".join("%.1f" % v for v in k["load_average_start_end"][0]),
                      ", ".join("%.1f" % v for v in k["load_average_start_end"][1]), k["umap_learn"], k["date"]), "",
                  "| data | rows x dims | engine's exact kNN | engine's kNN + umap-learn graph | umap-learn alone "
                  "| umap-learn's search | its kNN recall |", "|---|---|---|---|---|---|---|"]
        for r in k["rows"]:
            lines.append("| %s | %d x %d | %.2f s | %.2f s | %.2f s | %s | %.3f |" % (
                r["data"], r["rows"], r["dims"], r["ours_knn_s"], r["ours_to_graph_s"], r["umap_learn_to_graph_s"],
                r["umap_learn_search"], r["umap_learn_knn_recall"]))
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("knn")
    p.add_argument("--rows", default="1797,10000")
    p.add_argument("--out", default="benchmarks/results/umap_knn.json")
    p.set_defaults(func=knn)
    p = sub.add_parser("report")
    p.add_argument("quality", nargs="+")
    p.add_argument("--knn")
    p.add_argument("--out", default="benchmarks/results/umap_quality.md")
    p.set_defaults(func=report)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
