"""benchmarks/labeling_session.py's small version: what it measures is right (never a timing)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.quick_bench import ROOT, run_quick


def test_a_labeling_session_passes_only_the_ramping_groups_pairs(tmp_path):
    got = run_quick("labeling_session.py", tmp_path)
    meta = got["meta"]
    assert meta["data"] == "digits" and meta["n"] == 1797 and meta["quick"]
    assert (meta["iters"], meta["every"], meta["from"], meta["group"]) == (300, 10, 50, 21)
    assert [r["r"] for r in got["rows"]] == [0.1, 1.0]
    for r in got["rows"]:
        assert "error" not in r and r["finite"]
        # a group every 10 iterations from 50 to 300, 21 points each, none labeled twice
        assert r["groups"] == 25
        labeled = np.asarray(r["labeled"])   # after each 10-iteration chunk
        assert np.all(labeled[:5] == labeled[0]) and abs(labeled[0] / 1797 - 0.5) < 0.05
        added = np.diff(labeled[4:])
        assert np.all((added >= 1) & (added <= 21)) and added.sum() > 25 * 15
        for name in ("supervised", "unsupervised"):
            ms = np.asarray(r["ms"][name])
            assert ms.shape == (30,) and np.all(ms > 0)
        # the second pass covers the pairs of the groups still ramping (at most 5 groups of 21
        # points: 50 iterations), a small part of all the labeled pairs it passed before
        visited = np.asarray(r["visited"][5:])
        assert np.all(visited > 0)
        assert r["visited_session_mean"] < 0.25 * r["labeled_pairs_end"]
        assert r["ratio_whole"] > 0 and r["ratio_session"] > 0 and r["ratio_early"] > 0
        # early = the chunks before the first group (iterations 0 to 49)
        early = np.mean(r["ms"]["supervised"][:5]) / np.mean(r["ms"]["unsupervised"][:5])
        assert r["ratio_early"] == pytest.approx(early)
        assert r["grain"] == 1 and r["invocation"] == 1
        # step's fresh supervision corrections: at least one every 16 iterations, at most one
        # every correction_interval(r) (new labels keep the one in use)
        assert 300 // 16 <= r["fresh_corrections"] <= 300 // (16 if r["r"] == 0.1 else 4) + 1
    table = (tmp_path / "labeling_session.md").read_text()
    assert table.count("| this engine (") == 2
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_repeated_invocations_are_all_reported_with_their_median_and_range(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "labeling_session.py"),
                          "--quick", "--iters", "60", "--r", "1", "--repeat", "3", "--grain", "5",
                          "--results", str(tmp_path), "--figure", str(tmp_path / "plot.png")],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, NUMBA_NUM_THREADS="2"))
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads((tmp_path / "labeling_session.json").read_text())
    assert got["meta"]["repeat"] == 3 and got["meta"]["grain"] == 5
    assert [r["invocation"] for r in got["rows"]] == [1, 2, 3]
    ratios = sorted(r["ratio_whole"] for r in got["rows"])
    table = (tmp_path / "labeling_session.md").read_text()
    assert "5 iterations at a time" in table
    for k in (1, 2, 3):
        assert f"| this engine (" in table and f", #{k} | 1.0 |" in table
    summary = [ln for ln in table.splitlines() if ln.startswith("| this engine") and "3 (0)" in ln]
    assert len(summary) == 1
    assert f"**{ratios[1]:.2f}** ({ratios[0]:.2f} to {ratios[2]:.2f})" in summary[0]
