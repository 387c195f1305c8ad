"""Throughput and peak memory of `tensorboard-al embed` per feature choice, on Fashion-MNIST.

    apt-get install -y dataset-fashion-mnist
    .venv/bin/python benchmarks/embed_bench.py            # about 15 minutes on 2 busy cores

Each case runs the real command (``python -m tensorboard_al_plugin.cli embed ...``) as a child
process limited to 2 threads (decoding threads, OpenMP/BLAS, TensorFlow's pools), into a fresh
log directory; the child's peak resident memory comes from ``os.wait4`` (its own ru_maxrss), its
wall time from the parent, and the time per phase (scan, read, features) from the ``embed.json``
it writes.  Sources (built once into ``--cache``, outside the repository):

- a folder of the first N training images as PNG files (``--folder-sizes``, default 10,000);
- all 70,000 images (train + t10k) as one ``.npy`` array (N, 28, 28) uint8.

Feature choices: pixels, pca (50 components), rn (the small Exemplar-CNN from random init, only
``--rn-epochs`` epochs: its throughput, not its quality; needs TensorFlow; only on sources of at
most ``--rn-max-rows`` images), and cnn (ResNet50)
only when its ImageNet weights are in Keras' cache; otherwise the result says they were not.
Writes benchmarks/results/embed_bench.json and embed_bench.md with the machine, the load average
(before and after each case) and the date.
"""
import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from write_fashion_mnist import SOURCE, read_idx  # noqa: E402
THREADS = 2
RESNET_WEIGHTS = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def fashion_images():
    if not os.path.isdir(SOURCE):
        sys.exit("embed_bench: %s is missing; apt-get install -y dataset-fashion-mnist" % SOURCE)
    return np.concatenate([read_idx(os.path.join(SOURCE, "train-images-idx3-ubyte.gz")),
                           read_idx(os.path.join(SOURCE, "t10k-images-idx3-ubyte.gz"))])


def build_sources(cache, folder_sizes):
    """(name, path, rows) of every source, written into ``cache`` once."""
    from PIL import Image

    os.makedirs(cache, exist_ok=True)
    images = None
    out = []
    npy = os.path.join(cache, "fashion70k.npy")
    if not os.path.exists(npy):
        images = fashion_images()
        np.save(npy + ".partial.npy", images)
        os.replace(npy + ".partial.npy", npy)
    for n in folder_sizes:
        folder = os.path.join(cache, "fashion_png_%d" % n)
        if not os.path.exists(folder + ".complete"):
            images = fashion_images() if images is None else images
            shutil.rmtree(folder, ignore_errors=True)
            for i in range(n):  # 100 images per subfolder, as photo folders are split
                sub = os.path.join(folder, "%03d" % (i // 100))
                os.makedirs(sub, exist_ok=True)
                Image.fromarray(images[i]).save(os.path.join(sub, "%05d.png" % i))
            open(folder + ".complete", "w").close()  # beside it: embed would list a file inside as ignored
        out.append(("folder of %d PNGs" % n, folder, n))
    out.append(("npy (70000, 28, 28)", npy, 70000))
    return out


def keras_weights_present():
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.exists(os.path.join(home, "models", RESNET_WEIGHTS))


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def run_case(source, features, extra, tmp):
    """One `tensorboard-al embed` in a child process: wall seconds, peak RSS (MiB), phases, rows."""
    logdir = tempfile.mkdtemp(prefix="logs-", dir=tmp)
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
               MKL_NUM_THREADS=str(THREADS), NUMBA_NUM_THREADS=str(THREADS), TF_NUM_INTRAOP_THREADS=str(THREADS),
               TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "tensorboard_al_plugin.cli", "embed", source, "--logdir", logdir,
           "--name", "bench", "--features", features, "--quiet"] + extra
    load_before = loadavg()
    with tempfile.TemporaryFile(dir=tmp) as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not the largest child's so far
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip().splitlines()
    if code != 0:
        return {"error": (message or ["exit status %d" % code])[-1]}
    about = json.load(open(os.path.join(logdir, "plugins", "active_labeling", "bench", "embed.json")))
    shutil.rmtree(logdir, ignore_errors=True)
    return {"rows": about["rows"], "seconds": round(wall, 2), "images_per_s": round(about["rows"] / wall, 1),
            "phases_s": about["seconds"], "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "features": about["described"], "thumbnail_px": about["thumbnail"],
            "load_before": load_before, "load_after": loadavg()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "al-embed-bench-cache"),
                    help="where the PNG folders and the .npy are written once (outside the repository)")
    ap.add_argument("--folder-sizes", default="10000", help="comma-separated PNG folder sizes (default 10000)")
    ap.add_argument("--rn-epochs", type=int, default=2, help="Exemplar-CNN epochs of the rn case (default 2)")
    ap.add_argument("--rn-max-rows", type=int, default=10000,
                    help="rn only on sources of at most this many images (default 10000)")
    ap.add_argument("--only", default=None, help="comma-separated feature choices to run (default: all)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)

    sources = build_sources(args.cache, [int(s) for s in args.folder_sizes.split(",") if s])
    # Not imported here: a child forked from a parent holding TensorFlow starts with its pages counted.
    has_tf = importlib.util.find_spec("tensorflow") is not None
    choices = [("pixels", []), ("pca", []), ("rn", ["--epochs", str(args.rn_epochs)]), ("cnn", [])]
    if args.only:
        choices = [c for c in choices if c[0] in args.only.split(",")]
    tmp = tempfile.mkdtemp(prefix="al-embed-bench-")
    results = {"machine": "%s, %d CPUs, %s" % (platform.machine(), os.cpu_count(), platform.platform()),
               "python": platform.python_version(), "threads": THREADS,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_at_start": loadavg(),
               "cases": [], "not_measured": []}
    try:
        for name, path, rows in sources:
            for features, extra in choices:
                if features == "rn" and not has_tf:
                    results["not_measured"].append("rn on %s: TensorFlow is not installed" % name)
                    continue
                if features == "cnn" and not keras_weights_present():
                    note = ("cnn: the ResNet50 ImageNet weights (%s) are not in Keras' cache on this machine, so "
                            "no pretrained-CNN throughput was measured" % RESNET_WEIGHTS)
                    if note not in results["not_measured"]:
                        results["not_measured"].append(note)
                    continue
                if features == "rn" and rows > args.rn_max_rows:
                    note = ("rn on more than %d images (its features pass alone runs the CNN over every image; "
                            "it is measured on the smaller sources)" % args.rn_max_rows)
                    if note not in results["not_measured"]:
                        results["not_measured"].append(note)
                    continue
                print("%-22s %-7s ..." % (name, features), end=" ", flush=True)
                r = run_case(path, features, extra, tmp)
                r.update({"source": name, "feature_choice": features + (" " + " ".join(extra) if extra else "")})
                results["cases"].append(r)
                print(r.get("error") or "%.0f img/s, %.1f s, peak %.0f MiB" % (
                    r["images_per_s"], r["seconds"], r["peak_rss_mib"]))
                save(results, args.out)  # after every case: an interrupted run keeps what it measured
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save(results, args.out)
    print("wrote %s and %s" % (os.path.join(args.out, "embed_bench.json"), os.path.join(args.out, "embed_bench.md")))


def save(results, out):
    results["load_at_end"] = loadavg()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "embed_bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out, "embed_bench.md"), "w") as f:
        f.write(markdown(results))


def markdown(results):
    lines = ["# `tensorboard-al embed` throughput and peak memory (Fashion-MNIST)", "",
             "%s; Python %s; %d threads; %s. Load average (1, 5, 15 min) at start %s, at end %s "
             "(other work shared the machine)." % (results["machine"], results["python"], results["threads"],
                                                   results["date"], results["load_at_start"],
                                                   results["load_at_end"]),
             "Reproduce: `.venv/bin/python benchmarks/embed_bench.py`.", "",
             "| source | features | images | wall s | images/s | scan / read / features s | peak RSS MiB | "
             "thumbnail px | load before -> after |",
             "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for r in results["cases"]:
        if "error" in r:
            lines.append("| %s | %s | | | | failed: %s | | | |" % (r["source"], r["feature_choice"], r["error"]))
            continue
        p = r["phases_s"]
        lines.append("| %s | %s | %d | %.1f | %.0f | %.1f / %.1f / %.1f | %.0f | %d | %.1f -> %.1f |" % (
            r["source"], r["feature_choice"], r["rows"], r["seconds"], r["images_per_s"], p["scan"], p["read"],
            p["features"], r["peak_rss_mib"], r["thumbnail_px"], r["load_before"][0], r["load_after"][0]))
    lines.append("")
    lines.append("Wall time is the whole command (start-up, scan, decode, features, sprite pages and files); "
                 "the rest of it is writing.")
    for note in results["not_measured"]:
        lines.append("")
        lines.append("Not measured: %s." % note)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
