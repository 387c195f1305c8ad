"""benchmarks/labeling_session.py's small version: what it measures is right (never a timing)."""
import numpy as np

from tests.quick_bench import run_quick


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
        assert r["ratio_whole"] > 0 and r["ratio_session"] > 0
        # step's fresh supervision corrections: at least one every 16 iterations, at most one
        # every correction_interval(r) (new labels keep the one in use)
        assert 300 // 16 <= r["fresh_corrections"] <= 300 // (16 if r["r"] == 0.1 else 4) + 1
    table = (tmp_path / "labeling_session.md").read_text()
    assert table.count("| this engine (") == 2
    assert (tmp_path / "plot.png").stat().st_size > 10_000
