"""What importing costs: the server never imports the research tooling, and no import changes the environment.

Each check runs in a fresh interpreter, which reports its sys.modules and os.environ afterwards.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REPORT = """
import json, os, sys
before = dict(os.environ)
{code}
after = dict(os.environ)
print(json.dumps({{"modules": sorted(sys.modules),
                  "changed": sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)),
                  "omp": os.environ.get("OMP_WAIT_POLICY")}}))
"""

RESEARCH = ("matplotlib", "tensorboard_al_plugin.research", "tensorboard_al_plugin.research.benchmark",
            "tensorboard_al_plugin.research.datasets", "tensorboard_al_plugin.research.quality")


def run_python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(env_changes)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", REPORT.format(code=code)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_imports_no_research_tooling():
    got = run_python("import tensorboard_al_plugin.plugin")
    assert not [m for m in got["modules"] if m.startswith(RESEARCH)]


def test_everything_the_server_runs_imports_no_research_tooling():
    # the modules behind every route: layout sessions (t-SNE, PCA), the classifier,
    # suggestions, the warm-up of the numba kernels
    got = run_python("import tensorboard_al_plugin.plugin, tensorboard_al_plugin.sessions, "
                     "tensorboard_al_plugin.trainer, tensorboard_al_plugin.warmup\n"
                     "from tensorboard_al_plugin.active import STRATEGIES, suggest, predictions, train_classifier\n"
                     "from tensorboard_al_plugin.active import emulation_step, BarnesHutTree\n"
                     "import tensorboard_al_plugin.tsne.pca")
    assert "tensorboard_al_plugin.tsne" in got["modules"] and "tensorboard_al_plugin.active.suggest" in got["modules"]
    assert not [m for m in got["modules"] if m.startswith(RESEARCH)]


def test_research_tooling_is_still_reachable_from_its_old_names():
    got = run_python("from tensorboard_al_plugin.active import run_benchmark, quality_report, load_dataset, DATASETS\n"
                     "import tensorboard_al_plugin.research as r\n"
                     "assert run_benchmark is r.run_benchmark and quality_report is r.quality_report\n"
                     "assert load_dataset is r.load_dataset and DATASETS == r.DATASETS")
    assert "tensorboard_al_plugin.research.benchmark" in got["modules"]


@pytest.mark.parametrize("module", ["tensorboard_al_plugin", "tensorboard_al_plugin.tsne",
                                    "tensorboard_al_plugin.active", "tensorboard_al_plugin.plugin",
                                    "tensorboard_al_plugin.sessions", "tensorboard_al_plugin.cli",
                                    "tensorboard_al_plugin.research"])
def test_importing_leaves_the_environment_unchanged(module):
    got = run_python(f"import {module}")
    assert got["changed"] == [] and got["omp"] is None


def test_passive_openmp_wait_is_a_default_the_user_can_override():
    from tensorboard_al_plugin.threads import passive_openmp_wait
    env = {}
    assert passive_openmp_wait(env) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert passive_openmp_wait(env) == "ACTIVE" and env == {"OMP_WAIT_POLICY": "ACTIVE"}


@pytest.mark.parametrize("start", [
    "from tensorboard_al_plugin.sessions import SessionManager\nSessionManager().close()",
    "from tensorboard_al_plugin import cli\ncli.main(['ls', '.'])",
])
def test_the_server_and_the_cli_let_openmp_threads_sleep_before_any_layout(start):
    # the server's layout sessions and tensorboard-al set it when they start, before numba loads OpenMP
    assert run_python(start)["omp"] == "PASSIVE"
    assert run_python(start, OMP_WAIT_POLICY="ACTIVE")["omp"] == "ACTIVE"
