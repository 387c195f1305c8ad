"""Active labeling: classifier, query strategies, Algorithm 1 emulation, benchmark, quality report.

Numeric core: arrays in, arrays out; no HTTP, no TensorBoard. Entry points:

- :func:`run_benchmark` (:mod:`.benchmark`): the labeling-efficiency benchmark
  (five-fold CV, actions to 80% of full-label accuracy), writes results.json
  and curves.png.
- :func:`quality_report` (:mod:`.quality`): 4-NN accuracy in a 3D t-SNE.
- :func:`load_dataset` (:mod:`.datasets`): digits, fashion-mnist, lfw.
- :func:`suggest`, :func:`train_classifier`, :func:`predictions`
  (:mod:`.suggest`): the tab's "Suggest" panel.
- :data:`STRATEGIES`: tsne, tsne-supervised, random, least-confidence, margin,
  entropy, ensemble, adversarial.
"""
import importlib

from .classifier import MLPClassifier, make_classifier
from .datasets import DATASETS, load_dataset
from .strategies import STRATEGIES
from .suggest import ClassifierState, predictions, suggest, train_classifier

# Imported on first use: these pull in numba (and scikit-learn), which the CLI
# should not pay for to list strategy names or export labels. (``suggest`` is
# imported above: its name is also its module's, which an import of the
# submodule would otherwise rebind.)
_LAZY = {
    "run_benchmark": "benchmark", "annotation_emulation": "emulation", "emulation_step": "emulation",
    "BarnesHutTree": "neighbourhood", "best_knn_group": "neighbourhood", "bh_neighbourhood": "neighbourhood",
    "focus_counts": "neighbourhood", "quality_report": "quality",
}

__all__ = [
    "run_benchmark", "quality_report", "load_dataset", "DATASETS", "STRATEGIES", "suggest", "train_classifier",
    "predictions", "ClassifierState", "MLPClassifier", "make_classifier", "annotation_emulation",
    "emulation_step", "BarnesHutTree", "best_knn_group", "bh_neighbourhood", "focus_counts",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(importlib.import_module("." + _LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
