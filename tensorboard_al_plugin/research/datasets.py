"""Offline datasets for the benchmark and the quality report, and input checks.

:func:`load_dataset` returns ``(features, labels)``: float32 ``(n, D)`` raw
pixel features scaled to [0, 1] and int64 ``(n,)`` class indices.

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).
- ``fashion-mnist``: the 70,000 Fashion-MNIST images (train + t10k, 28x28) from
  the Debian package ``dataset-fashion-mnist`` (idx files under
  ``/usr/share/datasets/fashion-mnist/``).
- ``lfw``: scikit-image's ``lfw_subset`` (200 25x25 faces, face / not face).
"""
from __future__ import annotations

import gzip
import os

import numpy as np

__all__ = ["load_dataset", "DATASETS", "FASHION_MNIST_DIR", "check_features_labels", "encode_labels",
           "stratified_subset"]

DATASETS = ("digits", "fashion-mnist", "lfw")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_dataset(name, *, data_dir=None):
    """Load an offline dataset by name ("digits", "fashion-mnist" or "lfw"); see module docstring."""
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    if name == "fashion-mnist":
        root = data_dir or FASHION_MNIST_DIR
        parts = [("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
        missing = [p for pair in parts for p in pair if not os.path.exists(os.path.join(root, p))]
        if missing:
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {root} (missing {missing[0]}); "
                "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist).")
        xs, ys = [], []
        for img, lab in parts:
            xs.append(_read_idx(os.path.join(root, img)).reshape(-1, 28 * 28))
            ys.append(_read_idx(os.path.join(root, lab)))
        return (np.concatenate(xs) / 255.0).astype(np.float32), np.concatenate(ys).astype(np.int64)
    if name == "lfw":
        from skimage.data import lfw_subset
        images = lfw_subset()
        # lfw_subset holds 100 faces followed by 100 non-faces.
        labels = np.r_[np.ones(100, np.int64), np.zeros(len(images) - 100, np.int64)]
        return images.reshape(len(images), -1).astype(np.float32), labels
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}.")


def encode_labels(labels):
    """(class indices (n,) int64, class values) for any label array."""
    classes, idx = np.unique(np.asarray(labels), return_inverse=True)
    return idx.astype(np.int64), classes


def check_features_labels(features, labels, *, folds=None):
    """Validate (features, labels) at the door; return (X float32 (n, D), y class indices, class values)."""
    X = np.asarray(features)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2D array (n_samples, n_features), got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"features must be numeric, got dtype {X.dtype}.")
    X = X.astype(np.float32)
    if not np.all(np.isfinite(X)):
        raise ValueError("features contain NaN or infinite values.")
    y_raw = np.asarray(labels)
    if y_raw.ndim != 1:
        raise ValueError(f"labels must be a 1D array, got shape {y_raw.shape}.")
    if len(y_raw) != len(X):
        raise ValueError(f"labels has {len(y_raw)} entries but features has {len(X)} rows; they must match.")
    y, classes = encode_labels(y_raw)
    if len(classes) < 2:
        raise ValueError(f"labels hold a single class ({classes[0]!r}); at least 2 classes are needed.")
    if folds is not None:
        if int(folds) < 2:
            raise ValueError(f"folds must be at least 2, got {folds}.")
        if len(X) < folds:
            raise ValueError(f"features has {len(X)} rows, fewer than folds={folds}.")
        smallest = np.bincount(y).min()
        if smallest < folds:
            raise ValueError(f"the smallest class has {smallest} rows, fewer than folds={folds}; "
                             "every class needs at least one row per fold.")
    return X, y, classes


def stratified_subset(y, size, random_state=0):
    """Row indices of a stratified random subset of ``size`` rows (sorted)."""
    from sklearn.model_selection import train_test_split
    size = int(size)
    if size >= len(y):
        return np.arange(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=random_state)
    return np.sort(idx)
