"""benchmarks/device_16.sh, the prepared 16-core run: its plumbing, at 2 threads on small data.

The script is run only where a 16-core machine is lent; these tests keep it working between
such sessions: its steps run the benchmarks with the thread count it is given, what finished
comes back as one tarball, and a step the budget cannot hold is written down as censored.
"""
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "device_16.sh")


def _run(part, tmp_path, **env):
    env = dict(os.environ, PY=sys.executable, OUT=str(tmp_path / "out"), DEVICE_RESULTS=str(tmp_path / "res"),
               TSNE_BENCH_CACHE=str(tmp_path / "cache"), DEVICE_THREADS="2", **env)
    return subprocess.run(["bash", SCRIPT, part], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _members(tmp_path, part):
    with tarfile.open(tmp_path / "out" / f"device_16_{part}.tar.gz") as tar:
        return {os.path.basename(m.name): (tar.extractfile(m).read().decode("utf-8", "replace") if m.isfile() else None)
                for m in tar.getmembers() if m.isfile()}


def test_the_quick_part_runs_every_benchmark_and_brings_back_their_tables(tmp_path):
    pytest.importorskip("openTSNE")   # the peer the benchmarks run beside (the bench extra)
    p = _run("quick", tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    got = _members(tmp_path, "quick")
    steps = got["device_16_steps.txt"].splitlines()
    assert [s.split(":")[0] for s in steps] == ["warmup", "interleaved-digits", "session-digits", "affinities-small"]
    assert all(": exit 0 in " in s and s.endswith("threads 2") for s in steps), steps
    machine = got["device_16_machine.txt"]
    assert "threads used: 2" in machine and "openTSNE 1.0.4" in machine
    # each benchmark's own table, at the thread count asked for, with no failed row
    inter = got["tsne_bench_interleaved.md"]
    assert "threads used: 2" in inter and "| digits (1797) | 2D |" in inter
    assert "16-core figures were not measured" in inter
    assert "| this engine (" in got["labeling_session.md"]
    knn = got["knn_bench.md"]
    assert "| ours | 1 |" in knn and "| opentsne | 1 |" in knn and "failed" not in knn
    assert "16-thread figures were not measured" in knn
    for name in ("knn_bench.png", "labeling_session.png"):
        assert name in got
    assert (tmp_path / "out" / "device_16_quick.log").stat().st_size > 0


def test_steps_the_budget_cannot_hold_are_reported_as_censored_not_dropped(tmp_path):
    p = _run("all", tmp_path, DEVICE_BUDGET_S="30")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    steps = _members(tmp_path, "all")["device_16_steps.txt"].splitlines()
    assert [s.split(":")[0] for s in steps] == [
        "warmup", "interleaved-fmnist70k-2d", "affinities-70k", "interleaved-fmnist70k-3d", "affinities-1m",
        "session-70k-r1", "interleaved-1m-2d"]
    assert all("censored, not started" in s for s in steps), steps


def test_an_unknown_part_is_named_with_the_usage(tmp_path):
    p = _run("16", tmp_path)
    assert p.returncode == 2 and "usage: bash benchmarks/device_16.sh fetch|all|70k|1m|quick" in p.stderr
