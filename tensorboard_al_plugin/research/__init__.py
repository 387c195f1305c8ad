"""Research tooling: the labeling-efficiency benchmark, the embedding-quality report, offline datasets.

What the paper's claims are checked with, not what the tab runs: files and
plots are written here, datasets are read here. Only ``tensorboard-al
benchmark`` / ``quality`` and the scripts in benchmarks/ import this package
(tests/test_import_path.py checks that the server never does). The numbers
come from the same engine the tab uses (``tsne``, ``active``).

- :func:`run_benchmark` (:mod:`.benchmark`): five-fold CV, actions to 80% of
  full-label accuracy; writes results.json and curves.png.
- :func:`quality_report` (:mod:`.quality`): 4-NN accuracy in a 3D t-SNE.
- :func:`load_dataset` (:mod:`.datasets`): digits, fashion-mnist, lfw.
"""
from .benchmark import run_benchmark
from .datasets import DATASETS, load_dataset
from .quality import quality_report

__all__ = ["run_benchmark", "quality_report", "load_dataset", "DATASETS"]
