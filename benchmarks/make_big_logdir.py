"""Write a big embedding (200,000 or 1,000,000 rows) from Fashion-MNIST, streaming, for the 1M-row work of issue #13.

    .venv/bin/python benchmarks/make_big_logdir.py --rows 200000 --out /tmp/al-big/logdir_200k --name fmnist200k
    flock /tmp/al-big.lock .venv/bin/python benchmarks/make_big_logdir.py --rows 1000000 \\
        --out /tmp/al-big/logdir_1m --name fmnist1m --ready /tmp/al-big/ready-1m

Row ``i`` is Fashion-MNIST image ``i % 70000`` (train then test); every
repeat after the first (``i >= 70000``) is that image shifted by up to
``--shift`` px in x and y and given seeded Gaussian pixel noise
(``--noise``, in grey levels), so no two rows are the same picture.
Features: the 50 principal components of the pixels (fitted on the 70,000
originals), computed from each row's own, shifted and noisy, pixels: the
repeats' features are the originals' plus the noise that shift and pixel
noise make.  Thumbnails: 28 x 28 grey (12 atlas pages at 1M).  Metadata: one
column, ``class``.  No labels.  Same ``--seed``, same bytes.

Never are all pixels in memory: each chunk of ``--chunk`` rows is made,
projected and written to a thumbnail file on disk, which the writer then
reads one sprite page at a time through an ``np.memmap``.  The embedding is
written with ``write_embedding_atomically``: it appears whole or not at all,
and ``--ready FILE`` is touched only after it is complete.  The time and
the peak memory (VmHWM, which counts the memmap's pages read, and the
largest anonymous memory seen, which does not) are printed and, with
``--json``, written to a file.
"""
import argparse
import json
import os
import platform
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from tensorboard_al_plugin.logdir.embeddings import write_embedding_atomically  # noqa: E402
from write_fashion_mnist import CLASSES, SOURCE, load  # noqa: E402


def load_fashion_mnist(source):
    """(70000, 28, 28) uint8 images and (70000,) class indices, train then test."""
    parts = load(source)
    return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def fit_pca(images, components, seed):
    """(mean (784,), top components (784, components)) of the pixels scaled to [0, 1], float32.

    The covariance is estimated on at most 20,000 seeded rows (as
    write_fashion_mnist.py does), the mean on all of them, chunk by chunk.
    """
    flat = images.reshape(len(images), -1)
    mean = np.zeros(flat.shape[1], np.float64)
    for start in range(0, len(flat), 10000):
        mean += flat[start:start + 10000].sum(axis=0, dtype=np.float64)
    mean /= 255.0 * len(flat)
    pick = np.random.default_rng(seed).choice(len(flat), min(20000, len(flat)), replace=False)
    sample = flat[np.sort(pick)].astype(np.float64) / 255.0 - mean
    _, vecs = np.linalg.eigh(sample.T @ sample / (len(sample) - 1))
    return mean.astype(np.float32), np.ascontiguousarray(vecs[:, ::-1][:, :components], dtype=np.float32)


def make_chunk(base, start, count, *, seed, shift, noise):
    """Rows ``start .. start+count-1`` as (count, 28, 28) uint8: originals, then shifted noisy repeats.

    Seeded per chunk start, so a chunk is the same whatever the chunk size
    before it (the chunk size is part of the recipe: keep the default for the
    same bytes).
    """
    m = len(base)
    idx = np.arange(start, start + count)
    out = base[idx % m].copy()
    repeat = idx >= m
    if not repeat.any() or (shift == 0 and noise == 0):
        return out
    rng = np.random.default_rng([seed, start])
    k = int(repeat.sum())
    sel = np.flatnonzero(repeat)
    if shift:
        dy = rng.integers(-shift, shift + 1, k)
        dx = rng.integers(-shift, shift + 1, k)
        h, w = out.shape[1:]
        padded = np.pad(out[sel], ((0, 0), (shift, shift), (shift, shift)))
        rows = (np.arange(h)[None, :] + shift - dy[:, None])[:, :, None]
        cols = (np.arange(w)[None, :] + shift - dx[:, None])[:, None, :]
        out[sel] = padded[np.arange(k)[:, None, None], rows, cols]
    if noise:
        noisy = out[sel].astype(np.float32) + rng.normal(0.0, noise, (k,) + out.shape[1:]).astype(np.float32)
        out[sel] = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return out


class PeakMemory:
    """Samples this process's anonymous resident memory (RssAnon) every 20 ms; VmHWM from the kernel."""

    def __init__(self):
        self.peak_anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak_anon_kib = max(self.peak_anon_kib, self.status("RssAnon"))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_anon_kib = max(self.peak_anon_kib, self.status("RssAnon"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200000, help="rows to write (default %(default)s)")
    ap.add_argument("--out", default="/tmp/al-big/logdir_200k", help="log directory (default %(default)s)")
    ap.add_argument("--run", default=".", help="run inside the log directory (default %(default)r: the logdir)")
    ap.add_argument("--name", default="fmnist200k", help="embedding name (default %(default)s)")
    ap.add_argument("--source", default=SOURCE, help="folder with the idx .gz files (default %(default)s)")
    ap.add_argument("--components", type=int, default=50, help="PCA features per row (default %(default)s)")
    ap.add_argument("--shift", type=int, default=2, help="largest shift of a repeat, px (default %(default)s)")
    ap.add_argument("--noise", type=float, default=12.0,
                    help="pixel noise of a repeat, standard deviation in grey levels (default %(default)s)")
    ap.add_argument("--seed", type=int, default=13, help="seed of the shifts, the noise and the PCA sample")
    ap.add_argument("--chunk", type=int, default=10000, help="rows made at a time (default %(default)s)")
    ap.add_argument("--ready", default=None, help="file to touch once the embedding is complete")
    ap.add_argument("--json", default=None, help="write time and peak memory to this JSON file")
    args = ap.parse_args(argv)
    if args.rows < 2:
        sys.exit("error: --rows must be at least 2")
    if not os.path.isdir(args.source):
        sys.exit("error: %s not found; install it with `apt-get install -y dataset-fashion-mnist`" % args.source)

    t0 = time.time()
    with PeakMemory() as peak:
        base, targets = load_fashion_mnist(args.source)
        mean, top = fit_pca(base, args.components, args.seed)
        os.makedirs(args.out, exist_ok=True)
        thumbs_path = os.path.join(args.out, ".make_big_logdir-thumbs-%d.u8" % os.getpid())
        features = np.empty((args.rows, args.components), np.float32)
        try:
            with open(thumbs_path, "wb") as f:
                for start in range(0, args.rows, args.chunk):
                    count = min(args.chunk, args.rows - start)
                    pixels = make_chunk(base, start, count, seed=args.seed, shift=args.shift, noise=args.noise)
                    f.write(pixels.tobytes())
                    features[start:start + count] = (pixels.reshape(count, -1).astype(np.float32) / 255.0 - mean) @ top
            t_made = time.time() - t0
            thumbs = np.memmap(thumbs_path, np.uint8, "r", shape=(args.rows, 28, 28, 1))
            classes = targets[np.arange(args.rows) % len(base)]
            path = write_embedding_atomically(
                args.out, features, name=args.name, run=args.run, thumbnails=thumbs,
                metadata={"class": [CLASSES[t] for t in classes]}, author="make_big_logdir")
            del thumbs
        finally:
            if os.path.exists(thumbs_path):
                os.unlink(thumbs_path)
    seconds = time.time() - t0
    result = {
        "rows": args.rows, "dims": args.components, "thumbnail_px": 28, "path": path,
        "seconds": round(seconds, 1), "seconds_making_rows": round(t_made, 1),
        "peak_rss_mib": round(PeakMemory.status("VmHWM") / 1024, 1),
        "peak_anon_mib": round(peak.peak_anon_kib / 1024, 1),
        "data_mib": round(args.rows * (28 * 28 + 4 * args.components) / 2 ** 20, 1),
        "machine": "%s, %d cores, %s" % (platform.machine(), os.cpu_count() or 0, platform.python_version()),
        "load_1min_before_end": round(os.getloadavg()[0], 2),
        "seed": args.seed, "shift": args.shift, "noise": args.noise,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.ready:
        with open(args.ready, "a"):
            pass
        os.utime(args.ready)


if __name__ == "__main__":
    main()
