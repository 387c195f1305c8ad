"""The ``tensorboard-al`` command.

Every subcommand explains itself with ``--help`` and shows progress on long
work. A command line it cannot take (unknown command or option, a missing or
malformed argument, options that do not go together) prints the usage and
``tensorboard-al COMMAND: error: ...`` (argparse's form) and exits with status
2; bad input (a missing log directory or file, an unknown embedding, a file
that cannot be read or written, a bad CSV line) prints one line
``tensorboard-al: error: ...`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import stat
import sys
import tempfile
import time
from typing import List, Optional


class CLIError(Exception):
    """Bad input: printed as one line, exit status 1."""


class UsageError(Exception):
    """Options that do not go together: reported as argparse reports a usage error, exit status 2."""


def _demo(args) -> int:
    from .demo import build_demo

    out = build_demo(args.out, progress=not args.quiet)
    print("wrote the digits demo to %s\nopen it with: tensorboard --logdir %s" % (out, args.out))
    return 0


def _printable(text) -> str:
    """``text`` safe for one terminal line: control, format (bidi) and separator characters escaped.

    Run and embedding names and problems come from the log directory, which
    is untrusted: a name must not move the cursor, recolour the terminal or
    break the one-line-per-source listing.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else
                   ("\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch) if ord(ch) < 0x10000
                    else "\\U%08x" % ord(ch)) for ch in text)


def _ls(args) -> int:
    from .logdir.catalog import scan_logdir
    from .logdir import fs

    if not fs.isdir(args.logdir):
        raise CLIError("log directory %s does not exist" % args.logdir)
    sources = scan_logdir(args.logdir)
    if args.json:
        print(json.dumps({"logdir": args.logdir, "embeddings": [s.to_json() for s in sources]}, indent=1))
        return 0
    if not sources:
        print("no embeddings found under %s" % _printable(args.logdir))
        return 0
    header = ("run", "embedding", "rows", "dims", "format", "sprite", "status")
    table = [header]
    for s in sources:
        table.append((_printable(s.run), _printable(s.name), str(s.rows if s.rows is not None else "?"),
                      str(s.dims if s.dims is not None else "?"), _printable(s.format),
                      "yes" if (s.sprite and s.ok) else "no", "ok" if s.ok else "BROKEN"))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for s in sources:  # one line per source with problems
        if s.problems:
            print("%s/%s: %s" % (_printable(s.run), _printable(s.name), _printable("; ".join(s.problems))))
    return 0


def _open_store(args):
    """The source and label store of ``--run``/``--embedding`` (names as ``ls --json`` prints them)."""
    from .logdir import fs
    from .logdir.catalog import scan_logdir
    from .logdir.labels import LabelStore

    if not fs.isdir(args.logdir):
        raise CLIError("log directory %s does not exist" % args.logdir)
    sources = scan_logdir(args.logdir)
    matches = [s for s in sources if s.run == args.run and s.name == args.embedding]
    if not matches:
        known = ", ".join("--run %s --embedding %s" % (s.run, s.name) for s in sources) or "none"
        raise CLIError("no embedding %r in run %r under %s (found: %s)" % (args.embedding, args.run,
                                                                          args.logdir, known))
    source = matches[0]
    if not source.ok:
        raise CLIError("embedding %s of run %s cannot be opened: %s" % (source.name, source.run,
                                                                         "; ".join(source.problems)))
    return source, LabelStore(source.label_dir, source.rows, default_author=getattr(args, "user", None),
                              metadata=source.load_metadata)


def _metadata_columns(source):
    if source.load_metadata is None:
        return {}
    names, data = source.load_metadata()
    return dict(zip(names, data))


def _export(args) -> int:
    from .logdir.label_io import export_csv

    escape = not args.no_formula_escape
    if args.out in (None, "-"):
        source, store = _open_store(args)
        export_csv(store, sys.stdout, metadata_columns=_metadata_columns(source), all_rows=args.all_rows,
                   formula_escape=escape)
        return 0
    existing = _check_out(args.out)
    source, store = _open_store(args)
    columns = _metadata_columns(source)
    directory = os.path.dirname(os.path.abspath(args.out))
    # A new file of our own beside the target, renamed over it once complete:
    # nothing half-written under the name, and no *.partial left on failure.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(args.out) + ".", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            n = export_csv(store, f, metadata_columns=columns, all_rows=args.all_rows, formula_escape=escape)
        os.chmod(tmp, stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~_umask())
        os.replace(tmp, args.out)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    print("wrote %d rows to %s" % (n, args.out), file=sys.stderr)
    return 0


def _check_out(path: str):
    """The stat of ``--out`` when it is a regular file, None for a new path; CLIError for anything else.

    A symbolic link, FIFO, device, socket or directory is refused, not
    replaced: ``--out`` names the file the CSV becomes.
    """
    from .logdir.fs import file_kind

    if "://" in path:
        raise CLIError("cannot write %s: --out takes a local file; export to a local file (or to standard "
                       "output with --out -) and copy it to the object store" % path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CLIError("cannot write %s: folder %s does not exist" % (path, directory))
        return None
    except OSError as e:
        raise CLIError("cannot write %s: %s" % (path, e.strerror or e))
    if not stat.S_ISREG(st.st_mode):
        raise CLIError("refusing to write %s: it is %s; --out must be a regular file or a new path"
                       % (path, file_kind(st.st_mode)))
    return st


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _import(args) -> int:
    from .logdir.label_io import import_labels

    source, store = _open_store(args)
    before = store.state()["version"]
    state = import_labels(store, args.file, key=args.key, metadata_columns=_metadata_columns(source),
                          author=args.user, formula_escape=not args.no_formula_escape)
    labeled = sum(1 for v in state["labels"] if v is not None)
    print("imported %s: version %d -> %d, %d of %d rows labeled in %d classes (undo with the tab's Undo)"
          % (args.file, before, state["version"], labeled, len(state["labels"]), len(state["classes"])))
    _publish(source, store)
    return 0


def _publish(source, store) -> None:
    """Let the stock Projector show the labels too (as the tab does after its first label)."""
    from .logdir.projector_labels import publish_labels

    try:
        store.flush()
        run = publish_labels(source, store.projector_metadata_path)
    except Exception as e:  # the labels are saved; only the Projector view failed
        print("warning: the labels are saved, but the Projector entry could not be written: %s" % e,
              file=sys.stderr)
        return
    if run is not None:
        print('the stock Projector shows them in run "%s"' % run, file=sys.stderr)


def _load_xy(args):
    """Features and labels from --dataset or --features/--labels (.npy, .csv or .tsv)."""
    import numpy as np

    from .research.datasets import load_dataset

    if args.dataset:
        if args.features or args.labels:
            raise UsageError("give either --dataset or --features/--labels, not both")
        try:
            return load_dataset(args.dataset)
        except FileNotFoundError as e:
            raise CLIError(str(e))
    if not (args.features and args.labels):
        raise UsageError("give --features X.npy and --labels y.npy, or --dataset digits|fashion-mnist|lfw")

    def load(path, what):
        if not os.path.isfile(path):
            raise CLIError("%s file %s does not exist" % (what, path))
        try:
            if path.endswith(".npy"):
                return np.load(path, allow_pickle=False)
            delimiter = "\t" if path.endswith(".tsv") else ","
            return np.loadtxt(path, delimiter=delimiter, dtype=float if what == "features" else str, ndmin=1)
        except ValueError as e:
            raise CLIError("%s file %s cannot be read: %s" % (what, path, e))

    return load(args.features, "features"), load(args.labels, "labels")


def _benchmark(args) -> int:
    import numpy as np

    from .research.benchmark import run_benchmark

    x, y = _load_xy(args)
    out = args.out or os.path.join("benchmark_results", args.dataset or "custom")
    images = None
    if args.record_rounds:
        side = int(round(np.sqrt(x.shape[1]))) if getattr(x, "ndim", 0) == 2 else 0
        if args.dataset and side * side == x.shape[1]:
            images = x.reshape(len(x), side, side)  # the offline datasets' features are their pixels in [0, 1]
    try:
        with _PhaseBars() if not args.quiet else contextlib.nullcontext():
            result = run_benchmark(x, y, strategies=args.strategies, folds=args.folds, max_actions=args.max_actions,
                                   subset=args.subset, out_dir=out, random_state=args.seed, progress=not args.quiet,
                                   pca=args.pca, classifier_backend=args.classifier,
                                   record_rounds=args.record_rounds, images=images, name=args.dataset or "custom",
                                   tsne_options={"engine": "umap"} if args.layout == "umap" else None)
    except ValueError as e:
        raise CLIError(str(e))
    print("full-label accuracy %.3f (%s classifier); 80%% of it = %.3f"
          % (result["full_label_accuracy"], result["classifier_backend"], 0.8 * result["full_label_accuracy"]))
    cap = result["max_actions"]
    print("actions to reach it (folds that never did within %d actions are censored: counted as %d and marked >=):"
          % (cap, cap))
    rows = sorted(result["strategies"].items(), key=lambda kv: (kv[1]["mean_with_censored"], kv[1]["censored"]))
    width = max(len(name) for name, _ in rows)
    print("  %-*s  %8s  %8s  %s" % (width, "strategy", "mean", "censored", "per fold"))
    for name, r in rows:
        mark = ">=" if r["censored"] else ""
        folds = ", ".join(">=%d" % cap if a is None else str(a) for a in r["actions_to_80"])
        print("  %-*s  %8s  %8s  (%s)" % (width, name, mark + "%.1f" % r["mean_with_censored"],
                                          "%d of %d" % (r["censored"], len(r["actions_to_80"])), folds))
    print("wrote %s and %s" % (os.path.join(out, "results.json"), os.path.join(out, "curves.png")))
    if args.record_rounds:
        print("recorded every strategy's rounds per fold in %s (run rounds/%s): open it with tensorboard "
              "--logdir %s, pick an embedding and open Rounds" % (args.record_rounds, args.dataset or "custom",
                                                                  args.record_rounds))
    return 0


class _PhaseBars:
    """tqdm bars, with the time left, for the preparation phases of the layouts a
    command computes (neighbours, affinities, PCA); a phase over within a
    second never shows (tqdm's delay), so small layouts stay quiet."""

    NAMES = {"neighbors": "nearest neighbours", "affinities": "affinities", "pca": "PCA initialisation"}

    def __init__(self, delay=1.0):
        self.delay = delay
        self.phase = None
        self.bar = None

    def __call__(self, phase, fraction):
        from tqdm.auto import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=1000, desc=self.NAMES.get(phase, phase), delay=self.delay, leave=False,
                            dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        step = int(round(1000 * min(1.0, max(0.0, fraction)))) - self.bar.n
        if step > 0:
            self.bar.update(step)
        if fraction >= 1.0 and time.time() - self.bar.start_t >= self.delay:
            self.bar.refresh()  # the phase's end is shown, whatever tqdm's refresh interval skipped

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        from .tsne.affinity import set_phase_listener
        self.previous = set_phase_listener(self)
        return self

    def __exit__(self, *exc):
        from .tsne.affinity import set_phase_listener
        set_phase_listener(self.previous)
        self.close()


def _quality(args) -> int:
    from .research.quality import quality_report

    x, y = _load_xy(args)
    layouts = ("tsne", "umap") if args.layout == "both" else (args.layout,)
    if "umap" in layouts:
        from .tsne.umap_layout import MISSING_MESSAGE, umap_available
        if not umap_available():
            raise CLIError(MISSING_MESSAGE)
    with _PhaseBars() if not args.json else contextlib.nullcontext():
        report = quality_report(x, y, folds=args.folds, random_state=args.seed, layouts=layouts,
                                with_labels=args.with_labels)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print("%d-NN accuracy over %d folds (%d rows, %d classes)" % (report["k"], report["folds"],
                                                                 report["n_samples"], report["n_classes"]))
    names = {"tsne": "t-SNE", "umap": "UMAP"}
    for method in layouts:
        for key, what in (("%s_knn_accuracy" % method, ""), ("%s_with_labels_knn_accuracy" % method,
                                                              ", training folds' labels")):
            if key in report:
                r = report[key]
                print("  %-33s %.3f +- %.3f" % ("%dD %s%s:" % (report["n_components"], names[method], what),
                                                r["mean"], r["std"]))
    f = report["feature_knn_accuracy"]
    print("  %-33s %.3f +- %.3f" % ("feature space:", f["mean"], f["std"]))
    return 0


def _embed(args) -> int:
    from .embed import WARN_LINES, embed_images

    def warn(line):
        if args.quiet:
            print("tensorboard-al: %s" % _printable(line), file=sys.stderr)
        else:
            from tqdm.auto import tqdm

            tqdm.write("tensorboard-al: %s" % _printable(line), file=sys.stderr)

    exemplar = None if args.exemplar in (None, "none") else args.exemplar
    # A polite kill (SIGTERM) unwinds like Ctrl-C: the temporary arrays and the hidden partial folder go.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    result = embed_images(args.source, args.logdir, run=args.run, name=args.name, features=args.features,
                          layer=args.layer, weights=args.weights, exemplar=exemplar, epochs=args.epochs,
                          size=args.size, thumbnail=args.thumbnail, batch_size=args.batch_size, seed=args.seed,
                          progress=not args.quiet, warn=warn)
    if result.skipped:
        more = len(result.skipped) - WARN_LINES
        print("tensorboard-al: skipped %d input%s%s; all are listed in %s"
              % (len(result.skipped), "s" if len(result.skipped) != 1 else "",
                 " (%d more than shown above)" % more if more > 0 else "",
                 _printable(os.path.join(result.emb_dir, "skipped.tsv"))), file=sys.stderr)
    if result.ignored:
        print("tensorboard-al: ignored %d file%s that are not images by their extension or are hidden (e.g. %s)"
              % (len(result.ignored), "s" if len(result.ignored) != 1 else "", _printable(result.ignored[0])),
              file=sys.stderr)
    h, w, c = result.input_shape
    print("wrote %d images as %s (images at %dx%dx%d; %d px thumbnails) to %s in %.1f s"
          % (result.rows, _printable(result.features), w, h, c, result.thumbnail, _printable(result.emb_dir),
             result.seconds["total"]))
    print("open it with: tensorboard --logdir %s" % _printable(args.logdir))
    return 0


def _warmup(args) -> int:
    from .warmup import PHASES, warm_up

    bar = None
    if not args.quiet and not args.json:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(PHASES), unit="phase", desc="warm-up", dynamic_ncols=True)

    def progress(phase, index):
        if bar is not None:
            bar.update(index - bar.n)
            bar.set_description(phase)

    report = warm_up(progress)
    if bar is not None:
        bar.update(len(PHASES) - bar.n)
        bar.close()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print("numba kernels ready in %.1f s: %d compiled now, %d loaded from the cache (%d kernels)"
          % (report["seconds"], report["compiled"], report["loaded"], len(report["kernels"])))
    for phase in report["phases"]:
        print("  %-26s %6.1f s" % (phase["name"], phase["seconds"]))
    print("cache: %s" % ", ".join(_printable(d) for d in report["cache_dirs"]))
    if not report["cache_writable"]:
        print("warning: the cache folder cannot be written, so every new process compiles again; "
              "set NUMBA_CACHE_DIR to a writable folder", file=sys.stderr)
    if report["not_exercised"]:
        print("warning: the warm-up did not reach %s; the first layout compiles them"
              % ", ".join(report["not_exercised"]), file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .logdir.label_io import MAX_IMPORT_BYTES

    parser = argparse.ArgumentParser(
        prog="tensorboard-al",
        description="Active labeling for TensorBoard: build the demo, embed a folder of images, list embeddings, "
                    "export and import labels, compile the t-SNE kernels ahead of use, run the "
                    "labeling-efficiency benchmark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="write the bundled digits demo (1,797 images) into a log directory",
                       description="Write scikit-learn's 1,797 8x8 digits as an embedding with upscaled "
                                   "thumbnails and the true digit as a metadata column (no labels applied).")
    p.add_argument("--out", default="demo_logs", help="log directory to write (default: demo_logs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_demo)

    p = sub.add_parser("ls", help="list the embeddings of a log directory",
                       description="List every embedding found under LOGDIR (this plugin's format and the "
                                   "stock Projector's), with rows, dims, format, sprite and problems.")
    p.add_argument("logdir", metavar="LOGDIR")
    p.add_argument("--json", action="store_true", help="print JSON (the names other commands take)")
    p.set_defaults(func=_ls)

    def store_args(p):
        p.add_argument("logdir", metavar="LOGDIR")
        p.add_argument("--run", required=True, help="run name as `tensorboard-al ls --json` prints it")
        p.add_argument("--embedding", required=True, help="embedding name as `tensorboard-al ls --json` prints it")
        p.add_argument("--user", default=None, help="author recorded for writes (default: the OS user)")

    p = sub.add_parser("export", help="write the labels of an embedding as CSV",
                       description="CSV with a header row: index (row in the tensor), label, author, time, "
                                   "then every metadata column. Only labeled rows unless --all-rows. "
                                   "Cells a spreadsheet would run as formulas are escaped "
                                   "(see --no-formula-escape).")
    store_args(p)
    p.add_argument("--out", default=None,
                   help="output file, a regular file (replaced once the CSV is complete) or a new path; a "
                        "link, FIFO, device or directory is refused (default: standard output)")
    p.add_argument("--all-rows", action="store_true", help="include unlabeled rows (empty label)")
    p.add_argument("--no-formula-escape", action="store_true",
                   help="write cells that start with = + - @ tab or carriage return as they are (default: "
                        "prefix a ' and quote them, so a spreadsheet shows them instead of running them "
                        "as formulas; import undoes that)")
    p.set_defaults(func=_export)

    p = sub.add_parser("import", help="apply labels from a CSV or TSV file as one undoable action",
                       description="Read a CSV or TSV with columns index and label (other columns ignored), "
                                   "or match rows by a metadata column with --key. Errors name the bad line; "
                                   "nothing is written then.")
    store_args(p)
    p.add_argument("file", metavar="FILE", help="a regular file of at most %d MiB" % (MAX_IMPORT_BYTES >> 20))
    p.add_argument("--key", default=None, metavar="COLUMN",
                   help="match rows by this metadata column instead of the index column")
    p.add_argument("--no-formula-escape", action="store_true",
                   help="take cells as they are (default: a cell of one or more ' followed by = + - @ "
                        "tab or carriage return loses one ', undoing export's formula escape)")
    p.set_defaults(func=_import)

    def data_args(p):
        p.add_argument("--features", metavar="X.npy", help="features, N x D (.npy, or .csv/.tsv of numbers)")
        p.add_argument("--labels", metavar="y.npy", help="true labels, N values (.npy, .csv or .tsv)")
        p.add_argument("--dataset", choices=["digits", "fashion-mnist", "lfw"],
                       help="an offline dataset instead of --features/--labels (fashion-mnist needs the "
                            "Debian package dataset-fashion-mnist)")
        p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5, as the paper)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    from .active.strategies import STRATEGIES

    p = sub.add_parser("benchmark", help="labeling efficiency: t-SNE group labeling against uncertainty sampling",
                       description="Emulate an annotator (Algorithm 1 of Luus et al. 2019) labeling groups in "
                                   "the semi-supervised t-SNE, and compare with uncertainty sampling and random "
                                   "selection (10 points per round, one action each), retraining the paper's "
                                   "classifier every 10 actions. Reports the actions needed to reach 80% of "
                                   "full-label accuracy per fold (a fold that never reaches it within "
                                   "--max-actions is censored: counted at the cap and marked >=); writes "
                                   "OUT/results.json and OUT/curves.png.")
    data_args(p)
    p.add_argument("--strategies", default=",".join(STRATEGIES),
                   help="comma-separated, from: %s (default: all)" % ", ".join(STRATEGIES))
    p.add_argument("--max-actions", type=int, default=300, help="actions per fold and strategy (default 300)")
    p.add_argument("--subset", type=int, default=None, help="stratified random subset of this many rows first")
    p.add_argument("--pca", type=int, default=None, metavar="N",
                   help="reduce features to N principal components for the classifier and the layout")
    p.add_argument("--classifier", choices=["numpy", "keras", "auto"], default="numpy",
                   help="classifier implementation: numpy (default; the same network as keras, about 20x "
                        "faster on a CPU), keras (needs TensorFlow), or auto = keras when TensorFlow is "
                        "installed, else numpy")
    p.add_argument("--out", default=None, help="output folder (default benchmark_results/<dataset>)")
    p.add_argument("--layout", choices=["tsne", "umap"], default="tsne",
                   help="the layout the tsne strategies label groups in: the semi-supervised t-SNE (default) "
                        "or semi-supervised UMAP (needs umap-learn); the strategies keep their names")
    p.add_argument("--record-rounds", metavar="LOGDIR", default=None,
                   help="also write each strategy's run on each fold into this log directory as an embedding "
                        "the tab replays (run rounds/<dataset>, embedding <strategy>-fold<k>; Rounds panel: "
                        "each retrain's queried rows, held-out accuracy and the classifier's own view)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_benchmark)

    p = sub.add_parser("quality", help="embedding quality: 4-NN accuracy in 3D t-SNE (the paper's Table 1)",
                       description="k-nearest-neighbour accuracy (k=4) of the true labels in a 3D t-SNE of the "
                                   "features, mean +- std over folds, next to the same in the feature space.")
    data_args(p)
    p.add_argument("--layout", choices=["tsne", "umap", "both"], default="tsne",
                   help="the layout scored: t-SNE (default), UMAP (needs umap-learn) or both")
    p.add_argument("--with-labels", action="store_true",
                   help="also score each layout fed with labels: per fold, the layout sees the other folds' "
                        "labels (the held-out fold unlabeled) and the 4-NN fitted there is scored on the fold")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_quality)

    p = sub.add_parser(
        "embed", help="from a folder of images (or a CSV list, or an .npy array) to an embedding to label",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read SOURCE, compute features, and write one embedding with thumbnails and metadata\n"
                    "into LOGDIR, ready for the Active Labeling tab.\n\n"
                    "SOURCE is\n"
                    "  a folder: every PNG, JPEG, WebP, TIFF and BMP file below it (any size, grey or colour,\n"
                    "    palette, 16-bit, alpha, CMYK); other files and hidden ones (.name) are ignored;\n"
                    "  a .csv or .tsv file with a header row: the column named path, file, filename or image\n"
                    "    (the first of these) holds image paths relative to the CSV's folder; every other\n"
                    "    column becomes metadata;\n"
                    "  an .npy array of images, (N, H, W) or (N, H, W, C) with C 1, 3 or 4.\n"
                    "Metadata: path (relative), folder, width, height and the CSV's columns; the tab shows\n"
                    "them on hover and its search box finds a path or any part of it.\n\n"
                    "Bad inputs (unreadable, truncated or not images, paths or symlinks leading outside the\n"
                    "source folder, duplicate paths, malformed CSV lines) are skipped, each named on stderr\n"
                    "and all listed in skipped.tsv in the embedding's folder; no usable image is an error.\n"
                    "The embedding is built in a hidden folder and appears only once it is complete.")
    p.add_argument("source", metavar="SOURCE", help="a folder of images, a .csv/.tsv list of them, or an .npy array")
    p.add_argument("--logdir", required=True, help="the log directory TensorBoard reads (local)")
    p.add_argument("--run", default=".", help="run folder inside LOGDIR (default: LOGDIR itself)")
    p.add_argument("--name", default=None, metavar="E",
                   help="embedding name (default: SOURCE's folder or file name); an existing one is never replaced")
    p.add_argument("--features", default="pca", metavar="SPEC",
                   help="pixels | pca[:N] | cnn[:name] | model:PATH | rn. Default pca (the first 50 principal "
                        "components of the pixels): a 50-d tensor where raw pixels give thousands of columns, "
                        "which the tab loads whole for its kNN groups (70,000 colour images of 32 x 32 px: 860 MB "
                        "of pixels, 14 MB of components); it costs one more pass over the images to fit "
                        "(benchmarks/results/embed_bench.md). pixels: the resized image flattened, the fastest. "
                        "cnn: ImageNet features of a Keras application (resnet50 by default; vgg16, "
                        "efficientnetb0...), weights from Keras' cache or --weights; better groups on photos, "
                        "far slower without a GPU. model:PATH: your own .keras file or SavedModel, --layer picks "
                        "the layer. rn: a small CNN trained from scratch as a rotation Exemplar-CNN "
                        "(--epochs passes)")
    p.add_argument("--layer", default=None, help="the layer of model:PATH whose output are the features "
                                                  "(default: its last pooling or flatten layer)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a local weights file for cnn (instead of Keras' cache in ~/.keras/models)")
    p.add_argument("--exemplar", choices=["frozen", "full", "none"], default=None,
                   help="train a rotation Exemplar-CNN layer on top of cnn or model:PATH (Luus et al. 2019, "
                        "section 2): frozen keeps the CNN fixed (Transfer-Frozen), full trains it too (Transfer)")
    p.add_argument("--epochs", type=int, default=10, help="most Exemplar-CNN training passes (default 10; "
                                                          "stops early when the loss stops improving)")
    p.add_argument("--size", type=int, default=None, metavar="PX",
                   help="side in px every image is resized to before pixels, pca or rn (default: the images' own "
                        "size when they all share one of at most 64 px (28 x 28 stays 28 x 28), else 32 for "
                        "pixels/pca and 64 for rn); "
                        "a CNN takes the size it was built for")
    p.add_argument("--thumbnail", type=int, default=None, metavar="PX",
                   help="thumbnail side in px (default: small square images of one size upscaled by a whole "
                        "factor to at least 32 px, else 64; smaller for large sets, so that the atlas the browser "
                        "holds stays within two 8192 px pages: 43 px at 70,000 photos)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="images per batch of feature extraction and training (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed of PCA and training (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_embed)

    p = sub.add_parser("warmup", help="compile the t-SNE and active-learning kernels now, not in the first layout",
                       description="Run the t-SNE engine once on small seeded inputs (2D and 3D, exact, FFT and "
                                   "Barnes-Hut, with labels) and the active-learning kernels, so that numba "
                                   "compiles every kernel into its on-disk cache (about 30 s once after an "
                                   "install or upgrade; seconds when the cache is already warm). Prints what "
                                   "was compiled, what came from the cache, and where the cache is.")
    p.add_argument("--json", action="store_true", help="print the report as JSON (no progress bar)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_warmup)
    for p in sub.choices.values():
        p.set_defaults(usage_error=p.error)
    return parser



class _OneLineFormatter(logging.Formatter):
    def format(self, record) -> str:
        return "tensorboard-al: %s: %s" % (record.levelname.lower(), _printable(record.getMessage()))


def _one_line_logging() -> None:
    """The package's log records as one line each on stderr, without tracebacks.

    A scan logs why a source is broken; ``ls`` and the other commands list
    those problems themselves, so the scan's records are not repeated.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    package = logging.getLogger("tensorboard_al_plugin")
    if not any(isinstance(h.formatter, _OneLineFormatter) for h in package.handlers):
        package.addHandler(handler)
    package.propagate = False
    package.setLevel(logging.WARNING)
    logging.getLogger("tensorboard_al_plugin.logdir.catalog").setLevel(logging.CRITICAL)


def main(argv: Optional[List[str]] = None) -> int:
    # TensorFlow, when installed and needed (checkpoints, remote logdirs, the
    # keras classifier), is chatty at import: INFO lines from its C++ logging
    # and a oneDNN notice printed whatever TF_CPP_MIN_LOG_LEVEL says. Only
    # defaults: the user's own settings win.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    # Before any command starts the engine's threads (benchmark, quality, warmup, demo).
    from .threads import passive_openmp_wait
    passive_openmp_wait()
    # ... and Keras warns through the Python logger about retracing the small network each round.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    _one_line_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        args.usage_error(str(e))  # usage and message on stderr, exit status 2
    except CLIError as e:
        print("tensorboard-al: error: %s" % _printable(e), file=sys.stderr)
        return 1
    except (ValueError, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print("tensorboard-al: error: %s" % _printable(message), file=sys.stderr)
        return 1
    except OSError as e:  # a file that cannot be read or written: its name and why
        where = " %s:" % e.filename if getattr(e, "filename", None) else ""
        print("tensorboard-al: error:%s %s" % (_printable(where), _printable(e.strerror or e)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tensorboard-al: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
