"""`tensorboard-al` starts fast: `ls`, `export` and `--help` import neither TensorFlow nor numba, and no
command prints TensorFlow's, absl's or oneDNN's log lines (issue 11, first run speed).

Each command runs the real CLI in a fresh interpreter, which reports afterwards which heavy modules
it imported. The environment is the user's: no TF_CPP_MIN_LOG_LEVEL set by the test.
"""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs cli.main like the console script, then writes what was imported to the file named by argv[1].
WRAPPER = """
import json, sys
from tensorboard_al_plugin import cli
try:
    rc = cli.main(sys.argv[2:])
except SystemExit as e:
    rc = e.code
sys.stdout.flush()
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": sorted(m for m in ("tensorflow", "numba", "sklearn", "keras")
                                              if m in sys.modules)}, f)
"""

# What TensorFlow, absl and oneDNN print at import or when a checkpoint is read.
FOREIGN = re.compile(r"oneDNN|absl|InitializeLog|cpu_feature_guard|tensorflow|TF_ENABLE|^[IWEF]\d{4} ", re.I | re.M)


def run_cli(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    report = tmp_path / "imported.json"
    r = subprocess.run([sys.executable, "-c", WRAPPER, str(report), *args], capture_output=True, text=True,
                       env=env, cwd=str(tmp_path))
    with open(report) as f:
        got = json.load(f)
    return got["rc"], got["modules"], r.stdout, r.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo") / "logs")
    subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", "demo", "--out", out, "--quiet"],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("args", [
    ["ls", "{demo}"],
    ["ls", "{demo}", "--json"],
    ["export", "{demo}", "--run", "digits", "--embedding", "digits"],
    ["export", "{demo}", "--run", "digits", "--embedding", "digits", "--all-rows", "--out", "{tmp}/labels.csv"],
    ["--help"],
    ["ls", "--help"],
    ["export", "--help"],
    ["benchmark", "--help"],
    ["warmup", "--help"],
], ids=lambda a: " ".join(a).replace("{demo}", "DEMO").replace("{tmp}", "TMP"))
def test_commands_on_the_demo_import_neither_tensorflow_nor_numba_and_print_no_foreign_lines(demo, tmp_path,
                                                                                             args):
    args = [a.format(demo=demo, tmp=tmp_path) for a in args]
    rc, modules, out, err = run_cli(tmp_path, *args)
    assert rc == 0, err
    assert modules == [], "imported %s for %s" % (modules, args)
    assert not FOREIGN.search(err), err
    if "--out" in args:
        assert err == "wrote 1797 rows to %s/labels.csv\n" % tmp_path
    else:
        assert err == "" and out


def test_reading_a_checkpoint_imports_tensorflow_without_its_log_lines(tmp_path):
    pytest.importorskip("tensorflow")
    from tests.fixture_logs import write_checkpoint_log

    logdir = str(tmp_path / "logs")
    name = write_checkpoint_log(logdir)
    rc, modules, out, err = run_cli(tmp_path, "ls", logdir)
    assert rc == 0, err
    assert "tensorflow" in modules  # the checkpoint tensor is read: TensorFlow is needed here, and only here
    assert name in out and "ok" in out
    assert err == "", err
