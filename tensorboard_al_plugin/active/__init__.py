"""Active labeling: classifier, query strategies, Algorithm 1 emulation, Barnes-Hut neighbourhoods.

Numeric core: arrays in, arrays out; no HTTP, no TensorBoard, no files.
Entry points:

- :func:`suggest`, :func:`train_classifier`, :func:`predictions`
  (:mod:`.suggest`): the tab's "Suggest" panel.
- :func:`annotation_emulation` (:mod:`.emulation`): Algorithm 1, the
  annotator the benchmark emulates, on a live layout (:mod:`.layout`).
- :func:`assisted_emulation` (:mod:`.assisted`): ``tsne-assisted``, the layout
  and the classifier together, with Algorithm 1's action accounting.
- :data:`STRATEGIES`: tsne, tsne-supervised, tsne-assisted, random,
  least-confidence, margin, entropy, ensemble, adversarial.

The benchmark, the quality report and the datasets reader, which write
files and plots and read datasets, live in :mod:`tensorboard_al_plugin.research`;
``run_benchmark``, ``quality_report``, ``load_dataset`` and ``DATASETS`` are
still answered here, from there, on first use.
"""
import importlib

from .classifier import MLPClassifier, make_classifier
from .strategies import STRATEGIES
from .suggest import ClassifierState, predictions, suggest, train_classifier

# Imported on first use: these pull in numba (and scikit-learn), which the CLI
# should not pay for to list strategy names or export labels. (``suggest`` is
# imported above: its name is also its module's, which an import of the
# submodule would otherwise rebind.)
_LAZY = {
    "annotation_emulation": ".emulation", "emulation_step": ".emulation",
    "BarnesHutTree": ".neighbourhood", "best_knn_group": ".neighbourhood", "bh_neighbourhood": ".neighbourhood",
    "focus_counts": ".neighbourhood",
    "assisted_emulation": ".assisted", "assisted_step": ".assisted",
    # moved to the research package (older code imports them from here)
    "run_benchmark": "..research.benchmark", "quality_report": "..research.quality",
    "load_dataset": "..research.datasets", "DATASETS": "..research.datasets",
}

__all__ = [
    "STRATEGIES", "suggest", "train_classifier", "predictions", "ClassifierState", "MLPClassifier",
    "make_classifier", "annotation_emulation", "emulation_step", "BarnesHutTree", "best_knn_group",
    "bh_neighbourhood", "focus_counts", "assisted_emulation", "assisted_step",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
