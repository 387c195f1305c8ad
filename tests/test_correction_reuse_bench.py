"""benchmarks/correction_reuse.py's small version: what it measures is right (never a timing)."""
import numpy as np

from tests.quick_bench import run_quick


def test_reused_correction_error_grows_with_age_and_r_and_step_keeps_it_small(tmp_path):
    got = run_quick("correction_reuse.py", tmp_path, timeout=600)
    meta = got["meta"]
    assert meta["data"] == "digits" and meta["n"] == 1797 and meta["quick"]
    assert meta["checks"] == [20, 60, 120, 200]
    err = {(r["r"], r["age"]): np.asarray(r["errors"]) for r in got["rows"]}
    assert sorted(err) == [(r, a) for r in (0.1, 1.0) for a in (3, 7, 11, 15)]
    for e in err.values():
        assert e.shape == (4,) and np.all(np.isfinite(e)) and np.all(e > 0)
    for r in (0.1, 1.0):
        # older corrections are further off (at digits' size the class-aware tree's own
        # error, not the age, sets the smallest figures: only the ends are compared)
        assert err[r, 15].mean() > err[r, 3].mean(), r
    assert err[1.0, 15].mean() > 3 * err[0.1, 15].mean()  # the correction scales with r
    # the rule's claim: reused as long as step() allows at r = 0.1 (age 15), the correction
    # is no further off than at r = 1 and age 3 (the interval chosen before for every r)
    assert err[0.1, 15].mean() <= err[1.0, 3].mean()
    assert err[0.1, 15].max() < 0.05 and err[1.0, 3].max() < 0.10
    # step's estimate of the same errors (the exact correction on a sample of the labeled
    # points) is within a factor 2 of them wherever they are above the noise
    for r in got["rows"]:
        for e, s in zip(r["errors"], r["estimates"]):
            assert np.isfinite(s) and s >= 0
            if e > 2e-3:
                assert 0.5 < s / e < 2.0, (r["r"], r["age"], e, s)
    # the extrapolated correction: measured where step keeps a sample (r = 1, not 0.1), and
    # closer than the constant one once the ramp is over (iterations 60-200) at the youngest age
    ahead = {(r["r"], r["age"]): r["extrapolated"] for r in got["rows"]}
    assert all(ahead[0.1, a] is None for a in (3, 7, 11, 15))
    for a in (3, 7, 11, 15):
        assert len(ahead[1.0, a]) == 4 and np.all(np.isfinite(ahead[1.0, a]))
    assert np.mean(ahead[1.0, 3][1:]) < np.mean(err[1.0, 3][1:])
    fresh = {f["r"]: f["counts"] for f in got["fresh"]}
    assert sorted(fresh) == [0.1, 1.0] and all(len(c) == 4 for c in fresh.values())
    constant = {f["r"]: f.get("counts_constant") for f in got["fresh"]}
    assert constant[0.1] is None and len(constant[1.0]) == 4
    assert sum(fresh[1.0]) <= sum(constant[1.0])   # extrapolated: found stale no sooner
    # up to iteration 200 step computed at least one every 16 iterations, at most one every 4
    for r, counts in fresh.items():
        assert 200 // 16 <= sum(counts) <= 200 // 4 + 1, (r, counts)
    table = (tmp_path / "correction_reuse.md").read_text()
    assert "| 0.1 | 15 * |" in table and "| 1.0 | 3 * |" in table
    assert "extrapolated / constant" in table and "| 1.0 | no |" in table
    assert (tmp_path / "plot.png").stat().st_size > 10_000
