"""The layout's parameters, declared once.

``PARAMS`` is one table of every parameter a live layout takes (in the spirit
of scikit-learn's ``_parameter_constraints``): its kind, bounds, default,
whether a running layout takes it without restarting (``live``), who takes it
(``scope``: "estimator", an argument of the method's estimator,
``SemiSupervisedTSNE`` or ``umap_layout.SemiSupervisedUMAP``, or "session",
the ``SessionManager``'s), which layout methods use it ("tsne", "pca",
"umap") and a label and help for the UI. The engine, the sessions and the HTTP routes check values with
``check_param``/``check_params``; ``schema()`` is the JSON the tab builds its
layout form and its list of live parameters from (GET .../layout/schema).

The engine's fit-only arguments (n_iter of ``fit``, early_exaggeration,
exaggeration_iter, momentum, initialization, n_neighbors) are no layout
parameters: ``SemiSupervisedTSNE`` checks them itself.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import supervision

KINDS = ("int", "float", "auto_or_float", "choice")


@dataclass(frozen=True)
class Param:
    """One parameter. ``low``/``high``: bounds (None: none), closed (inclusive)
    unless ``low_closed``/``high_closed`` say otherwise; ``high`` "n_samples"
    is the number of points, known only once the features are loaded.
    ``nullable``: None is a value (a random seed). ``choices``: of a "choice"."""
    name: str
    kind: str
    default: object
    label: str
    help: str
    low: object = None
    low_closed: bool = True
    high: object = None
    high_closed: bool = True
    choices: tuple = ()
    nullable: bool = False
    live: bool = False
    scope: str = "estimator"
    methods: tuple = ("tsne",)
    # an "int" counts iterations (its message says so)
    iterations: bool = False


PARAMS = (
    Param("n_components", "choice", 2, "dimensions", "Dimensions of the layout (2D or 3D)",
          choices=(2, 3), methods=("tsne", "pca", "umap")),
    Param("perplexity", "float", 20.0, "perplexity", "Effective number of neighbours (paper: 20)",
          low=0, low_closed=False, high="n_samples", high_closed=False),
    Param("label_importance", "float", supervision.DEFAULT_LABEL_IMPORTANCE, "label importance f",
          "How strongly same-label points attract (f)", low=0, live=True),
    Param("repulsion_emphasis", "float", supervision.DEFAULT_REPULSION_EMPHASIS,
          "repulsion emphasis r", "How strongly different-label points repel (r)", low=0, live=True),
    Param("supervision_start", "int", 0, "supervision start s",
          "Iteration before which labels have no effect (s)", low=0, live=True, iterations=True),
    Param("point_learning_rate_epochs", "int", 50, "label ramp (iterations)",
          "Iterations over which a new label's effect ramps up (point learning rate u_i)",
          low=0, live=True, iterations=True),
    Param("learning_rate", "auto_or_float", "auto", "learning rate", "auto or a number",
          low=0, low_closed=False, live=True),
    Param("theta", "float", 0.5, "Barnes-Hut angle θ",
          "Barnes-Hut opening angle (cell size / distance): smaller is more exact and slower",
          low=0, live=True),
    Param("random_state", "int", None, "seed", "Random seed of the initialisation (empty: random)",
          low=0, nullable=True, methods=("tsne", "umap")),
    Param("method", "choice", "auto", "repulsion method",
          "auto (exact up to 1,000 points, else fast), exact, fast, fft (2D only) or bh",
          choices=("auto", "exact", "fast", "fft", "bh")),
    Param("n_iter", "int", 1000, "iterations",
          "Iterations before the layout stops (new labels then add a few hundred more)",
          low=0, scope="session"),
    Param("extra_iter", "int", 300, "extra iterations",
          "Iterations a label or parameter change adds to a finished layout", low=0, scope="session",
          methods=("tsne", "umap")),
    # UMAP (umap-learn; tsne/umap_layout.py). An iteration of a UMAP layout is an epoch.
    Param("n_neighbors", "int", 15, "neighbours k",
          "Neighbours of each point in UMAP's graph: small keeps local detail, large the global shape",
          low=2, high="n_samples", high_closed=False, methods=("umap",)),
    Param("min_dist", "float", 0.1, "min. distance",
          "How tightly UMAP packs close points (0: as tight as it can; 1: evenly spread)",
          low=0, high=1, methods=("umap",)),
    Param("label_weight", "float", 0.5, "label weight",
          "How far the labels shape UMAP's graph (umap-learn's target_weight): 0 ignores them, 1 cuts "
          "every edge between different labels; unlabeled points stay in between",
          low=0, high=1, live=True, methods=("umap",)),
    Param("n_epochs", "int", None, "epochs",
          "Epochs before the UMAP layout stops (empty: umap-learn's choice, 500 up to 10,000 points, "
          "else 200); new labels then add the extra iterations", low=1, nullable=True, scope="session",
          methods=("umap",)),
)
BY_NAME = {p.name: p for p in PARAMS}


def live_params(method="tsne") -> tuple:
    """The parameters a running layout of ``method`` takes without restarting."""
    return tuple(p.name for p in PARAMS if p.live and method in p.methods)


# a running t-SNE's (the engine's)
LIVE_PARAMS = live_params("tsne")
ESTIMATOR_PARAMS = tuple(p.name for p in PARAMS if p.scope == "estimator" and "tsne" in p.methods)
UMAP_PARAMS = tuple(p.name for p in PARAMS if p.scope == "estimator" and "umap" in p.methods)
SESSION_PARAMS = tuple(p.name for p in PARAMS if p.scope == "session")


def defaults(scope=None) -> dict:
    """name -> default, of every parameter (or of those of ``scope``)."""
    return {p.name: p.default for p in PARAMS if scope is None or p.scope == scope}


def _either(words):
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _bound_text(p, n_samples):
    high = n_samples if p.high == "n_samples" else p.high
    if p.low is not None and high is not None:
        return f"in {'[' if p.low_closed else '('}{p.low}, " \
               f"{'n_samples=' + str(high) if p.high == 'n_samples' else high}{']' if p.high_closed else ')'}"
    return f"{'>=' if p.low_closed else '>'} {p.low}"


def check_param(name, value, n_samples=None):
    """``value`` as the engine takes it (float, int, "auto", a choice, None);
    ValueError naming the parameter and what it expects otherwise. ``n_samples``
    (when known) bounds the perplexity."""
    p = BY_NAME.get(name)
    if p is None:
        raise ValueError(f"unknown parameter {name!r}; expected one of {', '.join(BY_NAME)}")
    if p.kind == "choice":
        if isinstance(value, bool) or isinstance(value, (list, dict)) or value not in p.choices:
            raise ValueError(f"{name}: expected {_either([repr(c) for c in p.choices])}, got {value!r}")
        return value
    if p.nullable:
        # a seed: None, a whole number >= 0 or the engine's own numpy generator
        # (n_epochs: None, umap-learn's choice, or a whole number >= 1)
        if value is None or (p.name == "random_state" and isinstance(
                value, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence))):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < p.low:
            raise ValueError(f"{name}: expected a whole number >= {p.low} or null, got {value!r}")
        return int(value)
    if p.scope == "session":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < p.low:
            raise ValueError(f"{name}: expected a whole number >= {p.low}, got {value!r}")
        return int(value)
    if p.kind == "auto_or_float":
        expected = f"{name}: expected 'auto' or a number {_bound_text(p, None)}, got {value!r}"
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(expected)
            return value
        v = _check_number(name, value)
        if v < 0:
            raise ValueError(f"{name}: expected a value >= 0, got {value!r}")
        if v < p.low or (v == p.low and not p.low_closed):
            raise ValueError(expected)
        return v
    if p.high not in (None, "n_samples"):
        # a number in a closed range ([0, 1])
        what = "a whole number" if p.kind == "int" else "a number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not p.low <= value <= p.high or (p.kind == "int" and int(value) != value):
            raise ValueError(f"{name}: expected {what} {_bound_text(p, None)}, got {value!r}")
        return int(value) if p.kind == "int" else float(value)
    if p.high == "n_samples" and p.kind == "int":
        # a count of points (n_neighbors): below the number of points, known with the features
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or int(value) != value or value < p.low or (n_samples is not None and value >= n_samples):
            raise ValueError(f"{name}: expected a whole number "
                             f"{_bound_text(p, None) if n_samples is None else _bound_text(p, n_samples)}, "
                             f"got {value!r}")
        return int(value)
    if p.high == "n_samples":
        # known only with the features: before, any finite number above the low bound
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not (value > p.low if not p.low_closed else value >= p.low):
            if n_samples is None:
                raise ValueError(f"{name}: expected a finite number {_bound_text(p, None)}, "
                                 f"got {value!r}")
            raise ValueError(f"{name}: expected a number {_bound_text(p, n_samples)}, got {value!r}")
        if n_samples is not None and not (value < n_samples if not p.high_closed else value <= n_samples):
            raise ValueError(f"{name}: expected a number {_bound_text(p, n_samples)}, got {value!r}")
        return float(value)
    v = _check_number(name, value)
    if v < p.low:
        raise ValueError(f"{name}: expected a value >= {p.low}, got {value!r}")
    if p.kind == "int":
        if int(v) != v:
            raise ValueError(f"{name}: expected a whole number{' of iterations' if p.iterations else ''}, "
                             f"got {value!r}")
        return int(v)
    return v


def _check_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def check_live_param(name, value, method="tsne"):
    """``check_param`` for a parameter a running layout of ``method`` takes
    (``live_params(method)``; t-SNE's are ``LIVE_PARAMS``)."""
    live = live_params(method)
    if name not in live:
        if name in BY_NAME and BY_NAME[name].live:
            raise ValueError(f"{name} is no parameter of a {_METHOD_NAMES.get(method, method)} layout; "
                             f"its live parameters are {', '.join(live) or 'none'}")
        raise ValueError(f"unknown parameter {name!r}; live parameters are {', '.join(live)}")
    return check_param(name, value)


_METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}


def check_params(values: dict, n_samples=None) -> dict:
    """The checked values of ``values`` (name -> value, any of ``PARAMS``),
    in the table's order; ValueError at the first unknown name or bad value,
    or for a combination the engine cannot run ('fft' in 3D)."""
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise ValueError(f"params: unknown parameter(s) {sorted(unknown)}; expected some of "
                         f"{sorted(BY_NAME)}")
    checked = {p.name: check_param(p.name, values[p.name], n_samples)
               for p in PARAMS if p.name in values}
    if checked.get("method") == "fft" and checked.get("n_components", BY_NAME["n_components"].default) != 2:
        raise ValueError("method: 'fft' supports n_components=2 only; use 'bh' or 'fast'")
    return checked


def schema() -> dict:
    """The table as JSON for the tab: {"params": [{name, kind, default, min,
    min_inclusive, max, max_inclusive, choices, nullable, live, scope, methods,
    label, help}, ...]} in the table's order; "max" "n_samples" is the number of
    points (the HTTP start also keeps perplexity below a third of them)."""
    return {"params": [{
        "name": p.name, "kind": p.kind, "default": p.default,
        "min": p.low, "min_inclusive": p.low_closed, "max": p.high, "max_inclusive": p.high_closed,
        "choices": list(p.choices), "nullable": p.nullable, "live": p.live, "scope": p.scope,
        "methods": list(p.methods), "label": p.label, "help": p.help,
    } for p in PARAMS]}
