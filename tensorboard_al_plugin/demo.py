"""The bundled demo: scikit-learn's 1,797 handwritten digits, ready to label."""

from __future__ import annotations

import numpy as np

DEMO_RUN = "digits"
DEMO_EMBEDDING = "digits"


def build_demo(out: str, *, progress: bool = True) -> str:
    """Write the digits (64-dim pixel features, 32 px thumbnails, true digit as metadata) into ``out``.

    No labels are applied: the demo starts unlabeled, as a real labeling job does.
    Returns the embedding's directory.
    """
    from sklearn.datasets import load_digits

    from .logdir.embeddings import write_embedding

    digits = load_digits()
    images = digits.images / 16.0  # 0..16 ink -> 0..1
    # White ink on black, as the digits are usually shown: 1 - ink would be paper-like.
    return write_embedding(
        out,
        digits.data.astype(np.float32),
        name=DEMO_EMBEDDING,
        run=DEMO_RUN,
        images=images,
        metadata={"digit": digits.target.astype(int).tolist()},
        thumbnail_size=32,
        progress=progress,
    )
