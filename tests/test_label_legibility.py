"""Labeled thumbnails stay legible at the tab's default layout parameters (issue 11, defect 10).

The tab starts its t-SNE with the form defaults of frontend/src/state.ts; with
the old ones (f = r = 0.1 and the paper's uncapped class-size factor N / N_s)
groups labeled in the tab collapsed into clumps several times tighter than in
the unsupervised layout, hiding their thumbnails.  The criterion and the
labeling are those of benchmarks/label_legibility.py, on a small seeded case.
"""
import os
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
from tensorboard_al_plugin.tsne.metrics import label_legibility, thumbnail_width

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_TS = os.path.join(ROOT, "frontend", "src", "state.ts")


def tab_defaults():
    """label_importance and repulsion_emphasis of the tab's layout form (state.ts)."""
    with open(STATE_TS, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for name in ("label_importance", "repulsion_emphasis"):
        m = re.search(r"^\s*%s:\s*([0-9.eE+-]+),\s*$" % name, text, re.M)
        assert m, "no default for %s in %s" % (name, STATE_TS)
        out[name] = float(m.group(1))
    return out


@pytest.fixture(scope="module")
def case():
    """500 digits; 20 % labeled in groups of a point and its 20 nearest neighbours (the tab's default)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:500].astype(np.float32), y[:500]
    nbrs = NearestNeighbors(n_neighbors=21).fit(X).kneighbors(X, return_distance=False)
    labels = np.full(len(y), -1)
    for focus in np.random.default_rng(0).permutation(len(y)):
        if (labels >= 0).sum() >= 100:
            break
        group = nbrs[focus][labels[nbrs[focus]] < 0]
        if len(group):
            majority = np.bincount(y[group]).argmax()
            labels[group[y[group] == majority]] = majority
    return X, labels


def _layout(X, labels, **params):
    return SemiSupervisedTSNE(perplexity=20, random_state=0, **params).prepare(X, labels=labels).step(1000).positions


def test_tab_defaults_are_the_engines():
    engine = SemiSupervisedTSNE()
    assert tab_defaults() == {"label_importance": engine.label_importance,
                              "repulsion_emphasis": engine.repulsion_emphasis}
    assert engine.label_importance > 0  # labels do pull a class together by default


def test_labeled_thumbnails_stay_apart_at_the_tab_defaults(case):
    """Median distance between labeled neighbours, in the tab's thumbnail widths: at least 0.75 x unsupervised.

    Measured here: unsupervised 0.116 widths, the old defaults 0.065 (0.56 x),
    the new 0.098 (0.84 x).  (Every labeled thumbnail overlaps another by more
    than half in all three: at the tab's default thumbnail size a group of near
    duplicates overlaps even unsupervised, so the fraction hidden cannot tell
    them apart here; the benchmark reports it.)
    """
    X, labels = case
    plain = label_legibility(_layout(X, labels, label_importance=0.0, repulsion_emphasis=0.0), labels)
    default = label_legibility(_layout(X, labels, **tab_defaults()), labels)
    assert thumbnail_width(len(X)) == pytest.approx(3.2 / np.sqrt(500))
    assert default["nn_widths"] >= 0.75 * plain["nn_widths"], (default, plain)
