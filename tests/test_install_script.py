"""`scripts/install.sh`: `--serve` takes `--port N` / `--port=N` (and more tensorboard arguments after
`--`), refuses what it cannot take with exit status 2, and compiles the kernels (`tensorboard-al warmup`).

The real script runs in a copy of the repository's layout whose `.venv` holds recording stand-ins for
python, tensorboard-al and tensorboard (and nothing for the frontend), so every step of the script runs
as written but installs nothing and starts no server.
"""
import os
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORDER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "%s"
"""


@pytest.fixture
def fake_root(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "scripts", "install.sh"), root / "scripts" / "install.sh")
    (root / "setup.py").write_text("# stand-in\n")
    manifest = root / "demo_logs" / "digits" / "plugins" / "active_labeling" / "digits" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    log = tmp_path / "calls.log"
    # apt-get too: a machine without chromium would otherwise install it from inside the test
    for where, name in ((".venv/bin", "python"), (".venv/bin", "tensorboard"), (".venv/bin", "tensorboard-al"),
                        ("fakebin", "apt-get")):
        exe = root / where / name
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(RECORDER % log)
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return root, log


def install(root, *args):
    env = dict(os.environ, PYTHON=str(root / ".venv" / "bin" / "python"),
               PATH=str(root / "fakebin") + os.pathsep + os.environ["PATH"])
    return subprocess.run(["bash", str(root / "scripts" / "install.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("args, expected", [
    (["--serve"], ""),
    (["--serve", "--port", "6123"], " --port 6123"),
    (["--port=6123", "--serve"], " --port 6123"),
    (["--serve", "--port", "6123", "--", "--bind_all"], " --port 6123 --bind_all"),
])
def test_serve_passes_the_port_to_tensorboard_after_the_warmup(fake_root, args, expected):
    root, log = fake_root
    r = install(root, *args)
    assert r.returncode == 0, r.stderr
    made = calls(log)
    assert made[-2:] == ["tensorboard-al warmup --quiet",
                         "tensorboard --logdir %s/demo_logs%s" % (root, expected)]


def test_install_without_serve_warms_up_and_starts_nothing(fake_root):
    root, log = fake_root
    r = install(root)
    assert r.returncode == 0, r.stderr
    assert calls(log)[-1] == "tensorboard-al warmup --quiet"
    assert "open http://localhost:6006" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--serve", "--port"], "--port needs a number"),
    (["--serve", "--port", "http"], "--port takes a port number from 1 to 65535, got 'http'"),
    (["--serve", "--port=70000"], "got '70000'"),
    (["--port", "6123"], "--port and tensorboard arguments go with --serve"),
    (["--serv"], "unknown option --serv"),
])
def test_bad_options_exit_2_before_installing_anything(fake_root, args, message):
    root, log = fake_root
    r = install(root, *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert calls(log) == []
