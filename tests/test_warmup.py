"""`tensorboard-al warmup` compiles every numba kernel into the on-disk cache, so that the first layout of a
later process compiles nothing (issue 11: the first layout after an install paid ~30 s of compilation).

Each test gets an empty numba cache of its own (NUMBA_CACHE_DIR), so the warm-up really compiles and the
later process can only find what the warm-up left there. Compilation is judged by numba's own
dispatcher statistics (cache hits and misses per kernel), not by time.
"""
import json
import os
import subprocess
import sys

import pytest

# A first use the way the tab and the benchmark make it, on other data than the warm-up's: layouts in
# 2D and 3D through SemiSupervisedTSNE with the method chosen by size ("auto"), labels fed back, then
# the Suggest panel's t-SNE strategy and one step of the annotation emulation.
FIRST_USE = """
import json, sys
import numpy as np
from tensorboard_al_plugin.tsne import SemiSupervisedTSNE
from tensorboard_al_plugin.active import suggest, emulation_step
from tensorboard_al_plugin.warmup import cached_kernels

rng = np.random.default_rng(7)
X = np.vstack([rng.normal(loc=4 * c, size=(500, 12)) for c in range(5)])
y = np.repeat(np.arange(5), 500)
labels = np.where(rng.random(len(y)) < 0.3, y, -1)
for n, d in ((2500, 2), (1200, 3), (600, 2)):
    run = SemiSupervisedTSNE(n_components=d, label_importance=0.2, repulsion_emphasis=0.3,
                             random_state=1).prepare(X[:n], labels=labels[:n])
    run.step(5)
    more = labels[:n].copy()
    extra = rng.random(n) < 0.1
    more[extra] = y[:n][extra]
    run.set_labels(more)  # the user labels more while the layout runs
    run.step(5)
    layout = run.positions
    suggest("tsne", X[:n], [None] * n, layout=layout, n=3)
    emulation_step(layout, y[:n], labels[:n])
kernels = cached_kernels()
json.dump({"compiled": {name: sum(k.stats.cache_misses.values()) for name, k in kernels.items()},
           "loaded": sum(sum(k.stats.cache_hits.values()) for k in kernels.values())}, sys.stdout)
"""


def python(args, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r


def warmup_json(cache_dir):
    return json.loads(python(["-m", "tensorboard_al_plugin.cli", "warmup", "--json"], cache_dir).stdout)


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("numba_cache")
    return cache_dir, warmup_json(cache_dir)


def test_warmup_compiles_every_kernel_into_the_cache(warmed):
    cache_dir, report = warmed
    assert report["not_exercised"] == []
    assert report["compiled"] >= len(report["kernels"]) - 2 > 15  # helpers called only from kernels may not count
    assert report["loaded"] == 0
    assert all(d.startswith(str(cache_dir)) for d in report["cache_dirs"]) and report["cache_writable"]
    assert [p["name"] for p in report["phases"]] == ["neighbours and affinities", "2D layout", "3D layout",
                                                     "active-learning kernels"]


def test_after_warmup_a_first_layout_in_a_new_process_compiles_nothing(warmed):
    cache_dir, _ = warmed
    got = json.loads(python(["-c", FIRST_USE], cache_dir).stdout)
    assert {name: n for name, n in got["compiled"].items() if n} == {}
    assert got["loaded"] > 10


def test_a_second_warmup_only_loads_from_the_cache_and_says_so(warmed):
    cache_dir, first = warmed
    r = python(["-m", "tensorboard_al_plugin.cli", "warmup", "--quiet"], cache_dir)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("numba kernels ready in ") and ": 0 compiled now, " in lines[0]
    assert "loaded from the cache (%d kernels)" % len(first["kernels"]) in lines[0]
    assert [line.split()[0] for line in lines[1:5]] == ["neighbours", "2D", "3D", "active-learning"]
    assert lines[5] == "cache: " + ", ".join(first["cache_dirs"])
    assert r.stderr == ""



def test_every_kernel_is_cached_on_disk_or_inlined_into_one_that_is():
    from tensorboard_al_plugin.warmup import package_kernels

    # A kernel without cache=True would be compiled again by every new process, warm-up or not.
    uncached = [name for name, k in package_kernels().items()
                if k.stats.cache_path is None and k.targetoptions.get("inline") != "always"]
    assert uncached == []
