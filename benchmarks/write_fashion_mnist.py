"""Write all 70,000 Fashion-MNIST images as one embedding, for the frontend's
scale benchmark (benchmarks/frontend_bench.py) and for trying the tab at scale.

    apt-get install -y dataset-fashion-mnist
    .venv/bin/python benchmarks/write_fashion_mnist.py --out /tmp/fashion_logs
    tensorboard --logdir /tmp/fashion_logs

Features (``--features``): by default the first 50 principal components of
the pixels (float32, 70,000 x 50: 14 MB for the browser instead of 220 MB of
raw pixels; kNN groups in this space are what a person would call "looks
alike"); ``--features pixels`` writes the raw 784 pixels instead. Thumbnails: the 28 x 28
images at native size (one 7420 x 7420 px atlas page). Metadata: class name, split
(train/test) and the index within the split. No labels.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tensorboard_al_plugin import write_embedding  # noqa: E402

SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An idx file (gzip) as a numpy array (the format of the MNIST family)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(source):
    parts = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(os.path.join(source, "%s-images-idx3-ubyte.gz" % prefix))
        labels = read_idx(os.path.join(source, "%s-labels-idx1-ubyte.gz" % prefix))
        parts.append((split, images, labels))
    return parts


def pca_features(images, components=50):
    """Top principal components of the flattened pixels, float32 (N x components)."""
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    mean = x.mean(axis=0)
    cov = np.cov((x - mean)[:: max(1, len(x) // 20000)], rowvar=False)
    _, vecs = np.linalg.eigh(cov)
    top = vecs[:, ::-1][:, :components].astype(np.float32)
    return (x - mean) @ top


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/fashion_mnist_logs", help="log directory to write (default %(default)s)")
    ap.add_argument("--source", default=SOURCE, help="folder with the idx .gz files (default %(default)s)")
    ap.add_argument("--limit", type=int, default=0, help="write only the first N images (0 = all 70,000)")
    ap.add_argument("--features", choices=("pca", "pixels"), default="pca",
                    help="50 principal components (default) or the raw 784 pixels scaled to [0, 1]")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.source):
        sys.exit("error: %s not found; install it with `apt-get install -y dataset-fashion-mnist`" % args.source)

    t0 = time.time()
    parts = load(args.source)
    images = np.concatenate([p[1] for p in parts])
    targets = np.concatenate([p[2] for p in parts])
    split = np.concatenate([[p[0]] * len(p[1]) for p in parts])
    index = np.concatenate([np.arange(len(p[1])) for p in parts])
    if args.limit:
        images, targets, split, index = images[: args.limit], targets[: args.limit], split[: args.limit], index[: args.limit]
    if args.features == "pca":
        features = pca_features(images)
    else:
        features = images.reshape(len(images), -1).astype(np.float32) / 255.0
    path = write_embedding(
        args.out,
        features,
        name="fashion_mnist",
        run="fashion_mnist",
        images=images,
        metadata={"class": [CLASSES[t] for t in targets], "split": list(split), "index": [str(i) for i in index]},
        thumbnail_size=28,
        progress=True,
    )
    print("wrote %d images (%d features each) to %s in %.1f s" % (len(images), features.shape[1], path, time.time() - t0))


if __name__ == "__main__":
    main()
