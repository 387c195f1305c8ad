"""Semi-supervised t-SNE engine: arrays in, arrays out.

``SemiSupervisedTSNE`` is the entry point; ``TSNERun`` is the live run that
``prepare`` returns. See ``tsne.py`` for the objective and ``supervision.py``
for the label terms of Luus et al. (arXiv:1901.00675).
"""
import os

# numba's OpenMP threads spin while waiting for work by default; on a server
# shared with TensorBoard and other users that spinning steals the cores the
# other thread of a parallel loop needs, and loops got 4x slower under load.
# Only a default: an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .affinity import check_affinities, joint_probabilities, perplexity_affinities
from .metrics import knn_accuracy
from .tsne import EXACT_MAX_POINTS, SemiSupervisedTSNE, TSNERun

__all__ = ["SemiSupervisedTSNE", "TSNERun", "perplexity_affinities", "joint_probabilities",
           "check_affinities", "EXACT_MAX_POINTS", "knn_accuracy"]
