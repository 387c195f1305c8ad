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
from .benchmark import run_benchmark
from .classifier import MLPClassifier, make_classifier
from .datasets import DATASETS, load_dataset
from .emulation import annotation_emulation, emulation_step
from .neighbourhood import BarnesHutTree, best_knn_group, bh_neighbourhood, focus_counts
from .quality import quality_report
from .strategies import STRATEGIES
from .suggest import ClassifierState, predictions, suggest, train_classifier

__all__ = [
    "run_benchmark", "quality_report", "load_dataset", "DATASETS", "STRATEGIES", "suggest", "train_classifier",
    "predictions", "ClassifierState", "MLPClassifier", "make_classifier", "annotation_emulation",
    "emulation_step", "BarnesHutTree", "best_knn_group", "bh_neighbourhood", "focus_counts",
]
