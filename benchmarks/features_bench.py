"""The paper's Table 1 on the data this machine has: 4-NN accuracy in a 3D t-SNE per feature choice.

    .venv/bin/python benchmarks/features_bench.py            # the full run (~10-15 min on 2 busy cores)
    .venv/bin/python benchmarks/features_bench.py --quick    # a smoke run (seconds)

Luus et al. ("Active Learning with TensorBoard Projector", section 2, Table 1)
score feature extractors by how well a 4-nearest-neighbour classifier does in
a 3D t-SNE of the features (mean +- std over 5 folds). Their averages over
their datasets: pixels 36%, ImageNet CNN 71%, Transfer-Frozen Exemplar-CNN
80%. Columns here, each made by ``tensorboard_al_plugin.features``:

- Pix: the pixels, flattened (``pixels``).
- Pre: their first 50 principal components (``pca:50``).
- RN: a small CNN from random initialisation trained as a rotation
  Exemplar-CNN (``rn``, ``--epochs`` epochs, early stop).
- IM, TF, TR: an ImageNet CNN (``cnn:NAME``, default ResNet50): its pooled
  output, then the Exemplar-CNN on top frozen (Transfer-Frozen) and trainable
  (Transfer). Only when its ImageNet weights are on the machine (Keras' cache
  or ``--weights``); nothing is downloaded, and the results say plainly when
  the weights were not present.

Data: scikit-learn's digits (1,797 8x8), a stratified sample of 3,000
Fashion-MNIST images (``apt-get install -y dataset-fashion-mnist``) and
scikit-image's ``lfw_subset`` (200 25x25 faces and non-faces). The score is
``research.quality.quality_report`` (the project's t-SNE engine, 1,000
iterations, perplexity 20, unsupervised; features above 50 dimensions reduced
to 50 with PCA first), the same as ``tensorboard-al quality``.

Writes benchmarks/results/features_table1.json and .md (with machine, load and
date) and docs/features_table1.png; --quick writes to --out (default a temp dir).
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tensorboard_al_plugin.threads import passive_openmp_wait  # noqa: E402

passive_openmp_wait()  # before numba loads OpenMP, as tensorboard-al quality does

from tensorboard_al_plugin.features import FeatureError, image_batches, make_extractor  # noqa: E402
from tensorboard_al_plugin.features.cnn import CNN_MODELS, DEFAULT_CNN, find_weights  # noqa: E402
from tensorboard_al_plugin.research.datasets import load_dataset, stratified_subset  # noqa: E402
from tensorboard_al_plugin.research.quality import quality_report  # noqa: E402

RESULTS = os.path.join(HERE, "results", "features_table1")
FIGURE = os.path.join(ROOT, "docs", "features_table1.png")
COLUMNS = ("Pix", "Pre", "RN", "IM", "TF", "TR")
TITLES = {"Pix": "pixels", "Pre": "PCA 50", "RN": "Exemplar-CNN, random init",
          "IM": "ImageNet CNN", "TF": "Transfer-Frozen", "TR": "Transfer"}
# Luus et al., Table 1, averages over their datasets (as quoted in the issue and DESIGN.md)
PAPER_AVERAGE = {"Pix": 0.36, "IM": 0.71, "TF": 0.80}
FMNIST_SAMPLE = 3000


def dataset_images(name, sample=None, seed=0):
    """(images (n, s, s) float32 in [0, 1], labels) of an offline dataset; a stratified ``sample``."""
    x, y = load_dataset(name)
    side = int(round(np.sqrt(x.shape[1])))
    x = x.reshape(len(x), side, side)
    if sample is not None and sample < len(x):
        keep = stratified_subset(y, sample, random_state=seed)
        x, y = x[keep], y[keep]
    return np.clip(x, 0, 1).astype(np.float32), y


def column_specs(args):
    """{column: (spec, make_extractor keywords) or the reason it is not run}."""
    specs = {"Pix": ("pixels", {}), "Pre": ("pca:50", {}),
             "RN": ("rn", {"epochs": args.epochs, "seed": args.seed, "progress": not args.quiet})}
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        specs["RN"] = "TensorFlow not installed (pip install 'tensorboard-al[tensorflow]')"
    try:
        find_weights(args.cnn, args.weights)
        have = isinstance(specs["RN"], tuple)
        reason = None if have else specs["RN"]
    except FeatureError:
        have, reason = False, (f"weights not present: {CNN_MODELS[args.cnn].weights_file} is not in "
                               f"Keras' cache on this machine (nothing is downloaded)")
    cnn = f"cnn:{args.cnn}"
    train = {"epochs": args.cnn_epochs, "seed": args.seed, "progress": not args.quiet, "weights": args.weights}
    specs["IM"] = (cnn, {"weights": args.weights}) if have else reason
    specs["TF"] = (cnn, dict(train, exemplar="frozen")) if have else reason
    specs["TR"] = (cnn, dict(train, exemplar="full")) if have else reason
    return specs


def run(args):
    datasets = [("digits", None), ("fashion-mnist", args.fmnist_sample), ("lfw", None)]
    if args.only:
        datasets = [d for d in datasets if d[0] in args.only]
    specs = column_specs(args)
    load_before = os.getloadavg()
    started = time.time()
    table = {}
    for name, sample in datasets:
        try:
            images, labels = dataset_images(name, sample, args.seed)
        except (FileNotFoundError, ImportError) as e:
            table[name] = {"skipped": str(e)}
            print(f"{name}: skipped ({e})", flush=True)
            continue
        if args.quick:
            keep = stratified_subset(labels, min(len(labels), 300), random_state=args.seed)
            images, labels = images[keep], labels[keep]
        row = {"n": int(len(images)), "image_size": list(images.shape[1:]), "columns": {}}
        for col in COLUMNS:
            spec = specs[col]
            if isinstance(spec, str):
                row["columns"][col] = {"not_run": spec}
                continue
            t0 = time.time()
            extractor = make_extractor(spec[0], **spec[1])
            batches = image_batches(images, extractor)
            if extractor.needs_fit:
                extractor.fit(batches)
            feats = extractor.transform(batches())
            t1 = time.time()
            if args.save_features:
                os.makedirs(args.save_features, exist_ok=True)
                np.save(os.path.join(args.save_features, f"{name}_{col}.npy"), feats)
                np.save(os.path.join(args.save_features, f"{name}_labels.npy"), labels)
            q = quality_report(feats, labels, folds=5, random_state=args.seed, n_iter=args.n_iter)
            t2 = time.time()
            cell = {"spec": spec[0], "options": {k: v for k, v in spec[1].items() if k != "progress"},
                    "described": extractor.describe(), "dimensions": int(feats.shape[1]),
                    "tsne_knn4": q["tsne_knn_accuracy"], "feature_knn4": q["feature_knn_accuracy"],
                    "features_s": round(t1 - t0, 1), "tsne_s": round(t2 - t1, 1),
                    "load_1min": round(os.getloadavg()[0], 2)}
            if hasattr(extractor, "loss_history_"):
                cell["epochs_run"] = len(extractor.loss_history_)
                cell["loss_per_epoch"] = [round(v, 4) for v in extractor.loss_history_]
            row["columns"][col] = cell
            acc = q["tsne_knn_accuracy"]
            print(f"{name:14s} {col:4s} {acc['mean']:.3f} +- {acc['std']:.3f}  (features {cell['features_s']} s,"
                  f" t-SNE {cell['tsne_s']} s, load {cell['load_1min']})", flush=True)
        table[name] = row
    return {
        "benchmark": "features_table1", "quick": bool(args.quick),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "benchmarks/features_bench.py " + " ".join(args.argv), "commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "numba_threads": os.environ.get("NUMBA_NUM_THREADS"), "versions": versions()},
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
        "wall_s": round(time.time() - started, 1),
        "protocol": {"metric": "4-NN accuracy in a 3D t-SNE (research.quality.quality_report), mean and std "
                               "over 5 stratified folds", "tsne_iterations": args.n_iter, "seed": args.seed,
                     "rn_epochs": args.epochs, "cnn": args.cnn, "cnn_epochs": args.cnn_epochs},
        "columns": {c: TITLES[c] for c in COLUMNS},
        "paper_average": PAPER_AVERAGE,
        "results": table,
    }


def git_commit():
    """The commit of the tree the benchmark ran in (+ "-dirty" when it had changes), or None."""
    import subprocess
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def versions():
    out = {}
    for mod in ("numpy", "sklearn", "tensorflow", "keras"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def markdown(res):
    """The results as a Markdown table beside the paper's averages."""
    lines = [f"# Table 1 on this machine: 4-NN accuracy in a 3D t-SNE (mean ± std over 5 folds)", "",
             f"{res['date']}, `{res['command'].strip()}` (commit {res.get('commit')}), {res['machine']['cpus']} CPUs "
             f"({res['machine']['platform']}), load average {res['load_before'][0]} before and "
             f"{res['load_after'][0]} after (the machine was shared), {res['wall_s']:.0f} s in all.", "",
             "| data | n | " + " | ".join(f"{c} ({res['columns'][c]})" for c in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    notes = {}
    for name, row in res["results"].items():
        if "skipped" in row:
            lines.append(f"| {name} | skipped: {row['skipped']} |" + " |" * len(COLUMNS))
            continue
        cells = []
        for c in COLUMNS:
            cell = row["columns"][c]
            if "not_run" in cell:
                notes.setdefault(cell["not_run"], []).append(c)
                cells.append("—")
            else:
                a = cell["tsne_knn4"]
                cells.append(f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f}")
        lines.append(f"| {name} | {row['n']} | " + " | ".join(cells) + " |")
    paper = [f"{100 * res['paper_average'][c]:.0f}" if c in res["paper_average"] else "" for c in COLUMNS]
    lines.append("| paper, average of its datasets | | " + " | ".join(paper) + " |")
    lines.append("")
    for reason, cols in notes.items():
        lines.append(f"- {', '.join(sorted(set(cols), key=COLUMNS.index))}: {reason}.")
    best = []
    for name, row in res["results"].items():
        ran = {c: cell["tsne_knn4"]["mean"] for c, cell in row.get("columns", {}).items() if "not_run" not in cell}
        if ran:
            top = max(ran, key=ran.get)
            best.append(f"{name} {top} ({100 * ran[top]:.1f})")
    if best:
        lines.append(f"- Best column per data set: {', '.join(best)}.")
    for name, row in res["results"].items():
        rn = row.get("columns", {}).get("RN", {})
        if "epochs_run" in rn:
            losses = rn["loss_per_epoch"]
            early = " (stopped early: the loss stopped improving)" if rn["epochs_run"] < rn["options"]["epochs"] else ""
            lines.append(f"- RN on {name}: {rn['epochs_run']} epochs{early}, surrogate-class loss {losses[0]:.2f} -> "
                         f"{losses[-1]:.2f}, {rn['features_s']:.0f} s to train and extract.")
    lines += ["- Pix and Pre are nearly the same by construction: the protocol (like the tab) reduces features of more "
              "than 50 dimensions to 50 with PCA before t-SNE, so Pix reaches t-SNE as a batch PCA-50 and Pre "
              "as the streaming (incremental) PCA-50 of the same pixels.",
              "", "Per cell (features' dimension, seconds, 4-NN in the feature space itself, loss per epoch) in "
              "the JSON of the same name. The paper's per-dataset numbers are on other data sets (its averages "
              "are quoted); compare the ordering of the columns, not the values."]
    return "\n".join(lines) + "\n"


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [(n, r) for n, r in res["results"].items() if "skipped" not in r]
    ran = [c for c in COLUMNS if any("not_run" not in r["columns"][c] for _, r in rows)]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    width = 0.8 / max(len(ran), 1)
    colours = dict(zip(COLUMNS, ("#9e9e9e", "#607d8b", "#e65100", "#1565c0", "#2e7d32", "#6a1b9a")))
    for j, c in enumerate(ran):
        means = [100 * r["columns"][c]["tsne_knn4"]["mean"] if "not_run" not in r["columns"][c] else np.nan
                 for _, r in rows]
        stds = [100 * r["columns"][c]["tsne_knn4"]["std"] if "not_run" not in r["columns"][c] else 0
                for _, r in rows]
        xs = np.arange(len(rows)) + (j - (len(ran) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=stds, capsize=3, color=colours[c], label=f"{c}: {TITLES[c]}")
        for x, m, sd in zip(xs, means, stds):
            if np.isfinite(m):
                ax.text(x, m + sd + 1, f"{m:.0f}", ha="center", va="bottom", fontsize=7)
    for c, style in zip(("Pix", "IM", "TF"), (":", "--", "-.")):
        ax.axhline(100 * PAPER_AVERAGE[c], color=colours[c], linestyle=style, linewidth=1,
                   label=f"paper's average, {c} ({100 * PAPER_AVERAGE[c]:.0f}%)")
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels([f"{n}\n(n={r['n']})" for n, r in rows])
    ax.set_ylabel("4-NN accuracy in 3D t-SNE (%)")
    ax.set_ylim(0, 105)
    missing = [c for c in COLUMNS if c not in ran]
    title = "Feature extractors, the paper's Table 1 protocol (5 folds, mean ± std)"
    if missing:
        title += f"\n{', '.join(missing)}: ImageNet weights not present on this machine"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 300 images per set, 1 epoch, 250 t-SNE iterations")
    p.add_argument("--out", help="folder for the results (default: benchmarks/results and docs; --quick: a temp dir)")
    p.add_argument("--only", nargs="+", choices=("digits", "fashion-mnist", "lfw"), help="only these data sets")
    p.add_argument("--epochs", type=int, default=30, help="most Exemplar-CNN epochs for RN (default 30)")
    p.add_argument("--cnn", default=DEFAULT_CNN, choices=sorted(CNN_MODELS), help="the ImageNet CNN of IM/TF/TR")
    p.add_argument("--weights", help="its weights file (default: Keras' cache)")
    p.add_argument("--cnn-epochs", type=int, default=10, help="most Exemplar-CNN epochs for TF and TR (default 10)")
    p.add_argument("--fmnist-sample", type=int, default=FMNIST_SAMPLE, help="Fashion-MNIST images (default 3000)")
    p.add_argument("--n-iter", type=int, default=1000, help="t-SNE iterations (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no training progress bars")
    p.add_argument("--save-features", metavar="DIR",
                   help="also save each column's features as DIR/<data>_<column>.npy (and <data>_labels.npy), "
                        "e.g. for tensorboard-al benchmark --features")
    p.add_argument("--redraw", metavar="JSON", help="only rewrite the .md and the plot from a results JSON")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.epochs, args.cnn_epochs, args.n_iter = 1, 1, 250
    if args.redraw:
        with open(args.redraw) as f:
            res = json.load(f)
        if os.path.abspath(args.redraw) != RESULTS + ".json":
            args.out = args.out or os.path.dirname(os.path.abspath(args.redraw))
    else:
        res = run(args)
    out = args.out or (tempfile.mkdtemp(prefix="features_bench_") if args.quick else None)
    if out:
        os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "features_table1.json") if out else RESULTS + ".json"
    md_path = os.path.join(out, "features_table1.md") if out else RESULTS + ".md"
    png_path = os.path.join(out, "features_table1.png") if out else FIGURE
    if not args.redraw:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)
    with open(md_path, "w") as f:
        f.write(markdown(res))
    plot(res, png_path)
    print(f"wrote {json_path}, {md_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
