"""Semi-supervised t-SNE engine: arrays in, arrays out.

``SemiSupervisedTSNE`` is the entry point; ``TSNERun`` is the live run that
``prepare`` returns. See ``tsne.py`` for the objective and ``supervision.py``
for the label terms of Luus et al. (arXiv:1901.00675). ``principal_components``
(``pca.py``) is the package's one PCA. ``params.py`` declares the layout's
parameters once (kinds, bounds, defaults, which are live) and checks them.

Importing the engine changes nothing in the environment: on a shared machine,
call ``tensorboard_al_plugin.threads.passive_openmp_wait()`` (or set
OMP_WAIT_POLICY=PASSIVE) before the first layout, as ``tensorboard-al`` and
the server do.
"""
from .affinity import check_affinities, joint_probabilities, perplexity_affinities
from .metrics import knn_accuracy, knn_cv_accuracy
from .pca import principal_components
from .tsne import EXACT_MAX_POINTS, SemiSupervisedTSNE, TSNERun

__all__ = ["SemiSupervisedTSNE", "TSNERun", "perplexity_affinities", "joint_probabilities",
           "check_affinities", "EXACT_MAX_POINTS", "knn_accuracy", "knn_cv_accuracy",
           "principal_components"]
