"""Runs a benchmark's small version (``--quick``) the way the bench tests do."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quick(script, tmp_path, timeout=900):
    """Run benchmarks/``script`` with ``--quick``, its JSON and table in tmp_path and its plot
    at tmp_path/plot.png; returns the JSON named after the script (a failure shows its stderr)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--quick",
                          "--results", str(tmp_path), "--figure", str(tmp_path / "plot.png")],
                         capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, NUMBA_NUM_THREADS="2"))
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / (script[:-3] + ".json")) as f:
        return json.load(f)
